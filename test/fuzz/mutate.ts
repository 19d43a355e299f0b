/**
 * Deterministic mutations of slide files. Blind ones (bit flips, overwritten runs, truncation)
 * reach anything; targeted ones aim at what a slide reader trusts: TIFF directory fields (sizes,
 * offsets, byte counts, tile sizes, codec, photometric, bits), the directory chain, tables that
 * alias blocks, JPEG markers inside stored tiles, and the Aperio ImageDescription (mpp, AppMag).
 * Each returns a short label saying what it did, kept with a failing mutant.
 */
import { Rng } from './rng.js';
import { TYPE_SIZE, blocksOf, entryFields, mapTiff, tiffBytes, type TiffBytes, type TiffDir, type TiffEntry, type TiffMap } from './tiff-entries.js';

export interface Mutant {
  readonly bytes: Buffer;
  /** What was done, e.g. "tag 322[0] 256->0 (dir 0)". */
  readonly ops: readonly string[];
}

type Op = (buf: Buffer, rng: Rng, map: TiffMap | null) => { buf: Buffer; label: string } | null;

const hex = (v: number): string => `0x${v.toString(16)}`;

/** Values worth trying per tag, beyond interesting32(). */
const TAG_VALUES: Readonly<Record<number, readonly number[]>> = {
  254: [0, 1, 2, 4, 9, 0xffffffff],
  256: [0, 1, 2, 15, 65535, 65536, 1 << 24, (1 << 24) + 1, 0x7fffffff, 0xffffffff],
  257: [0, 1, 2, 15, 65535, 65536, 1 << 24, (1 << 24) + 1, 0x7fffffff, 0xffffffff],
  258: [0, 1, 2, 4, 7, 8, 12, 16, 32, 64, 65535],
  259: [0, 1, 2, 5, 6, 7, 8, 32773, 32946, 33003, 33005, 34712, 34887, 34925, 50000, 50001, 50002, 65535],
  262: [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 32844, 32845, 34892, 65535],
  273: [0, 1, 8, 0x7fffffff, 0x80000000, 0xffffffff],
  277: [0, 1, 2, 3, 4, 5, 255, 65535],
  278: [0, 1, 2, 0x7fffffff, 0xffffffff],
  279: [0, 1, 2, 0x7fffffff, 0xffffffff],
  284: [0, 1, 2, 3, 65535],
  296: [0, 1, 2, 3, 4, 65535],
  322: [0, 1, 8, 15, 16, 17, 240, 256, 4096, 65535, 65536, 0x80000000, 0xffffffff],
  323: [0, 1, 8, 15, 16, 17, 240, 256, 4096, 65535, 65536, 0x80000000, 0xffffffff],
  324: [0, 1, 8, 0x7fffffff, 0x80000000, 0xffffffff],
  325: [0, 1, 2, 0x7fffffff, 0xffffffff],
  330: [0, 1, 8, 0xffffffff],
  530: [0, 1, 2, 3, 4, 8, 65535],
};

const TARGET_TAGS = Object.keys(TAG_VALUES).map(Number);

function anyEntry(rng: Rng, map: TiffMap | null, prefer: readonly number[] | null): { dir: TiffDir; e: TiffEntry } | null {
  if (map === null || map.dirs.length === 0) return null;
  for (let attempt = 0; attempt < 8; attempt++) {
    const dir = rng.pick(map.dirs);
    const pool = prefer === null ? dir.entries : dir.entries.filter((e) => prefer.includes(e.tag));
    if (pool.length > 0) return { dir, e: rng.pick(pool) };
  }
  return null;
}

const dirIndex = (map: TiffMap, dir: TiffDir): number => map.dirs.indexOf(dir);

