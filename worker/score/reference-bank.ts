/**
 * A reference bank: patches of normal tissue, embedded by one model, reduced to a k-center coreset.
 * Stored as safetensors so the same file can be read by the engine or by Python:
 *
 *   tensor `bank`  F32 [M, D]
 *   metadata       { format: 'flashslide-reference-bank', model, model_fingerprint, dim, source_patches,
 *                    method: 'k-center coreset', threshold, threshold_quantile,
 *                    threshold_sample, threshold_median, threshold_max, threshold_basis }
 *
 * The threshold belongs to the bank, not to the slide being scored: a bank is a model of normal
 * tissue, so "anomalous" means farther from it than normal tissue is (reference-calibration.ts).
 */
import { SafetensorsError, SafetensorsFile, writeSafetensors } from '../infer/safetensors.js';
import { kCenterCoreset } from './coreset.js';
import { ModelMismatchError, ScoreConfigError, ScoreFileError } from './errors.js';
import { modelWeightsHint, readScoreFileHeader } from './score-file.js';
import { checkEmbeddings, type PatchEmbeddings } from './types.js';

export const REFERENCE_BANK_FORMAT = 'flashslide-reference-bank';
export const REFERENCE_BANK_METHOD = 'k-center coreset';

export interface ReferenceBank {
  /** Name of the model whose embeddings these are. */
  readonly model: string;
  /** Content fingerprint of that model's weights (fingerprint.ts); null in banks made before it was recorded. */
  readonly modelFingerprint: string | null;
  readonly dim: number;
  /** Rows in the bank. */
  readonly size: number;
  /** size x dim, row-major. */
  readonly data: Float32Array;
  /** Patches the coreset was selected from. */
  readonly sourcePatches: number;
  readonly method: string;
  /** Distances at or above it are anomalous; null until calibrated (and in banks made before it existed). */
  readonly threshold: ReferenceThreshold | null;
}

/** How far normal tissue lies from the bank: the quantile of held-out normal patches' distances. */
export interface ReferenceThreshold {
  value: number;
  /** e.g. 0.99: 1 % of normal patches score above the threshold. */
  quantile: number;
  /** Held-out normal patches (never in the bank) whose nearest-bank distances set it. */
  sample: number;
  median: number;
  max: number;
}

export const THRESHOLD_BASIS = 'nearest-bank distances of held-out normal patches';

export interface BuildReferenceBankOptions {
  /** Name of the model that produced the embeddings; recorded so a bank is never used with another. */
  model: string;
  /** Fingerprint of that model's weights: two weights files of the same name are told apart. */
  modelFingerprint?: string;
  maxSize: number;
  /** Dimension of the random projection the coreset distances are computed on. */
  projectionDim: number;
  seed: number;
}

export const REFERENCE_BANK_DEFAULTS = { maxSize: 20_000, projectionDim: 128, seed: 0xbac4 } as const;

/** Selects up to `maxSize` representative patches from all `embeddings` (e.g. one set per normal slide). */
export function buildReferenceBank(embeddings: readonly PatchEmbeddings[], options: Partial<BuildReferenceBankOptions> & { model: string }): ReferenceBank {
  const o: BuildReferenceBankOptions = { ...REFERENCE_BANK_DEFAULTS, ...options };
  const modelFingerprint = o.modelFingerprint ?? null;
  if (o.model.trim() === '') throw new ScoreConfigError('reference bank: model name must not be empty (it guards against using the bank with another model)');
  if (!Number.isInteger(o.maxSize) || o.maxSize < 1) throw new ScoreConfigError(`reference bank: maxSize must be a positive integer, got ${o.maxSize}`);
  if (!Number.isInteger(o.projectionDim) || o.projectionDim < 1) throw new ScoreConfigError(`reference bank: projectionDim must be a positive integer, got ${o.projectionDim}`);
  const first = embeddings.find((e) => e.count > 0);
  if (first === undefined) throw new ScoreConfigError('reference bank: no patches given; pass the embeddings of at least one normal slide');
  const dim = first.dim;
  embeddings.forEach((e, i) => {
    try {
      checkEmbeddings(e, e.count > 0 ? dim : undefined);
    } catch (err) {
      throw new ScoreConfigError(`reference bank: embedding set ${i}: ${(err as Error).message}`);
    }
  });
  const picked = kCenterCoreset(embeddings, dim, o);
  // Locate each picked global index in its set: sets are visited in order, so prefix offsets do.
  const starts: number[] = [];
  let total = 0;
  for (const e of embeddings) {
    starts.push(total);
    total += e.count;
  }
  const data = new Float32Array(picked.length * dim);
  picked.forEach((g, row) => {
    let s = starts.length - 1;
    while ((starts[s] as number) > g || (embeddings[s] as PatchEmbeddings).count === 0) s--;
    const set = embeddings[s] as PatchEmbeddings;
    const local = g - (starts[s] as number);
    data.set(set.data.subarray(local * dim, (local + 1) * dim), row * dim);
  });
  return { model: o.model, modelFingerprint, dim, size: picked.length, data, sourcePatches: total, method: REFERENCE_BANK_METHOD, threshold: null };
}

