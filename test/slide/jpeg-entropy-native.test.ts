// The addon's entropy check of a stored JPEG tile (native/src/jpeg_check_binding.cc, on the
// thread pool) against its reference, entropyDamage in worker/slide/jpeg-tile.ts: the same
// answer, null or the same message, on every stored tile of CMU-1, on the damaged tiles the
// damaged-SVS tests use, on generated JPEGs of every sampling layout with restart markers, and
// on thousands of seeded random mutations of all of them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import sharp from 'sharp';
import { entropyDamage } from '../../worker/slide/jpeg-tile.js';
import { jpegEntropyDamage, jpegKernels, type JpegKernels } from '../../worker/native/jpeg-kernels.js';
import { openSlide } from '../../worker/slide/open-slide.js';
import type { SlideSource } from '../../worker/slide/slide-source.js';
import { seededRng, type Rng } from '../../worker/util/random.js';
import { damagedCmu, storedTiles, type Damage } from '../damaged-slide.js';
import { CMU, tempDir } from '../helpers.js';

const UNLIMITED = Number.MAX_SAFE_INTEGER;

/** Where the entropy-coded data starts (after the first SOS segment), or the length when none is found. */
function scanStart(jpeg: Uint8Array): number {
  let p = 2;
  while (p + 4 <= jpeg.length && jpeg[p] === 0xff) {
    const m = jpeg[p + 1] as number;
    const e = p + 2 + (((jpeg[p + 2] as number) << 8) | (jpeg[p + 3] as number));
    if (m === 0xda) return Math.min(e, jpeg.length);
    p = e;
  }
  return jpeg.length;
}

interface Huffman {
  counts: number[];
  values: number[];
  code: Map<number, { bits: number; len: number }>;
}

/** A random canonical Huffman table for `symbols`: lengths 1..16, short and long codes, never the all-ones 16-bit code. */
function randomHuffman(rng: Rng, symbols: number[]): Huffman {
  const order = [...symbols];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j] as number, order[i] as number];
  }
  let capacity = 65535; // Kraft sum in units of 2^-16
  const lengths = new Map<number, number>();
  order.forEach((sym, i) => {
    const remaining = order.length - i - 1;
    let shortest = 1;
    while ((1 << (16 - shortest)) > capacity - remaining) shortest++;
    const len = Math.min(16, shortest + Math.floor(rng() * rng() * (17 - shortest)));
    lengths.set(sym, len);
    capacity -= 1 << (16 - len);
  });
  const counts = new Array<number>(16).fill(0);
  const values: number[] = [];
  const code = new Map<number, { bits: number; len: number }>();
  let next = 0;
  for (let len = 1; len <= 16; len++) {
    for (const sym of order) {
      if (lengths.get(sym) !== len) continue;
      counts[len - 1] = (counts[len - 1] as number) + 1;
      values.push(sym);
      code.set(sym, { bits: next++, len });
    }
    next <<= 1;
  }
  return { counts, values, code };
}

class BitWriter {
  readonly bytes: number[] = [];
  private acc = 0;
  private n = 0;
  put(bits: number, len: number): void {
    for (let i = len - 1; i >= 0; i--) {
      this.acc = (this.acc << 1) | ((bits >> i) & 1);
      if (++this.n === 8) {
        this.bytes.push(this.acc);
        if (this.acc === 0xff) this.bytes.push(0x00); // byte stuffing
        this.acc = 0;
        this.n = 0;
      }
    }
  }
  /** Pads the last byte with one bits, as encoders do before a marker. */
  flush(): void {
    while (this.n !== 0) this.put(1, 1);
  }
}

/**
 * A baseline JPEG whose entropy-coded data is valid but random: random Huffman tables, random
 * DC categories and AC run/size symbols with random magnitude bits, every block ending at
 * coefficient 63 or with an end of block. `sampling`: each component's h x v (one component:
 * a non-interleaved scan); `restart`: the restart interval in MCUs (0: none).
 */
