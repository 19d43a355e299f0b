import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildReferenceBank, readReferenceBank, writeReferenceBank } from '../../worker/score/reference-bank.js';
import { calibrateReferenceBank } from '../../worker/score/reference-calibration.js';
import { ReferenceScorer } from '../../worker/score/reference-scorer.js';
import { JsNearestNeighbour } from '../../worker/score/nearest-neighbour.js';
import { parseScoreMethod } from '../../worker/score/parse-score-method.js';
import { ModelMismatchError, ScoreConfigError, ScoreFileError, ScoreInputError } from '../../worker/score/errors.js';
import { SafetensorsFile, writeSafetensors } from '../../worker/infer/safetensors.js';
import { seededRng } from '../../worker/util/random.js';
import type { PatchEmbeddings } from '../../worker/score/types.js';
import { scoreEmbeddings } from '../../worker/score/score-embeddings.js';
import { tempDir } from '../helpers.js';
import { concat, makeCloud, randomUnit, ranking, sample } from './synthetic.js';

// Above the coreset's 128-dim projection, so the projected path runs.
const DIM = 160;
const MODEL = 'test-vit';

function normalSlides(): PatchEmbeddings[] {
  const cloud = makeCloud(DIM, 4, 21);
  return [sample(cloud, 300), sample(cloud, 250), { count: 0, dim: DIM, data: new Float32Array(0) }, sample(cloud, 350)];
}

function rowsOf(e: { data: Float32Array }, dim: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < e.data.length / dim; i++) out.push(Array.from(e.data.subarray(i * dim, (i + 1) * dim)).join(','));
  return out;
}

/** Largest distance from any point to its nearest bank row: the coverage radius. */
function coverageRadius(points: PatchEmbeddings, bank: { data: Float32Array; size: number; dim: number }): number {
  return Math.max(...new JsNearestNeighbour(bank).nearestSync(points));
}

