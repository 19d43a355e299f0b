/**
 * From a job's request to the analysis a worker runs, trusting nothing the job says:
 *
 * - the data folder named by the job must be this worker's own --data (same real path); result
 *   and work folders are then derived here, and must not be symbolic links (checkDataFolders);
 * - the slide must lie inside one of the worker's --slides roots, the model, reference bank and
 *   head files inside its --models roots (or the bundled demo model), all after resolving links;
 * - the ids are recomputed from the files as they are now: a slide rewritten since submission
 *   fails as changed, and ids that do not follow from the request mark an edited job.
 *
 * The derived spec is what every stage uses; the request's paths are never written to.
 */
import { realpath } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { UPLOADS_FOLDER, assembleSpec, checkDataFolders, describeAnalysis, modelName, type AnalysisSpec } from '../pipeline/analysis-spec.js';
import { SlideChangedError } from '../slide/errors.js';
import { repoRoot } from '../native/addon.js';
import type { AnalysisRequest } from './job-payload.js';

/** Where a worker may read and write, as real paths (links resolved once, at start). */
export interface WorkerRoots {
  dataDir: string;
  slideRoots: readonly string[];
  modelRoots: readonly string[];
}

/** A job that asks for something outside this worker's roots, or whose ids do not add up. */
export class JobRefusedError extends Error {
  override readonly name = 'JobRefusedError';
}

/** The folder of the bundled demo model: always allowed (it is written by flashslide itself). */
export const bundledModelsDir = (): string => join(repoRoot(), 'models');

/**
 * The roots as real paths. Slides uploaded through the review server live in <data>/uploads, so
 * that folder is a slide root of every worker.
 */
export async function resolveRoots(input: { dataDir: string; slideRoots: readonly string[]; modelRoots: readonly string[] }): Promise<WorkerRoots> {
  const real = async (p: string): Promise<string> => realpath(resolve(p));
  const dataDir = await real(input.dataDir);
  return {
    dataDir,
    slideRoots: [...(await Promise.all(input.slideRoots.map(real))), join(dataDir, UPLOADS_FOLDER)],
    modelRoots: await Promise.all([...input.modelRoots, bundledModelsDir()].map(real)),
  };
}

export function isInside(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** The real path of `path` if it lies inside one of `roots`, else JobRefusedError saying what to configure. */
async function confined(path: string, roots: readonly string[], what: string, flag: string): Promise<string> {
  let real: string;
  try {
    real = await realpath(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new JobRefusedError(`${what} ${path} ${code === 'ENOENT' ? 'does not exist on this worker (moved or deleted since it was submitted, or not mounted here)' : `cannot be resolved (${code ?? (err as Error).message})`}`);
  }
  if (!roots.some((r) => isInside(real, r))) {
    const seen = real === path ? '' : ` (really ${real})`;
    throw new JobRefusedError(`${what} ${path}${seen} is outside this worker's ${flag} roots (${roots.join(', ') || 'none'}); a worker reads only there: start it with ${flag} covering it`);
  }
  return real;
}

/** Whether the request's data folder is this worker's own (the same real path). */
async function servesDataFolder(r: AnalysisRequest, roots: WorkerRoots): Promise<boolean> {
  return (await realpath(r.dataDir).catch(() => '')) === roots.dataDir;
}

/** The analysis a request asks for, derived and checked as the header says. */
export async function specForRequest(r: AnalysisRequest, roots: WorkerRoots): Promise<AnalysisSpec> {
  if (!(await servesDataFolder(r, roots))) {
    throw new JobRefusedError(`the job was submitted to the data folder ${r.dataDir}, but this worker writes to ${roots.dataDir}; start workers with --data at the folder submit and serve use (mounted at the same path)`);
  }
  await confined(r.slidePath, roots.slideRoots, 'slide', '--slides');
  await confined(r.modelWeights, roots.modelRoots, 'model', '--models');
  await confined(r.modelConfig, roots.modelRoots, 'model config', '--models');
  const colon = r.scoreMethod.indexOf(':');
  if (colon > 0) await confined(r.scoreMethod.slice(colon + 1), roots.modelRoots, `${r.scoreMethod.slice(0, colon)} file`, '--models');

  // The ids again, from the files as they are here and now. Folders follow from the request's
  // data path (its real path is this worker's) so that they read as the submitter's do.
  const spec = await describeAnalysis(r.slidePath, {
    model: r.modelWeights,
    modelConfig: r.modelConfig,
    device: r.device,
    targetMpp: r.targetMpp,
    regionSize: r.regionSize ?? undefined,
    overlap: r.overlap,
    batchSize: r.batchSize,
    scoreMethod: r.scoreMethod,
    mpp: r.mpp ?? undefined,
    fallbackMpp: r.fallbackMpp ?? undefined,
    tokens: r.tokens,
    tokenMargin: r.tokenMargin,
    embeddings: r.embeddings,
    dataDir: r.dataDir,
  });
  if (spec.slideFingerprint !== r.slideFingerprint) throw new SlideChangedError(r.slidePath, r.slideFingerprint, spec.slideFingerprint);
  if (spec.modelFingerprint !== r.modelFingerprint) throw new JobRefusedError(`the model ${r.modelWeights} changed since the job was submitted (its content fingerprint differs); submit the slide again`);
  if (spec.analysisId !== r.analysisId || spec.embeddingId !== r.embeddingId) {
    throw new JobRefusedError(`the job's ids (analysis ${r.analysisId}) do not follow from what it asks for (analysis ${spec.analysisId}): it was edited in Redis or made by another flashslide version; submit the slide again`);
  }
  await checkDataFolders(spec, r.dataDir);
  return spec;
}

/**
 * The spec a request describes, for reading where its result is (status, the review server):
 * computed from the request alone, no file read. Never used to write.
 */
export function describedSpec(r: AnalysisRequest): AnalysisSpec {
  // A request holds a spec's parts under the same names, plus its payload version.
  const { version: _version, ...parts } = r;
  return assembleSpec({ ...parts, modelName: modelName(r.modelWeights, r.modelWeights) });
}

/**
 * Where a failure of a request can be recorded when its checks failed (the slide changed since
 * it was submitted, say): its result folder as described, but only when the request is for this
 * worker's data folder and that folder is safe to write; else null.
 */
export async function failureSpecForRequest(r: AnalysisRequest, roots: WorkerRoots): Promise<AnalysisSpec | null> {
  try {
    if (!(await servesDataFolder(r, roots))) return null;
    const spec = describedSpec(r);
    await checkDataFolders(spec, r.dataDir);
    return spec;
  } catch {
    return null;
  }
}
