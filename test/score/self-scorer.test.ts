import { describe, expect, it } from 'vitest';
import { SelfScorer } from '../../worker/score/self-scorer.js';
import { fitPca } from '../../worker/score/pca.js';
import { robustThreshold } from '../../worker/score/robust-stats.js';
import { ScoreConfigError, ScoreInputError } from '../../worker/score/errors.js';
import { seededRng } from '../../worker/util/random.js';
import type { PatchEmbeddings } from '../../worker/score/types.js';
import { scoreEmbeddings } from '../../worker/score/score-embeddings.js';
import { concat, makeCloud, randomUnit, ranking, sample } from './synthetic.js';

const DIM = 48;

/** 600 normal patches followed by 6 planted outliers: 3 far along the cloud's own directions, 3 off it. */
function cloudWithOutliers(): { e: PatchEmbeddings; outliers: number[] } {
  const cloud = makeCloud(DIM, 6, 11);
  const normal = sample(cloud, 600);
  const rng = seededRng(99);
  const out = new Float32Array(6 * DIM);
  const extreme = sample(cloud, 3);
  for (let i = 0; i < 3; i++) {
    // 3x a normal patch: far out along the latent directions, on the cloud's "manifold".
    for (let j = 0; j < DIM; j++) out[i * DIM + j] = 3 * (extreme.data[i * DIM + j] as number);
  }
  const typical = sample(cloud, 3);
  for (let i = 0; i < 3; i++) {
    // A typical patch pushed 4 noise-sigmas x sqrt(dim) off the cloud in a random direction.
    const u = randomUnit(DIM, rng);
    for (let j = 0; j < DIM; j++) out[(3 + i) * DIM + j] = (typical.data[i * DIM + j] as number) + 4 * 0.3 * Math.sqrt(DIM) * (u[j] as number);
  }
  const e = concat(normal, { count: 6, dim: DIM, data: out });
  return { e, outliers: [600, 601, 602, 603, 604, 605] };
}

