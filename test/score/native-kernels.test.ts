/**
 * The addon's scoring kernels against the JavaScript float64 code they replace: nearest-neighbour
 * distances (float32 sgemm blocks + row minimum) and the self scorer's centred products. The
 * addon is built before the tests (npm test runs ensure-ready), so these run in CI; the CUDA
 * search runs where the build has CUDA (the GPU machine).
 */
import { describe, expect, it } from 'vitest';
import { availableDevices } from '../../worker/infer/vit-engine.js';
import { JS_CENTERED_PRODUCTS, nativeCenteredProducts } from '../../worker/score/centered-products.js';
import { ScoreInputError } from '../../worker/score/errors.js';
import { JsNearestNeighbour } from '../../worker/score/nearest-neighbour.js';
import { NativeNearestNeighbour, defaultNearestNeighbourSearch, nearestNeighbourDevice } from '../../worker/score/native-nearest-neighbour.js';
import { nativeScoreKernels } from '../../worker/score/native-kernels.js';
import { scoreEmbeddings } from '../../worker/score/score-embeddings.js';
import { SelfScorer } from '../../worker/score/self-scorer.js';
import type { NativeScoreKernels } from '../../worker/native/addon.js';
import { seededRng } from '../../worker/util/random.js';
import { concat, makeCloud, ranking, sample } from './synthetic.js';

function kernels(): NativeScoreKernels {
  const k = nativeScoreKernels();
  if (k === null) throw new Error('the addon has no scoring kernels: run npm run build:native');
  return k;
}

function uniform(n: number, seed: number, offset = 0): Float32Array {
  const rng = seededRng(seed);
  return Float32Array.from({ length: n }, () => rng() * 2 - 1 + offset);
}

/** Largest |a - b| / |b| over the entries with |b| > floor. */
function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-6): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    const r = Math.abs(b[i] as number);
    if (r > floor) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)) / r);
  }
  return m;
}

const CUDA = availableDevices().includes('cuda');

describe('native nearest neighbour', () => {
  // Bank sizes across the CPU index's 1024-row bank blocks, query counts across its 256-row
  // query blocks, odd dims, and a shared offset like a ViT's mean embedding.
  const cases = [
    { bank: 1, queries: 5, dim: 1, offset: 0 },
    { bank: 131, queries: 71, dim: 37, offset: 0 },
    { bank: 2100, queries: 600, dim: 192, offset: 3 },
    { bank: 1500, queries: 300, dim: 384, offset: 0 },
  ];
  for (const device of ['cpu', 'cuda'] as const) {
    it.skipIf(device === 'cuda' && !CUDA)(`matches the float64 JavaScript search on ${device} (max relative difference < 1e-5)`, async () => {
      for (const [i, c] of cases.entries()) {
        const bank = { size: c.bank, dim: c.dim, data: uniform(c.bank * c.dim, 10 + i, c.offset) };
        const queries = { count: c.queries, dim: c.dim, data: uniform(c.queries * c.dim, 20 + i, c.offset) };
        // An exact copy of a bank row is at distance ~0, never NaN from a negative rounding error.
        queries.data.set(bank.data.subarray(0, c.dim), 0);
        const js = new JsNearestNeighbour(bank).nearestSync(queries);
        const search = new NativeNearestNeighbour(bank, kernels(), device);
        expect(search.name).toBe(`native-${device}`);
        const native = await search.nearest(queries);
        // Measured on the dev machine (CPU): <= 4e-7 relative; float32 products of centred rows.
        expect(maxRelDiff(native, js, 1e-3), `case ${i}`).toBeLessThan(1e-5);
        expect(native[0]).toBeLessThan(1e-2 * Math.sqrt(c.dim));
        // Searching again, in two chunks, after close() (the bank is copied again): same distances.
        search.close();
        const half = Math.floor(c.queries / 2);
        const a = await search.nearest({ count: half, dim: c.dim, data: queries.data.subarray(0, half * c.dim) });
        const b = await search.nearest({ count: c.queries - half, dim: c.dim, data: queries.data.subarray(half * c.dim) });
        expect(maxRelDiff(Float32Array.from([...a, ...b]), native, 1e-3)).toBeLessThan(1e-6);
        search.close();
      }
    });
  }

  it('refuses mismatched inputs with typed errors', async () => {
    const bank = { size: 4, dim: 3, data: uniform(12, 1) };
    const search = new NativeNearestNeighbour(bank, kernels(), 'cpu');
    await expect(search.nearest({ count: 1, dim: 4, data: new Float32Array(4) })).rejects.toThrow(ScoreInputError);
    expect(() => new NativeNearestNeighbour({ size: 0, dim: 3, data: new Float32Array(0) }, kernels(), 'cpu')).toThrow(/non-empty bank/);
    expect(() => new NativeNearestNeighbour({ size: 2, dim: 3, data: new Float32Array(5) }, kernels(), 'cpu')).toThrow(/expected 2 x 3/);
    // The addon checks too, and names the problem.
    await expect(kernels().nearestDistances(bank.data, 4, new Float32Array(5), 2, 3, 'cpu')).rejects.toMatchObject({ code: 'bad_input', message: /queries has 5 values, expected 2 x 3/ });
    if (!CUDA) await expect(kernels().nearestDistances(bank.data, 4, new Float32Array(3), 1, 3, 'cuda')).rejects.toMatchObject({ code: 'unsupported_device' });
  });

  it('is what the reference scorer uses, on the GPU only where the build has CUDA', () => {
    const bank = { size: 2, dim: 2, data: uniform(4, 2) };
    expect(defaultNearestNeighbourSearch(bank, 'cpu').name).toBe('native-cpu');
    expect(defaultNearestNeighbourSearch(bank, 'cpu', null).name).toBe('js-float64');
    expect(nearestNeighbourDevice('cpu')).toBe('cpu');
    expect(nearestNeighbourDevice('cuda')).toBe(CUDA ? 'cuda' : 'cpu');
    expect(nearestNeighbourDevice('auto')).toBe(CUDA ? 'cuda' : 'cpu');
  });
});

