/**
 * Embedded mode three slides deep: slide k+1 is planned (and its first batches decoded) while
 * slide k is in the engine, so the engine never waits for a plan between slides. Real slides,
 * the demo model on the CPU.
 */
import { describe, expect, it } from 'vitest';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeEmbedded } from '../../worker/pipeline/run-embedded.js';
import type { SlideProgress } from '../../worker/pipeline/progress.js';
import { CMU, tempDir } from '../helpers.js';

describe('embedded mode overlaps slides', () => {
  it("plans the next slide while this one embeds, and gives each slide the result it gets alone", async () => {
    const dataDir = tempDir();
    const slides = ['first', 'second', 'third'].map((name) => {
      const path = join(tempDir(), `${name}.svs`);
      copyFileSync(CMU, path);
      return path;
    });
    const events: SlideProgress[] = [];
    const started = Date.now();
    const outcomes = await analyzeEmbedded(slides, { dataDir, regionSize: 512, device: 'cpu', onProgress: (p) => void events.push({ ...p }) });
    const wall = Date.now() - started;
    expect(outcomes.map((o) => o.status)).toEqual(['done', 'done', 'done']);
    // Each slide's own total and scoring time are real durations within the run (the scoring
    // thread has its own clock: the start crosses as epoch time).
    for (const o of outcomes) {
      const { timings } = JSON.parse(readFileSync(join(o.resultDir as string, 'summary.json'), 'utf8')) as { timings: { totalMs: number; scoringMs: number; inferenceMs: number } };
      expect(timings.totalMs).toBeGreaterThan(timings.inferenceMs);
      expect(timings.totalMs).toBeLessThanOrEqual(wall);
      expect(timings.scoringMs).toBeGreaterThan(0);
      expect(timings.scoringMs).toBeLessThan(timings.totalMs);
    }
    const order = (name: string, stage: SlideProgress['stage']): number => events.findIndex((e) => e.slideName === name && e.stage === stage);
    for (const [k, next] of [['first', 'second'], ['second', 'third']] as const) {
      // The next slide's plan started after this one's embedding began and before it ended.
      expect(order(next, 'plan')).toBeGreaterThan(order(k, 'embed'));
      expect(order(next, 'plan')).toBeLessThan(order(k, 'aggregate'));
    }
    // Overlapping changes no result: the copies of one slide get the same heatmap.
    const heatmaps = outcomes.map((o) => readFileSync(join(o.resultDir as string, 'heatmap.npy')));
    expect(Buffer.compare(heatmaps[0] as Buffer, heatmaps[1] as Buffer)).toBe(0);
    expect(Buffer.compare(heatmaps[0] as Buffer, heatmaps[2] as Buffer)).toBe(0);
  }, 180_000);

  it('a slide listed twice is analysed once: the second listing gets the first one\'s result', async () => {
    const dataDir = tempDir();
    const slide = join(tempDir(), 'twice.svs');
    copyFileSync(CMU, slide);
    const outcomes = await analyzeEmbedded([slide, slide], { dataDir, regionSize: 512, device: 'cpu', embeddings: 'drop' });
    expect(outcomes.map((o) => o.status)).toEqual(['done', 'cached']);
    expect(outcomes[1]?.resultDir).toBe(outcomes[0]?.resultDir);
    expect(outcomes[1]?.slideScore).toBe(outcomes[0]?.slideScore);
    const summary = JSON.parse(readFileSync(join(outcomes[0]?.resultDir as string, 'summary.json'), 'utf8')) as { embeddings: { batchesComputed: number; batches: number } };
    expect(summary.embeddings.batchesComputed).toBe(summary.embeddings.batches);
  }, 180_000);
});
