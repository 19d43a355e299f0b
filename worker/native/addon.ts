/**
 * Loads flashslide.node (native/) once and gives it a typed face. The addon is built by
 * `npm run build:native`; when it is missing, callers get one error that says so.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

export interface NativeLevel {
  width: number;
  height: number;
  downsample: number;
}

export interface NativeAssociated {
  name: string;
  width: number;
  height: number;
}

export interface NativeOpenSlide {
  properties(): Record<string, string>;
  levels(): NativeLevel[];
  associatedImages(): NativeAssociated[];
  readRegion(level: number, x: number, y: number, width: number, height: number): Promise<Buffer>;
  readAssociatedImage(name: string): Promise<{ data: Buffer; width: number; height: number }>;
  close(): void;
}

export interface NativeArch {
  embedDim: number;
  depth: number;
  numHeads: number;
  headDim: number;
  mlpHidden: number;
  mlp: 'gelu' | 'swiglu';
  patchSize: number;
  hasClsToken: boolean;
  numRegTokens: number;
  numPrefixTokens: number;
  layerScale: boolean;
  noEmbedClass: boolean;
  posEmbedGrid: [number, number];
  mean: [number, number, number];
  std: [number, number, number];
  layerNormEps: number;
  numParams: number;
  description: string;
}

export interface NativeForwardResult {
  /** [batch, tokens, dim] row-major. */
  data: Float32Array;
  batch: number;
  tokens: number;
  dim: number;
  gridH: number;
  gridW: number;
  millis: number;
}

export interface NativeEngine {
  readonly device: 'cpu' | 'cuda';
  readonly backend: string;
  arch(): NativeArch;
  tokens(height: number, width: number): number;
  forward(rgb: Buffer, batch: number, height: number, width: number): Promise<NativeForwardResult>;
  /** Only the given rows of forward()'s [batch * tokens, dim] output, as BF16 bits [rows, dim]. */
  forwardRowsBf16(rgb: Buffer, batch: number, height: number, width: number, rows: Int32Array): Promise<NativeForwardRowsResult>;
  forwardKeptRowsBf16(rgb: Buffer, batch: number, height: number, width: number, offsets: Int32Array, patches: Int32Array, rows: Int32Array): Promise<NativeForwardRowsResult>;
}

export interface NativeForwardRowsResult extends Omit<NativeForwardResult, 'data'> {
  data: Uint16Array;
  /** Column sums of the BF16 rows (decoded), each column added in row order, in float64. */
  sums: Float64Array;
  rows: number;
}

/** Errors from the engine carry one of these codes. */
export type NativeEngineErrorCode =
  | 'bad_file'
  | 'missing_tensor'
  | 'shape_mismatch'
  | 'unsupported_dtype'
  | 'unsupported_arch'
  | 'bad_config'
  | 'bad_input'
  | 'out_of_memory'
  | 'non_finite_weights'
  | 'internal';

/** A reference bank held by the addon (host memory, or device memory for cuda) for repeated searches. */
export interface NativeNearestIndex {
  readonly size: number;
  readonly dim: number;
  readonly device: 'cpu' | 'cuda';
  /** For each of `count` query rows (count x dim), the Euclidean distance to its nearest bank row. */
  search(queries: Float32Array, count: number): Promise<Float32Array>;
  /** Frees the bank now (searches already running finish first); later searches reject. */
  close(): void;
}

/** Errors from the scoring kernels carry one of these codes. */
export type NativeScoreErrorCode = 'bad_input' | 'unsupported_device' | 'out_of_memory' | 'cuda_error' | 'internal';

