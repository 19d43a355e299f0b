/**
 * SlideSource over sharp/libvips for TIFF-family slides (Aperio SVS with JPEG tiles, generic tiled
 * pyramidal TIFF, OME-TIFF) and plain raster images. libvips decodes on demand, so an extract from
 * a tiled page touches only the tiles under the rectangle.
 */
import { open, type FileHandle } from 'node:fs/promises';
import sharp, { type Sharp, type SharpOptions } from 'sharp';
import { completeJpeg } from './jpeg-tile.js';
import { jpegEntropyDamage } from '../native/jpeg-kernels.js';
import { CorruptSlideError, InvalidArgumentError, firstLine } from './errors.js';
import { checkRegionRequest, padToRequest, type LevelWindow } from './region-bounds.js';
import { MAX_REGION_PIXELS, type AssociatedImageName, type Mpp, type MppSource, type ReadRegionOptions, type RgbImage, type SlideLevel, type SlideSource } from './slide-source.js';
import type { TiffAssociated, TiffLevel, TiffSlideLayout } from './tiff-metadata.js';

/** What the TIFF directories said about the slide (minus the backend choice), and its path. */
export interface SharpSourceInit extends Omit<TiffSlideLayout, 'needsOpenSlide'> {
  readonly path: string;
}

/**
 * Last-resort watchdog on one read. decode-bounds.ts bounds what a read may decode from the
 * file's directories; no read within those bounds takes this long, so a read that does is a
 * decoder stuck on hostile data (or a dead disk), and fails the slide instead of the worker.
 */
const READ_TIMEOUT_SECONDS = 60;

/** A stored JPEG tile larger than this is not a tile but a damaged byte count. */
const MAX_STORED_TILE_BYTES = 64 << 20;

/**
 * Decoded tiles kept per open slide: 512 of 256^2 px are 96 MiB; a row of 1024 px regions over a
 * 40000 px slide touches ~800 tiles, so the previous region's edge tiles are still there when
 * its neighbour is read.
 */
const DECODED_TILES = 512;

export class SharpSlideSource implements SlideSource {
  readonly backend = 'sharp' as const;
  readonly path: string;
  readonly vendor: string;
  readonly width: number;
  readonly height: number;
  readonly levels: readonly SlideLevel[];
  readonly mpp: Mpp | null;
  readonly mppSource: MppSource;
  readonly mppNote: string | null;
  readonly objectivePower: number | null;
  readonly associatedImages: readonly AssociatedImageName[];
  readonly properties: Readonly<Record<string, string>>;
  private readonly tiffLevels: readonly TiffLevel[];
  private readonly associated: readonly TiffAssociated[];
  private file: Promise<FileHandle> | null = null;
  /** Decoded stored tiles, most recently used last (neighbouring regions share edge tiles). */
  private readonly decoded = new Map<string, Promise<Buffer | null>>();

  constructor(init: SharpSourceInit) {
    const level0 = init.levels[0];
    if (level0 === undefined) throw new Error('SharpSlideSource needs at least one level');
    this.path = init.path;
    this.vendor = init.vendor;
    this.width = level0.width;
    this.height = level0.height;
    this.tiffLevels = init.levels;
    this.levels = init.levels.map(({ width, height, downsample }) => ({ width, height, downsample }));
    this.mpp = init.mpp;
    this.mppSource = init.mppSource;
    this.mppNote = init.mppNote;
    this.objectivePower = init.objectivePower;
    this.associated = init.associated;
    this.associatedImages = init.associated.map((a) => a.name);
    this.properties = init.properties;
  }

  private open(page: number, subifd: number): Sharp {
    const options: SharpOptions = { page, limitInputPixels: false, failOn: 'error' };
    if (subifd >= 0) options.subifd = subifd;
    return sharp(this.path, options);
  }

  async readRegion(level: number, x: number, y: number, width: number, height: number, options: ReadRegionOptions = {}): Promise<RgbImage> {
    const win = checkRegionRequest(this.path, this.levels, level, x, y, width, height);
    if (win.iw === 0 || win.ih === 0) return padToRequest(null, win, width, height);
    const lvl = this.tiffLevels[level] as TiffLevel;
    const fromTiles = await this.readFromStoredTiles(level, win, options.wanted);
    if (fromTiles !== null) return padToRequest(fromTiles, win, width, height);
    let inner: Buffer;
    try {
      const { data, info } = await this.open(lvl.page, lvl.subifd)
        .extract({ left: win.ix, top: win.iy, width: win.iw, height: win.ih })
        .removeAlpha()
        .toColourspace('srgb')
        .timeout({ seconds: READ_TIMEOUT_SECONDS })
        .raw()
        .toBuffer({ resolveWithObject: true });
      if (info.channels !== 3 || info.width !== win.iw || info.height !== win.ih) {
        throw new Error(`decoder returned ${info.width}x${info.height}x${info.channels}, expected ${win.iw}x${win.ih}x3`);
      }
      inner = data;
    } catch (err) {
      throw new CorruptSlideError(
        this.path,
        `cannot decode level ${level} at (${win.ix}, ${win.iy}) ${win.iw}x${win.ih}: the image data there is damaged or unreadable (${firstLine(err)})`,
        err,
      );
    }
    return padToRequest(inner, win, width, height);
  }

