/**
 * safetensors reading and writing in TypeScript, for the files the Node side handles itself:
 * `model check` inputs/outputs, demo model weights, scoring heads and reference banks. The engine
 * reads model weights in C++ (kernels/engine/safetensors.cpp); both follow the same format:
 *
 *   u64 LE header length N | N bytes of JSON header | tensor data
 *   header: { name: { dtype, shape, data_offsets: [begin, end) relative to the data }, "__metadata__": {..} }
 *
 * Validation mirrors the reference implementation: offsets contiguous without holes, sizes equal
 * to numel x dtype size, the data ends exactly at the end of the file.
 */
import { open, readFile, type FileHandle } from 'node:fs/promises';
import { writeFileAtomic, type AtomicWriteOptions } from '../util/atomic-write.js';
import { decodeBf16, encodeBf16 } from './bf16.js';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'U8' | 'I8' | 'I16' | 'I32' | 'I64' | 'U16' | 'U32' | 'U64' | 'BOOL';

const DTYPE_SIZE: Record<SafetensorsDtype, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, U8: 1, I8: 1, I16: 2, I32: 4, I64: 8, U16: 2, U32: 4, U64: 8, BOOL: 1,
};

const MAX_HEADER = 100_000_000;

export class SafetensorsError extends Error {
  constructor(
    readonly path: string,
    reason: string,
  ) {
    super(`${path}: ${reason}`);
    this.name = 'SafetensorsError';
  }
}

export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Byte range in the file (absolute). */
  readonly begin: number;
  readonly end: number;
}

/** The header length field, checked against the file size. */
function headerLength(path: string, raw: bigint, fileSize: number): number {
  const n = Number(raw);
  if (n < 2 || n > MAX_HEADER) throw new SafetensorsError(path, `not a safetensors file: header length ${n} is implausible`);
  if (8 + n > fileSize) throw new SafetensorsError(path, `truncated: the header needs ${n} bytes but the file has ${fileSize - 8} after the length`);
  return n;
}

