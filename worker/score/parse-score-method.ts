/**
 * Turns a `--score` spec into a scorer:
 *
 *   self               anomaly within the slide's own tissue (default)
 *   reference:<path>   distance to a reference bank of normal tissue (safetensors)
 *   head:<path>        probability of a class from a linear probe (safetensors)
 *
 * Only the first ':' separates method and path, so paths may contain ':'.
 */
import { ScoreConfigError } from './errors.js';
import { HeadScorer, readLinearHead } from './head-scorer.js';
import { readReferenceBank } from './reference-bank.js';
import { ReferenceScorer } from './reference-scorer.js';
import { SelfScorer } from './self-scorer.js';
import type { Scorer } from './types.js';
import type { DeviceName } from '../infer/vit-engine.js';

export const DEFAULT_SCORE_METHOD = 'self';

export interface ScoreMethodContext {
  /** Embedding dim of the model in use. */
  dim: number;
  /** Name of the model in use, checked against what banks and heads were built with. */
  model: string;
  /** Fingerprint of the model's weights, checked against the one a bank records. */
  modelFingerprint?: string;
  /** Where a reference bank is searched (see nearestNeighbourDevice); the scorer's default (cpu) when absent. */
  device?: DeviceName;
}

const USAGE = "expected 'self', 'reference:<bank.safetensors>' or 'head:<weights.safetensors>'";

export async function parseScoreMethod(spec: string, ctx: ScoreMethodContext): Promise<Scorer> {
  const trimmed = spec.trim();
  if (trimmed === '') throw new ScoreConfigError(`empty score method; ${USAGE}`);
  const colon = trimmed.indexOf(':');
  const name = colon < 0 ? trimmed : trimmed.slice(0, colon);
  const arg = colon < 0 ? null : trimmed.slice(colon + 1).trim();
  switch (name) {
    case 'self':
      if (arg !== null) throw new ScoreConfigError(`score method 'self' takes no argument (got '${trimmed}'); ${USAGE}`);
      return new SelfScorer();
    case 'reference': {
      if (arg === null || arg === '') throw new ScoreConfigError(`score method 'reference' needs a bank file: 'reference:<bank.safetensors>'`);
      const bank = await readReferenceBank(arg, { dim: ctx.dim, model: ctx.model, ...(ctx.modelFingerprint === undefined ? {} : { modelFingerprint: ctx.modelFingerprint }) });
      return new ReferenceScorer(bank, { bankPath: arg, ...(ctx.device === undefined ? {} : { device: ctx.device }) });
    }
    case 'head': {
      if (arg === null || arg === '') throw new ScoreConfigError(`score method 'head' needs a weights file: 'head:<weights.safetensors>'`);
      const head = await readLinearHead(arg, { dim: ctx.dim, model: ctx.model });
      return new HeadScorer(head, arg);
    }
    default:
      throw new ScoreConfigError(`unknown score method '${name}' in '${trimmed}'; ${USAGE}`);
  }
}