/** A new value for value `i` of `e`: the tag's own list, "interesting" numbers, or a nudge of the old one. */
function newValue(rng: Rng, t: TiffBytes, e: TiffEntry, i: number): number {
  const old = t.value(e, i);
  const r = rng.int(10);
  if (r < 5) return rng.pick(TAG_VALUES[e.tag] ?? [0, 1, 0xffffffff]);
  if (r < 7) return rng.interesting32();
  if (r === 7) return old * 2;
  if (r === 8) return old + rng.pick([1, -1, 16, -16]);
  return Math.floor(old / rng.pick([2, 3, 16]));
}

const opBitFlips: Op = (buf, rng, map) => {
  const n = rng.range(1, 24);
  // Half of the time inside the directories, where a flip changes structure, not a pixel.
  const dirs = map?.dirs ?? [];
  const inDirs = dirs.length > 0 && rng.chance(0.5);
  for (let k = 0; k < n; k++) {
    let at: number;
    if (inDirs) {
      const d = rng.pick(dirs);
      at = d.at + rng.int(Math.max(1, d.nextAt + 4 - d.at));
    } else {
      at = rng.int(buf.length);
    }
    if (at < buf.length) buf[at] = (buf[at] as number) ^ (1 << rng.int(8));
  }
  return { buf, label: `${n} bit flips${inDirs ? ' in directories' : ''}` };
};

const opByteRun: Op = (buf, rng) => {
  const at = rng.int(buf.length);
  const len = Math.min(buf.length - at, rng.pick([1, 2, 4, 16, 64, 512, 4096, 65536]));
  const kind = rng.pick(['zero', 'ones', 'random', 'repeat'] as const);
  for (let i = 0; i < len; i++) {
    buf[at + i] = kind === 'zero' ? 0 : kind === 'ones' ? 0xff : kind === 'random' ? rng.int(256) : (buf[at] as number);
  }
  return { buf, label: `${len} bytes at ${at} overwritten (${kind})` };
};

const opTruncate: Op = (buf, rng) => {
  const r = rng.int(4);
  const at = r === 0 ? rng.int(Math.min(buf.length, 4096)) : r === 1 ? buf.length - 1 - rng.int(Math.min(buf.length - 1, 4096)) : rng.int(buf.length);
  return { buf: buf.subarray(0, at), label: `truncated at ${at} of ${buf.length}` };
};

const opTagValue: Op = (buf, rng, map) => {
  const t = tiffBytes(buf);
  const hit = anyEntry(rng, map, rng.chance(0.85) ? TARGET_TAGS : null);
  if (t === null || map === null || hit === null) return null;
  const { dir, e } = hit;
  if (!(TYPE_SIZE[e.type] === 2 || TYPE_SIZE[e.type] === 4 || (TYPE_SIZE[e.type] === 8 && e.type >= 16)) || e.count === 0) return null;
  if (e.count > 1 && rng.chance(0.3)) {
    const v = newValue(rng, t, e, 0);
    for (let i = 0; i < Math.min(e.count, 1 << 20); i++) t.setValue(e, i, v);
    return { buf, label: `tag ${e.tag}[all ${e.count}] = ${hex(v)} (dir ${dirIndex(map, dir)})` };
  }
  const i = rng.int(Math.min(e.count, 1 << 20));
  const old = t.value(e, i);
  const v = newValue(rng, t, e, i);
  t.setValue(e, i, v);
  return { buf, label: `tag ${e.tag}[${i}] ${old}->${hex(v >>> 0)} (dir ${dirIndex(map, dir)})` };
};

const opTagType: Op = (buf, rng, map) => {
  const t = tiffBytes(buf);
  const hit = anyEntry(rng, map, TARGET_TAGS.concat([270, 347]));
  if (t === null || map === null || hit === null) return null;
  const type = rng.pick([0, 1, 2, 3, 4, 5, 7, 9, 12, 13, 16, 17, 18, 99, 0xffff]);
  t.setU16(hit.e.at + 2, type);
  return { buf, label: `tag ${hit.e.tag} type ${hit.e.type}->${type} (dir ${dirIndex(map, hit.dir)})` };
};

