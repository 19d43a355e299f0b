import { describe, expect, it } from 'vitest';
import { decodeBf16, encodeBf16 } from '../../worker/infer/bf16.js';
import { RowSums } from '../../worker/score/score-embeddings.js';
import { checkEmbeddings } from '../../worker/score/types.js';
import { arrayKernels } from '../../worker/native/array-kernels.js';
import { writeFileAtomic, writeFileAtomicIfAbsent } from '../../worker/util/atomic-write.js';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import { loadNativeAddon } from '../../worker/native/addon.js';

/** Random float32 bit patterns (every exponent, NaN and infinities included) plus the edge cases. */
function awkwardFloats(n: number, seed: number): Float32Array {
  const u = new Uint32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    u[i] = s;
  }
  // Exact ties (round to even, both ways), the largest finite values, denormals, ±0, ±Inf, NaNs.
  const edges = [0x3f808000, 0x3f818000, 0x7f7fffff, 0xff7fffff, 0x00000001, 0x807fffff, 0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffffffff, 0x7f800001];
  u.set(edges, 0);
  return new Float32Array(u.buffer);
}

describe('BF16 codec', () => {
  it('the addon has the kernels (CI builds the addon)', () => {
    expect(loadNativeAddon()).not.toBeInstanceOf(Error);
    expect(arrayKernels()).not.toBeNull();
  });

  it('native and JavaScript encode give the same bits on random and edge-case floats', () => {
    const f = awkwardFloats(300_000, 7);
    const native = new Uint16Array(f.length);
    const js = new Uint16Array(f.length);
    encodeBf16(f, native);
    encodeBf16(f, js, { native: false });
    expect(Buffer.from(native.buffer).equals(Buffer.from(js.buffer))).toBe(true);
    // Spot checks against the definition: ties to even, overflow to Inf, NaN stays NaN.
    expect(Array.from(js.subarray(0, 13), (v) => v.toString(16))).toEqual(['3f80', '3f82', '7f80', 'ff80', '0', '8080', '0', '8000', '7f80', 'ff80', '7fc0', '7fc0', '7fc0']);
  });

  it('decode is exact and the same natively, including into a larger output', () => {
    const bits = new Uint16Array(200_003);
    for (let i = 0; i < bits.length; i++) bits[i] = (i * 40503) & 0xffff;
    const native = new Float32Array(bits.length + 5).fill(-1);
    const js = new Float32Array(bits.length + 5).fill(-1);
    decodeBf16(bits, native);
    decodeBf16(bits, js, { native: false });
    expect(Buffer.from(native.buffer).equals(Buffer.from(js.buffer))).toBe(true);
    expect(native[bits.length]).toBe(-1); // nothing written past the input
    const back = new Uint16Array(bits.length);
    encodeBf16(native.subarray(0, bits.length), back);
    // Every bf16 survives float32 and back, except that all NaN payloads become the quiet NaN.
    for (let i = 0; i < bits.length; i++) {
      const b = bits[i] as number;
      const isNaN = (b & 0x7f80) === 0x7f80 && (b & 0x007f) !== 0;
      expect(back[i], `bits ${b.toString(16)}`).toBe(isNaN ? 0x7fc0 : b);
    }
  });

  it('a too-small output is refused', () => {
    expect(() => decodeBf16(new Uint16Array(4), new Float32Array(3))).toThrow(RangeError);
    expect(() => encodeBf16(new Float32Array(4), new Uint16Array(3))).toThrow(RangeError);
  });
});

describe('bulk array kernels for the part files and the scoring passes', () => {
  it('column sums: native (threads over columns) and the JavaScript loop agree to the bit', () => {
    const dim = 1031;
    const count = 777;
    const data = new Float32Array(count * dim);
    for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37) * 10 ** ((i % 9) - 4);
    const a = new RowSums(dim);
    const b = new RowSums(dim);
    a.add(data, count);
    a.add(data.subarray(0, 10 * dim), 10);
    b.add(data, count, { native: false });
    b.add(data.subarray(0, 10 * dim), 10, { native: false });
    expect(a.count).toBe(787);
    expect(Buffer.from(a.sums.buffer).equals(Buffer.from(b.sums.buffer))).toBe(true);
  });

  it('non-finite embeddings are found wherever they are', () => {
    const data = new Float32Array(64 * 300).fill(0.5);
    expect(() => checkEmbeddings({ count: 300, dim: 64, data })).not.toThrow();
    for (const [at, v] of [[0, NaN], [12345, Infinity], [64 * 300 - 1, -Infinity]] as const) {
      const bad = data.slice();
      bad[at] = v;
      expect(arrayKernels()!.firstNonFinite(bad)).toBe(at);
      expect(() => checkEmbeddings({ count: 300, dim: 64, data: bad })).toThrow(new RegExp(`patch ${Math.floor(at / 64)} has a non-finite value`));
    }
  });

  it('an atomic write from pieces gives the joined bytes', async () => {
    const path = join(tempDir(), 'pieces.bin');
    const pieces = [Buffer.from('header'), new Uint8Array(0), new Uint8Array(3_000_000).fill(7), Buffer.from('tail')];
    await writeFileAtomic(path, pieces);
    expect(readFileSync(path).equals(Buffer.concat(pieces))).toBe(true);
  });

  it('writeFileAtomicIfAbsent: of eight racing writers exactly one wins, its bytes stay, no temporary file is left', async () => {
    const dir = tempDir();
    const path = join(dir, 'plan.json');
    const won = await Promise.all(Array.from({ length: 8 }, (_, i) => writeFileAtomicIfAbsent(path, `writer ${i}`)));
    expect(won.filter(Boolean).length).toBe(1);
    expect(readFileSync(path, 'utf8')).toBe(`writer ${won.indexOf(true)}`);
    expect(await writeFileAtomicIfAbsent(path, 'late')).toBe(false);
    expect(readFileSync(path, 'utf8')).toBe(`writer ${won.indexOf(true)}`);
    expect(readdirSync(dir)).toEqual(['plan.json']);
  });
});
