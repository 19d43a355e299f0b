/**
 * A low-resolution overview of the whole slide, built from the coarsest level that is still fine
 * enough, by area averaging. Reads the level in bounded bands of tiles, so memory stays small even
 * for a single-level gigapixel slide.
 */
import type { RgbImage, SlideSource } from '../slide/slide-source.js';
import { tissueKernels } from '../native/tissue-kernels.js';

export interface Overview {
  readonly image: RgbImage;
  /** Level-0 pixels per overview pixel, per axis (they differ by rounding). */
  readonly downsampleX: number;
  readonly downsampleY: number;
  /** The level the overview was computed from. */
  readonly level: number;
}

/** Level pixels read per request; bounds memory at ~12 MB per read (a band reads a few at once). */
const CHUNK = 2048;

/** Maps each source index to the output bin it averages into. */
function binMap(srcLength: number, outLength: number): Int32Array {
  const map = new Int32Array(srcLength);
  for (let i = 0; i < srcLength; i++) map[i] = Math.min(outLength - 1, Math.floor((i * outLength) / srcLength));
  return map;
}

/** Adds each pixel of a tile read at (colOffset, rowOffset) to its output cell's sums and count. */
function accumulate(
  d: Uint8Array,
  cw: number,
  ch: number,
  colBin: Int32Array,
  colOffset: number,
  rowBin: Int32Array,
  rowOffset: number,
  rowBase: number,
  outW: number,
  sums: Float64Array,
  counts: Uint32Array,
): void {
  for (let r = 0; r < ch; r++) {
    const ob = ((rowBin[rowOffset + r] as number) - rowBase) * outW;
    let p = r * cw * 3;
    for (let c = 0; c < cw; c++, p += 3) {
      const o = ob + (colBin[colOffset + c] as number);
      sums[o * 3] = (sums[o * 3] as number) + (d[p] as number);
      sums[o * 3 + 1] = (sums[o * 3 + 1] as number) + (d[p + 1] as number);
      sums[o * 3 + 2] = (sums[o * 3 + 2] as number) + (d[p + 2] as number);
      counts[o] = (counts[o] as number) + 1;
    }
  }
}

export interface OverviewOptions {
  /** Add up pixels with the addon's kernel when it has one (default); false: the JavaScript twin. */
  native?: boolean;
}

/** Reads the slide at `downsample` level-0 pixels per overview pixel (>= 1). */
export async function readOverview(source: SlideSource, downsample: number, options: OverviewOptions = {}): Promise<Overview> {
  const { width: W, height: H } = source;
  const target = Math.max(1, downsample);
  const outW = Math.max(1, Math.round(W / target));
  const outH = Math.max(1, Math.round(H / target));

  // Coarsest level that is not coarser than the overview itself (avoid upsampling).
  let level = 0;
  source.levels.forEach((lvl, i) => {
    if (lvl.width >= outW && lvl.height >= outH) level = i;
  });
  const lvl = source.levels[level];
  if (lvl === undefined) throw new Error('slide has no levels');
  const { width: lw, height: lh } = lvl;

  const colBin = binMap(lw, outW);
  const rowBin = binMap(lh, outH);
  const out = Buffer.alloc(outW * outH * 3);
  // Output rows are finished band by band: a band is the level rows that map to `bandRows` output rows.
  const bandRows = Math.max(1, Math.min(256, Math.floor(CHUNK / Math.max(1, lh / outH))));
  const sums = new Float64Array(bandRows * outW * 3);
  const counts = new Uint32Array(bandRows * outW);

  // Sums of integers: the native kernel and the loop below give the same bits in any order.
  const native = options.native === false ? null : tissueKernels();
  for (let oy0 = 0; oy0 < outH; oy0 += bandRows) {
    const oy1 = Math.min(outH, oy0 + bandRows);
    const ly0 = Math.ceil((oy0 * lh) / outH);
    const ly1 = oy1 === outH ? lh : Math.ceil((oy1 * lh) / outH);
    sums.fill(0);
    counts.fill(0);
    // A band's chunks are decoded at once (thread pool), then added up one by one.
    const chunks: { lx0: number; cy: number; cw: number; ch: number }[] = [];
    for (let lx0 = 0; lx0 < lw; lx0 += CHUNK) {
      for (let cy = ly0; cy < ly1; cy += CHUNK) chunks.push({ lx0, cy, cw: Math.min(CHUNK, lw - lx0), ch: Math.min(CHUNK, ly1 - cy) });
    }
    const tiles = await Promise.all(chunks.map((c) => source.readRegion(level, Math.round(c.lx0 * lvl.downsample), Math.round(c.cy * lvl.downsample), c.cw, c.ch)));
    tiles.forEach((tile, i) => {
      const { lx0, cy, cw, ch } = chunks[i] as (typeof chunks)[number];
      if (native !== null) native.accumulateBins(tile.data, cw, ch, colBin, lx0, rowBin, cy, oy0, outW, sums, counts);
      else accumulate(tile.data, cw, ch, colBin, lx0, rowBin, cy, oy0, outW, sums, counts);
    });
    for (let oy = oy0; oy < oy1; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        const o = (oy - oy0) * outW + ox;
        const n = counts[o] || 1;
        const q = (oy * outW + ox) * 3;
        out[q] = Math.round((sums[o * 3] as number) / n);
        out[q + 1] = Math.round((sums[o * 3 + 1] as number) / n);
        out[q + 2] = Math.round((sums[o * 3 + 2] as number) / n);
      }
    }
  }
  return { image: { data: out, width: outW, height: outH }, downsampleX: W / outW, downsampleY: H / outH, level };
}