  async readAssociatedImage(name: AssociatedImageName): Promise<RgbImage> {
    const entry = this.associated.find((a) => a.name === name);
    if (entry === undefined) {
      throw new InvalidArgumentError(
        `no associated image "${name}" (available: ${this.associatedImages.join(', ') || 'none'})`,
        this.path,
      );
    }
    if (entry.width * entry.height > MAX_REGION_PIXELS) {
      // Decoded whole, like a region: a "label" claiming gigapixels is damage, not a label.
      throw new CorruptSlideError(this.path, `associated image "${name}" claims ${entry.width} x ${entry.height} px, more than the ${MAX_REGION_PIXELS} px of one read: refused before decoding`);
    }
    try {
      const { data, info } = await this.open(entry.page, -1)
        .removeAlpha()
        .toColourspace('srgb')
        .timeout({ seconds: READ_TIMEOUT_SECONDS })
        .raw()
        .toBuffer({ resolveWithObject: true });
      return { data, width: info.width, height: info.height };
    } catch (err) {
      throw new CorruptSlideError(this.path, `cannot decode associated image "${name}": ${firstLine(err)}`, err);
    }
  }

  /**
   * A window of a level stored as JPEG tiles, composed from the tiles decoded one by one with
   * libjpeg's warnings as errors; null when the level is not stored so (or a tile is not a
   * complete JPEG stream): then libvips reads the window. Two reasons to decode the tiles
   * ourselves: the TIFF loader decodes damaged JPEG data (a corrupt or truncated tile of an
   * Aperio SVS) into plausible garbage without a word, where OpenSlide refuses it, so one policy
   * for both backends is that a damaged tile fails the read, naming the tile; and each tile is
   * then decoded once, where checking before a libvips read decoded it twice (3.8x the read time
   * of a mosaic's regions). libvips' own fail-on-warning misses damage that surfaces in a tile's
   * last MCU row (jpeg-tile.ts says why), so each tile's entropy-coded data is also walked
   * (entropyDamage, on the thread pool: jpegEntropyDamage), and a tile whose bytes run past the
   * end of the file fails the read too.
   */
  private async readFromStoredTiles(level: number, win: LevelWindow, wanted: ReadRegionOptions['wanted']): Promise<Buffer | null> {
    const t = this.tiffLevels[level]?.jpegTiles;
    if (t === undefined || t === null) return null;
    const c0 = Math.floor(win.ix / t.tileWidth);
    const c1 = Math.floor((win.ix + win.iw - 1) / t.tileWidth);
    const r0 = Math.floor(win.iy / t.tileHeight);
    const r1 = Math.floor((win.iy + win.ih - 1) / t.tileHeight);
    // The part of each tile inside the window, in level pixels; an unwanted one is not decoded.
    const parts: { col: number; row: number; x0: number; x1: number; y0: number; y1: number; tile: Promise<Buffer | null> | 'skip' }[] = [];
    for (let row = r0; row <= r1; row++) {
      for (let col = c0; col <= c1; col++) {
        const x0 = Math.max(win.ix, col * t.tileWidth);
        const x1 = Math.min(win.ix + win.iw, (col + 1) * t.tileWidth);
        const y0 = Math.max(win.iy, row * t.tileHeight);
        const y1 = Math.min(win.iy + win.ih, (row + 1) * t.tileHeight);
        const skip = wanted !== undefined && !wanted(x0 - win.lx, y0 - win.ly, x1 - x0, y1 - y0);
        parts.push({ col, row, x0, x1, y0, y1, tile: skip ? 'skip' : this.decodedTile(level, col, row) });
      }
    }
    const tiles = await Promise.all(parts.map((p) => p.tile));
    if (tiles.some((x) => x === null)) return null;
    const out = Buffer.allocUnsafe(win.iw * win.ih * 3);
    for (const [k, { col, row, x0, x1, y0, y1 }] of parts.entries()) {
      const tile = tiles[k] as Buffer | 'skip';
      const bytes = (x1 - x0) * 3;
      for (let y = y0; y < y1; y++) {
        const at = ((y - win.iy) * win.iw + (x0 - win.ix)) * 3;
        if (tile === 'skip') {
          out.fill(255, at, at + bytes); // unwanted: glass white, never looked at
          continue;
        }
        const src = ((y - row * t.tileHeight) * t.tileWidth + (x0 - col * t.tileWidth)) * 3;
        tile.copy(out, at, src, src + bytes);
      }
    }
    return out;
  }

