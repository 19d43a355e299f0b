import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HeadScorer, readLinearHead } from '../../worker/score/head-scorer.js';
import { parseScoreMethod } from '../../worker/score/parse-score-method.js';
import { ModelMismatchError, ScoreFileError, ScoreInputError } from '../../worker/score/errors.js';
import { writeSafetensors, type TensorToWrite } from '../../worker/infer/safetensors.js';
import { scoreEmbeddings } from '../../worker/score/score-embeddings.js';
import { tempDir } from '../helpers.js';

const CLASSES = JSON.stringify(['normal', 'inflamed', 'tumor']);
// Logits = x[0..2] + [0, 0, ln 2]: easy to reason about exactly.
const WEIGHT = Float32Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]);
const BIAS = Float32Array.from([0, 0, Math.LN2]);

async function writeHead(tensors: Record<string, TensorToWrite>, metadata: Record<string, string>): Promise<string> {
  const path = join(tempDir(), 'head.safetensors');
  await writeSafetensors(path, tensors, metadata);
  return path;
}

const standard = (dtype: 'F32' | 'F16' = 'F32'): Record<string, TensorToWrite> => ({
  weight: { dtype, shape: [3, 4], data: WEIGHT },
  bias: { dtype, shape: [3], data: BIAS },
});

describe('head scorer', () => {
  it('gives the softmax probability of the last class by default', async () => {
    const path = await writeHead(standard(), { classes: CLASSES });
    const scorer = await parseScoreMethod(`head:${path}`, { dim: 4, model: 'demo' });
    expect(scorer).toBeInstanceOf(HeadScorer);
    expect(scorer.params).toMatchObject({ target: 'tumor', classes: ['normal', 'inflamed', 'tumor'] });
    // x = 0: exp(logits) = [1, 1, 2] -> 2/4. x = (ln 3, 0, 0, 9): [3, 1, 2] -> 2/6.
    const s = await scoreEmbeddings(scorer, { count: 2, dim: 4, data: Float32Array.from([0, 0, 0, 0, Math.log(3), 0, 0, 9]) });
    expect(s[0]).toBeCloseTo(0.5, 6);
    expect(s[1]).toBeCloseTo(1 / 3, 6);
    expect(scorer.defaultThreshold(s)).toBe(0.5);
  });

  it('scores the target class named in the metadata, from F16 weights', async () => {
    const path = await writeHead(standard('F16'), { classes: CLASSES, target: 'normal', model: 'demo' });
    const head = await readLinearHead(path, { dim: 4, model: 'demo' });
    const s = await scoreEmbeddings(new HeadScorer(head, path), { count: 1, dim: 4, data: Float32Array.from([Math.log(3), 0, 0, 0]) });
    expect(s[0]).toBeCloseTo(0.5, 3);
  });

  it('is a logistic probe with one class, and never NaN on huge logits', async () => {
    const path = await writeHead({ weight: { dtype: 'F32', shape: [1, 2], data: Float32Array.from([1, 0]) }, bias: { dtype: 'F32', shape: [1], data: Float32Array.from([0]) } }, { classes: '["tumor"]' });
    const one = new HeadScorer(await readLinearHead(path), path);
    expect((await scoreEmbeddings(one, { count: 1, dim: 2, data: Float32Array.from([Math.log(3), 5]) }))[0]).toBeCloseTo(0.75, 6);

    const multi = new HeadScorer(await readLinearHead(await writeHead(standard(), { classes: CLASSES })), 'h');
    const s = await scoreEmbeddings(multi, { count: 2, dim: 4, data: Float32Array.from([1e30, 0, 0, 0, 0, 0, 1e30, 0]) });
    expect(Array.from(s)).toEqual([0, 1]);
  });

  it('explains malformed heads', async () => {
    const bad = async (tensors: Record<string, TensorToWrite>, metadata: Record<string, string>, message: RegExp): Promise<void> => {
      await expect(readLinearHead(await writeHead(tensors, metadata), { dim: 4 })).rejects.toThrow(message);
    };
    await bad({ weight: { dtype: 'F32', shape: [12], data: WEIGHT }, bias: standard().bias as TensorToWrite }, { classes: CLASSES }, /"weight" must be 2-D/);
    await bad({ weight: standard().weight as TensorToWrite, bias: { dtype: 'F32', shape: [2], data: Float32Array.from([0, 0]) } }, { classes: CLASSES }, /"bias" must be \[3\]/);
    await bad({ bias: standard().bias as TensorToWrite }, { classes: CLASSES }, /no tensor "weight"/);
    await bad(standard(), {}, /"classes" is missing/);
    await bad(standard(), { classes: '["a","b"]' }, /names 2 classes but "weight" has 3 rows/);
    await bad(standard(), { classes: CLASSES, target: 'necrosis' }, /"target" is "necrosis"/);
    await expect(readLinearHead(await writeHead(standard(), { classes: CLASSES }), { dim: 4 })).resolves.toBeDefined();
    await expect(readLinearHead(await writeHead(standard(), { classes: CLASSES }), { dim: 4 })).resolves.toMatchObject({ targetIndex: 2 });
    await expect(readLinearHead(join(tempDir(), 'none.safetensors'))).rejects.toThrow(ScoreFileError);
  });

  it('refuses a head for another model', async () => {
    const path = await writeHead(standard(), { classes: CLASSES, model: 'uni' });
    await expect(parseScoreMethod(`head:${path}`, { dim: 1024, model: 'uni' })).rejects.toThrow(/dim 4, this model gives 1024/);
    await expect(parseScoreMethod(`head:${path}`, { dim: 4, model: 'phikon' })).rejects.toThrow(ModelMismatchError);
    const scorer = await parseScoreMethod(`head:${path}`, { dim: 4, model: 'uni' });
    await expect(scoreEmbeddings(scorer, { count: 1, dim: 5, data: new Float32Array(5) })).rejects.toThrow(ScoreInputError);
  });
});
