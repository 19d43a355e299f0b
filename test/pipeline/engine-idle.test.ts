/**
 * Where the engine waited in an embed phase (summary.timings.engineIdle): the attribution of
 * the gaps between forwards to the next batch's read or to the rest, on a constructed timeline.
 */
import { describe, expect, it } from 'vitest';
import { engineIdle } from '../../worker/pipeline/run-embedded.js';

describe('engineIdle', () => {
  it('splits the gaps between forwards into waiting for a read and waiting otherwise', () => {
    // Forward k runs [end - ms, end]. Batch 0's read ends at 10, its forward runs 10..40.
    // Batch 1's read ended at 30 (before forward 0 ended): its forward starts late at 50, 10 ms
    // "other". Batch 2's read ends at 100, forward 1 ended at 80: 20 ms waiting for the read,
    // and its forward starts at 105: 5 ms more "other".
    const idle = engineIdle([10, 30, 100], [40, 80, 135], [30, 30, 30], 140);
    expect(idle).toEqual({ phaseMs: 140, busyMs: 90, firstMs: 10, readMs: 20, otherMs: 15, tailMs: 5 });
    const total = idle.busyMs + idle.firstMs + idle.readMs + idle.otherMs + idle.tailMs;
    expect(total).toBe(idle.phaseMs);
  });

  it('counts no idle time when forwards run back to back', () => {
    expect(engineIdle([0, 5], [20, 40], [20, 20], 40)).toEqual({ phaseMs: 40, busyMs: 40, firstMs: 0, readMs: 0, otherMs: 0, tailMs: 0 });
  });
});
