/**
 * Whole-slide thumbnails: the slide shrunk to fit a size, read from the coarsest pyramid level that
 * still has the resolution, for the review server's worklist and the reports' figures.
 */
import sharp from 'sharp';
import { InvalidArgumentError } from './errors.js';
import { MAX_REGION_PIXELS, type RgbImage, type SlideLevel, type SlideSource } from './slide-source.js';

/** Index of the coarsest level whose downsample is <= `downsample` (within the tolerance); 0 when none is. */
export function bestLevelForDownsample(levels: readonly SlideLevel[], downsample: number, tolerance = 0.01): number {
  let best = 0;
  let bestDs = -Infinity;
  levels.forEach((l, i) => {
    if (l.downsample <= downsample * (1 + tolerance) && l.downsample > bestDs) {
      best = i;
      bestDs = l.downsample;
    }
  });
  return best;
}

export interface ThumbnailOptions {
  quality?: number;
  /** Read the chosen level in horizontal bands of at most this many pixels (levels of single-level slides are huge). */
  maxReadPixels?: number;
}

export const THUMBNAIL_DEFAULTS: Readonly<Required<ThumbnailOptions>> = { quality: 80, maxReadPixels: 1 << 24 };

/** Size of the thumbnail of a width x height image fitting maxSide (never enlarged). */
export function thumbnailSize(width: number, height: number, maxSide: number): { width: number; height: number } {
  const s = Math.min(1, maxSide / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * s)), height: Math.max(1, Math.round(height * s)) };
}

/**
 * The whole slide as RGB, its longer side is maxSide (or the slide's, when smaller), read from
 * the coarsest level still at least that large. A level larger than maxReadPixels (a slide
 * without a pyramid) is read in bands, each box-shrunk by the same integer factor (bands of a
 * multiple of it, so they join without seams), then resized once.
 */
export async function readThumbnail(source: SlideSource, maxSide: number, options: Omit<ThumbnailOptions, 'quality'> = {}): Promise<RgbImage> {
  const o = { ...THUMBNAIL_DEFAULTS, ...options };
  if (!Number.isSafeInteger(maxSide) || maxSide < 1) throw new InvalidArgumentError(`thumbnail size ${maxSide} is not a positive integer`);
  const out = thumbnailSize(source.width, source.height, maxSide);
  const level = bestLevelForDownsample(source.levels, source.width / out.width, 0);
  const lvl = source.levels[level] as SlideLevel;
  const limit = Math.min(o.maxReadPixels, MAX_REGION_PIXELS);
  let image: RgbImage;
  if (lvl.width * lvl.height <= limit) {
    image = await source.readRegion(level, 0, 0, lvl.width, lvl.height);
  } else {
    const f = Math.max(1, Math.floor(Math.min(lvl.width / out.width, lvl.height / out.height)));
    const bandRows = Math.max(f, Math.floor(limit / lvl.width / f) * f);
    const bands: Buffer[] = [];
    let rows = 0;
    for (let y = 0; y < lvl.height; y += bandRows) {
      const h = Math.min(bandRows, lvl.height - y);
      // ceil: readRegion floors level-0 / downsample, and must land on level row y.
      const band = await source.readRegion(level, 0, Math.ceil(y * lvl.downsample), lvl.width, h);
      const shrunk = boxShrink(band, f);
      bands.push(shrunk.data);
      rows += shrunk.height;
    }
    image = { data: Buffer.concat(bands), width: Math.ceil(lvl.width / f), height: rows };
  }
  if (image.width === out.width && image.height === out.height) return image;
  const { data, info } = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(out.width, out.height, { fit: 'fill', kernel: 'lanczos3' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

/** readThumbnail as a JPEG. */
export async function renderThumbnail(source: SlideSource, maxSide: number, options: ThumbnailOptions = {}): Promise<Buffer> {
  const o = { ...THUMBNAIL_DEFAULTS, ...options };
  const image = await readThumbnail(source, maxSide, o);
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).jpeg({ quality: o.quality }).toBuffer();
}

/** Mean of every f x f block (partial blocks at the right and bottom edges average what they hold). */
export function boxShrink(img: RgbImage, f: number): RgbImage {
  if (f === 1) return img;
  const w = Math.ceil(img.width / f);
  const h = Math.ceil(img.height / f);
  const out = Buffer.alloc(w * h * 3);
  const sums = new Uint32Array(w * 3);
  for (let oy = 0; oy < h; oy++) {
    sums.fill(0);
    const y1 = Math.min(img.height, (oy + 1) * f);
    for (let y = oy * f; y < y1; y++) {
      let s = y * img.width * 3;
      for (let x = 0; x < img.width; x++, s += 3) {
        const o = Math.floor(x / f) * 3;
        sums[o] = (sums[o] as number) + (img.data[s] as number);
        sums[o + 1] = (sums[o + 1] as number) + (img.data[s + 1] as number);
        sums[o + 2] = (sums[o + 2] as number) + (img.data[s + 2] as number);
      }
    }
    const bh = y1 - oy * f;
    for (let ox = 0; ox < w; ox++) {
      const n = (Math.min(img.width, (ox + 1) * f) - ox * f) * bh;
      for (let c = 0; c < 3; c++) out[(oy * w + ox) * 3 + c] = Math.round((sums[ox * 3 + c] as number) / n);
    }
  }
  return { data: out, width: w, height: h };
}
