/**
 * The entropy check of a stored JPEG tile off the event loop (native/src/jpeg_check_binding.cc,
 * on libuv's thread pool), when this build has it. entropyDamage in worker/slide/jpeg-tile.ts is
 * the reference: the same walk, the same messages; a test compares the two on every tile of a
 * real slide and on thousands of damaged ones.
 */
import { entropyDamage } from '../slide/jpeg-tile.js';
import { addonFunctions } from './addon.js';

export interface JpegKernels {
  /**
   * entropyDamage on the thread pool. `maxPixels` is an integer in 0..2^53 (jpegEntropyDamage
   * below maps any number onto that). The bytes must stay unchanged until the promise settles.
   */
  jpegEntropyDamage(jpeg: Uint8Array, maxPixels: number): Promise<string | null>;
}

const NAMES = ['jpegEntropyDamage'] as const;

let kernels: JpegKernels | null | undefined;

/** The native kernel, or null (no addon, or one built before it existed). */
export function jpegKernels(): JpegKernels | null {
  if (kernels === undefined) kernels = addonFunctions<JpegKernels>(NAMES);
  return kernels;
}

/**
 * Damage libjpeg would warn about in a baseline JPEG's entropy-coded data, or null
 * (entropyDamage's contract), computed off the event loop when the addon has the kernel; else
 * the reference, on this thread.
 */
export async function jpegEntropyDamage(jpeg: Uint8Array, maxPixels = Number.POSITIVE_INFINITY): Promise<string | null> {
  const k = jpegKernels();
  if (k === null) return entropyDamage(jpeg, maxPixels);
  // A frame is at most 65535^2 px: anything from 2^53 up (or NaN) limits nothing, as in
  // entropyDamage's `width * height > maxPixels`; an integer frame size exceeds m iff it
  // exceeds floor(m).
  const limit = !(maxPixels < Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : maxPixels > 0 ? Math.floor(maxPixels) : 0;
  return k.jpegEntropyDamage(jpeg, limit);
}
