import { describe, expect, it } from 'vitest';
import { parseScoreMethod } from '../../worker/score/parse-score-method.js';
import { SelfScorer } from '../../worker/score/self-scorer.js';
import { ScoreConfigError, ScoreFileError } from '../../worker/score/errors.js';

const ctx = { dim: 16, model: 'demo' };

describe('parseScoreMethod', () => {
  it("makes the self scorer from 'self'", async () => {
    const s = await parseScoreMethod(' self ', ctx);
    expect(s).toBeInstanceOf(SelfScorer);
    expect(s.method).toBe('self');
    expect(s.params).toMatchObject({ trimFraction: 0.1 });
  });

  it('rejects bad specs with a typed error saying what is expected', async () => {
    for (const spec of ['', 'selfish', 'self:x', 'reference', 'reference:', 'head:  ', 'knn:bank.safetensors']) {
      await expect(parseScoreMethod(spec, ctx), spec).rejects.toThrow(ScoreConfigError);
    }
    await expect(parseScoreMethod('bogus', ctx)).rejects.toThrow(/unknown score method 'bogus'.*'self', 'reference:<bank.safetensors>' or 'head:<weights.safetensors>'/);
  });

  it('reports a missing file as a file error', async () => {
    await expect(parseScoreMethod('reference:/nonexistent/bank.safetensors', ctx)).rejects.toThrow(ScoreFileError);
    await expect(parseScoreMethod('head:/nonexistent/head.safetensors', ctx)).rejects.toThrow(/no such file/);
  });
});
