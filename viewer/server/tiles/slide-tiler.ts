/**
 * Renders Deep Zoom tiles of a slide from its SlideSource. A tile is read from the
 * coarsest pyramid level that still has at least the tile's resolution (so a zoomed-out view
 * decodes a few small tiles, never level 0 when a coarser level serves), resized to the tile with
 * libvips and encoded. Edge tiles are cropped like the Deep Zoom geometry says, never padded.
 * SlideTileRenderer reads small blocks of neighbouring tiles at once and keeps them decoded a
 * moment, since a viewer asks for a tile's neighbours right after it (see its comment).
 */
import sharp, { type KernelEnum } from 'sharp';
import { InvalidArgumentError } from '../../../worker/slide/errors.js';
import type { RgbImage, SlideLevel, SlideSource } from '../../../worker/slide/slide-source.js';
import { bestLevelForDownsample } from '../../../worker/slide/thumbnail.js';
import type { DeepZoomGeometry, DeepZoomTile } from './deep-zoom.js';

export type SlideTileFormat = 'jpeg' | 'webp';

export interface SlideTilerOptions {
  format?: SlideTileFormat;
  /** JPEG/WebP quality, 1..100. */
  quality?: number;
  /**
   * A slide level serves a Deep Zoom level when its downsample is at most the Deep Zoom level's
   * times (1 + tolerance): pyramids store floor(width / 2^k) pixels, so their downsamples are a
   * hair above the power of two, and skipping them for the next finer level would decode 4x the
   * pixels to gain a fraction of a pixel of resolution.
   */
  downsampleTolerance?: number;
  /** Resampling filter when the read level is not exactly the tile's resolution. */
  kernel?: keyof KernelEnum;
}

export const SLIDE_TILER_DEFAULTS: Readonly<Required<SlideTilerOptions>> = {
  format: 'jpeg',
  quality: 80,
  downsampleTolerance: 0.01,
  kernel: 'lanczos3',
};

function resolve(options: SlideTilerOptions): Required<SlideTilerOptions> {
  const o = { ...SLIDE_TILER_DEFAULTS, ...options };
  if (!Number.isInteger(o.quality) || o.quality < 1 || o.quality > 100) throw new InvalidArgumentError(`quality ${o.quality} is not an integer in 1..100`);
  return o;
}

/**
 * The fast path: when a Deep Zoom tile is exactly a tile the slide stores as JPEG (a level at the
 * same power-of-two scale, the same tile size, a full interior tile), the stored bytes are the
 * answer, made a complete JPEG but never decoded or re-encoded. For pyramids written with
 * 256 px JPEG tiles (libvips, many scanners' TIFF exports) that is nearly every tile of a
 * session, and it is what makes a cold cache cheap. null when the tile does not qualify.
 */
export async function storedTile(source: SlideSource, geometry: DeepZoomGeometry, tile: DeepZoomTile): Promise<Buffer | null> {
  if (source.readStoredTile === undefined || source.storedTileSize === undefined || geometry.overlap !== 0) return null;
  const ts = geometry.tileSize;
  if (tile.rect.width !== ts || tile.rect.height !== ts) return null;
  const ds = tile.downsample;
  // A level that halves level 0 exactly j times (pyramids round odd sizes down or up) has pixel
  // i over level-0 pixels [i * ds, (i + 1) * ds): the same pixels as the Deep Zoom level.
  const level = source.levels.findIndex(
    (l) => (l.width === Math.floor(source.width / ds) || l.width === Math.ceil(source.width / ds)) && (l.height === Math.floor(source.height / ds) || l.height === Math.ceil(source.height / ds)),
  );
  const lvl = source.levels[level];
  if (lvl === undefined) return null;
  const size = source.storedTileSize(level);
  if (size === null || size.width !== ts || size.height !== ts) return null;
  if ((tile.col + 1) * ts > lvl.width || (tile.row + 1) * ts > lvl.height) return null;
  return source.readStoredTile(level, tile.col, tile.row);
}

/** A rectangle of a Deep Zoom level: its pixels there, the same in level-0 pixels, and the level's downsample. */
export type LevelArea = Pick<DeepZoomTile, 'downsample' | 'rect' | 'level0'>;