describe('reference bank', () => {
  it('selects a deterministic k-center coreset of the requested size from the source patches', () => {
    const slides = normalSlides();
    const a = buildReferenceBank(slides, { model: MODEL, maxSize: 100 });
    const b = buildReferenceBank(slides, { model: MODEL, maxSize: 100 });
    expect(a.size).toBe(100);
    expect(a.dim).toBe(DIM);
    expect(a.sourcePatches).toBe(900);
    expect(a.method).toBe('k-center coreset');
    expect(a.data).toEqual(b.data);
    // Every bank row is one of the source patches, none twice.
    const source = new Set(slides.flatMap((s) => rowsOf(s, DIM)));
    const picked = rowsOf(a, DIM);
    expect(picked.every((r) => source.has(r))).toBe(true);
    expect(new Set(picked).size).toBe(100);
    // k-center covers the cloud better than a uniform sample of the same size.
    const all = slides.reduce(concat);
    const uniform = new Float32Array(100 * DIM);
    for (let i = 0; i < 100; i++) uniform.set(all.data.subarray(i * 9 * DIM, (i * 9 + 1) * DIM), i * DIM);
    expect(coverageRadius(all, a)).toBeLessThan(coverageRadius(all, { data: uniform, size: 100, dim: DIM }));
  });

  it('is exactly greedy farthest-point selection (the pruning skips nothing it should not)', () => {
    const dim = 20;
    const cloud = makeCloud(dim, 5, 31);
    const points = sample(cloud, 300);
    const bank = buildReferenceBank([points], { model: MODEL, maxSize: 30 });
    const d2 = (a: Float32Array, ai: number, b: Float32Array, bi: number): number => {
      let s = 0;
      for (let t = 0; t < dim; t++) s += ((a[ai * dim + t] as number) - (b[bi * dim + t] as number)) ** 2;
      return s;
    };
    for (let k = 1; k < bank.size; k++) {
      // The k-th centre is a point farthest from the first k centres.
      let farthest = 0;
      for (let i = 0; i < points.count; i++) {
        let m = Infinity;
        for (let j = 0; j < k; j++) m = Math.min(m, d2(points.data, i, bank.data, j));
        farthest = Math.max(farthest, m);
      }
      let own = Infinity;
      for (let j = 0; j < k; j++) own = Math.min(own, d2(bank.data, k, bank.data, j));
      expect(own).toBeCloseTo(farthest, 3);
    }
  });

  it('keeps every patch when there are fewer than maxSize, and stops at duplicates', () => {
    const slides = normalSlides();
    expect(buildReferenceBank(slides, { model: MODEL, maxSize: 5000 }).size).toBe(900);
    const dup = new Float32Array(40 * 4);
    for (let i = 0; i < 40; i++) dup.set([i % 3, 0, 1, 2], i * 4);
    expect(buildReferenceBank([{ count: 40, dim: 4, data: dup }], { model: MODEL, maxSize: 10 }).size).toBe(3);
  });

  it('rejects unusable inputs', () => {
    expect(() => buildReferenceBank([], { model: MODEL })).toThrow(ScoreConfigError);
    expect(() => buildReferenceBank(normalSlides(), { model: '' })).toThrow(/model name/);
    const slides = [...normalSlides(), { count: 1, dim: 8, data: new Float32Array(8) }];
    expect(() => buildReferenceBank(slides, { model: MODEL })).toThrow(/set 4.*dim 8/);
  });

  it('round-trips through safetensors with its metadata', async () => {
    const bank = buildReferenceBank(normalSlides(), { model: MODEL, maxSize: 64 });
    const path = join(tempDir(), 'bank.safetensors');
    await writeReferenceBank(path, bank);
    const file = await SafetensorsFile.read(path);
    expect(file.info('bank')).toMatchObject({ dtype: 'F32', shape: [64, DIM] });
    expect(file.metadata).toMatchObject({ model: MODEL, dim: String(DIM), source_patches: '900', method: 'k-center coreset' });
    const back = await readReferenceBank(path, { dim: DIM, model: MODEL });
    expect(back).toEqual(bank);
  });

  it('refuses a bank built with another model', async () => {
    const path = join(tempDir(), 'bank.safetensors');
    await writeReferenceBank(path, buildReferenceBank(normalSlides(), { model: 'uni', maxSize: 16 }));
    await expect(readReferenceBank(path, { dim: 192 })).rejects.toThrow(ModelMismatchError);
    await expect(readReferenceBank(path, { dim: 192 })).rejects.toThrow(`bank was built with model uni dim ${DIM}, this model gives 192`);
    await expect(readReferenceBank(path, { dim: DIM, model: 'phikon' })).rejects.toThrow(/model uni, this is model phikon/);
    await expect(parseScoreMethod(`reference:${path}`, { dim: 192, model: 'demo' })).rejects.toThrow(ModelMismatchError);
  });

  it('refuses files that are not banks', async () => {
    const dir = tempDir();
    await expect(readReferenceBank(join(dir, 'missing.safetensors'))).rejects.toThrow(ScoreFileError);
    const other = join(dir, 'weights.safetensors');
    await writeSafetensors(other, { weight: { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) } });
    await expect(readReferenceBank(other)).rejects.toThrow(/no tensor "bank"/);
    const noModel = join(dir, 'nomodel.safetensors');
    await writeSafetensors(noModel, { bank: { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) } });
    await expect(readReferenceBank(noModel)).rejects.toThrow(/no "model"/);
  });
});

