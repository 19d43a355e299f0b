/**
 * Scoring on its own thread: abandoned when its budget or shutdown aborts it (nothing filed),
 * and its errors back on the main thread as the classes failures are sorted by.
 */
import { describe, expect, it } from 'vitest';
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describeAnalysis } from '../../worker/pipeline/analysis-spec.js';
import { embedSlide } from '../../worker/pipeline/run-embedded.js';
import { aggregateOffThread, errorFromThread, ScoringThreadFailure } from '../../worker/pipeline/aggregate-thread.js';
import { PartFileError, StorageError, storageFailure } from '../../worker/pipeline/errors.js';
import { isSlideFailure } from '../../worker/pipeline/slide-failure.js';
import { CMU, tempDir } from '../helpers.js';

describe('scoring thread', () => {
  it('scores like the main thread would, and an abort ends it with the reason and files nothing', async () => {
    const slide = join(tempDir(), 'threaded.svs');
    copyFileSync(CMU, slide);
    const spec = await describeAnalysis(slide, { dataDir: tempDir(), regionSize: 512, device: 'cpu' });
    const { plan, timings, batchesComputed } = await embedSlide(spec, {});
    const controller = new AbortController();
    const reason = new Error('stage budget spent');
    const scoring = aggregateOffThread(plan, timings, batchesComputed, controller.signal);
    setTimeout(() => controller.abort(reason), 20);
    await expect(scoring).rejects.toBe(reason);
    expect(existsSync(join(spec.resultDir, 'summary.json'))).toBe(false);
    const summary = await aggregateOffThread(plan, timings, batchesComputed);
    expect(summary.status).toBe('done');
    expect(existsSync(join(spec.resultDir, 'summary.json'))).toBe(true);
  }, 120_000);

  it('errors cross back as the classes the callers sort by', () => {
    const full = errorFromThread({ name: 'Error', message: "ENOSPC: no space left on device, write", code: 'ENOSPC', syscall: 'write', path: '/data/x/heatmap.npy', slideFailure: false });
    expect(storageFailure(full, '/data')?.message).toBe('cannot write /data/x/heatmap.npy: no space left on the device (ENOSPC)');
    const storage = errorFromThread({ name: 'StorageError', message: 'cannot write /data: the file system is read-only (EROFS)', code: 'EROFS', slideFailure: false });
    expect(storage).toBeInstanceOf(StorageError);
    const part = errorFromThread({ name: 'PartFileError', message: 'p.safetensors: cut short; delete the work folder', slideFailure: true });
    expect(part).toBeInstanceOf(PartFileError);
    expect(part.message).toBe('p.safetensors: cut short; delete the work folder');
    const slideFailure = errorFromThread({ name: 'SlideReadError', message: 'cannot read level 0', slideFailure: true });
    expect(slideFailure).toBeInstanceOf(ScoringThreadFailure);
    expect(isSlideFailure(slideFailure)).toBe(true);
    const bug = errorFromThread({ name: 'TypeError', message: 'x is undefined', stack: 'TypeError: x is undefined\n    at thread.js:1', slideFailure: false });
    expect(isSlideFailure(bug)).toBe(false);
    expect(bug.stack).toContain('thread.js:1');
  });
});