/** Reads the area's level-0 rectangle at the best level: which level, and its pixels there (clamped to the level). */
export async function readTileSource(source: SlideSource, area: LevelArea, options: SlideTilerOptions = {}): Promise<{ level: number; image: RgbImage }> {
  const { downsampleTolerance } = resolve(options);
  const level = bestLevelForDownsample(source.levels, area.downsample, downsampleTolerance);
  const lvl = source.levels[level] as SlideLevel;
  const { x, y, width, height } = area.level0;
  const lx = Math.floor(x / lvl.downsample);
  const ly = Math.floor(y / lvl.downsample);
  // The rectangle's extent at that level, never past the level's edge (no glass padding to resize in).
  const w = Math.max(1, Math.min(Math.ceil((x + width) / lvl.downsample), lvl.width) - lx);
  const h = Math.max(1, Math.min(Math.ceil((y + height) / lvl.downsample), lvl.height) - ly);
  return { level, image: await source.readRegion(level, x, y, w, h) };
}

/** The area's pixels at its Deep Zoom level: read at the best slide level, resized when that level is not exactly it. */
export async function readArea(source: SlideSource, area: LevelArea, options: SlideTilerOptions = {}): Promise<RgbImage> {
  const o = resolve(options);
  const { image } = await readTileSource(source, area, o);
  const { width, height } = area.rect;
  if (image.width === width && image.height === height) return image;
  const data = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: o.kernel })
    .raw()
    .toBuffer();
  return { data, width, height };
}

/** Encodes RGB pixels as the tile format. */
export async function encodeTile(image: RgbImage, options: SlideTilerOptions = {}): Promise<Buffer> {
  const o = resolve(options);
  const pipeline = sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
  // Huffman optimisation is a second pass over the data for ~5 % fewer bytes: not worth it per tile.
  return o.format === 'webp' ? pipeline.webp({ quality: o.quality }).toBuffer() : pipeline.jpeg({ quality: o.quality, optimiseCoding: false }).toBuffer();
}

/** One encoded tile (JPEG by default) of exactly tile.rect's size, read on its own. */
export async function renderSlideTile(source: SlideSource, tile: DeepZoomTile, options: SlideTilerOptions = {}): Promise<Buffer> {
  return encodeTile(await readArea(source, tile, options), options);
}

/** Copies a rectangle out of an RGB image. */
export function crop(image: RgbImage, x: number, y: number, width: number, height: number): RgbImage {
  if (x === 0 && y === 0 && width === image.width && height === image.height) return image;
  const out = Buffer.allocUnsafe(width * height * 3);
  const row = width * 3;
  for (let j = 0; j < height; j++) {
    const s = ((y + j) * image.width + x) * 3;
    image.data.copy(out, j * row, s, s + row);
  }
  return { data: out, width, height };
}

export interface BlockRendererOptions extends SlideTilerOptions {
  /** Tiles per side of the block read at once (1: each tile alone). */
  blockTiles?: number;
  /** Bytes of decoded blocks kept (RGB, 3 MiB for a 4 x 4 block of 256 px tiles). */
  blockCacheBytes?: number;
}

/**
 * 2 x 2: on a 40000 px JPEG pyramid (bench/tiles.mjs, 2 cores) a viewer session's cold tiles/s
 * went 820 (each tile alone) -> 865 (2 x 2) -> 754-837 (4 x 4, which decodes twice the tiles the
 * session uses).
 */
export const BLOCK_RENDERER_DEFAULTS: Readonly<Required<Pick<BlockRendererOptions, 'blockTiles' | 'blockCacheBytes'>>> = {
  blockTiles: 2,
  blockCacheBytes: 64 * 1024 * 1024,
};

export interface BlockStats {
  reads: number;
  hits: number;
  shared: number;
  /** Tiles answered with the slide's stored JPEG bytes (no decode, no encode). */
  stored: number;
  bytes: number;
}

/**
 * Renders tiles from blocks of blockTiles x blockTiles neighbouring tiles, read and resized once
 * and kept decoded for a while. Each read of a slide costs a fixed overhead (opening the level,
 * setting up a decode pipeline) that is larger than decoding one 256 px tile, and a viewer asks
 * for the neighbours of every tile it shows within moments; one block read serves them all.
 */