/** The scoring kernels (native/src/score_binding.cc); every call runs off the event loop. */
export interface NativeScoreKernels {
  /** Copies (and centres) the bank [size, dim]; on cuda, uploads it to the GPU. */
  createNearestIndex(bank: Float32Array, size: number, dim: number, device: 'cpu' | 'cuda'): Promise<NativeNearestIndex>;
  /** One-shot: createNearestIndex + search + close. */
  nearestDistances(bank: Float32Array, size: number, queries: Float32Array, count: number, dim: number, device: 'cpu' | 'cuda'): Promise<Float32Array>;
  /** coords [count, k] = (rows - center) basis^T in float32; sqNorms = |rows - center|^2 (float64). */
  projectCentered(rows: Float32Array, count: number, dim: number, center: Float64Array, basis: Float32Array, k: number): Promise<{ coords: Float32Array; sqNorms: Float64Array }>;
  /** [l, dim] = weights [l, count] (rows - center), float32. */
  combineCentered(rows: Float32Array, count: number, dim: number, center: Float64Array, weights: Float32Array, l: number): Promise<Float32Array>;
}

export interface NativeAddon extends NativeScoreKernels {
  /** Engine backends compiled into this build. */
  engineDevices: string[];
  loadEngine(weightsPath: string, configPath: string, device: 'cpu' | 'cuda'): Promise<NativeEngine>;
  /** libopenslide version, or null when the addon was built without it. */
  openslideVersion: string | null;
  openslideDetectVendor?: (path: string) => string | null;
  OpenSlide?: new (path: string) => NativeOpenSlide;
  /** Returns freed C-heap pages to the OS (glibc malloc_trim); false where unsupported or nothing was freed. */
  releaseFreeMemory?: () => boolean;
  /** At most n malloc arenas from now on (glibc mallopt M_ARENA_MAX); false where unsupported. */
  limitMallocArenas?: (n: number) => boolean;
}

/**
 * Between large jobs (one report after another): give the C heap's free pages back, so a batch
 * needs the memory of its largest item, not the sum of every thread arena's leftovers. Cheap
 * (milliseconds); does nothing without the addon.
 */
export function releaseFreeMemory(): void {
  const addon = loadNativeAddon();
  if (!(addon instanceof Error)) addon.releaseFreeMemory?.();
}

/**
 * For a process that renders large images one after another and nothing else (`flashslide
 * report`): few malloc arenas, so libvips' threads reuse the same freed memory instead of each
 * keeping its own. Call before the first image work. Not for the worker or the server, whose
 * many threads allocate at once and would contend for the arenas' locks.
 */
export function limitMallocArenas(n: number): void {
  const addon = loadNativeAddon();
  if (!(addon instanceof Error)) addon.limitMallocArenas?.(n);
}

/** The repository root, found from this file whether it runs from source (worker/) or dist/worker/. */
export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'native'))) return dir;
    dir = resolve(dir, '..');
  }
  throw new Error('cannot locate the flashslide package root');
}

export const ADDON_PATH = join(repoRoot(), 'native', 'build', 'Release', 'flashslide.node');

let cached: NativeAddon | Error | undefined;

/** The addon, or an Error explaining why it cannot be loaded (never throws). */
export function loadNativeAddon(): NativeAddon | Error {
  if (cached !== undefined) return cached;
  if (!existsSync(ADDON_PATH)) {
    cached = new Error(`the native addon is not built (${ADDON_PATH} is missing): run npm run build:native`);
    return cached;
  }
  try {
    cached = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
  } catch (err) {
    cached = new Error(`the native addon failed to load: ${err instanceof Error ? err.message : String(err)}; rebuild it with npm run build:native`);
  }
  return cached;
}

/**
 * The addon as `T` when it has every function in `names`, else null (no addon, or one built
 * before those functions existed): for kernels whose callers keep a JavaScript twin.
 */
export function addonFunctions<T>(names: readonly string[]): T | null {
  const addon = loadNativeAddon();
  if (addon instanceof Error) return null;
  const fns = addon as unknown as Record<string, unknown>;
  return names.every((n) => typeof fns[n] === 'function') ? (addon as unknown as T) : null;
}
