/**
 * `--tokens tissue` (issue 14): regions enter the ViT as their tissue plus a margin. Keeping a
 * margin that covers the whole region must reproduce `--tokens all` (the same embeddings,
 * nothing dropped; scores to float rounding); the default margin must agree closely with it on a real slide; and the
 * option must change the embedding id while leaving every id made without it as it was.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeEmbedded } from '../../worker/pipeline/run-embedded.js';
import { describeAnalysis } from '../../worker/pipeline/analysis-spec.js';
import { readPlan } from '../../worker/pipeline/plan-stage.js';
import { cachedTissueLayout, keptTissuePatches } from '../../worker/pipeline/tissue-layout.js';
import { readPlannedRegion } from '../../worker/regions/read-region.js';
import { openSlide } from '../../worker/slide/open-slide.js';
import { decodeNpyFloat32 } from '../../worker/store/npy.js';
import { CMU, tempDir } from '../helpers.js';

function heatmap(resultDir: string): Float32Array {
  return decodeNpyFloat32(readFileSync(join(resultDir, 'heatmap.npy'))).data;
}

/** Spearman's rank correlation over the cells scored in both. */
function spearman(a: Float32Array, b: Float32Array): number {
  const idx: number[] = [];
  for (let i = 0; i < a.length; i++) if (!Number.isNaN(a[i] as number) && !Number.isNaN(b[i] as number)) idx.push(i);
  const rank = (v: Float32Array): Float64Array => {
    const order = idx.map((i, k) => [v[i] as number, k] as const).sort((x, y) => x[0] - y[0]);
    const r = new Float64Array(idx.length);
    order.forEach(([, k], j) => (r[k] = j));
    return r;
  };
  const ra = rank(a);
  const rb = rank(b);
  let d2 = 0;
  for (let k = 0; k < idx.length; k++) d2 += ((ra[k] as number) - (rb[k] as number)) ** 2;
  const n = idx.length;
  return 1 - (6 * d2) / (n * (n * n - 1));
}

describe('token dropping (--tokens tissue)', () => {
  const base = { regionSize: 512, batchSize: 4, device: 'cpu' as const };

  it('keeps the ids of analyses made without it, and gives a new embedding id with it', async () => {
    const data = tempDir();
    const plain = await describeAnalysis(CMU, { ...base, dataDir: data });
    const all = await describeAnalysis(CMU, { ...base, dataDir: data, tokens: 'all' });
    const tissue = await describeAnalysis(CMU, { ...base, dataDir: data, tokens: 'tissue' });
    const wider = await describeAnalysis(CMU, { ...base, dataDir: data, tokens: 'tissue', tokenMargin: 4 });
    expect(all.embeddingId).toBe(plain.embeddingId);
    expect(new Set([plain.embeddingId, tissue.embeddingId, wider.embeddingId]).size).toBe(3);
  });

  it('with a margin covering the whole region equals --tokens all; with the default margin it agrees closely', async () => {
    const data = tempDir();
    const [all] = await analyzeEmbedded([CMU], { ...base, dataDir: data });
    const [whole] = await analyzeEmbedded([CMU], { ...base, dataDir: data, tokens: 'tissue', tokenMargin: 32 });
    const [tissue] = await analyzeEmbedded([CMU], { ...base, dataDir: data, tokens: 'tissue' });
    for (const o of [all, whole, tissue]) expect(o?.status, o?.reason).toBe('done');
    const a = heatmap(all!.resultDir!);
    const w = heatmap(whole!.resultDir!);
    const t = heatmap(tissue!.resultDir!);
    // The same embeddings; only the order in which the scorer sums them differs (batches are
    // grouped by tissue with --tokens tissue), so the scores agree to float rounding.
    let wholeDiff = 0;
    for (let i = 0; i < a.length; i++) {
      expect(Number.isNaN(w[i] as number)).toBe(Number.isNaN(a[i] as number));
      if (!Number.isNaN(a[i] as number)) wholeDiff = Math.max(wholeDiff, Math.abs((a[i] as number) - (w[i] as number)));
    }
    expect(wholeDiff).toBeLessThan(1e-4);
    // The same cells are scored; the scores move a little, their order hardly at all.
    expect(t.map((v) => (Number.isNaN(v) ? 1 : 0))).toEqual(a.map((v) => (Number.isNaN(v) ? 1 : 0)));
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) if (!Number.isNaN(a[i] as number)) maxDiff = Math.max(maxDiff, Math.abs((a[i] as number) - (t[i] as number)));
    expect(maxDiff).toBeGreaterThan(0); // dropping is real
    expect(spearman(a, t)).toBeGreaterThan(0.99);
  }, 120_000);
  it('reads only the tiles under kept patches, and those patches get exactly the pixels of a full read', async () => {
    const data = tempDir();
    const spec = await describeAnalysis(CMU, { ...base, dataDir: data, tokens: 'tissue' });
    const [o] = await analyzeEmbedded([CMU], { ...base, dataDir: data, tokens: 'tissue' });
    expect(o?.status, o?.reason).toBe('done');
    const plan = (await readPlan(spec))!;
    const layout = await cachedTissueLayout(plan);
    const n = plan.regionPlan.regionSize / plan.regionPlan.patchSize;
    const p = plan.regionPlan.patchSize;
    const source = await openSlide(CMU);
    let skippedPixels = 0;
    try {
      for (const [i, region] of plan.regionPlan.regions.entries()) {
        const mask = new Uint8Array(n * n);
        for (const k of keptTissuePatches(plan.regionPlan, layout.grid, i, plan.spec.tokenMargin ?? 0)) mask[k] = 1;
        const full = (await readPlannedRegion(source, plan.regionPlan, region)).data;
        const kept = (await readPlannedRegion(source, plan.regionPlan, region, mask)).data;
        const size = plan.regionPlan.regionSize;
        for (let y = 0; y < size; y++) {
          for (let x = 0; x < size; x++) {
            const at = (y * size + x) * 3;
            const same = full[at] === kept[at] && full[at + 1] === kept[at + 1] && full[at + 2] === kept[at + 2];
            if (mask[Math.floor(y / p) * n + Math.floor(x / p)] === 1) expect(same, `region ${i} kept pixel ${x},${y}`).toBe(true);
            else if (!same) skippedPixels++;
          }
        }
      }
    } finally {
      await source.close();
    }
    expect(skippedPixels).toBeGreaterThan(0); // some tiles were not decoded
  }, 120_000);
});
