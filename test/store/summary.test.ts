import { describe, expect, it } from 'vitest';
import { countCells, slideScore } from '../../worker/store/summary.js';
import { scoreRange } from '../../worker/store/heatmap-json.js';

describe('slide summary numbers', () => {
  it('slide score is the mean of the top 1 % of tissue cells (at least one)', () => {
    const scores = Float32Array.from({ length: 1000 }, (_, i) => i + 1);
    expect(slideScore(scores)).toBe(995.5);
    expect(slideScore(Float32Array.from([3, Number.NaN, 7, 5]))).toBe(7);
    expect(slideScore(Float32Array.from([Number.NaN]))).toBeNull();
  });

  it('counts tissue and anomalous cells, and the score range, ignoring NaN', () => {
    const h = Float32Array.from([0.1, Number.NaN, 0.7, 0.5, Number.NaN]);
    expect(countCells(h, 0.5)).toEqual({ tissueCells: 3, anomalousCells: 2 });
    expect(countCells(h, Infinity)).toEqual({ tissueCells: 3, anomalousCells: 0 });
    expect(scoreRange(h)).toEqual({ min: Math.fround(0.1), max: Math.fround(0.7) });
    expect(scoreRange(Float32Array.from([Number.NaN]))).toBeNull();
  });
});
