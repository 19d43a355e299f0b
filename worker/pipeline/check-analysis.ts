/**
 * Run-wide analysis options checked once, before any slide is read or any model runs: a wrong
 * --region-size, --device, --target-mpp, --overlap, --mpp, a missing model file or score file is
 * one clear error (the CLI exits 2), not a FAILED line per slide with a failure.json left behind,
 * and not a surprise after the embedding pass.
 *
 * What it reads: the model's safetensors header (not its weights) for the patch size the region
 * options must be multiples of and the embedding dim a score file must match; a head whole (it is
 * small), a reference bank's header (its rows are checked when the scoring reads them).
 */
import { existsSync, statSync } from 'node:fs';
import { DEMO_MODEL_SPEC } from '../infer/demo-model.js';
import { SafetensorsReader } from '../infer/safetensors.js';
import { DEMO_MODEL, EngineError, resolveDevice, resolveModelFiles } from '../infer/vit-engine.js';
import { validateRegionOptions } from '../regions/region-plan.js';
import { ModelMismatchError, ScoreError } from '../score/errors.js';
import { readLinearHead } from '../score/head-scorer.js';
import { checkReferenceBank } from '../score/reference-bank.js';
import { bankThreshold } from '../score/reference-scorer.js';
import { DEFAULT_ANALYSIS_OPTIONS, modelName, type AnalysisOptions } from './analysis-spec.js';
import { fingerprintFile } from './fingerprint.js';

/** An analysis option that cannot work for any slide. */
export class AnalysisOptionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A `--score` file that the scoring would refuse: not a head or not a bank, made for another
 * model, without a threshold. `cause` is the reader's ScoreError (ScoreFileError, ModelMismatchError).
 */
export class ScoreFileOptionError extends AnalysisOptionError {
  constructor(
    message: string,
    override readonly cause: ScoreError,
  ) {
    super(message, { cause });
  }
}

const isFile = (path: string): boolean => existsSync(path) && statSync(path).isFile();

/** What the score files are checked against: the model's patch size, embedding dim, name and fingerprint. */
interface ModelFacts {
  /** null: the header does not say (the engine names what it misses when it loads). */
  patchSize: number | null;
  embedDim: number | null;
  /** As analyses record it (analysis-spec.ts modelName), and as banks and heads name their model. */
  name: string;
  fingerprint: string;
}

/** The model's weights and config, each named when missing; its patch size and dim from the header. */
async function checkModel(model: string, config: string | undefined): Promise<ModelFacts> {
  if (model === DEMO_MODEL) {
    if (config !== undefined) throw new AnalysisOptionError('--config applies to a weights file; the demo model has its own');
    const { weights } = await resolveModelFiles(DEMO_MODEL);
    return { patchSize: DEMO_MODEL_SPEC.patchSize, embedDim: DEMO_MODEL_SPEC.embedDim, name: modelName(weights, model), fingerprint: await fingerprintFile(weights) };
  }
  if (/\.json$/i.test(model)) throw new AnalysisOptionError(`--model ${model}: that is a config; --model takes the .safetensors weights (the config sits beside them, or goes in --config)`);
  if (!isFile(model)) throw new AnalysisOptionError(`--model ${model}: no such weights file`);
  if (config !== undefined && !isFile(config)) throw new AnalysisOptionError(`--config ${config}: no such model config file`);
  try {
    await resolveModelFiles(model, config);
  } catch (err) {
    if (err instanceof EngineError) throw new AnalysisOptionError(`--model ${model}: ${err.message}`);
    throw err;
  }
  let reader: SafetensorsReader;
  try {
    reader = await SafetensorsReader.open(model);
  } catch (err) {
    throw new AnalysisOptionError(`--model ${model}: ${(err as Error).message}`);
  }
  try {
    // patch_embed.proj.weight is [D, 3, p, p]: the embedding dim and the patch size.
    const shape = reader.tensors.get('patch_embed.proj.weight')?.shape;
    const known = shape !== undefined && shape.length === 4;
    return { patchSize: known ? (shape[2] as number) : null, embedDim: known ? (shape[0] as number) : null, name: modelName(model, model), fingerprint: await fingerprintFile(model) };
  } finally {
    await reader.close();
  }
}

/** A ScoreError's reason without the path it starts with (the message names the file once). */
function reasonOf(err: ScoreError): string {
  return err.path !== undefined && err.message.startsWith(`${err.path}: `) ? err.message.slice(err.path.length + 2) : err.message;
}

