import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { checkModel } from '../../worker/infer/model-check.js';
import { EngineError, VitEngine } from '../../worker/infer/vit-engine.js';
import { decodeBf16, encodeBf16 } from '../../worker/infer/bf16.js';
import { RowSums } from '../../worker/score/score-embeddings.js';
import { SafetensorsFile, encodeSafetensors, type TensorToWrite } from '../../worker/infer/safetensors.js';
import { demoModelTensors } from '../../worker/infer/demo-model.js';
import { ROOT, tempDir } from '../helpers.js';

const TIMM = join(ROOT, 'test', 'fixtures', 'timm');
const FIXTURES = readdirSync(TIMM)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.replace(/\.json$/, ''));

/** A fixture's tensors, all as F32, to edit and write back. */
async function loadTensors(name: string): Promise<Record<string, TensorToWrite>> {
  const f = await SafetensorsFile.read(join(TIMM, `${name}.safetensors`));
  const out: Record<string, TensorToWrite> = {};
  for (const [n, t] of f.tensors) out[n] = { dtype: 'F32', shape: [...t.shape], data: f.float32(n) };
  return out;
}

/** Writes edited weights with the fixture's config beside them; returns the weights path. */
function writeVariant(name: string, tensors: Record<string, TensorToWrite>, label: string): string {
  const dir = tempDir();
  const weights = join(dir, `${label}.safetensors`);
  writeFileSync(weights, encodeSafetensors(tensors));
  copyFileSync(join(TIMM, `${name}.json`), join(dir, `${label}.json`));
  return weights;
}

async function engineError(p: Promise<unknown>): Promise<EngineError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EngineError);
  return err as EngineError;
}

describe('parity with timm (float64 references) on the CPU', () => {
  it('has the three fixtures: non-square, square batch of 2, registers + SwiGLU + no_embed_class', () => {
    expect(FIXTURES.sort()).toEqual(['uni2_like_p14_reg8_swiglu', 'uni_like_p16', 'uni_like_p16_square']);
  });

  for (const name of FIXTURES) {
    it(`${name}: relErr < 1e-4`, async () => {
      const r = await checkModel(join(TIMM, `${name}.safetensors`), join(TIMM, `${name}.io.safetensors`), { device: 'cpu' });
      const expected = (JSON.parse(readFileSync(join(TIMM, `${name}.json`), 'utf8')) as { features_shape: number[] }).features_shape;
      expect(r.shape).toEqual(expected);
      expect(r.relErr).toBeLessThan(1e-4);
      expect(r.maxAbsErr).toBeLessThan(1e-3);
      expect(r.pass).toBe(true);
    });
  }

  it('weights stored as BF16 and F16 load and stay close to the float32 result', async () => {
    const name = 'uni_like_p16';
    const io = await SafetensorsFile.read(join(TIMM, `${name}.io.safetensors`));
    const ref = io.float32('features');
    for (const dtype of ['BF16', 'F16'] as const) {
      const tensors = await loadTensors(name);
      for (const t of Object.values(tensors)) t.dtype = dtype;
      const r = await checkModel(writeVariant(name, tensors, dtype.toLowerCase()), join(TIMM, `${name}.io.safetensors`), {
        device: 'cpu',
        tolerance: dtype === 'BF16' ? 3e-2 : 3e-3,
      });
      expect(r.pass, `${dtype} relErr ${r.relErr}`).toBe(true);
      expect(r.relErr).toBeGreaterThan(0); // really rounded, not silently read as F32
      expect(ref.length).toBe(r.shape.reduce((a, b) => a * b, 1));
    }
  });

  it('infers the architecture from shapes: registers, SwiGLU, layer scale, prefix tokens', async () => {
    const e = await VitEngine.load(join(TIMM, 'uni2_like_p14_reg8_swiglu.safetensors'), { device: 'cpu' });
    expect(e.arch).toMatchObject({ embedDim: 128, depth: 2, numHeads: 2, headDim: 64, patchSize: 14, mlp: 'swiglu', numRegTokens: 8, numPrefixTokens: 9, noEmbedClass: true, layerScale: true });
    expect(e.tokens(252, 196)).toBe(9 + 18 * 14);
    const u = await VitEngine.load(join(TIMM, 'uni_like_p16.safetensors'), { device: 'cpu' });
    expect(u.arch).toMatchObject({ mlp: 'gelu', numPrefixTokens: 1, noEmbedClass: false, posEmbedGrid: [14, 14] });
  });
});

