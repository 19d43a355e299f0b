/**
 * BF16 <-> float32 for whole arrays: natively (all cores, memory speed) when the addon has the
 * kernels, else in JavaScript (one value at a time, 0.3-0.7 G values/s). Both give identical bits:
 * decoding is exact (bf16 is the top half of a float32); encoding rounds to nearest even and
 * keeps NaN a NaN. The part files of a 1024-dim model are gigabytes, so this is on the hot path.
 */
import { arrayKernels } from '../native/array-kernels.js';

export interface CodecOptions {
  /** false: the JavaScript twin even when the addon is there (tests compare the two). */
  native?: boolean;
}

const native = (options: CodecOptions) => (options.native === false ? null : arrayKernels());

function toBf16(x: number): number {
  // x: the float32's bits as an unsigned integer.
  return (x & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** dst[i] = src[i] widened to float32, for i < src.length. */
export function decodeBf16(src: Uint16Array, dst: Float32Array, options: CodecOptions = {}): void {
  if (dst.length < src.length) throw new RangeError(`decodeBf16: dst holds ${dst.length} values, src has ${src.length}`);
  const k = native(options);
  if (k !== null) return k.bf16ToFloat32(src, dst);
  const d = new Uint32Array(dst.buffer, dst.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) d[i] = (src[i] as number) << 16;
}

/** dst[i] = src[i] rounded to bf16 (nearest even; NaN -> 0x7fc0), for i < src.length. */
export function encodeBf16(src: Float32Array, dst: Uint16Array, options: CodecOptions = {}): void {
  if (dst.length < src.length) throw new RangeError(`encodeBf16: dst holds ${dst.length} values, src has ${src.length}`);
  const k = native(options);
  if (k !== null) return k.float32ToBf16(src, dst);
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) dst[i] = toBf16(u[i] as number);
}