/**
 * `self`, `reference:<bank>`, `head:<weights>`: the syntax, and the file itself, by the readers
 * the scoring uses: a head's tensors, shapes and values, and that its input is this model's
 * embedding dim; a bank's format marker, its model (name, weights fingerprint and dim) against
 * --model, its threshold. A file that would fail the scoring fails here, before any slide is read.
 */
async function checkScoreMethod(method: string, model: ModelFacts, modelArg: string): Promise<void> {
  const trimmed = method.trim();
  const colon = trimmed.indexOf(':');
  const name = colon < 0 ? trimmed : trimmed.slice(0, colon);
  const arg = colon < 0 ? null : trimmed.slice(colon + 1).trim();
  if (name === 'self') {
    if (arg !== null) throw new AnalysisOptionError(`--score self takes no file (got "${method}")`);
    return;
  }
  if (name !== 'reference' && name !== 'head') throw new AnalysisOptionError(`--score "${method}": expected self, reference:<bank.safetensors> or head:<weights.safetensors>`);
  const what = name === 'reference' ? 'reference bank (flashslide reference build)' : 'linear head';
  if (arg === null || arg === '') throw new AnalysisOptionError(`--score ${name}: needs a file, e.g. ${name}:${name === 'reference' ? 'bank' : 'head'}.safetensors`);
  if (!isFile(arg)) throw new AnalysisOptionError(`--score ${method}: no such file; expected a ${what}`);
  const dim = model.embedDim;
  try {
    if (name === 'head') {
      await readLinearHead(arg, dim === null ? undefined : { dim, model: model.name });
    } else {
      const bank = await checkReferenceBank(arg, dim === null ? undefined : { dim, model: model.name, modelFingerprint: model.fingerprint, modelArg });
      bankThreshold(bank, arg);
    }
  } catch (err) {
    if (!(err instanceof ScoreError)) throw err;
    const reason = reasonOf(err);
    // What a head must be, for this model; a bank's messages say how to build one already.
    const advice =
      name === 'head' && !(err instanceof ModelMismatchError)
        ? `; a head is a linear probe on ${model.name}'s patch embeddings: tensors "weight" [C, ${dim ?? 'D'}] and "bias" [C], metadata "classes"`
        : '';
    throw new ScoreFileOptionError(`--score ${method}: ${reason}${advice}`, err);
  }
}

function checkMpp(flag: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isFinite(value) && value > 0 && value <= 100)) {
    throw new AnalysisOptionError(`${flag} ${value}: expected microns per pixel, a positive number such as 0.25 (40x) or 0.5 (20x)`);
  }
}

/**
 * Checks the options every slide of a run shares; throws AnalysisOptionError for the first
 * problem. `device: false` skips the device (the review server and `submit` do not run models).
 */
export async function checkAnalysisOptions(options: Partial<AnalysisOptions>, check: { device: boolean } = { device: true }): Promise<void> {
  const o = { ...DEFAULT_ANALYSIS_OPTIONS, ...options };
  if (check.device) {
    try {
      resolveDevice(o.device);
    } catch (err) {
      throw new AnalysisOptionError(`--device ${o.device}: ${(err as Error).message}`);
    }
  }
  checkMpp('--mpp', o.mpp);
  checkMpp('--fallback-mpp', o.fallbackMpp);
  const model = await checkModel(o.model, o.modelConfig);
  const { patchSize } = model;
  if (patchSize !== null) {
    try {
      validateRegionOptions({
        patchSize,
        regionSize: o.regionSize ?? Math.floor(1024 / patchSize) * patchSize,
        overlap: o.overlap,
        targetMpp: o.targetMpp,
      });
    } catch (err) {
      const flag = /region size/.test((err as Error).message) ? '--region-size' : /overlap/.test((err as Error).message) ? '--overlap' : /target mpp/.test((err as Error).message) ? '--target-mpp' : 'option';
      throw new AnalysisOptionError(`${flag}: ${(err as Error).message}`);
    }
  } else if (!(Number.isFinite(o.targetMpp) && o.targetMpp > 0)) {
    throw new AnalysisOptionError(`--target-mpp ${o.targetMpp}: expected a positive number of microns per pixel (e.g. 0.5)`);
  }
  await checkScoreMethod(o.scoreMethod, model, o.model);
}