describe('self scorer', () => {
  it('ranks planted outliers at the top and above the default threshold', async () => {
    const { e, outliers } = cloudWithOutliers();
    const scorer = new SelfScorer();
    const scores = await scoreEmbeddings(scorer, e);
    expect(scores.length).toBe(e.count);
    expect(ranking(scores).slice(0, outliers.length).sort()).toEqual(outliers);
    const t = scorer.defaultThreshold(scores);
    for (const o of outliers) expect(scores[o]).toBeGreaterThanOrEqual(t);
    const falseAlarms = Array.from(scores.subarray(0, 600)).filter((s) => s >= t).length;
    expect(falseAlarms).toBeLessThanOrEqual(6);
  });

  it('keeps the ranking under a slide-wide affine stain shift', async () => {
    const { e } = cloudWithOutliers();
    const shift = randomUnit(DIM, seededRng(5)).map((v) => 25 * v);
    const shifted = new Float32Array(e.data.length);
    for (let i = 0; i < e.count; i++) for (let j = 0; j < DIM; j++) shifted[i * DIM + j] = 2.5 * (e.data[i * DIM + j] as number) + (shift[j] as number);
    const scorer = new SelfScorer();
    const a = await scoreEmbeddings(scorer, e);
    const b = await scoreEmbeddings(scorer, { ...e, data: shifted });
    expect(ranking(b).slice(0, 30)).toEqual(ranking(a).slice(0, 30));
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs((a[i] as number) - (b[i] as number)));
    expect(maxDiff).toBeLessThan(1e-3);
  });

  it('is deterministic, and the subsampled fit still finds the outliers', async () => {
    const { e, outliers } = cloudWithOutliers();
    expect(await scoreEmbeddings(new SelfScorer(), e)).toEqual(await scoreEmbeddings(new SelfScorer(), e));
    const sampled = await scoreEmbeddings(new SelfScorer({ maxFitPatches: 200 }), e);
    expect(ranking(sampled).slice(0, outliers.length).sort()).toEqual(outliers);
  });

  it('returns zeros and an infinite threshold for fewer than 3 patches', async () => {
    const scorer = new SelfScorer();
    for (const count of [0, 1, 2]) {
      const s = await scoreEmbeddings(scorer, { count, dim: 4, data: new Float32Array(count * 4).fill(1.5) });
      expect(Array.from(s)).toEqual(new Array(count).fill(0));
      expect(scorer.defaultThreshold(s)).toBe(Infinity);
    }
  });

  it('gives finite scores for tiny, constant and rank-1 inputs', async () => {
    const scorer = new SelfScorer();
    const three = await scoreEmbeddings(scorer, { count: 3, dim: 2, data: Float32Array.from([0, 0, 1, 0, 0, 5]) });
    expect(three.every(Number.isFinite)).toBe(true);

    const constant = await scoreEmbeddings(scorer, { count: 50, dim: 16, data: new Float32Array(50 * 16).fill(0.7) });
    expect(constant.every((s) => s === 0)).toBe(true);
    expect(scorer.defaultThreshold(constant)).toBe(Infinity);

    // 49 identical patches and one different: only it can be unusual.
    const data = new Float32Array(50 * 16).fill(0.7);
    data[20 * 16 + 3] = 4;
    const rank1 = await scoreEmbeddings(scorer, { count: 50, dim: 16, data });
    expect(rank1.every(Number.isFinite)).toBe(true);
    expect(ranking(rank1)[0]).toBe(20);
    expect(rank1[20]).toBeGreaterThanOrEqual(scorer.defaultThreshold(rank1));

    const oneDim = await scoreEmbeddings(scorer, { count: 5, dim: 1, data: Float32Array.from([1, 2, 3, 2, 1]) });
    expect(oneDim.every(Number.isFinite)).toBe(true);
  });

  it('rejects malformed embeddings and options', async () => {
    const scorer = new SelfScorer();
    await expect(scoreEmbeddings(scorer, { count: 3, dim: 4, data: new Float32Array(11) })).rejects.toThrow(ScoreInputError);
    const withNaN = new Float32Array(12);
    withNaN[5] = Number.NaN;
    await expect(scoreEmbeddings(scorer, { count: 3, dim: 4, data: withNaN })).rejects.toThrow(/patch 1 .*component 1/);
    expect(() => new SelfScorer({ trimFraction: 0.7 })).toThrow(ScoreConfigError);
    expect(() => new SelfScorer({ components: 0 })).toThrow(ScoreConfigError);
  });
});

describe('randomized PCA', () => {
  it('recovers known principal axes and variances', async () => {
    const rng = seededRng(3);
    const n = 2000;
    const dim = 30;
    const sd = [5, 3, 2, 1];
    const data = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < dim; j++) {
        const g = Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
        data[i * dim + j] = 10 + g * (sd[j] ?? 0.1);
      }
    }
    const pca = await fitPca({ count: n, dim, data }, null, { components: 4, oversample: 8, powerIterations: 3, seed: 1 });
    expect(pca.k).toBe(4);
    for (let a = 0; a < 4; a++) {
      // Component a is (up to sign) the a-th axis.
      expect(Math.abs(pca.components[a * dim + a] as number)).toBeGreaterThan(0.99);
      expect(Math.sqrt(pca.variances[a] as number)).toBeCloseTo(sd[a] as number, 0);
    }
  });

  it('finds no components in constant data', async () => {
    const pca = await fitPca({ count: 10, dim: 5, data: new Float32Array(50).fill(3) }, null, { components: 4, oversample: 4, powerIterations: 2, seed: 1 });
    expect(pca.k).toBe(0);
  });
});

describe('robust threshold', () => {
  it('is median + 4 x 1.4826 x MAD, ignoring NaN', async () => {
    // median 3, absolute deviations 2,1,0,1,2 -> MAD 1.
    expect(robustThreshold([1, 2, 3, 4, 5, Number.NaN])).toBeCloseTo(3 + 4 * 1.4826, 10);
  });

  it('falls back to the mean absolute deviation when MAD is 0, and to Infinity when all are equal', async () => {
    const t = robustThreshold([1, 1, 1, 1, 1, 1, 9]);
    expect(t).toBeGreaterThan(1);
    expect(t).toBeLessThan(9);
    expect(robustThreshold([2, 2, 2, 2])).toBe(Infinity);
  });
});
