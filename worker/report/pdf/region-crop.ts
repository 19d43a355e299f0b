/**
 * High-resolution crops of anomalous regions: which square of the slide to show around a
 * region, which pyramid level to read it from, and the read itself. One crop is read at a time
 * and handed back as a JPEG, so memory holds one crop's pixels however many regions a report has;
 * a level too large for one read (a slide without a pyramid) is read in bands.
 */
import sharp from 'sharp';
import type { SlideLevel, SlideSource } from '../../slide/slide-source.js';
import { bestLevelForDownsample } from '../../slide/thumbnail.js';
import type { Box } from '../../store/heatmap-figure.js';

export interface CropOptions {
  /** Side of the crop image in pixels. */
  targetPx: number;
  /** Context around the region on each side, as a fraction of its larger side... */
  marginFraction: number;
  /** ...and at least this much, in µm. */
  minMarginUm: number;
  jpegQuality: number;
  /** Largest single read in pixels; larger fields are read in horizontal bands. */
  maxReadPixels: number;
}

export const CROP_DEFAULTS: Readonly<CropOptions> = { targetPx: 800, marginFraction: 0.35, minMarginUm: 60, jpegQuality: 80, maxReadPixels: 1 << 24 };

export interface CropField extends Box {
  /** The level read from and its downsample. */
  level: number;
  levelDownsample: number;
  /** Side of the crop image in pixels (the field is square). */
  side: number;
  /** µm per pixel of the crop image. */
  umPerPx: number;
}

/**
 * The square field around a region's bounds: its larger side plus margins, never finer than the
 * slide's own pixels (a small region is shown at native resolution with more context instead of
 * enlarged), kept inside the slide where the slide is large enough.
 */
export function planCropField(
  bbox: readonly [number, number, number, number],
  slide: { width: number; height: number; levels: readonly SlideLevel[]; mpp: number },
  options: Partial<CropOptions> = {},
): CropField {
  const o = { ...CROP_DEFAULTS, ...options };
  const [bx, by, bw, bh] = bbox;
  const larger = Math.max(bw, bh, 1);
  const margin = Math.max(larger * o.marginFraction, o.minMarginUm / slide.mpp);
  const side0 = Math.ceil(Math.max(larger + 2 * margin, o.targetPx));
  const place = (centre: number, extent: number): number => {
    const start = Math.round(centre - side0 / 2);
    return extent >= side0 ? Math.min(Math.max(0, start), extent - side0) : start;
  };
  const downsample = side0 / o.targetPx;
  const level = bestLevelForDownsample(slide.levels, downsample);
  return {
    x: place(bx + bw / 2, slide.width),
    y: place(by + bh / 2, slide.height),
    width: side0,
    height: side0,
    level,
    levelDownsample: slide.levels[level]?.downsample ?? 1,
    side: o.targetPx,
    umPerPx: downsample * slide.mpp,
  };
}

/** Reads `field` from the slide and returns it `field.side` pixels square, as a JPEG. */
export async function readCropJpeg(source: SlideSource, field: CropField, options: Partial<CropOptions> = {}): Promise<Buffer> {
  const o = { ...CROP_DEFAULTS, ...options };
  const ds = field.levelDownsample;
  const levelSide = Math.max(1, Math.ceil(field.width / ds));
  const raw = { width: field.side, height: field.side, channels: 3 as const };
  if (levelSide * levelSide <= o.maxReadPixels) {
    const img = await source.readRegion(field.level, field.x, field.y, levelSide, levelSide);
    return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
      .resize(field.side, field.side, { fit: 'fill', kernel: 'lanczos3' })
      .jpeg({ quality: o.jpegQuality })
      .toBuffer();
  }
  // Bands of whole output rows, each shrunk on its own: memory stays at one band.
  const out = Buffer.alloc(field.side * field.side * 3);
  const bandOut = Math.max(1, Math.floor(o.maxReadPixels / levelSide / (levelSide / field.side)));
  for (let y0 = 0; y0 < field.side; y0 += bandOut) {
    const rows = Math.min(bandOut, field.side - y0);
    const ly0 = Math.floor((y0 * levelSide) / field.side);
    const ly1 = Math.max(ly0 + 1, Math.ceil(((y0 + rows) * levelSide) / field.side));
    const band = await source.readRegion(field.level, field.x, field.y + Math.round(ly0 * ds), levelSide, ly1 - ly0);
    const shrunk = await sharp(band.data, { raw: { width: band.width, height: band.height, channels: 3 } })
      .resize(field.side, rows, { fit: 'fill', kernel: 'lanczos3' })
      .raw()
      .toBuffer();
    shrunk.copy(out, y0 * field.side * 3);
  }
  return sharp(out, { raw }).jpeg({ quality: o.jpegQuality }).toBuffer();
}
