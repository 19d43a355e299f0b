/**
 * The inference engine as the pipeline sees it: load a timm-layout ViT checkpoint (safetensors +
 * a small JSON config) on a device, run batches of RGB regions, get patch-token embeddings.
 * The math lives in C++ (kernels/), reached through the native addon; this module picks the
 * device, finds the config, and turns engine failures into typed errors.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadNativeAddon, repoRoot, type NativeArch, type NativeEngine, type NativeEngineErrorCode } from '../native/addon.js';
import { DEMO_MODEL_FILES, writeDemoModel } from './demo-model.js';

export type DeviceRequest = 'auto' | 'cpu' | 'cuda';
export type DeviceName = 'cpu' | 'cuda';
export type ModelArch = NativeArch;

export type EngineErrorCode = NativeEngineErrorCode | 'unsupported_device' | 'engine_unavailable' | 'config_not_found';

export class EngineError extends Error {
  constructor(
    readonly code: EngineErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

export interface LoadModelOptions {
  /** JSON config; default: the weights path with .safetensors replaced by .json. */
  config?: string | undefined;
  device?: DeviceRequest | undefined;
}

export interface EmbeddingBatch {
  /** [batch, tokens, dim] row-major float32: prefix tokens (cls, registers) first, then patches row by row. */
  readonly data: Float32Array;
  readonly batch: number;
  readonly tokens: number;
  readonly dim: number;
  /** Patch grid of each image and the count of prefix tokens before it. */
  readonly gridH: number;
  readonly gridW: number;
  readonly prefixTokens: number;
  readonly millis: number;
}

/** Selected token rows of a forward, in BF16: what the pipeline stores. */
export interface SelectedEmbeddings {
  /** BF16 bits [rows, dim]; row i is output token row rows[i] of the batch (image b's token t is b * tokens + t). */
  readonly data: Uint16Array;
  /** [dim] column sums of the decoded BF16 rows in float64, rows added in order (RowSums gives the same bits). */
  readonly sums: Float64Array;
  readonly rows: number;
  readonly batch: number;
  readonly tokens: number;
  readonly dim: number;
  readonly prefixTokens: number;
  readonly millis: number;
}

/** The name `--model demo` resolves to; the weights are generated on first use (see demo-model.ts). */
export const DEMO_MODEL = 'demo';

function wrap(err: unknown): EngineError {
  if (err instanceof EngineError) return err;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? (e.code as EngineErrorCode) : 'internal';
  return new EngineError(code, typeof e.message === 'string' ? e.message : String(err));
}

export function availableDevices(): DeviceName[] {
  const addon = loadNativeAddon();
  return addon instanceof Error ? [] : (addon.engineDevices.filter((d) => d === 'cpu' || d === 'cuda') as DeviceName[]);
}

/** 'auto' is CUDA when the build has it, else CPU. */
export function resolveDevice(request: DeviceRequest): DeviceName {
  const devices = availableDevices();
  if (request === 'auto') return devices.includes('cuda') ? 'cuda' : 'cpu';
  if (!devices.includes(request)) {
    throw new EngineError(
      'unsupported_device',
      request === 'cuda'
        ? 'this build has no CUDA backend (it is built only where nvcc and cuBLAS exist); use --device cpu'
        : `device ${request} is not available`,
    );
  }
  return request;
}

/** Weights and config paths for a model argument: a .safetensors path, or `demo`. */
export async function resolveModelFiles(model: string, config?: string): Promise<{ weights: string; config: string }> {
  if (model === DEMO_MODEL) {
    const dir = join(repoRoot(), 'models');
    const files = { weights: join(dir, DEMO_MODEL_FILES.weights), config: join(dir, DEMO_MODEL_FILES.config) };
    if (!existsSync(files.weights) || !existsSync(files.config)) await writeDemoModel(dir);
    return files;
  }
  const cfg = config ?? model.replace(/\.safetensors$/i, '') + '.json';
  if (!existsSync(cfg)) {
    throw new EngineError(
      'config_not_found',
      `${cfg}: no model config; write one beside the weights (or pass --config) with at least {"num_heads": N} ` +
        '(and patch_size, mlp_act, no_embed_class, mean, std when they differ from the defaults; see README "Using real models")',
    );
  }
  return { weights: model, config: cfg };
}

export class VitEngine {
  private constructor(
    private readonly native: NativeEngine,
    readonly weightsPath: string,
    readonly configPath: string,
    readonly arch: ModelArch,
  ) {}

  static async load(model: string, options: LoadModelOptions = {}): Promise<VitEngine> {
    const addon = loadNativeAddon();
    if (addon instanceof Error) throw new EngineError('engine_unavailable', addon.message);
    const device = resolveDevice(options.device ?? 'auto');
    const files = await resolveModelFiles(model, options.config);
    try {
      const native = await addon.loadEngine(files.weights, files.config, device);
      return new VitEngine(native, files.weights, files.config, native.arch());
    } catch (err) {
      throw wrap(err);
    }
  }

  get device(): DeviceName {
    return this.native.device;
  }

  get patchSize(): number {
    return this.arch.patchSize;
  }

  tokens(height: number, width: number): number {
    try {
      return this.native.tokens(height, width);
    } catch (err) {
      throw wrap(err);
    }
  }

  /**
   * Runs `batch` RGB images of height x width (HWC uint8, concatenated) through the model. The
   * buffer is read in place while the promise is pending: do not modify it until it settles.
   */
  async forward(rgb: Buffer, batch: number, height: number, width: number): Promise<EmbeddingBatch> {
    try {
      const r = await this.native.forward(rgb, batch, height, width);
      return { ...r, prefixTokens: this.arch.numPrefixTokens };
    } catch (err) {
      throw wrap(err);
    }
  }

  /**
   * Like forward(), but returns only the given token rows, as BF16 (the same bits as converting
   * forward()'s output). On the GPU the selection and conversion happen there, so a batch of
   * tissue regions moves a fraction of the bytes. A row outside [0, batch * tokens) is a
   * bad_input EngineError.
   */
  async forwardRowsBf16(rgb: Buffer, batch: number, height: number, width: number, rows: Int32Array): Promise<SelectedEmbeddings> {
    try {
      const r = await this.native.forwardRowsBf16(rgb, batch, height, width, rows);
      return { data: r.data, sums: r.sums, rows: r.rows, batch: r.batch, tokens: r.tokens, dim: r.dim, prefixTokens: this.arch.numPrefixTokens, millis: r.millis };
    } catch (err) {
      throw wrap(err);
    }
  }

  /**
   * forwardRowsBf16 with token dropping: image b enters the model with only the patches
   * patches[offsets[b] .. offsets[b+1]) (grid indices, increasing), each at its true position;
   * the others are not computed and not attended to. `rows` index the kept output: image b's
   * prefix tokens, then its kept patches in list order, images one after another. `tokens` in
   * the result is the longest image's token count (the GPU pads the batch to it).
   */
  async forwardKeptRowsBf16(rgb: Buffer, batch: number, height: number, width: number, offsets: Int32Array, patches: Int32Array, rows: Int32Array): Promise<SelectedEmbeddings> {
    try {
      const r = await this.native.forwardKeptRowsBf16(rgb, batch, height, width, offsets, patches, rows);
      return { data: r.data, sums: r.sums, rows: r.rows, batch: r.batch, tokens: r.tokens, dim: r.dim, prefixTokens: this.arch.numPrefixTokens, millis: r.millis };
    } catch (err) {
      throw wrap(err);
    }
  }
}
