/**
 * Scoring fed batch by batch while the slide is embedded (embedded mode) against scoring from the
 * part files (the queue's aggregate job): the same heatmap bit for bit, whatever order the
 * batches come in and whether they were held or read back; and the fit batches it learns from.
 */
import { describe, expect, it } from 'vitest';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeEmbedded } from '../../worker/pipeline/run-embedded.js';
import { aggregateSlide } from '../../worker/pipeline/aggregate-stage.js';
import { readPlan } from '../../worker/pipeline/plan-stage.js';
import { describeAnalysis } from '../../worker/pipeline/analysis-spec.js';
import { chooseFitBatches, fitUniverse, MIN_FIT_BATCHES } from '../../worker/pipeline/fit-batches.js';
import { partPath } from '../../worker/pipeline/embed-stage.js';
import { ScoringRun } from '../../worker/pipeline/scoring-run.js';
import { tissueLayout } from '../../worker/pipeline/tissue-layout.js';
import { SafetensorsFile } from '../../worker/infer/safetensors.js';
import { seededRng } from '../../worker/util/random.js';
import { CMU, tempDir } from '../helpers.js';

describe('fit batches', () => {
  it('are every batch up to 16, then a seeded 15 % (at least 16), ascending', () => {
    expect(chooseFitBatches(0)).toEqual([]);
    expect(chooseFitBatches(MIN_FIT_BATCHES)).toEqual(Array.from({ length: MIN_FIT_BATCHES }, (_, i) => i));
    const some = chooseFitBatches(305);
    expect(some).toHaveLength(46);
    expect(new Set(some).size).toBe(46);
    expect(some).toEqual([...some].sort((a, b) => a - b));
    expect(some.every((b) => b >= 0 && b < 305)).toBe(true);
    expect(chooseFitBatches(305)).toEqual(some);
    expect(chooseFitBatches(100)).toHaveLength(16);
  });
});

describe('streamed scoring', () => {
  it('gives the heatmap that scoring from the part files gives, fitted on a subset of the batches', async () => {
    const dataDir = tempDir();
    const slide = join(tempDir(), 'streamed.svs');
    copyFileSync(CMU, slide);
    const options = { dataDir, regionSize: 224, batchSize: 1, device: 'cpu' as const };
    const [outcome] = await analyzeEmbedded([slide], options);
    expect(outcome?.status).toBe('done');
    const resultDir = outcome?.resultDir as string;
    const streamed = JSON.parse(readFileSync(join(resultDir, 'summary.json'), 'utf8')) as { threshold: number; slideScore: number; timings: { scoringSteps: { afterEmbedMs?: number } } };
    expect(streamed.timings.scoringSteps.afterEmbedMs).toBeGreaterThan(0);
    const streamedHeatmap = readFileSync(join(resultDir, 'heatmap.npy'));

    const spec = await describeAnalysis(slide, options);
    const plan = await readPlan(spec);
    expect(plan).not.toBeNull();
    const fitBatches = plan!.fitBatches as number[];
    expect(plan!.batches.length).toBeGreaterThan(2 * MIN_FIT_BATCHES);
    expect(fitBatches).toHaveLength(Math.max(MIN_FIT_BATCHES, Math.ceil(0.15 * plan!.batches.length)));
    const layout = await tissueLayout(plan!);
    const universe = fitUniverse(plan!, layout);
    expect(universe.length).toBeGreaterThan(0);
    expect(universe.length).toBeLessThan(layout.count);

    // From the part files, in this process.
    const fromParts = await aggregateSlide(plan!, { planMs: 0, readMs: 0, inferenceMs: 0 }, 0);
    expect(Buffer.compare(readFileSync(join(resultDir, 'heatmap.npy')), streamedHeatmap)).toBe(0);
    expect(fromParts.threshold).toBe(streamed.threshold);
    expect(fromParts.slideScore).toBe(streamed.slideScore);

    // Fed in a shuffled order, nothing held before the fit (every early batch read back).
    const order = plan!.batches.map((_, b) => b);
    const rng = seededRng(7);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    const run = await ScoringRun.start(plan!, { heldBytes: 0 });
    for (const b of order) {
      const part = await SafetensorsFile.read(partPath(plan!, b));
      const raw = part.raw('embeddings');
      const bf16 = new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
      const sumsRaw = part.raw('sums');
      const sums = new Float64Array(sumsRaw.buffer.slice(sumsRaw.byteOffset, sumsRaw.byteOffset + sumsRaw.byteLength));
      await run.addBatch(b, part.int32('cells'), bf16, sums);
    }
    const shuffled = await aggregateSlide(plan!, { planMs: 0, readMs: 0, inferenceMs: 0 }, 0, undefined, run);
    expect(Buffer.compare(readFileSync(join(resultDir, 'heatmap.npy')), streamedHeatmap)).toBe(0);
    expect(shuffled.threshold).toBe(streamed.threshold);
  }, 180_000);

  it('with --embeddings drop, batches scored as they came are never written, and the result is the same', async () => {
    const slide = join(tempDir(), 'dropped.svs');
    copyFileSync(CMU, slide);
    const base = { regionSize: 224, batchSize: 1, device: 'cpu' as const };
    const [kept] = await analyzeEmbedded([slide], { ...base, dataDir: tempDir() });
    const [dropped] = await analyzeEmbedded([slide], { ...base, dataDir: tempDir(), embeddings: 'drop' });
    expect(dropped?.status).toBe('done');
    const summary = (dir: string): { embeddings: { batches: number; partsWritten?: number; dropped?: boolean } } => JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
    const k = summary(kept?.resultDir as string);
    const d = summary(dropped?.resultDir as string);
    expect(k.embeddings.partsWritten).toBe(k.embeddings.batches);
    expect(d.embeddings.dropped).toBe(true);
    // The fit batches and whatever came before the fit were written; most of the rest not.
    expect(d.embeddings.partsWritten).toBeGreaterThanOrEqual(MIN_FIT_BATCHES);
    expect(d.embeddings.partsWritten).toBeLessThan(d.embeddings.batches);
    const heat = (dir: string): Buffer => readFileSync(join(dir, 'heatmap.npy'));
    expect(Buffer.compare(heat(dropped?.resultDir as string), heat(kept?.resultDir as string))).toBe(0);
  }, 180_000);

  it('a scoring with no room is sent nothing: every part is written and read back, the result the same', async () => {
    const slide = join(tempDir(), 'backlog.svs');
    copyFileSync(CMU, slide);
    const base = { regionSize: 224, batchSize: 1, device: 'cpu' as const, embeddings: 'drop' as const };
    const [free] = await analyzeEmbedded([slide], { ...base, dataDir: tempDir() });
    const [full] = await analyzeEmbedded([slide], { ...base, dataDir: tempDir(), scoringBacklogBytes: 1 });
    expect(full?.status).toBe('done');
    const summary = JSON.parse(readFileSync(join(full?.resultDir as string, 'summary.json'), 'utf8')) as { embeddings: { batches: number; partsWritten: number }; timings: { scoringSteps: { pass2Ms: number } } };
    expect(summary.embeddings.partsWritten).toBe(summary.embeddings.batches);
    const heat = (dir: string): Buffer => readFileSync(join(dir, 'heatmap.npy'));
    expect(Buffer.compare(heat(full?.resultDir as string), heat(free?.resultDir as string))).toBe(0);
  }, 180_000);
});