function generatedJpeg(rng: Rng, width: number, height: number, sampling: [number, number][], restart: number): Buffer {
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)] as T;
  const dcSymbols = [...Array(12).keys()].filter(() => rng() < 0.7);
  if (dcSymbols.length === 0) dcSymbols.push(0);
  const acSymbols = [0x00, ...(rng() < 0.8 ? [0xf0] : [])];
  for (let r = 0; r < 16; r++) for (let s = 1; s <= 10; s++) if (rng() < 0.4) acSymbols.push((r << 4) | s);
  const tables = [0, 1].map(() => ({ dc: randomHuffman(rng, dcSymbols), ac: randomHuffman(rng, acSymbols) }));
  const hmax = Math.max(...sampling.map(([h]) => h));
  const vmax = Math.max(...sampling.map(([, v]) => v));
  const single = sampling.length === 1;
  const [h0, v0] = sampling[0]!;
  const mcusX = single ? Math.ceil(Math.ceil((width * h0) / hmax) / 8) : Math.ceil(width / (8 * hmax));
  const mcusY = single ? Math.ceil(Math.ceil((height * v0) / vmax) / 8) : Math.ceil(height / (8 * vmax));
  const w = new BitWriter();
  const put = (sym: number, t: Huffman, extra: number): void => {
    const c = t.code.get(sym)!;
    w.put(c.bits, c.len);
    w.put(Math.floor(rng() * (1 << extra)), extra);
  };
  const block = (t: { dc: Huffman; ac: Huffman }): void => {
    const dc = pick(dcSymbols);
    put(dc, t.dc, dc);
    for (let k = 1; k < 64; ) {
      const fits = acSymbols.filter((s) => s !== 0 && (s === 0xf0 ? k + 16 <= 63 : k + (s >> 4) <= 63));
      if (rng() < 0.12 || fits.length === 0) {
        put(0x00, t.ac, 0); // end of block
        break;
      }
      const s = pick(fits);
      put(s, t.ac, s & 15);
      k += s === 0xf0 ? 16 : (s >> 4) + 1;
    }
  };
  let rst = 0;
  for (let mcu = 0; mcu < mcusX * mcusY; mcu++) {
    if (restart > 0 && mcu > 0 && mcu % restart === 0) {
      w.flush();
      w.bytes.push(0xff, 0xd0 + rst);
      rst = (rst + 1) & 7;
    }
    sampling.forEach(([h, v], c) => {
      for (let b = 0; b < (single ? 1 : h * v); b++) block(tables[c === 0 ? 0 : 1]!);
    });
  }
  w.flush();
  const seg = (marker: number, body: number[]): number[] => [0xff, marker, (body.length + 2) >> 8, (body.length + 2) & 0xff, ...body];
  const dht = (tc: number, th: number, t: Huffman): number[] => seg(0xc4, [(tc << 4) | th, ...t.counts, ...t.values]);
  return Buffer.from([
    0xff, 0xd8,
    ...seg(0xdb, [0x00, ...new Array<number>(64).fill(1)]),
    ...seg(0xc0, [8, height >> 8, height & 0xff, width >> 8, width & 0xff, sampling.length, ...sampling.flatMap(([h, v], c) => [c + 1, (h << 4) | v, 0])]),
    ...[0, 1].flatMap((th) => [...dht(0, th, tables[th]!.dc), ...dht(1, th, tables[th]!.ac)]),
    ...(restart > 0 ? seg(0xdd, [restart >> 8, restart & 0xff]) : []),
    ...seg(0xda, [sampling.length, ...sampling.flatMap((_, c) => [c + 1, c === 0 ? 0x00 : 0x11]), 0, 63, 0]),
    ...w.bytes,
    0xff, 0xd9,
  ]);
}

