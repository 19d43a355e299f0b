/**
 * The addon's bulk typed-array kernels (native/src/array_binding.cc), when this build has them.
 * Every caller keeps a JavaScript twin that gives the same bits, so a checkout without the addon
 * (or with one built before these kernels existed) still works, only slower.
 */
import { addonFunctions } from './addon.js';

export interface ArrayKernels {
  bf16ToFloat32(src: Uint16Array, dst: Float32Array): void;
  float32ToBf16(src: Float32Array, dst: Uint16Array): void;
  /** sums[j] += data[i, j] for i in 0..count-1, in order (float64). */
  addColumnSums(data: Float32Array, count: number, dim: number, sums: Float64Array): void;
  /** Index of the first NaN or infinity, or -1. */
  firstNonFinite(data: Float32Array): number;
}

const NAMES = ['bf16ToFloat32', 'float32ToBf16', 'addColumnSums', 'firstNonFinite'] as const;

let kernels: ArrayKernels | null | undefined;

export function arrayKernels(): ArrayKernels | null {
  if (kernels === undefined) kernels = addonFunctions<ArrayKernels>(NAMES);
  return kernels;
}