const opTagCount: Op = (buf, rng, map) => {
  const t = tiffBytes(buf);
  const hit = anyEntry(rng, map, TARGET_TAGS.concat([270, 347]));
  if (t === null || map === null || hit === null) return null;
  const v = rng.pick([0, 1, 2, hit.e.count + 1, hit.e.count * 2, 0x10000, 0x7fffffff, 0xffffffff, rng.interesting32()]);
  const { countAt } = entryFields(t, hit.e);
  if (t.big) t.setU64(countAt, v >>> 0);
  else t.setU32(countAt, v);
  return { buf, label: `tag ${hit.e.tag} count ${hit.e.count}->${hex(v >>> 0)} (dir ${dirIndex(map, hit.dir)})` };
};

/** Points an out-of-line value somewhere else: 0, past the end, into the directory itself. */
const opTagPointer: Op = (buf, rng, map) => {
  const t = tiffBytes(buf);
  if (t === null || map === null) return null;
  const outOfLine = map.dirs.flatMap((dir) => dir.entries.filter((e) => !e.inline).map((e) => ({ dir, e })));
  if (outOfLine.length === 0) return null;
  const { dir, e } = rng.pick(outOfLine);
  const v = rng.pick([0, 1, buf.length, buf.length - 1, buf.length + 8, dir.at, 0xffffffff, rng.int(buf.length)]);
  t.setOffset(entryFields(t, e).fieldAt, v);
  return { buf, label: `tag ${e.tag} value pointer -> ${v} (dir ${dirIndex(map, dir)})` };
};

/** Blocks that share bytes: all pointing at one, a few copied from others, or two swapped. */
const opAlias: Op = (buf, rng, map) => {
  const t = tiffBytes(buf);
  if (t === null || map === null) return null;
  const withBlocks = map.dirs.filter((d) => blocksOf(d) !== null);
  if (withBlocks.length === 0) return null;
  const dir = rng.pick(withBlocks);
  const b = blocksOf(dir);
  if (b === null) return null;
  const n = Math.min(b.offsets.count, b.counts.count, 1 << 20);
  const mode = rng.pick(['all-first', 'some', 'swap', 'overlap'] as const);
  if (mode === 'all-first') {
    const [o, c] = [t.value(b.offsets, 0), t.value(b.counts, 0)];
    for (let i = 1; i < n; i++) {
      t.setValue(b.offsets, i, o);
      t.setValue(b.counts, i, c);
    }
  } else if (mode === 'some') {
    for (let k = 0; k < Math.max(1, n >> 3); k++) {
      const [i, j] = [rng.int(n), rng.int(n)];
      t.setValue(b.offsets, i, t.value(b.offsets, j));
      t.setValue(b.counts, i, t.value(b.counts, j));
    }
  } else if (mode === 'swap') {
    const [i, j] = [rng.int(n), rng.int(n)];
    const [oi, ci] = [t.value(b.offsets, i), t.value(b.counts, i)];
    t.setValue(b.offsets, i, t.value(b.offsets, j));
    t.setValue(b.counts, i, t.value(b.counts, j));
    t.setValue(b.offsets, j, oi);
    t.setValue(b.counts, j, ci);
  } else {
    // Each block starts half-way into its predecessor.
    for (let i = 1; i < n; i++) t.setValue(b.offsets, i, t.value(b.offsets, i - 1) + Math.floor(t.value(b.counts, i - 1) / 2));
  }
  return { buf, label: `blocks aliased (${mode}, ${n} blocks, dir ${dirIndex(map, dir)})` };
};

const opChain: Op = (buf, rng, map) => {
  const t = tiffBytes(buf);
  if (t === null || map === null || map.dirs.length === 0) return null;
  if (rng.chance(0.25)) {
    const v = rng.pick([0, 1, 7, buf.length, buf.length + 2, 0xffffffff, rng.int(buf.length)]);
    t.setOffset(t.big ? 8 : 4, v);
    return { buf, label: `first directory pointer -> ${v}` };
  }
  const dir = rng.pick(map.dirs);
  const v = rng.pick([0, dir.at, map.dirs[0]?.at ?? 0, buf.length, 0xffffffff, rng.int(buf.length)]);
  t.setOffset(dir.nextAt, v);
  return { buf, label: `next-directory pointer of dir ${dirIndex(map, dir)} -> ${v}` };
};