/** Generated JPEGs over the layouts stored tiles come in (and a few they rarely do). */
function generatedJpegs(seed: number, count: number): Buffer[] {
  const rng = seededRng(seed);
  const layouts: [number, number][][] = [[[1, 1]], [[2, 2]], [[1, 1], [1, 1], [1, 1]], [[2, 2], [1, 1], [1, 1]], [[2, 1], [1, 1], [1, 1]], [[1, 2], [1, 1], [1, 1]], [[1, 1], [1, 1], [1, 1], [1, 1]]];
  return Array.from({ length: count }, (_, i) => {
    const layout = layouts[i % layouts.length]!;
    const restart = i % 3 === 0 ? 0 : 1 + Math.floor(rng() * 6);
    return generatedJpeg(rng, 1 + Math.floor(rng() * 120), 1 + Math.floor(rng() * 120), layout, restart);
  });
}

type Mutation = 'zero-run' | 'random-bytes' | 'ff-run' | 'bit-flips' | 'truncation' | 'deletion' | 'restart-marker';
const MUTATIONS: readonly Mutation[] = ['zero-run', 'random-bytes', 'ff-run', 'bit-flips', 'truncation', 'deletion', 'restart-marker'];

/** One random mutation of `jpeg`, mostly inside its entropy-coded data, sometimes in its headers. */
function mutated(rng: Rng, jpeg: Buffer, how: Mutation): Buffer {
  const start = scanStart(jpeg);
  const inData = rng() < 0.85 && start < jpeg.length - 2;
  const at = inData ? start + Math.floor(rng() * (jpeg.length - 2 - start)) : 2 + Math.floor(rng() * (jpeg.length - 2));
  const b = Buffer.from(jpeg);
  const span = (max: number): number => Math.min(b.length - at, 1 + Math.floor(rng() * max));
  switch (how) {
    case 'zero-run':
      return b.fill(0, at, at + span(128));
    case 'random-bytes': {
      const end = at + span(32);
      for (let k = at; k < end; k++) b[k] = Math.floor(rng() * 256);
      return b;
    }
    case 'ff-run':
      b.fill(0xff, at, at + span(8));
      if (rng() < 0.5 && at + 8 < b.length) b[at + 8] = Math.floor(rng() * 256); // and what follows
      return b;
    case 'bit-flips':
      for (let n = 1 + Math.floor(rng() * 3); n > 0; n--) {
        const k = inData ? start + Math.floor(rng() * Math.max(1, b.length - start)) : Math.floor(rng() * b.length);
        const i = Math.min(k, b.length - 1);
        b[i] = (b[i] as number) ^ (1 << Math.floor(rng() * 8));
      }
      return b;
    case 'truncation':
      return rng() < 0.5 ? b.subarray(0, at) : Buffer.concat([b.subarray(0, at), Buffer.from([0xff, 0xd9])]);
    case 'deletion':
      return Buffer.concat([b.subarray(0, at), b.subarray(at + span(16))]);
    case 'restart-marker': {
      // A restart marker renumbered, dropped or doubled (a bit flip where there is none).
      const markers: number[] = [];
      for (let k = start; k + 1 < b.length; k++) if (b[k] === 0xff && (b[k + 1] as number) >= 0xd0 && (b[k + 1] as number) <= 0xd7) markers.push(k);
      if (markers.length === 0) return mutated(rng, jpeg, 'bit-flips');
      const m = markers[Math.floor(rng() * markers.length)] as number;
      const r = rng();
      if (r < 0.5) b[m + 1] = 0xd0 + Math.floor(rng() * 8);
      else if (r < 0.75) return Buffer.concat([b.subarray(0, m), b.subarray(m + 2)]);
      else return Buffer.concat([b.subarray(0, m + 2), b.subarray(m)]);
      return b;
    }
  }
}

