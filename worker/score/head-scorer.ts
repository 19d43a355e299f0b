/**
 * `head:<weights>`: a linear probe trained elsewhere (e.g. logistic regression on labelled patches)
 * applied to every patch. The file is safetensors:
 *
 *   weight  [C, D]   bias  [C]   (F32, F16 or BF16)
 *   metadata  classes: JSON array of C class names     (required)
 *             target:  the class whose probability is the score (default: the last class)
 *             model:   the model the probe was trained on (optional; checked when present)
 *
 * Score = softmax(W x + b)[target]. A one-class head is a logistic probe: score = sigmoid(w.x + b).
 */
import { SafetensorsError, SafetensorsFile } from '../infer/safetensors.js';
import { ModelMismatchError, ScoreFileError } from './errors.js';
import { modelWeightsHint, readScoreFileHeader } from './score-file.js';
import { dot } from './linalg.js';
import { checkEmbeddings, checkFitInput, type FitStatistics, type FittedScorer, type PatchEmbeddings, type Scorer } from './types.js';

export interface LinearHead {
  readonly classes: readonly string[];
  readonly targetIndex: number;
  readonly dim: number;
  /** classes.length x dim, row-major. */
  readonly weight: Float32Array;
  readonly bias: Float32Array;
  readonly model: string | null;
}

export const HEAD_DEFAULT_THRESHOLD = 0.5;

export interface HeadExpectation {
  dim: number;
  model?: string;
}

function parseClasses(path: string, raw: string | undefined, c: number): string[] {
  const fail = (reason: string): never => {
    throw new ScoreFileError(path, `metadata "classes" ${reason}; store the class names as a JSON array of ${c} strings, e.g. ["normal","tumor"]`);
  };
  if (raw === undefined) return fail('is missing');
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return fail(`is not JSON (${JSON.stringify(raw.slice(0, 40))})`);
  }
  if (!Array.isArray(parsed) || !parsed.every((x): x is string => typeof x === 'string')) return fail('is not an array of strings');
  if (parsed.length !== c) return fail(`names ${parsed.length} classes but "weight" has ${c} rows`);
  if (new Set(parsed).size !== parsed.length) return fail('has duplicate names');
  return parsed;
}

/**
 * A head's header checked (tensors, shapes, classes, target) against the model it is to be used
 * with; its data not read. readLinearHead does this first.
 */
export async function checkLinearHead(path: string, expected?: HeadExpectation): Promise<Omit<LinearHead, 'weight' | 'bias'>> {
  const file = await readScoreFileHeader(path, 'head');
  const fail = (reason: string): never => {
    throw new ScoreFileError(path, reason);
  };
  const w = file.tensors.get('weight') ?? fail(`not a linear head (no tensor "weight" [C, D]${modelWeightsHint(file.tensors.keys())})`);
  const b = file.tensors.get('bias') ?? fail('not a linear head (no tensor "bias" [C])');
  if (w.shape.length !== 2) fail(`tensor "weight" must be 2-D [C, D], it is ${JSON.stringify(w.shape)}`);
  const [c, d] = w.shape as [number, number];
  if (c < 1 || d < 1) fail(`tensor "weight" is empty (${c} x ${d})`);
  if (b.shape.length !== 1 || b.shape[0] !== c) fail(`tensor "bias" must be [${c}] to match "weight" [${c}, ${d}], it is ${JSON.stringify(b.shape)}`);
  const classes = parseClasses(path, file.metadata['classes'], c);
  const target = file.metadata['target'];
  const targetIndex = target === undefined ? c - 1 : classes.indexOf(target);
  if (targetIndex < 0) fail(`metadata "target" is "${target}", which is not one of the classes ${JSON.stringify(classes)}`);
  const model = file.metadata['model'] ?? null;
  if (expected !== undefined) {
    if (expected.dim !== d) {
      throw new ModelMismatchError(path, `head was trained on ${model === null ? 'a model' : `model ${model}`} with dim ${d}, this model gives ${expected.dim}; use a head trained on this model's embeddings`);
    }
    if (expected.model !== undefined && model !== null && model !== expected.model) {
      throw new ModelMismatchError(path, `head was trained on model ${model}, this is model ${expected.model} (both dim ${d}, but different embedding spaces); use a head trained on this model`);
    }
  }
  return { classes, targetIndex, dim: d, model };
}

export async function readLinearHead(path: string, expected?: HeadExpectation): Promise<LinearHead> {
  const head = await checkLinearHead(path, expected);
  let file: SafetensorsFile;
  try {
    file = await SafetensorsFile.read(path);
  } catch (err) {
    if (err instanceof SafetensorsError) throw new ScoreFileError(path, `cannot read the head: ${err.message}`, err);
    throw err;
  }
  let weight: Float32Array;
  let bias: Float32Array;
  try {
    weight = file.float32('weight');
    bias = file.float32('bias');
  } catch (err) {
    throw new ScoreFileError(path, (err as Error).message, err);
  }
  if (![...weight, ...bias].every(Number.isFinite)) throw new ScoreFileError(path, '"weight" or "bias" contains NaN or infinite values');
  return { ...head, weight, bias };
}

export class HeadScorer implements Scorer {
  readonly method: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly defaultThreshold: (scores: Float32Array) => number = () => HEAD_DEFAULT_THRESHOLD;

  constructor(
    private readonly head: LinearHead,
    headPath: string,
  ) {
    this.method = `head:${headPath}`;
    this.params = {
      head: headPath,
      classes: [...head.classes],
      target: head.classes[head.targetIndex],
      dim: head.dim,
      headModel: head.model,
      output: head.classes.length === 1 ? 'sigmoid' : 'softmax',
    };
  }

  /** The probe was trained elsewhere: nothing is learnt from the slide. */
  fitRows(): Int32Array {
    return new Int32Array(0);
  }

  async fit(sample: PatchEmbeddings, stats: FitStatistics): Promise<FittedScorer> {
    checkFitInput(sample, stats, this.head.dim);
    return { scoreChunk: async (chunk) => this.scoreRows(chunk), close: () => undefined };
  }

  /** softmax(W x + b)[target] per row; O(rows x classes x dim), cheap next to the model. */
  private scoreRows(e: PatchEmbeddings): Float32Array {
    checkEmbeddings(e, this.head.dim);
    const { weight, bias, dim, targetIndex } = this.head;
    const c = bias.length;
    const out = new Float32Array(e.count);
    const logits = new Float64Array(c);
    for (let i = 0; i < e.count; i++) {
      for (let k = 0; k < c; k++) logits[k] = dot(e.data, i * dim, weight, k * dim, dim) + (bias[k] as number);
      if (c === 1) {
        out[i] = 1 / (1 + Math.exp(-(logits[0] as number)));
        continue;
      }
      // Shift by the max logit: exp never overflows and the largest term is exactly 1.
      let max = -Infinity;
      for (const l of logits) max = Math.max(max, l);
      let sum = 0;
      for (const l of logits) sum += Math.exp(l - max);
      out[i] = Math.exp((logits[targetIndex] as number) - max) / sum;
    }
    return out;
  }
}