export class SlideTileRenderer {
  private readonly o: Required<SlideTilerOptions>;
  private readonly blockTiles: number;
  private readonly maxBytes: number;
  private readonly blocks = new Map<string, RgbImage>();
  private readonly loading = new Map<string, Promise<RgbImage>>();
  private bytes = 0;
  private readonly counts = { reads: 0, hits: 0, shared: 0, stored: 0 };

  constructor(options: BlockRendererOptions = {}) {
    const { blockTiles, blockCacheBytes, ...tiler } = { ...BLOCK_RENDERER_DEFAULTS, ...options };
    if (!Number.isSafeInteger(blockTiles) || blockTiles < 1 || blockTiles > 16) throw new InvalidArgumentError(`block of ${blockTiles} tiles is not an integer in 1..16`);
    this.o = resolve(tiler);
    this.blockTiles = blockTiles;
    this.maxBytes = blockCacheBytes;
  }

  /** The encoded tile; `slideKey` names the slide's content (e.g. id and version): blocks are cached under it. */
  async render(slideKey: string, source: SlideSource, geometry: DeepZoomGeometry, tile: DeepZoomTile): Promise<Buffer> {
    if (this.o.format === 'jpeg') {
      const stored = await storedTile(source, geometry, tile);
      if (stored !== null) {
        this.counts.stored++;
        return stored;
      }
    }
    const b = this.blockTiles;
    if (b === 1) return renderSlideTile(source, tile, this.o);
    const bx = Math.floor(tile.col / b);
    const by = Math.floor(tile.row / b);
    const area = this.blockArea(geometry, tile.level, bx, by);
    const block = await this.block(`${slideKey}/${geometry.tileSize}/${geometry.overlap}/${tile.level}/${bx}_${by}`, source, area);
    const { x, y, width, height } = tile.rect;
    return encodeTile(crop(block, x - area.rect.x, y - area.rect.y, width, height), this.o);
  }

  stats(): BlockStats {
    return { ...this.counts, bytes: this.bytes };
  }

  /** The block's rectangle: its tiles' rectangles, overlap included, cropped to the level. */
  private blockArea(g: DeepZoomGeometry, level: number, bx: number, by: number): LevelArea {
    const { cols, rows } = g.tileGrid(level);
    const b = this.blockTiles;
    const first = g.requireTile(level, bx * b, by * b);
    const last = g.requireTile(level, Math.min(cols, (bx + 1) * b) - 1, Math.min(rows, (by + 1) * b) - 1);
    const ds = first.downsample;
    const x = first.rect.x;
    const y = first.rect.y;
    const width = last.rect.x + last.rect.width - x;
    const height = last.rect.y + last.rect.height - y;
    const x0 = x * ds;
    const y0 = y * ds;
    return {
      downsample: ds,
      rect: { x, y, width, height },
      level0: { x: x0, y: y0, width: Math.min(width * ds, g.width - x0), height: Math.min(height * ds, g.height - y0) },
    };
  }

  private async block(key: string, source: SlideSource, area: LevelArea): Promise<RgbImage> {
    const hit = this.blocks.get(key);
    if (hit !== undefined) {
      this.counts.hits++;
      this.blocks.delete(key);
      this.blocks.set(key, hit);
      return hit;
    }
    const pending = this.loading.get(key);
    if (pending !== undefined) {
      this.counts.shared++;
      return pending;
    }
    this.counts.reads++;
    const load = readArea(source, area, this.o);
    this.loading.set(key, load);
    try {
      const image = await load;
      this.remember(key, image);
      return image;
    } finally {
      this.loading.delete(key);
    }
  }

  private remember(key: string, image: RgbImage): void {
    const size = image.data.byteLength;
    if (size > this.maxBytes) return;
    const old = this.blocks.get(key);
    if (old !== undefined) this.bytes -= old.data.byteLength;
    this.blocks.delete(key);
    this.blocks.set(key, image);
    this.bytes += size;
    for (const [k, v] of this.blocks) {
      if (this.bytes <= this.maxBytes) break;
      this.blocks.delete(k);
      this.bytes -= v.data.byteLength;
    }
  }
}
