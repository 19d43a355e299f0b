/**
 * The short fuzz run for CI (issue 13): 40 mutants of the fixture slides and generated TIFFs,
 * fixed seed, through the same code as `node bench/fuzz-slides.mjs` (the built CLI as child
 * processes: inspect with --backend auto, sharp and openslide, analyze on every 10th). No mutant
 * may crash, hang, print a stack trace, a Node warning or an internal error. ~40 s on 2 cores.
 */
import { describe, expect, it } from 'vitest';
import { runFuzz } from './fuzz-run.js';
import { tempDir } from '../helpers.js';

describe('fuzzed slides', () => {
  it('40 mutants (seed 20261201): every one ends in a result or a one-line error', async () => {
    const out = tempDir('flashslide-fuzz-short-');
    const report = await runFuzz({ seed: 20261201, count: 40, jobs: 2, outDir: out, analyzeEvery: 10, timeoutMs: 60_000 });
    const failures = report.failures.map((f) => `${f.outcome} ${f.command} ${f.mutant} [${f.ops.join('; ')}]: ${f.summary} (kept in ${out}/failures)`);
    expect(failures, report.table).toEqual([]);
    expect(report.mutants).toBe(40);
    // The mutants must reach the readers, not only the "not a slide" check.
    expect(report.records.filter((r) => r.outcome === 'ok').length).toBeGreaterThan(10);
  }, 240_000);
});
