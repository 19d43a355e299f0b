/**
 * Run-wide analysis options checked once, before any slide is read or any model runs: a wrong
 * --region-size, --device, --target-mpp, --overlap, --mpp, a missing model file or score file is
 * one clear error (the CLI exits 2), not a FAILED line per slide with a failure.json left behind,
 * and not a surprise after the embedding pass.
 *
 * What it reads: the model's safetensors header (not its weights) for the patch size the region
 * options must be multiples of, and the score method's file header.
 */
import { existsSync, statSync } from 'node:fs';
import { DEMO_MODEL_SPEC } from '../infer/demo-model.js';
import { SafetensorsReader } from '../infer/safetensors.js';
import { DEMO_MODEL, EngineError, resolveDevice, resolveModelFiles } from '../infer/vit-engine.js';
import { validateRegionOptions } from '../regions/region-plan.js';
import { DEFAULT_ANALYSIS_OPTIONS, type AnalysisOptions } from './analysis-spec.js';

/** An analysis option that cannot work for any slide. */
export class AnalysisOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AnalysisOptionError';
  }
}

const isFile = (path: string): boolean => existsSync(path) && statSync(path).isFile();

/** The model's weights and config, each named when missing; its patch size from the header. */
async function checkModel(model: string, config: string | undefined): Promise<{ patchSize: number | null }> {
  if (model === DEMO_MODEL) {
    if (config !== undefined) throw new AnalysisOptionError('--config applies to a weights file; the demo model has its own');
    return { patchSize: DEMO_MODEL_SPEC.patchSize };
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
    const shape = reader.tensors.get('patch_embed.proj.weight')?.shape;
    // The engine names what it misses when it loads; here only the region options need p.
    return { patchSize: shape !== undefined && shape.length === 4 ? (shape[2] as number) : null };
  } finally {
    await reader.close();
  }
}

/** `self`, `reference:<bank>`, `head:<weights>`: the syntax, and that the file is a safetensors file. */
async function checkScoreMethod(method: string): Promise<void> {
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
  let reader: SafetensorsReader;
  try {
    reader = await SafetensorsReader.open(arg);
  } catch (err) {
    throw new AnalysisOptionError(`--score ${method}: ${(err as Error).message}`);
  }
  const hasThreshold = reader.metadata['threshold'] !== undefined;
  await reader.close();
  if (name === 'reference' && !hasThreshold) {
    throw new AnalysisOptionError(`--score ${method}: this bank has no threshold of its own (built before banks carried one): rebuild it with \`flashslide reference build <normal slides> -o ${arg}\``);
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
  const { patchSize } = await checkModel(o.model, o.modelConfig);
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
  await checkScoreMethod(o.scoreMethod);
}
