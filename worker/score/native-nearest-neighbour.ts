/**
 * Nearest-neighbour search in the addon: float32 GEMM blocks plus a row minimum, on the CPU
 * (OpenBLAS, all cores) or on the GPU (cuBLASLt, fp32, never TF32): kernels/cpu/knn_cpu.h and
 * kernels/cuda/knn_cuda.h. The bank is copied into the addon on the first search and stays
 * there (on the GPU: in device memory) until close().
 *
 * Accuracy: both sides are centred on the bank's mean before the float32 products, and |q|^2
 * is added in float64; the distances agree with the float64 JavaScript search to ~1e-6
 * relative (test/score/native-nearest-neighbour.test.ts).
 */
import type { NativeNearestIndex, NativeScoreKernels } from '../native/addon.js';
import { availableDevices, type DeviceName, type DeviceRequest } from '../infer/vit-engine.js';
import { ScoreInputError } from './errors.js';
import { JsNearestNeighbour, type NearestNeighbourSearch, type VectorSet } from './nearest-neighbour.js';
import { nativeScoreKernels } from './native-kernels.js';
import type { PatchEmbeddings } from './types.js';

export class NativeNearestNeighbour implements NearestNeighbourSearch {
  readonly name: string;
  private index: Promise<NativeNearestIndex> | null = null;

  constructor(
    private readonly bank: VectorSet,
    private readonly kernels: NativeScoreKernels,
    private readonly device: DeviceName,
  ) {
    if (bank.size < 1) throw new ScoreInputError('nearest-neighbour search needs a non-empty bank');
    if (bank.data.length !== bank.size * bank.dim) throw new ScoreInputError(`bank data has ${bank.data.length} values, expected ${bank.size} x ${bank.dim}`);
    this.name = `native-${device}`;
  }

  async nearest(queries: PatchEmbeddings): Promise<Float32Array> {
    if (queries.dim !== this.bank.dim) throw new ScoreInputError(`queries have dim ${queries.dim}, the bank has dim ${this.bank.dim}`);
    if (queries.count === 0) return new Float32Array(0);
    if (this.index === null) {
      this.index = this.kernels.createNearestIndex(this.bank.data, this.bank.size, this.bank.dim, this.device);
      // A failed build is not cached: the next call sees the real error again.
      this.index.catch(() => {
        this.index = null;
      });
    }
    const index = await this.index;
    const data = queries.data.length === queries.count * queries.dim ? queries.data : queries.data.subarray(0, queries.count * queries.dim);
    return index.search(data, queries.count);
  }

  /** Frees the addon's copy of the bank; a later search copies it again. */
  close(): void {
    const index = this.index;
    this.index = null;
    index?.then((i) => i.close()).catch(() => undefined);
  }
}

/**
 * Where an analysis run with `--device request` searches: on the GPU when it asked for cuda (or
 * auto) and this build has CUDA, else on the CPU. Unlike the engine, a missing GPU is not an
 * error here: in queue mode the aggregate job may run on another machine than the embed jobs,
 * and the distances are the same on either device (float32 products, float64 norms).
 */
export function nearestNeighbourDevice(request: DeviceRequest): DeviceName {
  return request !== 'cpu' && availableDevices().includes('cuda') ? 'cuda' : 'cpu';
}

/** The default search: native on `device` when the addon has the kernels, else the float64 JavaScript search. */
export function defaultNearestNeighbourSearch(bank: VectorSet, device: DeviceName, kernels: NativeScoreKernels | null = nativeScoreKernels()): NearestNeighbourSearch {
  return kernels === null ? new JsNearestNeighbour(bank) : new NativeNearestNeighbour(bank, kernels, device);
}
