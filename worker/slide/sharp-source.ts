/**
 * SlideSource over sharp/libvips for TIFF-family slides (Aperio SVS with JPEG tiles, generic tiled
 * pyramidal TIFF, OME-TIFF) and plain raster images. libvips decodes on demand, so an extract from
 * a tiled page touches only the tiles under the rectangle.
 */
import { open, type FileHandle } from 'node:fs/promises';
import sharp, { type Sharp, type SharpOptions } from 'sharp';
import { completeJpeg } from './jpeg-tile.js';
import { CorruptSlideError, InvalidArgumentError, firstLine } from './errors.js';
import { checkRegionRequest, padToRequest } from './region-bounds.js';
import { MAX_REGION_PIXELS, type AssociatedImageName, type Mpp, type MppSource, type RgbImage, type SlideLevel, type SlideSource } from './slide-source.js';
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
  /** Per level, the JPEG tiles already checked to decode cleanly (checkStoredTiles). */
  private readonly checkedTiles = new Map<number, Set<number>>();

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

  async readRegion(level: number, x: number, y: number, width: number, height: number): Promise<RgbImage> {
    const win = checkRegionRequest(this.path, this.levels, level, x, y, width, height);
    if (win.iw === 0 || win.ih === 0) return padToRequest(null, win, width, height);
    const lvl = this.tiffLevels[level] as TiffLevel;
    await this.checkStoredTiles(level, win);
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
   * The JPEG tiles under a window, each decoded once on its own with libjpeg's warnings as errors,
   * before the window is read. The TIFF loader decodes damaged JPEG data (a corrupt or truncated
   * tile of an Aperio SVS) into plausible garbage without a word; OpenSlide refuses it. One policy
   * for both backends: a damaged tile fails the read, and so the slide, naming the tile. Each
   * tile is checked once per open slide.
   */
  private async checkStoredTiles(level: number, win: { ix: number; iy: number; iw: number; ih: number }): Promise<void> {
    const t = this.tiffLevels[level]?.jpegTiles;
    if (t === undefined || t === null) return;
    let checked = this.checkedTiles.get(level);
    if (checked === undefined) {
      checked = new Set();
      this.checkedTiles.set(level, checked);
    }
    const work: Promise<void>[] = [];
    for (let row = Math.floor(win.iy / t.tileHeight); row <= Math.floor((win.iy + win.ih - 1) / t.tileHeight); row++) {
      for (let col = Math.floor(win.ix / t.tileWidth); col <= Math.floor((win.ix + win.iw - 1) / t.tileWidth); col++) {
        const i = row * t.cols + col;
        if (checked.has(i)) continue;
        checked.add(i);
        work.push(
          this.readStoredTile(level, col, row).then(async (jpeg) => {
            if (jpeg === null) return;
            try {
              // A stored tile decodes to one tile: a frame header claiming more is damage (or a
              // bomb), refused by sharp from the header before it allocates anything.
              await sharp(jpeg, { failOn: 'warning', limitInputPixels: t.tileWidth * t.tileHeight }).raw().toBuffer();
            } catch (err) {
              checked.delete(i);
              throw new CorruptSlideError(this.path, `level ${level} tile (${col}, ${row}) at level pixels (${col * t.tileWidth}, ${row * t.tileHeight}) is damaged: its JPEG data does not decode cleanly (${firstLine(err)})`, err);
            }
          }),
        );
      }
    }
    await Promise.all(work);
  }

  storedTileSize(level: number): { width: number; height: number } | null {
    const t = this.tiffLevels[level]?.jpegTiles;
    return t === undefined || t === null ? null : { width: t.tileWidth, height: t.tileHeight };
  }

  async readStoredTile(level: number, col: number, row: number): Promise<Buffer | null> {
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
    if (bytesRead !== length) return null;
    return completeJpeg(data, t.tables, t.rgb);
  }

  async close(): Promise<void> {
    // sharp opens the file per request; only the stored-tile fast path keeps a handle.
    const file = this.file;
    this.file = null;
    await (await file?.catch(() => null))?.close();
  }
}