/** Entries out of order, duplicated, or the entry count changed. */
const opEntries: Op = (buf, rng, map) => {
  const t = tiffBytes(buf);
  if (t === null || map === null || map.dirs.length === 0) return null;
  const dir = rng.pick(map.dirs);
  const size = t.big ? 20 : 12;
  const [a, b] = [rng.pick(dir.entries), rng.pick(dir.entries)];
  const mode = rng.pick(['swap', 'duplicate', 'count'] as const);
  if (mode === 'count') {
    const n = rng.pick([0, 1, dir.entries.length - 1, dir.entries.length + 1, 4097, 0xffff]);
    if (t.big) t.setU64(dir.at, n);
    else t.setU16(dir.at, n);
    return { buf, label: `entry count of dir ${dirIndex(map, dir)} ${dir.entries.length}->${n}` };
  }
  const ea = Buffer.from(buf.subarray(a.at, a.at + size));
  if (mode === 'swap') buf.copy(buf, a.at, b.at, b.at + size);
  ea.copy(buf, b.at);
  return { buf, label: `entries ${a.tag} and ${b.tag} ${mode === 'swap' ? 'swapped' : `: ${b.tag} replaced by a copy of ${a.tag}`} (dir ${dirIndex(map, dir)})` };
};

/** Damage to a JPEG stream inside a stored tile or strip (or the shared JPEGTables). */
const opJpeg: Op = (buf, rng, map) => {
  const t = tiffBytes(buf);
  if (t === null || map === null) return null;
  const jpegDirs = map.dirs.filter((d) => d.entries.some((e) => e.tag === 259 && t.value(e, 0) === 7) && blocksOf(d) !== null);
  if (jpegDirs.length === 0) return null;
  const dir = rng.pick(jpegDirs);
  let start: number;
  let length: number;
  const tables = dir.entries.find((e) => e.tag === 347);
  if (tables !== undefined && rng.chance(0.25)) {
    start = tables.valueAt;
    length = tables.count;
  } else {
    const b = blocksOf(dir) as { offsets: TiffEntry; counts: TiffEntry };
    const i = rng.int(Math.min(b.offsets.count, b.counts.count));
    start = t.value(b.offsets, i);
    length = t.value(b.counts, i);
  }
  const end = Math.min(buf.length, start + length);
  if (start <= 0 || end - start < 4) return null;
  // Markers in the first 64 KB of the stream (headers come first; the scan follows).
  const markers: number[] = [];
  for (let p = start; p < Math.min(end - 1, start + 65536); p++) {
    if (buf[p] === 0xff && buf[p + 1] !== 0x00 && buf[p + 1] !== 0xff) markers.push(p);
  }
  if (markers.length === 0) return null;
  const at = rng.pick(markers);
  const code = buf[at + 1] as number;
  const mode = rng.int(6);
  let what: string;
  if (mode === 0) {
    const to = rng.pick([0xd8, 0xd9, 0xda, 0xc0, 0xc2, 0xc4, 0xdb, 0xdd, 0xd0, 0x01, rng.int(256)]);
    buf[at + 1] = to;
    what = `marker ${hex(code)}->${hex(to)}`;
  } else if (mode === 1 && code >= 0xc0 && code <= 0xcf && code !== 0xc4 && code !== 0xc8 && code !== 0xcc && at + 10 < end) {
    // SOF: precision, height, width, components.
    const field = rng.pick([4, 5, 7, 9] as const);
    const v = rng.pick([0, 1, 0xff, 0xffff, 3]);
    if (field === 4 || field === 9) buf[at + field] = v & 0xff;
    else buf.writeUInt16BE(v & 0xffff, at + field);
    what = `SOF ${hex(code)} field +${field} = ${v}`;
  } else if (mode === 2 && at + 4 < end) {
    const v = rng.pick([0, 1, 2, 0xffff, buf.readUInt16BE(at + 2) + 7]);
    buf.writeUInt16BE(v & 0xffff, at + 2);
    what = `segment ${hex(code)} length -> ${v}`;
  } else if (mode === 3) {
    buf.fill(0, at, Math.min(end, at + rng.pick([16, 256, 4096])));
    what = `zeros from marker ${hex(code)}`;
  } else if (mode === 4) {
    buf.fill(0xff, at, Math.min(end, at + rng.pick([2, 8, 64])));
    what = `0xff fill at marker ${hex(code)}`;
  } else {
    for (let k = 0; k < 8; k++) {
      const p = at + rng.int(Math.max(1, Math.min(end - at, 512)));
      buf[p] = rng.int(256);
    }
    what = `scrambled after marker ${hex(code)}`;
  }
  return { buf, label: `JPEG ${what} at ${at} (dir ${dirIndex(map, dir)})` };
};

