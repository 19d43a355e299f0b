/**
 * What one analysis is: a slide, a model, and the parameters that change the result. Its id is a
 * hash of their contents, so resubmitting the same slide with the same model and parameters is the
 * same job (deduplicated), and the result folder name follows from it.
 *
 * Two ids, because the expensive part does not depend on the score: the embedding id (slide,
 * model, resolution, regions) names the work folder holding the plan and the patch embeddings,
 * and the analysis id (embedding id + score method) names the result folder. Scoring a slide
 * again with another method (self, a reference bank, a probe) reuses its embeddings instead of
 * running the ViT again.
 *
 * The spec is plain JSON: it travels in queue job data and is stored in the result folder.
 */
import { basename, extname, isAbsolute, join, relative, resolve } from 'node:path';
import { lstat, readlink } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { fingerprintFile, stableHash } from './fingerprint.js';
import { resolveModelFiles, type DeviceRequest } from '../infer/vit-engine.js';
import { DEMO_MODEL_FILES, DEMO_MODEL_SPEC } from '../infer/demo-model.js';
import { repoRoot } from '../native/addon.js';
import { SlideChangedError, SlideNotFoundError } from '../slide/errors.js';
import { DataFolderError } from './errors.js';
import { openSlide, type OpenSlideOptions } from '../slide/open-slide.js';
import type { SlideSource } from '../slide/slide-source.js';

export interface AnalysisOptions {
  /** 'demo' or a timm safetensors checkpoint. */
  model: string;
  /** Model JSON config; default beside the weights. */
  modelConfig: string | undefined;
  device: DeviceRequest;
  targetMpp: number;
  /** Region side in model pixels; undefined = the largest multiple of the patch size <= 1024. */
  regionSize: number | undefined;
  overlap: number;
  /** Regions per inference batch (one queue job in queue mode). */
  batchSize: number;
  /** 'self', 'reference:<bank.safetensors>' or 'head:<weights.safetensors>'. */
  scoreMethod: string;
  /** Microns per level-0 pixel, replacing what the slide says (for slides that lack or misstate it). */
  mpp: number | undefined;
  /** Microns per level-0 pixel for slides that carry none; the others keep theirs. */
  fallbackMpp: number | undefined;
  /**
   * Which patch tokens enter the ViT: 'all' of every region, or 'tissue' only (token dropping:
   * a region is analysed as its tissue plus `tokenMargin` patches around it; glass is neither
   * computed nor attended to).
   */
  tokens: TokenMode;
  /** Patches of surroundings kept around tissue with tokens 'tissue'. */
  tokenMargin: number;
  /**
   * The patch embeddings once the result is stored: 'keep' (re-scoring with another method
   * reuses them) or 'drop' (their part files are deleted; gigabytes per slide). Not part of
   * the ids: it changes no result.
   */
  embeddings: EmbeddingsPolicy;
  /** Root of the result store. */
  dataDir: string;
}

export type TokenMode = 'all' | 'tissue';
export type EmbeddingsPolicy = 'keep' | 'drop';

export const DEFAULT_ANALYSIS_OPTIONS: Readonly<AnalysisOptions> = {
  model: 'demo',
  modelConfig: undefined,
  device: 'auto',
  targetMpp: 0.5,
  regionSize: undefined,
  overlap: 0,
  batchSize: 4,
  scoreMethod: 'self',
  mpp: undefined,
  fallbackMpp: undefined,
  tokens: 'all',
  tokenMargin: 2,
  embeddings: 'keep',
  dataDir: 'data',
};