  /** One stored tile decoded to RGB (tileWidth x tileHeight x 3), cached; null if not a JPEG stream. */
  private decodedTile(level: number, col: number, row: number): Promise<Buffer | null> {
    const key = `${level}:${col}:${row}`;
    const hit = this.decoded.get(key);
    if (hit !== undefined) {
      this.decoded.delete(key); // most recently used last
      this.decoded.set(key, hit);
      return hit;
    }
    const t = this.tiffLevels[level]?.jpegTiles as NonNullable<TiffLevel['jpegTiles']>;
    const tile = this.storedJpeg(level, col, row).then(async (jpeg) => {
      if (jpeg === null) return null;
      const where = `level ${level} tile (${col}, ${row}) at level pixels (${col * t.tileWidth}, ${row * t.tileHeight}) is damaged`;
      if (typeof jpeg === 'string') throw new CorruptSlideError(this.path, `${where}: ${jpeg}`);
      try {
        // A stored tile decodes to one tile: a frame header claiming more is damage (or a
        // bomb), refused by sharp from the header before it allocates anything.
        const decoding = sharp(jpeg, { failOn: 'warning', limitInputPixels: t.tileWidth * t.tileHeight })
          .removeAlpha()
          .toColourspace('srgb')
          .timeout({ seconds: READ_TIMEOUT_SECONDS })
          .raw()
          .toBuffer({ resolveWithObject: true });
        // libvips drops a libjpeg warning from the tile's last MCU row (a zero run, a shortened
        // segment: jpeg-tile.ts), so the entropy-coded data is walked too, on the thread pool
        // while it decodes (the event loop only queues it). Damage found there is the reason
        // given, ahead of the decoder's own failure; either way the decode's outcome is handled.
        const [damage, decoded] = await Promise.all([
          jpegEntropyDamage(jpeg, t.tileWidth * t.tileHeight),
          decoding.then(
            (ok) => ({ ok }),
            (err: unknown) => ({ err }),
          ),
        ]);
        if (damage !== null) throw new Error(damage);
        if ('err' in decoded) throw decoded.err;
        const { data, info } = decoded.ok;
        if (info.width !== t.tileWidth || info.height !== t.tileHeight || info.channels !== 3) {
          throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}, the level's tiles are ${t.tileWidth}x${t.tileHeight}x3`);
        }
        return data;
      } catch (err) {
        throw new CorruptSlideError(this.path, `${where}: its JPEG data does not decode cleanly (${firstLine(err)})`, err);
      }
    });
    this.decoded.set(key, tile);
    // A tile that failed is not remembered: the next read tries it again (and fails again).
    tile.catch(() => this.decoded.delete(key));
    while (this.decoded.size > DECODED_TILES) this.decoded.delete(this.decoded.keys().next().value as string);
    return tile;
  }

  storedTileSize(level: number): { width: number; height: number } | null {
    const t = this.tiffLevels[level]?.jpegTiles;
    return t === undefined || t === null ? null : { width: t.tileWidth, height: t.tileHeight };
  }

  async readStoredTile(level: number, col: number, row: number): Promise<Buffer | null> {
    const jpeg = await this.storedJpeg(level, col, row);
    return typeof jpeg === 'string' ? null : jpeg;
  }

  /**
   * A stored tile as a complete JPEG file; null when there is none to hand out (no such tile, too
   * few or too many bytes to be one, or not a JPEG stream): then libvips reads the window; or why
   * its bytes are damage: they run past the end of the file (a truncated file or a damaged byte
   * count), which libtiff reads as a short tile that decodes to garbage without an error, and
   * which OpenSlide refuses.
   */
  private async storedJpeg(level: number, col: number, row: number): Promise<Buffer | string | null> {
    const t = this.tiffLevels[level]?.jpegTiles;
    if (t === undefined || t === null || !Number.isInteger(col) || !Number.isInteger(row) || col < 0 || row < 0 || col >= t.cols || row >= t.rows) return null;
    const i = row * t.cols + col;
    const offset = t.offsets[i] as number;
    const length = t.byteCounts[i] as number;
    if (length < 4 || length > MAX_STORED_TILE_BYTES) return null;
    this.file ??= open(this.path, 'r');
    const fh = await this.file;
    const data = Buffer.alloc(length);
    const { bytesRead } = await fh.read(data, 0, length, offset);
    if (bytesRead !== length) return `its ${length} bytes at byte ${offset} run past the end of the file (${bytesRead} there): the file is truncated or the byte count damaged`;
    return completeJpeg(data, t.tables, t.rgb);
  }

  async close(): Promise<void> {
    // sharp opens the file per request; only the stored-tile fast path keeps a handle.
    const file = this.file;
    this.file = null;
    await (await file?.catch(() => null))?.close();
  }
}