/** JS and native on each case; the disagreements (none expected), and how often each answer came. */
async function compare(k: JpegKernels, cases: { what: string; jpeg: Uint8Array; maxPixels: number }[]): Promise<{ mismatches: string[]; answers: Map<string, number> }> {
  const mismatches: string[] = [];
  const answers = new Map<string, number>();
  for (let i = 0; i < cases.length; i += 64) {
    const batch = cases.slice(i, i + 64);
    const natives = await Promise.all(batch.map((c) => k.jpegEntropyDamage(c.jpeg, Math.min(c.maxPixels, UNLIMITED))));
    batch.forEach((c, j) => {
      const js = entropyDamage(c.jpeg, c.maxPixels);
      const native = natives[j];
      if (native !== js) mismatches.push(`${c.what}: js ${JSON.stringify(js)}, native ${JSON.stringify(native)}`);
      const kind = js === null ? 'none' : js.replace(/^Corrupt JPEG data: (\d+ )?/, '').replace(/ \d+ /, ' n ').replace(/ \(MCU .*$/, '');
      answers.set(kind, (answers.get(kind) ?? 0) + 1);
    });
  }
  return { mismatches, answers };
}

describe('the native entropy check of stored JPEG tiles (jpegEntropyDamage) against entropyDamage', () => {
  const k = jpegKernels();
  let cmu: SlideSource;
  let tiles: { where: string; jpeg: Buffer; maxPixels: number }[] = [];
  beforeAll(async () => {
    cmu = await openSlide(CMU, { backend: 'sharp' });
    tiles = await storedTiles(cmu);
  });
  afterAll(async () => {
    await cmu?.close();
  });

  it('is built into the addon (the sharp backend relies on it to keep the walk off the event loop)', () => {
    expect(k).not.toBeNull();
  });

  it('finds nothing in any stored tile of CMU-1, like the reference', async () => {
    expect(tiles.length).toBeGreaterThan(100);
    const { mismatches, answers } = await compare(k!, tiles.map((t) => ({ what: t.where, ...t })));
    expect(mismatches).toEqual([]);
    expect([...answers]).toEqual([['none', tiles.length]]);
  });

  it('gives the same message for the damaged tiles of the damaged-SVS tests (zero run, scrambled, truncated)', async () => {
    const dir = tempDir();
    const points: [number, number][] = [];
    // Every level-0 tile but the first (opening the slide reads a corner of it).
    for (let y = 0; y < 2967; y += 240) for (let x = 0; x < 2220; x += 240) if (x + y > 0) points.push([x, y]);
    const cases: { what: string; jpeg: Buffer; maxPixels: number }[] = [];
    for (const how of ['zero-run', 'scrambled', 'truncated'] as Damage[]) {
      const path = join(dir, `${how}.svs`);
      damagedCmu(path, points, how);
      const s = await openSlide(path, { backend: 'sharp' });
      try {
        for (const t of await storedTiles(s)) cases.push({ what: `${how} ${t.where}`, jpeg: t.jpeg, maxPixels: t.maxPixels });
      } finally {
        await s.close();
      }
    }
    const { mismatches, answers } = await compare(k!, cases);
    expect(mismatches).toEqual([]);
    expect(answers.get('premature end of data segment')).toBeGreaterThan(100); // the zero runs and truncations at least
  });

  it('agrees on generated JPEGs: every sampling layout, restart intervals, long and short codes (all intact)', async () => {
    const jpegs = generatedJpegs(20260601, 140);
    const { mismatches, answers } = await compare(k!, jpegs.map((jpeg, i) => ({ what: `generated ${i}`, jpeg, maxPixels: Number.POSITIVE_INFINITY })));
    expect(mismatches).toEqual([]);
    expect([...answers]).toEqual([['none', jpegs.length]]);
    // The generator writes what libjpeg reads without a warning (restart markers included).
    for (const jpeg of jpegs.slice(0, 14)) await sharp(jpeg, { failOn: 'warning' }).raw().toBuffer();
  });

  it('agrees on thousands of seeded random mutations of single tiles: zero runs, random bytes, 0xFF runs, bit flips, truncation, restart markers', async () => {
    const rng = seededRng(20260602);
    const sources = [...tiles.map((t) => ({ jpeg: t.jpeg, maxPixels: t.maxPixels })), ...generatedJpegs(20260603, 70).map((jpeg) => ({ jpeg, maxPixels: Number.POSITIVE_INFINITY }))];
    const cases: { what: string; jpeg: Buffer; maxPixels: number }[] = [];
    for (let i = 0; i < 4200; i++) {
      const src = sources[Math.floor(rng() * sources.length)]!;
      const how = MUTATIONS[i % MUTATIONS.length]!;
      // Sometimes a frame limit below the tile's (a header claiming more is refused): null for both.
      const maxPixels = rng() < 0.05 ? Math.floor(rng() * src.jpeg.length) : src.maxPixels;
      cases.push({ what: `mutation ${i} (${how})`, jpeg: mutated(rng, src.jpeg, how), maxPixels });
    }
    const { mismatches, answers } = await compare(k!, cases);
    expect(mismatches.slice(0, 5)).toEqual([]);
    // Every kind of answer occurred, so each path of both walks was compared.
    for (const kind of ['none', 'bad Huffman code', 'premature end of data segment', 'extraneous bytes before the restart marker', 'restart marker n missing or out of sequence']) {
      expect(answers.get(kind) ?? 0, `${kind} in ${JSON.stringify([...answers])}`).toBeGreaterThan(20);
    }
  });

  it('reads a view at an offset into a larger buffer, and empty or tiny input', async () => {
    const jpeg = Buffer.from(tiles[0]!.jpeg);
    jpeg.fill(0, jpeg.length >> 1, (jpeg.length >> 1) + 64);
    const big = Buffer.concat([Buffer.alloc(13, 0xff), jpeg, Buffer.alloc(7, 0xff)]);
    const view = big.subarray(13, 13 + jpeg.length);
    expect(await k!.jpegEntropyDamage(view, UNLIMITED)).toBe(entropyDamage(jpeg));
    expect(entropyDamage(jpeg)).toMatch(/premature end of data segment/);
    for (const tiny of [new Uint8Array(0), new Uint8Array([0xff, 0xd8]), new Uint8Array([0xff, 0xd8, 0xff, 0xda, 0x00])]) {
      expect(await k!.jpegEntropyDamage(tiny, UNLIMITED)).toBeNull();
    }
  });

  it('checks its arguments: a TypeError or RangeError, never a crash', () => {
    const f = k!.jpegEntropyDamage as unknown as (...args: unknown[]) => unknown;
    const jpeg = tiles[0]!.jpeg;
    expect(() => f('not bytes', 100)).toThrow(TypeError);
    expect(() => f(null, 100)).toThrow(TypeError);
    expect(() => f(new Float32Array(8), 100)).toThrow(TypeError);
    expect(() => f(jpeg.buffer, 100)).toThrow(TypeError);
    expect(() => f(jpeg)).toThrow(TypeError);
    expect(() => f(jpeg, '100')).toThrow(TypeError);
    expect(() => f(jpeg, -1)).toThrow(RangeError);
    expect(() => f(jpeg, 1.5)).toThrow(RangeError);
    expect(() => f(jpeg, Number.POSITIVE_INFINITY)).toThrow(RangeError);
    expect(() => f(jpeg, Number.NaN)).toThrow(RangeError);
  });

  it('the wrapper takes any frame limit the reference takes (Infinity, NaN, fractions, negative)', async () => {
    const damaged = Buffer.from(tiles[0]!.jpeg);
    damaged.fill(0, damaged.length >> 1, (damaged.length >> 1) + 64);
    for (const jpeg of [tiles[0]!.jpeg, damaged]) {
      for (const limit of [Number.POSITIVE_INFINITY, Number.NaN, 2 ** 60, 240 * 240, 240 * 240 - 0.5, 240 * 240 + 0.5, 240 * 240 - 1, 0, -5, Number.NEGATIVE_INFINITY]) {
        expect(await jpegEntropyDamage(jpeg, limit), `limit ${limit}`).toBe(entropyDamage(jpeg, limit));
      }
      expect(await jpegEntropyDamage(jpeg)).toBe(entropyDamage(jpeg));
    }
  });
});
