/**
 * Scoring's pass 1 taken during embedding (fit-capture.ts) against pass 1 read back from the
 * part files: the same sample and sums bit for bit, and the same result files either way.
 */
import { describe, expect, it } from 'vitest';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeAnalysis } from '../../worker/pipeline/analysis-spec.js';
import { embedSlide } from '../../worker/pipeline/run-embedded.js';
import { aggregateSlide } from '../../worker/pipeline/aggregate-stage.js';
import { gatherRows, tissueLayout } from '../../worker/pipeline/tissue-chunks.js';
import { fitRowsOf } from '../../worker/score/parse-score-method.js';
import { RowSums } from '../../worker/score/score-embeddings.js';
import { CMU, tempDir } from '../helpers.js';

describe('fit capture', () => {
  it('equals pass 1 from the part files, and the result is the same with it or without', async () => {
    const dataDir = tempDir();
    const slide = join(tempDir(), 'capture.svs');
    copyFileSync(CMU, slide);
    const spec = await describeAnalysis(slide, { dataDir, regionSize: 512, device: 'cpu' });
    const embedded = await embedSlide(spec, {});
    const { plan, fit } = embedded;
    expect(fit).not.toBeNull();
    const layout = await tissueLayout(plan);
    const rows = fitRowsOf(spec.scoreMethod, layout.count);
    expect(rows.length).toBeGreaterThan(100);
    expect(Array.from(fit!.rows)).toEqual(Array.from(rows));
    const sums = new RowSums(layout.dim);
    const sample = await gatherRows(plan, layout, rows, sums);
    expect(fit!.count).toBe(sums.count);
    expect(Buffer.compare(Buffer.from(fit!.sample.buffer), Buffer.from(sample.buffer))).toBe(0);
    expect(Array.from(fit!.sums)).toEqual(Array.from(sums.sums));

    const heatmapOf = (): Buffer => readFileSync(join(spec.resultDir, 'heatmap.npy'));
    const withCapture = await aggregateSlide(plan, embedded.timings, embedded.batchesComputed, undefined, fit);
    const first = heatmapOf();
    const fromParts = await aggregateSlide(plan, embedded.timings, embedded.batchesComputed, undefined, null);
    expect(Buffer.compare(heatmapOf(), first)).toBe(0);
    expect(withCapture.threshold).toBe(fromParts.threshold);
    expect(withCapture.slideScore).toBe(fromParts.slideScore);
    expect(withCapture.anomalousCells).toBe(fromParts.anomalousCells);
  }, 120_000);

  it('is not taken for a slide whose parts partly came from an earlier run', async () => {
    const dataDir = tempDir();
    const slide = join(tempDir(), 'resumed.svs');
    copyFileSync(CMU, slide);
    const spec = await describeAnalysis(slide, { dataDir, regionSize: 512, device: 'cpu' });
    await embedSlide(spec, {});
    const again = await embedSlide(spec, {});
    expect(again.batchesComputed).toBe(0);
    expect(again.fit).toBeNull();
  }, 120_000);
});