const MPP_VALUES = ['0', '0.0', '-0.25', 'NaN', 'nan', 'Infinity', '-Infinity', '1e308', '1e-300', '0.0000001', '99999', 'abc', '', ' ', '0,25', '0.25.1', '0x10', '1e999', '\u00b5'];

/** The ImageDescription replaced: Aperio fields (MPP, AppMag) damaged, or the text itself. */
const opDescription: Op = (buf, rng, map) => {
  const t = tiffBytes(buf);
  if (t === null || map === null) return null;
  const hits = map.dirs.flatMap((dir) => dir.entries.filter((e) => e.tag === 270).map((e) => ({ dir, e })));
  const hit = hits.length > 0 && rng.chance(0.9) ? rng.pick(hits) : null;
  const old = hit === null ? '' : buf.subarray(hit.e.valueAt, Math.min(buf.length, hit.e.valueAt + hit.e.count)).toString('latin1').replace(/\0.*$/s, '');
  const base = old.startsWith('Aperio') ? old : 'Aperio Image Library v10.0.51\r\n2220x2967 [0,0 2220x2967] (240x240) JPEG/RGB Q=70|AppMag = 20|MPP = 0.499';
  let text: string;
  let what: string;
  const r = rng.int(8);
  if (r <= 2) {
    const v = rng.pick(MPP_VALUES);
    text = /\|MPP = [^|]*/.test(base) ? base.replace(/\|MPP = [^|]*/, `|MPP = ${v}`) : `${base}|MPP = ${v}`;
    what = `MPP = ${JSON.stringify(v)}`;
  } else if (r === 3) {
    const v = rng.pick(['0', '-20', 'NaN', '1e9', 'x', '']);
    text = base.replace(/\|AppMag = [^|]*/, `|AppMag = ${v}`);
    what = `AppMag = ${JSON.stringify(v)}`;
  } else if (r === 4) {
    text = base.replace(/\|MPP = [^|]*/, '').replace(/\|AppMag = [^|]*/, '');
    what = 'no MPP, no AppMag';
  } else if (r === 5) {
    const n = rng.pick([1024, 65536, 1 << 20]);
    text = `${base}|${'Filler = x|'.repeat(Math.ceil(n / 11))}`;
    what = `${text.length}-byte description`;
  } else if (r === 6) {
    text = Array.from({ length: rng.range(1, 512) }, () => String.fromCharCode(rng.int(256))).join('');
    what = 'garbage description';
  } else {
    text = rng.pick(['Aperio', 'Aperio|', 'Aperio||||=|=', 'Aperio Image Library|MPP|MPP = |MPP = 0.5 0.5', '<OME><Image><Pixels PhysicalSizeX="0" PhysicalSizeY="NaN" PhysicalSizeXUnit="parsec"/></Image></OME>', '<OME><Pixels PhysicalSizeX="-1">', 'label 1x1', 'macro']);
    what = `description ${JSON.stringify(text.slice(0, 40))}`;
  }
  const bytes = Buffer.from(`${text}\0`, 'latin1');
  // Appended, word-aligned, and the entry pointed at it (or a new text in an entry of the first directory).
  const pad = buf.length % 2;
  const at = buf.length + pad;
  const out = Buffer.concat([buf, Buffer.alloc(pad), bytes]);
  const to = tiffBytes(out) as TiffBytes;
  const e = hit?.e ?? map.dirs[0]?.entries.find((x) => x.tag === 305 || x.tag === 271) ?? null;
  if (e === null) return null;
  const { countAt, fieldAt } = entryFields(to, e);
  to.setU16(e.at, 270);
  to.setU16(e.at + 2, 2);
  if (to.big) to.setU64(countAt, bytes.length);
  else to.setU32(countAt, bytes.length);
  if (bytes.length <= (to.big ? 8 : 4)) bytes.copy(out, fieldAt);
  else to.setOffset(fieldAt, at);
  return { buf: out, label: `ImageDescription: ${what}` };
};