export async function writeReferenceBank(path: string, bank: ReferenceBank): Promise<void> {
  await writeSafetensors(
    path,
    { bank: { dtype: 'F32', shape: [bank.size, bank.dim], data: bank.data } },
    {
      format: REFERENCE_BANK_FORMAT,
      model: bank.model,
      ...(bank.modelFingerprint === null ? {} : { model_fingerprint: bank.modelFingerprint }),
      dim: String(bank.dim),
      source_patches: String(bank.sourcePatches),
      method: bank.method,
      ...(bank.threshold === null
        ? {}
        : {
            threshold: String(bank.threshold.value),
            threshold_quantile: String(bank.threshold.quantile),
            threshold_sample: String(bank.threshold.sample),
            threshold_median: String(bank.threshold.median),
            threshold_max: String(bank.threshold.max),
            threshold_basis: THRESHOLD_BASIS,
          }),
    },
  );
}

/** What the bank is about to be used with; checked so a mismatch fails loudly instead of scoring nonsense. */
export interface ReferenceBankExpectation {
  dim: number;
  /** When given, a bank built with another model name is refused even if the dims agree. */
  model?: string;
  /** When given, a bank that records another fingerprint of its model's weights is refused too. */
  modelFingerprint?: string;
  /** The model as the command line names it (`demo` or its weights), for the build command the messages suggest. */
  modelArg?: string;
}

/** The command that builds a bank for the model in use. */
function buildCommand(out: string, modelArg: string | undefined): string {
  return `\`flashslide reference build <normal slides> -o ${out} --model ${modelArg ?? '<the model you analyse with>'}\``;
}

/**
 * A bank's header checked (its format marker, tensor, model, dim, threshold) against the model it
 * is to be used with; its rows not read. readReferenceBank does this first.
 */
export async function checkReferenceBank(path: string, expected?: ReferenceBankExpectation): Promise<Omit<ReferenceBank, 'data'>> {
  const file = await readScoreFileHeader(path, 'reference bank');
  const fail = (reason: string): never => {
    throw new ScoreFileError(path, `${reason}; build one with ${buildCommand('<bank.safetensors>', expected?.modelArg)}`);
  };
  const info = file.tensors.get('bank') ?? fail(`not a flashslide reference bank (no tensor "bank"${modelWeightsHint(file.tensors.keys())})`);
  if (info.shape.length !== 2) fail(`tensor "bank" must be 2-D [M, D], it is ${JSON.stringify(info.shape)}`);
  const [size, dim] = info.shape as [number, number];
  if (size < 1 || dim < 1) fail(`tensor "bank" is empty (${size} x ${dim})`);
  const meta = file.metadata;
  const model = meta['model'];
  if (typeof model !== 'string' || model === '') fail('metadata has no "model": cannot tell which model the bank belongs to');
  if (meta['format'] !== REFERENCE_BANK_FORMAT) fail(`not a flashslide reference bank (metadata "format" is ${meta['format'] === undefined ? 'missing' : JSON.stringify(meta['format'])}, not "${REFERENCE_BANK_FORMAT}")`);
  const modelFingerprint = meta['model_fingerprint'] ?? null;
  if (meta['dim'] !== undefined && Number(meta['dim']) !== dim) fail(`metadata says dim ${meta['dim']} but tensor "bank" has ${dim} columns`);
  if (expected !== undefined) {
    if (expected.dim !== dim) {
      throw new ModelMismatchError(path, `bank was built with model ${model} dim ${dim}, this model gives ${expected.dim}; rebuild it for this model with ${buildCommand('<bank.safetensors>', expected.modelArg)}`);
    }
    if (expected.model !== undefined && expected.model !== model) {
      throw new ModelMismatchError(path, `bank was built with model ${model}, this is model ${expected.model} (both dim ${dim}, but different embedding spaces); rebuild it for this model with ${buildCommand('<bank.safetensors>', expected.modelArg)}`);
    }
    if (expected.modelFingerprint !== undefined && modelFingerprint !== null && modelFingerprint !== expected.modelFingerprint) {
      throw new ModelMismatchError(path, `bank was built with other weights named ${model} (fingerprint ${modelFingerprint.slice(0, 12)}, these are ${expected.modelFingerprint.slice(0, 12)}): different embedding spaces; rebuild it for this model with ${buildCommand('<bank.safetensors>', expected.modelArg)}`);
    }
  }
  const sourcePatches = Number(meta['source_patches'] ?? size);
  let threshold: ReferenceThreshold | null = null;
  if (meta['threshold'] !== undefined) {
    const num = (key: string): number => {
      const v = Number(meta[key]);
      return Number.isFinite(v) ? v : fail(`metadata "${key}" is not a number (${String(meta[key])})`);
    };
    threshold = { value: num('threshold'), quantile: num('threshold_quantile'), sample: num('threshold_sample'), median: num('threshold_median'), max: num('threshold_max') };
  }
  return { model: model as string, modelFingerprint, dim, size, sourcePatches: Number.isFinite(sourcePatches) ? sourcePatches : size, method: meta['method'] ?? REFERENCE_BANK_METHOD, threshold };
}

export async function readReferenceBank(path: string, expected?: ReferenceBankExpectation): Promise<ReferenceBank> {
  const bank = await checkReferenceBank(path, expected);
  let file: SafetensorsFile;
  try {
    file = await SafetensorsFile.read(path);
  } catch (err) {
    if (err instanceof SafetensorsError) throw new ScoreFileError(path, `cannot read the reference bank: ${err.message}`, err);
    throw err;
  }
  let data: Float32Array;
  try {
    data = file.float32('bank');
  } catch (err) {
    throw new ScoreFileError(path, `tensor "bank": ${(err as Error).message}`, err);
  }
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i] as number)) {
      throw new ScoreFileError(path, `tensor "bank" has a non-finite value in row ${Math.floor(i / bank.dim)}; rebuild it with ${buildCommand(path, expected?.modelArg)}`);
    }
  }
  return { ...bank, data };
}