/** Parses and validates the JSON header of a file of `fileSize` bytes whose data starts at `dataStart`. */
function parseHeader(path: string, text: string, dataStart: number, fileSize: number): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  const fail = (reason: string): never => {
    throw new SafetensorsError(path, reason);
  };
  if (!text.startsWith('{')) fail('not a safetensors file: the header is not a JSON object');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    fail(`corrupt header JSON: ${(err as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('the header is not a JSON object');
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = raw as Record<string, string>;
      continue;
    }
    const t = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = t.dtype as SafetensorsDtype;
    const size = DTYPE_SIZE[dtype];
    if (size === undefined) fail(`tensor "${name}" has unsupported dtype ${String(t.dtype)}`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) fail(`tensor "${name}" has an invalid shape`);
    const offsets = t.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
      fail(`tensor "${name}" has invalid data_offsets`);
    }
    const [b, e] = offsets as [number, number];
    const shape = t.shape as number[];
    const numel = shape.reduce((a, d) => a * d, 1);
    if (e - b !== numel * size) fail(`tensor "${name}" ${dtype}${JSON.stringify(shape)} needs ${numel * size} bytes but has ${e - b}`);
    tensors.set(name, { name, dtype, shape, begin: dataStart + b, end: dataStart + e });
  }
  const sorted = [...tensors.values()].sort((a, b) => a.begin - b.begin);
  let cursor = dataStart;
  for (const t of sorted) {
    if (t.begin !== cursor) fail(`tensor "${t.name}" starts at data byte ${t.begin - dataStart}, expected ${cursor - dataStart} (holes or overlaps)`);
    cursor = t.end;
  }
  if (cursor > fileSize) fail(`truncated: tensor data ends at byte ${cursor} but the file has ${fileSize} (re-download or re-convert it)`);
  if (cursor !== fileSize) fail(`${fileSize - cursor} unexpected bytes after the last tensor`);
  return { tensors, metadata };
}

/** The error for a file that cannot be opened or read at all. */
function unreadable(path: string, err: unknown): SafetensorsError {
  const code = (err as NodeJS.ErrnoException).code;
  return new SafetensorsError(path, code === 'ENOENT' ? 'no such file' : `cannot read: ${String(err)}`);
}

function missingTensor(path: string, tensors: ReadonlyMap<string, TensorInfo>, name: string): SafetensorsError {
  return new SafetensorsError(path, `missing tensor "${name}" (has: ${[...tensors.keys()].slice(0, 12).join(', ')}${tensors.size > 12 ? ', ...' : ''})`);
}

/**
 * A safetensors file read piece by piece: the header at open, then only the tensors or rows asked
 * for. The aggregate stage reads a few thousand sampled patches out of gigabytes of part files
 * this way. Same validation as SafetensorsFile. close() when done.
 */
export class SafetensorsReader {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  static async open(path: string): Promise<SafetensorsReader> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw unreadable(path, err);
    }
    try {
      const { size } = await fh.stat();
      if (size < 8) throw new SafetensorsError(path, `not a safetensors file: only ${size} bytes`);
      const len = Buffer.alloc(8);
      await fh.read(len, 0, 8, 0);
      const n = headerLength(path, len.readBigUInt64LE(0), size);
      const text = Buffer.alloc(n);
      await fh.read(text, 0, n, 8);
      const { tensors, metadata } = parseHeader(path, text.toString('utf8'), 8 + n, size);
      return new SafetensorsReader(path, fh, tensors, metadata);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (t === undefined) throw missingTensor(this.path, this.tensors, name);
    return t;
  }

  /** A whole tensor's bytes. */
  async read(name: string): Promise<Buffer> {
    const t = this.info(name);
    const out = Buffer.alloc(t.end - t.begin);
    await this.fh.read(out, 0, out.length, t.begin);
    return out;
  }

  /** An I32 tensor. */
  async int32(name: string): Promise<Int32Array> {
    const t = this.info(name);
    if (t.dtype !== 'I32') throw new SafetensorsError(this.path, `tensor "${name}" is ${t.dtype}, expected I32`);
    const raw = await this.read(name);
    return new Int32Array(raw.buffer, raw.byteOffset, raw.length / 4);
  }

  /** An F64 tensor. */
  async float64(name: string): Promise<Float64Array> {
    const t = this.info(name);
    if (t.dtype !== 'F64') throw new SafetensorsError(this.path, `tensor "${name}" is ${t.dtype}, expected F64`);
    const raw = await this.read(name);
    return new Float64Array(raw.buffer, raw.byteOffset, raw.length / 8);
  }

  /**
   * The raw bytes of rows `rows` of a 2-D tensor, concatenated in that order. Rows next to each
   * other on disk are read together; the reads run concurrently.
   */
  async readRows(name: string, rows: ArrayLike<number>): Promise<Buffer> {
    const t = this.info(name);
    if (t.shape.length !== 2) throw new SafetensorsError(this.path, `tensor "${name}" is ${JSON.stringify(t.shape)}, not 2-D`);
    const [total, width] = t.shape as [number, number];
    const rowBytes = width * DTYPE_SIZE[t.dtype];
    const out = Buffer.alloc(rows.length * rowBytes);
    const reads: Promise<unknown>[] = [];
    for (let i = 0; i < rows.length; ) {
      const first = rows[i] as number;
      if (!(Number.isInteger(first) && first >= 0 && first < total)) throw new RangeError(`readRows: row ${first} of tensor "${name}" is out of range (0..${total - 1})`);
      let run = 1;
      while (i + run < rows.length && rows[i + run] === first + run) run++;
      reads.push(this.fh.read(out, i * rowBytes, run * rowBytes, t.begin + first * rowBytes));
      i += run;
    }
    await Promise.all(reads);
    return out;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private readonly bytes: Buffer,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  static async read(path: string): Promise<SafetensorsFile> {
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (err) {
      throw unreadable(path, err);
    }
    return SafetensorsFile.parse(path, bytes);
  }

  static parse(path: string, bytes: Buffer): SafetensorsFile {
    if (bytes.length < 8) throw new SafetensorsError(path, `not a safetensors file: only ${bytes.length} bytes`);
    const n = headerLength(path, bytes.readBigUInt64LE(0), bytes.length);
    const { tensors, metadata } = parseHeader(path, bytes.subarray(8, 8 + n).toString('utf8'), 8 + n, bytes.length);
    return new SafetensorsFile(path, bytes, tensors, metadata);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (t === undefined) throw missingTensor(this.path, this.tensors, name);
    return t;
  }

  /** The raw bytes of a tensor (a view into the file buffer). */
  raw(name: string): Buffer {
    const t = this.info(name);
    return this.bytes.subarray(t.begin, t.end);
  }

  /** An I32 tensor as int32 (exact, unlike float32() above 2^24). */
  int32(name: string): Int32Array {
    const t = this.info(name);
    if (t.dtype !== 'I32') throw new SafetensorsError(this.path, `tensor "${name}" is ${t.dtype}, expected I32`);
    const raw = this.raw(name);
    const out = new Int32Array(raw.length / 4);
    new Uint8Array(out.buffer).set(raw);
    return out;
  }

  /** A tensor converted to float32 (F32, F16, BF16, F64 and integer dtypes). */
  float32(name: string): Float32Array {
    const t = this.info(name);
    const raw = this.raw(name);
    const n = raw.length / DTYPE_SIZE[t.dtype];
    const out = new Float32Array(n);
    switch (t.dtype) {
      case 'F32':
        // safetensors is little-endian, as is every host we build for.
        new Uint8Array(out.buffer).set(raw);
        break;
      case 'F64':
        for (let i = 0; i < n; i++) out[i] = raw.readDoubleLE(i * 8);
        break;
      case 'BF16':
        if (n > 0) this.float32Rows(name, n, [0], out);
        break;
      case 'F16':
        for (let i = 0; i < n; i++) out[i] = halfToFloat(raw.readUInt16LE(i * 2));
        break;
      case 'U8':
        for (let i = 0; i < n; i++) out[i] = raw[i] as number;
        break;
      default:
        throw new SafetensorsError(this.path, `tensor "${name}" has dtype ${t.dtype}, not a float type`);
    }
    return out;
  }

  /**
   * Rows of a tensor seen as [*, rowLength], converted to float32: row i of `out` is the tensor's row
   * rows[i], for i < rows.length. Decodes only those rows, so a reader that needs a few patches of
   * a part file does not convert all of them. F32 and BF16 (what the pipeline writes) take a typed-
   * array fast path when the data is aligned (it is in files we write: 8-byte aligned data).
   */
  float32Rows(name: string, rowLength: number, rows: ArrayLike<number>, out: Float32Array): void {
    const t = this.info(name);
    const raw = this.raw(name);
    const numel = raw.length / DTYPE_SIZE[t.dtype];
    if (!Number.isInteger(rowLength) || rowLength < 1 || numel % rowLength !== 0) {
      throw new SafetensorsError(this.path, `tensor "${name}" has ${numel} elements, not a whole number of rows of ${rowLength}`);
    }
    const total = numel / rowLength;
    if (out.length < rows.length * rowLength) throw new RangeError(`float32Rows: output holds ${out.length} values, ${rows.length} rows of ${rowLength} need ${rows.length * rowLength}`);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i] as number;
      if (!(Number.isInteger(r) && r >= 0 && r < total)) throw new RangeError(`float32Rows: row ${r} of tensor "${name}" is out of range (0..${total - 1})`);
    }
    if (t.dtype === 'BF16' && raw.byteOffset % 2 === 0) {
      // bfloat16 is the top half of a float32: widen by a 16-bit shift, no float arithmetic.
      const src = new Uint16Array(raw.buffer, raw.byteOffset, numel);
      for (let i = 0; i < rows.length; i++) {
        const s0 = (rows[i] as number) * rowLength;
        decodeBf16(src.subarray(s0, s0 + rowLength), out.subarray(i * rowLength, (i + 1) * rowLength));
      }
      return;
    }
    if (t.dtype === 'F32' && raw.byteOffset % 4 === 0) {
      const src = new Float32Array(raw.buffer, raw.byteOffset, numel);
      for (let i = 0; i < rows.length; i++) {
        const s0 = (rows[i] as number) * rowLength;
        out.set(src.subarray(s0, s0 + rowLength), i * rowLength);
      }
      return;
    }
    let read: (e: number) => number;
    switch (t.dtype) {
      case 'BF16':
        read = (e) => {
          bf16Bits[0] = raw.readUInt16LE(e * 2) << 16;
          return bf16Value[0] as number;
        };
        break;
      case 'F32':
        read = (e) => raw.readFloatLE(e * 4);
        break;
      case 'F16':
        read = (e) => halfToFloat(raw.readUInt16LE(e * 2));
        break;
      case 'F64':
        read = (e) => raw.readDoubleLE(e * 8);
        break;
      default:
        throw new SafetensorsError(this.path, `tensor "${name}" has dtype ${t.dtype}, not a float type`);
    }
    for (let i = 0; i < rows.length; i++) {
      const s0 = (rows[i] as number) * rowLength;
      for (let j = 0; j < rowLength; j++) out[i * rowLength + j] = read(s0 + j);
    }
  }
}

const bf16Bits = new Uint32Array(1);
const bf16Value = new Float32Array(bf16Bits.buffer);

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export interface TensorToWrite {
  /**
   * Float data may be stored as F32, F16 or BF16 (rounded to nearest even); U8 data as U8, I32 as
   * I32, Float64Array as F64; BF16 also takes already-encoded bits as a Uint16Array.
   */
  dtype: 'F32' | 'F16' | 'BF16' | 'F64' | 'U8' | 'I32';
  shape: number[];
  data: Float32Array | Float64Array | Uint8Array | Int32Array | Uint16Array;
}

function floatToBf16(f: Float32Array): Buffer {
  const out = Buffer.alloc(f.length * 2);
  // Buffer.alloc never hands out a pooled slice, so this view is aligned; hosts are little-endian.
  encodeBf16(f, new Uint16Array(out.buffer, out.byteOffset, f.length));
  return out;
}

function floatToHalf(f: Float32Array): Buffer {
  const out = Buffer.alloc(f.length * 2);
  for (let i = 0; i < f.length; i++) {
    const v = f[i] as number;
    const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
    const a = Math.abs(v);
    let h: number;
    if (Number.isNaN(v)) h = 0x7e00;
    else if (a >= 65520) h = sign | 0x7c00;
    else if (a < 2 ** -24 / 2) h = sign;
    else if (a < 2 ** -14) h = sign | Math.round(a / 2 ** -24);
    else {
      const e = Math.floor(Math.log2(a));
      let m = Math.round((a / 2 ** e - 1) * 1024);
      let ee = e;
      if (m === 1024) {
        m = 0;
        ee++;
      }
      h = ee + 15 >= 31 ? sign | 0x7c00 : sign | ((ee + 15) << 10) | m;
    }
    out.writeUInt16LE(h, i * 2);
  }
  return out;
}

function tensorBytes(name: string, t: TensorToWrite): Buffer {
  const bf16Bits = t.dtype === 'BF16' && t.data instanceof Uint16Array;
  const matches =
    t.dtype === 'U8' ? t.data instanceof Uint8Array : t.dtype === 'I32' ? t.data instanceof Int32Array : t.dtype === 'F64' ? t.data instanceof Float64Array : bf16Bits || t.data instanceof Float32Array;
  if (!matches) throw new Error(`tensor "${name}": dtype ${t.dtype} does not match its data`);
  if (bf16Bits) return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  if (t.dtype === 'BF16') return floatToBf16(t.data as Float32Array);
  if (t.dtype === 'F16') return floatToHalf(t.data as Float32Array);
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** Serialises tensors into safetensors bytes, 8-byte aligned data as the format recommends. */
export function encodeSafetensors(tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}): Buffer {
  return Buffer.concat(encodeSafetensorsChunks(tensors, metadata));
}

/** The same bytes as encodeSafetensors, as the pieces to write one after another (no big copy). */
export function encodeSafetensorsChunks(tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}): Buffer[] {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header['__metadata__'] = metadata;
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const numel = t.shape.reduce((a, d) => a * d, 1);
    if (numel !== t.data.length) throw new Error(`tensor "${name}": shape ${JSON.stringify(t.shape)} has ${numel} elements, data has ${t.data.length}`);
    const bytes = tensorBytes(name, t);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return [len, Buffer.from(json, 'utf8'), ...chunks];
}

export async function writeSafetensors(path: string, tensors: Record<string, TensorToWrite>, metadata: Record<string, string> = {}, options: AtomicWriteOptions = {}): Promise<void> {
  await writeFileAtomic(path, encodeSafetensorsChunks(tensors, metadata), options);
}

/** The `__metadata__` of a safetensors file, reading only its header (not the tensor data). */
export async function readSafetensorsMetadata(path: string): Promise<Record<string, string>> {
  const reader = await SafetensorsReader.open(path);
  await reader.close();
  return { ...reader.metadata };
}
