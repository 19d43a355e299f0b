/**
 * NumPy .npy (format 1.0) for float32 arrays, so `np.load('heatmap.npy')` works with no
 * flashslide code on the reading side:
 *
 *   \x93NUMPY | major 1 | minor 0 | u16 LE header length | header | data
 *   header: a Python dict literal "{'descr': '<f4', 'fortran_order': False, 'shape': (R, C), }",
 *   padded with spaces and ended by '\n' so that magic + header is a multiple of 64 bytes.
 */
import { StoreArgumentError, StoreError } from './errors.js';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const PREAMBLE = MAGIC.length + 2 + 2;
const ALIGN = 64;

/** Python's repr of a tuple of ints: (), (n,), (a, b). */
function shapeTuple(shape: readonly number[]): string {
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

export function encodeNpyFloat32(data: Float32Array, shape: number[]): Buffer {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) throw new StoreArgumentError(`npy: shape ${JSON.stringify(shape)} must be non-negative integers`);
  const numel = shape.reduce((a, d) => a * d, 1);
  if (numel !== data.length) throw new StoreArgumentError(`npy: shape ${JSON.stringify(shape)} has ${numel} elements, data has ${data.length}`);
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeTuple(shape)}, }`;
  const unpadded = PREAMBLE + dict.length + 1;
  const headerLen = dict.length + ((ALIGN - (unpadded % ALIGN)) % ALIGN) + 1;
  if (headerLen > 0xffff) throw new StoreArgumentError(`npy: header of ${headerLen} bytes does not fit format 1.0`);
  const out = Buffer.alloc(PREAMBLE + headerLen + data.byteLength);
  MAGIC.copy(out, 0);
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(headerLen, 8);
  out.write(dict.padEnd(headerLen - 1, ' ') + '\n', PREAMBLE, 'latin1');
  // '<f4' is little-endian, as is every host we run on; the bytes go out as they are in memory.
  Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(out, PREAMBLE + headerLen);
  return out;
}

export interface NpyFloat32 {
  data: Float32Array;
  shape: number[];
}

/** Reads what encodeNpyFloat32 writes (and any C-order '<f4' .npy of format 1.0, 2.0 or 3.0). */
export function decodeNpyFloat32(bytes: Uint8Array): NpyFloat32 {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (reason: string): never => {
    throw new StoreError('corrupt', `npy: ${reason}`);
  };
  if (buf.length < PREAMBLE || !buf.subarray(0, 6).equals(MAGIC)) fail('not a .npy file (bad magic)');
  const major = buf[6] as number;
  if (major < 1 || major > 3) fail(`unsupported format version ${major}.${buf[7]}`);
  const lenBytes = major === 1 ? 2 : 4;
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = 8 + lenBytes;
  if (start + headerLen > buf.length) fail('truncated header');
  const header = buf.subarray(start, start + headerLen).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr':\s*'([^']*)'/.exec(header)?.[1];
  if (descr !== '<f4') fail(`dtype ${descr ?? '?'} is not little-endian float32 ('<f4')`);
  if (!/'fortran_order':\s*False/.test(header)) fail('Fortran-order arrays are not supported');
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? fail('header has no shape');
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) fail(`bad shape (${shapeText})`);
  const numel = shape.reduce((a, d) => a * d, 1);
  const dataStart = start + headerLen;
  if (buf.length - dataStart !== numel * 4) fail(`shape (${shapeText}) needs ${numel * 4} data bytes, the file has ${buf.length - dataStart}`);
  // Copy: the data need not be 4-byte aligned inside the caller's buffer.
  const data = new Float32Array(numel);
  new Uint8Array(data.buffer).set(buf.subarray(dataStart));
  return { data, shape };
}
