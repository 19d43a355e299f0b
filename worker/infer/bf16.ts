/**
 * BF16 <-> float32 for whole arrays: natively (all cores, memory speed) when the addon has the
 * codec, else in JavaScript (one value at a time, ~150-200 M values/s). Both give identical bits:
 * decoding is exact (bf16 is the top half of a float32); encoding rounds to nearest even and
 * keeps NaN a NaN. The part files of a 1024-dim model are gigabytes, so this is on the hot path.
 */
import { loadNativeAddon } from '../native/addon.js';

interface Bf16Codec {
  bf16ToFloat32(src: Uint16Array, dst: Float32Array): void;
  float32ToBf16(src: Float32Array, dst: Uint16Array): void;
}

let codec: Bf16Codec | null | undefined;

function nativeCodec(): Bf16Codec | null {
  if (codec === undefined) {
    const addon = loadNativeAddon();
    const c = addon instanceof Error ? null : (addon as Partial<Bf16Codec>);
    codec = c !== null && typeof c.bf16ToFloat32 === 'function' && typeof c.float32ToBf16 === 'function' ? (c as Bf16Codec) : null;
  }
  return codec;
}

/** dst[i] = src[i] widened to float32, for i < src.length. */
export function decodeBf16(src: Uint16Array, dst: Float32Array, options: { native?: boolean } = {}): void {
  if (dst.length < src.length) throw new RangeError(`decodeBf16: dst holds ${dst.length} values, src has ${src.length}`);
  const c = options.native === false ? null : nativeCodec();
  if (c !== null) return c.bf16ToFloat32(src, dst);
  const d = new Uint32Array(dst.buffer, dst.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) d[i] = (src[i] as number) << 16;
}

/** dst[i] = src[i] rounded to bf16 (nearest even; NaN -> 0x7fc0), for i < src.length. */
export function encodeBf16(src: Float32Array, dst: Uint16Array, options: { native?: boolean } = {}): void {
  if (dst.length < src.length) throw new RangeError(`encodeBf16: dst holds ${dst.length} values, src has ${src.length}`);
  const c = options.native === false ? null : nativeCodec();
  if (c !== null) return c.float32ToBf16(src, dst);
  const u = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = u[i] as number;
    dst[i] = (x & 0x7fffffff) > 0x7f800000 ? 0x7fc0 : ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
  }
}