describe('reference scorer', () => {
  it('scores patches unlike the normal tissue highest', async () => {
    const bankPath = join(tempDir(), 'normal:v1.safetensors');
    // Normal patches never in the bank set its threshold.
    const normal = makeCloud(DIM, 4, 21);
    normal.rng = seededRng(99);
    const heldOut = sample(normal, 120);
    const bank = await calibrateReferenceBank(buildReferenceBank(normalSlides(), { model: MODEL, maxSize: 200 }), heldOut);
    expect(bank.threshold?.sample).toBe(heldOut.count);
    await writeReferenceBank(bankPath, bank);
    const scorer = await parseScoreMethod(`reference:${bankPath}`, { dim: DIM, model: MODEL });
    expect(scorer).toBeInstanceOf(ReferenceScorer);
    expect(scorer.method).toBe(`reference:${bankPath}`);
    expect(scorer.params).toMatchObject({ bankSize: 200, k: 1 });

    const cloud = makeCloud(DIM, 4, 21);
    cloud.rng = seededRng(777);
    const shift = randomUnit(DIM, seededRng(8)).map((v) => 40 * v);
    const query = concat(sample(cloud, 200), sample(cloud, 10, shift));
    const scores = await scoreEmbeddings(scorer, query);
    const top = ranking(scores).slice(0, 10).sort((a, b) => a - b);
    expect(top).toEqual([200, 201, 202, 203, 204, 205, 206, 207, 208, 209]);
    const t = scorer.defaultThreshold(scores);
    expect(Array.from(scores.subarray(200)).every((s) => s >= t)).toBe(true);
    await expect(scoreEmbeddings(scorer, { count: 1, dim: 8, data: new Float32Array(8) })).rejects.toThrow(ScoreInputError);
  });

  it("thresholds at the bank's stored quantile of held-out normal distances, whatever the scored slide; a bank without one is refused", async () => {
    const dir = tempDir();
    const uncalibrated = buildReferenceBank(normalSlides(), { model: MODEL, maxSize: 150 });
    const normal = makeCloud(DIM, 4, 21);
    normal.rng = seededRng(5);
    const heldOut = sample(normal, 120);
    const bank = await calibrateReferenceBank(uncalibrated, heldOut, { quantile: 0.95 });
    // The quantile (linear interpolation) of the held-out patches' distances to the bank, by brute force.
    const d = Float64Array.from(new JsNearestNeighbour(uncalibrated).nearestSync(heldOut)).sort();
    const pos = 0.95 * (d.length - 1);
    const lo = Math.floor(pos);
    const expected = (d[lo] as number) + ((d[lo + 1] as number) - (d[lo] as number)) * (pos - lo);
    const t = bank.threshold!;
    expect(t.value / expected).toBeCloseTo(1, 4);
    expect(t).toMatchObject({ quantile: 0.95, sample: 120 });
    expect(t.median / (d[59]! + (d[60]! - d[59]!) * 0.5)).toBeCloseTo(1, 4);
    expect(t.max / d[119]!).toBeCloseTo(1, 4);

    const path = join(dir, 'calibrated.safetensors');
    await writeReferenceBank(path, bank);
    expect((await readReferenceBank(path)).threshold).toEqual(t);
    expect((await SafetensorsFile.read(path)).metadata).toMatchObject({ threshold: String(t.value), threshold_quantile: '0.95', threshold_sample: '120', threshold_basis: expect.stringMatching(/held-out normal patches/) });

    const scorer = await parseScoreMethod(`reference:${path}`, { dim: DIM, model: MODEL });
    // Not a statistic of the scores: the same cut-off for a slide close to the bank and one far from it.
    expect(scorer.defaultThreshold(Float32Array.from({ length: 50 }, (_, i) => i * 1e-3))).toBe(t.value);
    expect(scorer.defaultThreshold(Float32Array.from({ length: 50 }, (_, i) => 100 + i))).toBe(t.value);
    expect(scorer.params).toMatchObject({ thresholdValue: t.value, threshold: expect.stringMatching(/^bank: 0\.95 quantile of the nearest-bank distances of 120 held-out normal patches = /) });

    const old = join(dir, 'old.safetensors');
    await writeReferenceBank(old, uncalibrated);
    expect((await readReferenceBank(old)).threshold).toBeNull();
    const refused = parseScoreMethod(`reference:${old}`, { dim: DIM, model: MODEL });
    await expect(refused).rejects.toThrow(ScoreFileError);
    await expect(refused).rejects.toThrow(/no threshold of its own.*rebuild it with `flashslide reference build/);

    await expect(calibrateReferenceBank(uncalibrated, heldOut, { quantile: 1 })).rejects.toThrow(ScoreConfigError);
    await expect(calibrateReferenceBank(uncalibrated, sample(normal, 5))).rejects.toThrow(/5 held-out normal patches cannot set a threshold/);
  });
});

describe('JS nearest neighbour', () => {
  it('matches brute force across block boundaries', () => {
    const rng = seededRng(4);
    const dim = 37;
    const bank = { size: 131, dim, data: Float32Array.from({ length: 131 * dim }, () => rng() * 2 - 1) };
    // 71 queries: full and odd-sized query blocks; 131 bank rows: a bank block with a ragged tail.
    const queries = { count: 71, dim, data: Float32Array.from({ length: 71 * dim }, () => rng() * 2 - 1) };
    // A query that is exactly a bank row is at distance 0, not sqrt of a rounding error below 0.
    queries.data.set(bank.data.subarray(130 * dim, 131 * dim), 70 * dim);
    const got = new JsNearestNeighbour(bank).nearestSync(queries);
    for (let i = 0; i < queries.count; i++) {
      let best = Infinity;
      for (let j = 0; j < bank.size; j++) {
        let d = 0;
        for (let t = 0; t < dim; t++) d += ((queries.data[i * dim + t] as number) - (bank.data[j * dim + t] as number)) ** 2;
        best = Math.min(best, d);
      }
      expect(got[i]).toBeCloseTo(Math.sqrt(best), 4);
    }
    expect(got[70]).toBeLessThan(1e-3);
  });
});