/** Resolution tags set to zero, huge or degenerate rationals. */
const opResolution: Op = (buf, rng, map) => {
  const t = tiffBytes(buf);
  const hit = anyEntry(rng, map, [282, 283]);
  if (t === null || map === null || hit === null || TYPE_SIZE[hit.e.type] !== 8) return null;
  const [num, den] = rng.pick([[0, 1], [1, 0], [0, 0], [0xffffffff, 1], [1, 0xffffffff], [20000, 1], [72, 1]] as const);
  t.setU32(hit.e.valueAt, num);
  t.setU32(hit.e.valueAt + 4, den);
  const unit = map.dirs[0]?.entries.find((e) => e.tag === 296);
  if (unit !== undefined && rng.chance(0.5)) t.setValue(unit, 0, rng.pick([1, 2, 3]));
  return { buf, label: `tag ${hit.e.tag} = ${num}/${den} (dir ${dirIndex(map, hit.dir)})` };
};

const TARGETED: readonly [Op, number][] = [
  [opTagValue, 30],
  [opAlias, 8],
  [opJpeg, 10],
  [opDescription, 10],
  [opTagType, 4],
  [opTagCount, 5],
  [opTagPointer, 5],
  [opChain, 5],
  [opEntries, 4],
  [opResolution, 3],
];
const BLIND: readonly [Op, number][] = [
  [opBitFlips, 10],
  [opByteRun, 6],
  [opTruncate, 8],
];

function weighted(rng: Rng, ops: readonly [Op, number][]): Op {
  const total = ops.reduce((s, [, w]) => s + w, 0);
  let r = rng.int(total);
  for (const [op, w] of ops) {
    if (r < w) return op;
    r -= w;
  }
  return (ops[0] as [Op, number])[0];
}

/** One mutant of `seed`: one to three mutations, targeted ones more often when the seed is a TIFF. */
export function mutate(seed: Buffer, rng: Rng): Mutant {
  let buf: Buffer = Buffer.from(seed);
  const ops: string[] = [];
  const n = rng.chance(0.7) ? 1 : rng.range(2, 3);
  for (let k = 0; k < n || ops.length === 0; k++) {
    const map = mapTiff(buf);
    const pool = map !== null && rng.chance(0.75) ? TARGETED : BLIND;
    const r = weighted(rng, pool)(buf, rng, map);
    if (r === null) {
      if (k > 12) break;
      continue;
    }
    buf = r.buf;
    ops.push(r.label);
  }
  if (ops.length === 0) {
    // Every targeted operator found nothing to aim at (e.g. a TIFF whose directories are odd).
    const r = opByteRun(buf, rng, null) as { buf: Buffer; label: string };
    return { bytes: r.buf, ops: [r.label] };
  }
  return { bytes: buf, ops };
}
