/**
 * Where things are in a (valid) TIFF's bytes, for targeted mutations: every directory entry with
 * the position of its fields and value, the next-directory pointers, and each image's blocks.
 * Classic and BigTIFF, either byte order. Tolerant: stops at the first thing out of bounds.
 */

export interface TiffEntry {
  readonly tag: number;
  readonly type: number;
  readonly count: number;
  /** Byte position of the entry (its tag field). */
  readonly at: number;
  /** Byte position of the value: inside the entry when it fits, else where the entry points. */
  readonly valueAt: number;
  /** Whether the value sits inside the entry. */
  readonly inline: boolean;
}

export interface TiffDir {
  readonly at: number;
  readonly entries: readonly TiffEntry[];
  /** Byte position of this directory's next-directory pointer. */
  readonly nextAt: number;
}

export interface TiffMap {
  readonly le: boolean;
  readonly big: boolean;
  readonly dirs: readonly TiffDir[];
}

export const TYPE_SIZE: Readonly<Record<number, number>> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4, 16: 8, 17: 8, 18: 8 };

export class TiffBytes {
  constructor(
    readonly buf: Buffer,
    readonly le: boolean,
    readonly big: boolean,
  ) {}

  u16(o: number): number {
    return this.le ? this.buf.readUInt16LE(o) : this.buf.readUInt16BE(o);
  }
  u32(o: number): number {
    return this.le ? this.buf.readUInt32LE(o) : this.buf.readUInt32BE(o);
  }
  u64(o: number): number {
    const v = this.le ? this.buf.readBigUInt64LE(o) : this.buf.readBigUInt64BE(o);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
  }
  offset(o: number): number {
    return this.big ? this.u64(o) : this.u32(o);
  }
  setU16(o: number, v: number): void {
    if (this.le) this.buf.writeUInt16LE(v & 0xffff, o);
    else this.buf.writeUInt16BE(v & 0xffff, o);
  }
  setU32(o: number, v: number): void {
    if (this.le) this.buf.writeUInt32LE(v >>> 0, o);
    else this.buf.writeUInt32BE(v >>> 0, o);
  }
  setU64(o: number, v: number | bigint): void {
    const b = BigInt.asUintN(64, BigInt(v));
    if (this.le) this.buf.writeBigUInt64LE(b, o);
    else this.buf.writeBigUInt64BE(b, o);
  }
  setOffset(o: number, v: number): void {
    if (this.big) this.setU64(o, v);
    else this.setU32(o, v);
  }

  /** Value i of an entry as a number (SHORT, LONG, LONG8; 0 for other types). */
  value(e: TiffEntry, i: number): number {
    const size = TYPE_SIZE[e.type] ?? 0;
    const o = e.valueAt + i * size;
    if (o + size > this.buf.length) return 0;
    if (size === 2) return this.u16(o);
    if (size === 4 && (e.type === 4 || e.type === 9 || e.type === 13)) return this.u32(o);
    if (size === 8 && e.type >= 16) return this.u64(o);
    return 0;
  }

  /** Sets value i of a SHORT/LONG/LONG8 entry (truncating to the type's width). */
  setValue(e: TiffEntry, i: number, v: number): void {
    const size = TYPE_SIZE[e.type] ?? 0;
    const o = e.valueAt + i * size;
    if (o + size > this.buf.length) return;
    if (size === 2) this.setU16(o, v);
    else if (size === 4) this.setU32(o, v);
    else if (size === 8) this.setU64(o, Math.max(0, Math.floor(v)));
  }
}

export function tiffBytes(buf: Buffer): TiffBytes | null {
  if (buf.length < 16) return null;
  const le = buf[0] === 0x49 && buf[1] === 0x49;
  const be = buf[0] === 0x4d && buf[1] === 0x4d;
  if (!le && !be) return null;
  const version = le ? buf.readUInt16LE(2) : buf.readUInt16BE(2);
  if (version !== 42 && version !== 43) return null;
  return new TiffBytes(buf, le, version === 43);
}

function readDir(t: TiffBytes, at: number): TiffDir | null {
  const countSize = t.big ? 8 : 2;
  const entrySize = t.big ? 20 : 12;
  if (at <= 0 || at + countSize > t.buf.length) return null;
  const n = t.big ? t.u64(at) : t.u16(at);
  if (n === 0 || n > 4096 || at + countSize + n * entrySize + (t.big ? 8 : 4) > t.buf.length) return null;
  const entries: TiffEntry[] = [];
  for (let i = 0; i < n; i++) {
    const e = at + countSize + i * entrySize;
    const type = t.u16(e + 2);
    const count = t.big ? t.u64(e + 4) : t.u32(e + 4);
    const field = e + (t.big ? 12 : 8);
    const bytes = (TYPE_SIZE[type] ?? 1) * count;
    const inline = bytes <= (t.big ? 8 : 4);
    entries.push({ tag: t.u16(e), type, count, at: e, valueAt: inline ? field : t.offset(field), inline });
  }
  return { at, entries, nextAt: at + countSize + n * entrySize };
}

/** The main directory chain (at most 64) and the SubIFDs of each. */
export function mapTiff(buf: Buffer): TiffMap | null {
  const t = tiffBytes(buf);
  if (t === null) return null;
  const dirs: TiffDir[] = [];
  const seen = new Set<number>();
  let at = t.big ? t.u64(8) : t.u32(4);
  while (at !== 0 && !seen.has(at) && dirs.length < 64) {
    seen.add(at);
    const d = readDir(t, at);
    if (d === null) break;
    dirs.push(d);
    const sub = d.entries.find((e) => e.tag === 330);
    if (sub !== undefined) {
      for (let i = 0; i < Math.min(sub.count, 16); i++) {
        const s = readDir(t, t.value(sub, i));
        if (s !== null && !seen.has(s.at)) {
          seen.add(s.at);
          dirs.push(s);
        }
      }
    }
    at = t.offset(d.nextAt);
  }
  return { le: t.le, big: t.big, dirs };
}

/** The entries holding a directory's block offsets and byte counts (tiles, else strips). */
export function blocksOf(d: TiffDir): { offsets: TiffEntry; counts: TiffEntry } | null {
  const offsets = d.entries.find((e) => e.tag === 324) ?? d.entries.find((e) => e.tag === 273);
  const counts = d.entries.find((e) => e.tag === 325) ?? d.entries.find((e) => e.tag === 279);
  if (offsets === undefined || counts === undefined || offsets.count === 0) return null;
  return { offsets, counts };
}

/** Where an entry's count and value/offset fields are. */
export function entryFields(t: TiffBytes, e: TiffEntry): { countAt: number; fieldAt: number } {
  return { countAt: e.at + 4, fieldAt: e.at + (t.big ? 12 : 8) };
}