describe('bad checkpoints and inputs give clear errors', () => {
  const name = 'uni_like_p16';

  it('truncated safetensors', async () => {
    const dir = tempDir();
    const p = join(dir, 'cut.safetensors');
    writeFileSync(p, readFileSync(join(TIMM, `${name}.safetensors`)).subarray(0, 100_000));
    copyFileSync(join(TIMM, `${name}.json`), join(dir, 'cut.json'));
    const e = await engineError(VitEngine.load(p, { device: 'cpu' }));
    expect(e.code).toBe('bad_file');
    expect(e.message).toMatch(/cut\.safetensors/);
    expect(e.message).toMatch(/truncated/i);
  });

  it('a weight in a dtype the engine does not convert', async () => {
    const tensors = await loadTensors(name);
    const w = tensors['patch_embed.proj.weight']!;
    tensors['patch_embed.proj.weight'] = { dtype: 'U8', shape: w.shape, data: new Uint8Array(w.data.length) };
    const e = await engineError(VitEngine.load(writeVariant(name, tensors, 'u8'), { device: 'cpu' }));
    expect(e.code).toBe('unsupported_dtype');
    expect(e.message).toMatch(/patch_embed\.proj\.weight/);
  });

  it('a missing tensor is named', async () => {
    const tensors = await loadTensors(name);
    delete tensors['blocks.1.mlp.fc2.weight'];
    const e = await engineError(VitEngine.load(writeVariant(name, tensors, 'missing'), { device: 'cpu' }));
    expect(e.code).toBe('missing_tensor');
    expect(e.message).toMatch(/blocks\.1\.mlp\.fc2\.weight/);
  });

  it('a tensor with the wrong shape is named with expected and actual shapes', async () => {
    const tensors = await loadTensors(name);
    tensors['blocks.0.attn.proj.weight'] = { dtype: 'F32', shape: [192, 190], data: new Float32Array(192 * 190) };
    const e = await engineError(VitEngine.load(writeVariant(name, tensors, 'shape'), { device: 'cpu' }));
    expect(e.code).toBe('shape_mismatch');
    expect(e.message).toMatch(/blocks\.0\.attn\.proj\.weight/);
    expect(e.message).toMatch(/192, 190/);
  });

  it('an image size that is not a multiple of the patch size', async () => {
    const e = await VitEngine.load(join(TIMM, `${name}.safetensors`), { device: 'cpu' });
    const err = await engineError(e.forward(Buffer.alloc(250 * 250 * 3), 1, 250, 250));
    expect(err.code).toBe('bad_input');
    expect(err.message).toMatch(/multiple of the patch size 16/);
    const short = await engineError(e.forward(Buffer.alloc(100), 1, 224, 224));
    expect(short.code).toBe('bad_input');
    expect(short.message).toMatch(/needs 150528/);
  });

  it('config problems: missing file, missing num_heads, heads that do not divide D', async () => {
    const dir = tempDir();
    const weights = join(dir, 'w.safetensors');
    copyFileSync(join(TIMM, `${name}.safetensors`), weights);
    expect((await engineError(VitEngine.load(weights, { device: 'cpu' }))).code).toBe('config_not_found');
    writeFileSync(join(dir, 'w.json'), JSON.stringify({ patch_size: 16 }));
    const noHeads = await engineError(VitEngine.load(weights, { device: 'cpu' }));
    expect(noHeads.code).toBe('bad_config');
    expect(noHeads.message).toMatch(/num_heads/);
    writeFileSync(join(dir, 'w.json'), JSON.stringify({ num_heads: 5 }));
    expect((await engineError(VitEngine.load(weights, { device: 'cpu' }))).message).toMatch(/192.*5|5.*192/);
  });

  it('a CUDA request on a build without CUDA', async () => {
    const e = await engineError(VitEngine.load(join(TIMM, `${name}.safetensors`), { device: 'cuda' }));
    expect(e.code).toBe('unsupported_device');
  });
});