export interface AnalysisSpec {
  analysisId: string;
  /** Hash of what the embeddings depend on; shared by analyses that differ only in scoring. */
  embeddingId: string;
  slidePath: string;
  slideName: string;
  slideFingerprint: string;
  modelWeights: string;
  modelConfig: string;
  modelName: string;
  modelFingerprint: string;
  device: DeviceRequest;
  targetMpp: number;
  regionSize: number | null;
  overlap: number;
  batchSize: number;
  scoreMethod: string;
  mpp: number | null;
  fallbackMpp: number | null;
  /** Absent in plans made before token dropping existed: 'all'. */
  tokens?: TokenMode;
  tokenMargin?: number;
  /** Absent: 'keep'. */
  embeddings?: EmbeddingsPolicy;
  /** Absolute path of this analysis's result folder. */
  resultDir: string;
  /** Absolute path of the work folder (plan, tissue, per-batch embeddings): <data>/embeddings/<slide>-<embeddingId>. */
  workDir: string;
}

/**
 * Throws SlideChangedError unless the file still has the content the spec was made for: every
 * stage that reads the slide or files its result checks, so a result always belongs to the
 * pixels its analysis id names.
 */
export async function verifySlideUnchanged(spec: Pick<AnalysisSpec, 'slidePath' | 'slideFingerprint'>): Promise<void> {
  let now: string;
  try {
    now = await fingerprintFile(spec.slidePath);
  } catch (err) {
    throw new SlideNotFoundError(spec.slidePath, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (moved or deleted since it was submitted)' : (err as Error).message);
  }
  if (now !== spec.slideFingerprint) throw new SlideChangedError(spec.slidePath, spec.slideFingerprint, now);
}

/** How the stages open the analysis's slide (the mpp options given). */
export function slideOpenOptions(spec: AnalysisSpec): OpenSlideOptions {
  return { mpp: spec.mpp ?? undefined, fallbackMpp: spec.fallbackMpp ?? undefined };
}

/** Folder under --data that holds the work folders (embeddings) of every slide. */
export const EMBEDDINGS_FOLDER = 'embeddings';
/** Folder under --data where the review server stores uploaded slides (a slide root of every worker). */
export const UPLOADS_FOLDER = 'uploads';

/** The demo model by name or by its bundled file (as a worker sees it in a job) is the demo model. */
export function modelName(weights: string, model: string): string {
  const demo = model === 'demo' || resolve(weights) === resolve(repoRoot(), 'models', DEMO_MODEL_FILES.weights);
  return demo ? DEMO_MODEL_SPEC.name : basename(weights, extname(weights));
}

/** Files a score method refers to are part of the identity too: a rebuilt bank is a new analysis. */
async function scoreFingerprint(method: string): Promise<string> {
  const colon = method.indexOf(':');
  if (colon < 0) return method;
  const path = method.slice(colon + 1);
  return existsSync(path) ? `${method.slice(0, colon)}:${await fingerprintFile(path)}` : method;
}

/** Longest slide-name part of a result folder name; the analysis id follows it. */
const MAX_FOLDER_NAME = 80;

/**
 * The slide's name as a folder name: letters, digits, '.', '-' and '_' only, not starting with a
 * dot ("..svs", ".hidden.svs"), at most MAX_FOLDER_NAME characters (very long file names), and
 * never empty. The analysis id after it keeps folders unique.
 */
export function safeFolderName(slideName: string): string {
  const cleaned = slideName.replace(/[^\w.-]+/g, '_').replace(/^[.-]+/, '').slice(0, MAX_FOLDER_NAME);
  return cleaned === '' ? 'slide' : cleaned;
}

/** Whether the slide carries no mpp of its own; true when it cannot be opened (the plan stage reports why). */
async function slideLacksMpp(path: string): Promise<boolean> {
  let source: SlideSource;
  try {
    source = await openSlide(path);
  } catch {
    return true;
  }
  try {
    return source.mpp === null;
  } finally {
    await source.close();
  }
}

export async function describeAnalysis(slidePath: string, options: Partial<AnalysisOptions> = {}): Promise<AnalysisSpec> {
  const o = { ...DEFAULT_ANALYSIS_OPTIONS, ...options };
  const abs = resolve(slidePath);
  if (!existsSync(abs)) throw new SlideNotFoundError(slidePath, 'no such file');
  const files = await resolveModelFiles(o.model, o.modelConfig);
  const [slideFingerprint, modelFingerprint, scoreId] = await Promise.all([
    fingerprintFile(abs),
    fingerprintFile(files.weights),
    scoreFingerprint(o.scoreMethod),
  ]);
  const embeddingId = stableHash({
    slide: slideFingerprint,
    model: modelFingerprint,
    config: await fingerprintFile(files.config),
    targetMpp: o.targetMpp,
    regionSize: o.regionSize ?? null,
    overlap: o.overlap,
    mpp: o.mpp ?? null,
    // A fallback changes nothing for slides that carry their own mpp: it must not change their id
    // either (else adding --fallback-mpp to a batch would recompute every slide in it).
    fallbackMpp: o.mpp === undefined && o.fallbackMpp !== undefined && (await slideLacksMpp(abs)) ? o.fallbackMpp : null,
    // Only when tokens are dropped, so that the ids of every analysis made before stay the same.
    ...(o.tokens === 'tissue' ? { tokens: o.tokens, tokenMargin: o.tokenMargin } : {}),
  }).slice(0, 24);
  const analysisId = stableHash({ embedding: embeddingId, score: scoreId }).slice(0, 24);
  return assembleSpec({
    analysisId,
    embeddingId,
    slidePath: abs,
    slideFingerprint,
    modelWeights: resolve(files.weights),
    modelConfig: resolve(files.config),
    modelName: modelName(files.weights, o.model),
    modelFingerprint,
    device: o.device,
    targetMpp: o.targetMpp,
    regionSize: o.regionSize ?? null,
    overlap: o.overlap,
    batchSize: o.batchSize,
    scoreMethod: o.scoreMethod,
    mpp: o.mpp ?? null,
    fallbackMpp: o.fallbackMpp ?? null,
    tokens: o.tokens,
    tokenMargin: o.tokenMargin,
    embeddings: o.embeddings,
    dataDir: o.dataDir,
  });
}

/** What a spec is made of besides the names and folders that follow from them. */
export type SpecParts = Omit<AnalysisSpec, 'slideName' | 'resultDir' | 'workDir'> & { dataDir: string };

/**
 * The spec of parts already known (ids computed): the slide's name and the result and work
 * folders follow from the slide path, the ids and the data folder. Pure: reads no file.
 */
export function assembleSpec(parts: SpecParts): AnalysisSpec {
  const { dataDir, ...rest } = parts;
  const slideName = basename(parts.slidePath, extname(parts.slidePath));
  const folderName = safeFolderName(slideName);
  return {
    ...rest,
    slideName,
    resultDir: resolve(join(dataDir, `${folderName}-${parts.analysisId.slice(0, 12)}`)),
    workDir: resolve(join(dataDir, EMBEDDINGS_FOLDER, `${folderName}-${parts.embeddingId.slice(0, 12)}`)),
  };
}

/**
 * Throws unless the analysis's folders lie inside `dataDir` as they appear: the result folder,
 * embeddings/ and the work folder must not be symbolic links (nor anything but folders). Writes
 * through a link planted there would land wherever it points; a lab that wants the embeddings on
 * another disk mounts that disk at <data>/embeddings instead.
 */
export async function checkDataFolders(spec: Pick<AnalysisSpec, 'resultDir' | 'workDir'>, dataDir: string): Promise<void> {
  const root = resolve(dataDir);
  for (const path of [spec.resultDir, join(root, EMBEDDINGS_FOLDER), spec.workDir]) {
    const rel = relative(root, path);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new DataFolderError(path, `is not inside the data folder ${root}`);
    let info;
    try {
      info = await lstat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if (info.isSymbolicLink()) throw new DataFolderError(path, `is a symbolic link (to ${await readlink(path).catch(() => '?')}); flashslide writes only inside the data folder ${root}: remove the link (mount another disk at that path instead)`);
    if (!info.isDirectory()) throw new DataFolderError(path, 'is not a folder');
  }
}