describe('native centred products (self scorer)', () => {
  it('project and combine match the float64 loops on offset rows (relative difference < 1e-5)', async () => {
    const n = 700;
    const dim = 96;
    const k = 24;
    // Rows around a large common offset, as ViT embeddings are: centring must remove it first.
    const rows = uniform(n * dim, 3, 40);
    const center = new Float64Array(dim).fill(40);
    const basis = Float64Array.from(uniform(k * dim, 4));
    const weights = Float64Array.from(uniform(k * n, 5));
    const native = nativeCenteredProducts(kernels());
    const [pj, pn] = await Promise.all([JS_CENTERED_PRODUCTS.project(rows, n, dim, center, basis, k), native.project(rows, n, dim, center, basis, k)]);
    const [cj, cn] = await Promise.all([JS_CENTERED_PRODUCTS.combine(rows, n, dim, center, weights, k), native.combine(rows, n, dim, center, weights, k)]);
    const rel = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
      let num = 0;
      let den = 0;
      for (let i = 0; i < b.length; i++) {
        num += ((a[i] as number) - (b[i] as number)) ** 2;
        den += (b[i] as number) ** 2;
      }
      return Math.sqrt(num / den);
    };
    // Measured: ~2e-7 (float32 rounding of the centred rows and of the sgemm sums).
    expect(rel(pn.coords, pj.coords)).toBeLessThan(1e-5);
    expect(rel(pn.sqNorms, pj.sqNorms)).toBeLessThan(1e-6);
    expect(rel(cn, cj)).toBeLessThan(1e-5);
  });

  it('the self scorer on native float32 products agrees with float64 JavaScript, and is deterministic', async () => {
    const dim = 64;
    const cloud = makeCloud(dim, 6, 41);
    const e = concat(sample(cloud, 3000), sample(cloud, 10, new Float64Array(dim).fill(2)));
    const js = await scoreEmbeddings(new SelfScorer({ products: JS_CENTERED_PRODUCTS, maxFitPatches: 1000 }), e);
    const nativeScorer = new SelfScorer({ products: nativeCenteredProducts(kernels()), maxFitPatches: 1000 });
    expect(nativeScorer.params['products']).toBe('native-float32');
    const native = await scoreEmbeddings(nativeScorer, e);
    // Measured on the dev machine: max relative difference 3.5e-6; the threshold and the top
    // of the ranking are the same.
    const diff = maxRelDiff(native, js);
    expect(diff).toBeLessThan(1e-4);
    expect(ranking(native).slice(0, 10).sort((a, b) => a - b)).toEqual(ranking(js).slice(0, 10).sort((a, b) => a - b));
    expect(Math.abs(nativeScorer.defaultThreshold(native) - nativeScorer.defaultThreshold(js))).toBeLessThan(1e-4 * nativeScorer.defaultThreshold(js));
    // Same seed, same input: bit-identical scores; chunked differently, float32 GEMMs of other
    // shapes round differently (OpenBLAS picks its kernel blocking by shape): 4.0e-6 relative
    // measured on a 2-core AMD EPYC with Debian's OpenBLAS (2026-11-30), well inside float32 noise.
    expect(await scoreEmbeddings(nativeScorer, e)).toEqual(native);
    expect(maxRelDiff(await scoreEmbeddings(nativeScorer, e, { chunkRows: 333 }), native)).toBeLessThan(2e-5);
    expect(await scoreEmbeddings(new SelfScorer({ products: JS_CENTERED_PRODUCTS, maxFitPatches: 1000 }), e, { chunkRows: 333 })).toEqual(js);
    console.log(`self scorer, 3010 x ${dim}: native float32 vs float64 JS max relative difference ${diff.toExponential(1)}`);
  });
});