describe('the demo model and the event loop', () => {
  it('the demo model is deterministic and loads', async () => {
    const hash = (): string => createHash('sha256').update(encodeSafetensors(demoModelTensors())).digest('hex');
    const a = hash();
    const b = hash();
    expect(a).toBe(b);
    expect(Object.keys(demoModelTensors())).toContain('blocks.3.ls2.gamma');
    const e = await VitEngine.load('demo', { device: 'cpu' });
    expect(e.arch).toMatchObject({ embedDim: 192, depth: 4, patchSize: 16 });
  });

  it('forward runs off the JS thread: timers keep firing during a 1024 px forward', async () => {
    const e = await VitEngine.load('demo', { device: 'cpu' });
    const img = Buffer.alloc(1024 * 1024 * 3);
    for (let i = 0; i < img.length; i++) img[i] = (i * 2654435761) >>> 24;
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    const started = Date.now();
    const out = await e.forward(img, 1, 1024, 1024);
    const elapsed = Date.now() - started;
    clearInterval(timer);
    expect([out.batch, out.tokens, out.dim]).toEqual([1, 4097, 192]);
    expect(out.data.every(Number.isFinite)).toBe(true);
    // Blocked, the loop would tick at most once; free, about elapsed/5 times.
    expect(ticks).toBeGreaterThan(Math.min(10, elapsed / 20));
  });
  it('forwardRowsBf16: the chosen token rows in BF16 and their column sums, the same bits as forward() then encoding and summing; bad rows refused', async () => {
    const e = await VitEngine.load('demo', { device: 'cpu' });
    const img = Buffer.alloc(2 * 64 * 96 * 3);
    for (let i = 0; i < img.length; i++) img[i] = (i * 2246822519) >>> 24;
    const full = await e.forward(img, 2, 64, 96);
    const { tokens, dim } = full;
    // Prefix and patch rows of both images, out of order, one repeated.
    const rows = Int32Array.from([0, tokens - 1, tokens, 2 * tokens - 1, 5, 5, tokens + 3, 1]);
    const sel = await e.forwardRowsBf16(img, 2, 64, 96, rows);
    expect([sel.rows, sel.tokens, sel.dim, sel.data.length]).toEqual([rows.length, tokens, dim, rows.length * dim]);
    const expected = new Uint16Array(rows.length * dim);
    rows.forEach((r, i) => encodeBf16(full.data.subarray(r * dim, (r + 1) * dim), expected.subarray(i * dim, (i + 1) * dim), { native: false }));
    expect(Buffer.from(sel.data.buffer, sel.data.byteOffset, sel.data.byteLength).equals(Buffer.from(expected.buffer))).toBe(true);
    // Column sums of the rows as stored (decoded BF16), rows in order: RowSums' bits exactly.
    const decoded = new Float32Array(expected.length);
    decodeBf16(expected, decoded, { native: false });
    const sums = new RowSums(dim);
    sums.add(decoded, rows.length, { native: false });
    expect(Array.from(sel.sums)).toEqual(Array.from(sums.sums));
    const none = await e.forwardRowsBf16(img, 2, 64, 96, new Int32Array(0));
    expect([none.data.length, Array.from(none.sums).every((v) => v === 0), none.sums.length]).toEqual([0, true, dim]);
    for (const bad of [-1, 2 * tokens]) {
      const err = await e.forwardRowsBf16(img, 2, 64, 96, Int32Array.from([0, bad])).catch((x: unknown) => x);
      expect(err).toBeInstanceOf(EngineError);
      expect(err).toMatchObject({ code: 'bad_input', message: expect.stringMatching(new RegExp(`row ${bad} \\(index 1\\) is outside the 2x${tokens} output token rows`)) });
    }
  });
});
