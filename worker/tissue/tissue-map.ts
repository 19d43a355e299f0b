/**
 * The tissue mask placed in level-0 coordinates, with an integral image so that "how much tissue is
 * in this level-0 rectangle" costs O(1). This is what the region planner consumes.
 */
import sharp from 'sharp';
import type { SlideSource } from '../slide/slide-source.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { readOverview, type Overview } from './overview.js';
import { detectTissueFast, type TissueDetection, type TissueDetectionOptions } from './tissue-mask.js';

export interface TissueMapOptions extends Partial<TissueDetectionOptions> {
  /** Mask resolution in µm per mask pixel when the slide's mpp is known (half a 16 px patch at 0.5 µm/px). */
  maskMicronsPerPixel?: number;
  /** Longest side of the mask; also the size used when the slide has no mpp. */
  maxSide?: number;
  /** Tissue pieces smaller than this many µm² are dropped (when mpp is known). */
  minComponentMicrons2?: number;
}

const MASK_DEFAULTS = { maskMicronsPerPixel: 4, maxSide: 4096, noMppSide: 2048, minComponentMicrons2: 50 * 50 } as const;

export interface TissueCount {
  /** Mask pixels the rectangle touches, and how many of them are tissue. */
  readonly total: number;
  readonly tissue: number;
}

export class TissueMap {
  /** Level-0 pixels per mask pixel. */
  readonly downsampleX: number;
  readonly downsampleY: number;
  private readonly integral: Uint32Array;

  constructor(
    readonly detection: TissueDetection,
    readonly slideWidth: number,
    readonly slideHeight: number,
    /** The slide image the mask was computed on (same size as the mask), for thumbnails and overlays. */
    readonly overview: Overview | null = null,
  ) {
    const { width: w, height: h, mask } = detection;
    this.downsampleX = slideWidth / w;
    this.downsampleY = slideHeight / h;
    const integral = new Uint32Array((w + 1) * (h + 1));
    for (let y = 0; y < h; y++) {
      let row = 0;
      for (let x = 0; x < w; x++) {
        row += mask[y * w + x] as number;
        integral[(y + 1) * (w + 1) + x + 1] = (integral[y * (w + 1) + x + 1] as number) + row;
      }
    }
    this.integral = integral;
  }

  get width(): number {
    return this.detection.width;
  }
  get height(): number {
    return this.detection.height;
  }
  get tissueFraction(): number {
    return this.detection.tissueFraction;
  }

  /** Mask pixels touched by the level-0 rectangle [x, x+w) x [y, y+h), clipped to the slide. */
  count(x: number, y: number, w: number, h: number): TissueCount {
    const mw = this.detection.width;
    const mh = this.detection.height;
    const x0 = Math.max(0, Math.floor(x / this.downsampleX));
    const y0 = Math.max(0, Math.floor(y / this.downsampleY));
    const x1 = Math.min(mw, Math.ceil((x + w) / this.downsampleX));
    const y1 = Math.min(mh, Math.ceil((y + h) / this.downsampleY));
    if (x1 <= x0 || y1 <= y0) return { total: 0, tissue: 0 };
    const I = this.integral;
    const s = mw + 1;
    const tissue = (I[y1 * s + x1] as number) - (I[y0 * s + x1] as number) - (I[y1 * s + x0] as number) + (I[y0 * s + x0] as number);
    return { total: (x1 - x0) * (y1 - y0), tissue };
  }

  /** The mask as a greyscale PNG (white = tissue), one pixel per mask cell. */
  async toPng(): Promise<Buffer> {
    const { width, height, mask } = this.detection;
    // 0/1 to 0/255 by libvips (on the thread pool), not a loop over 16 Mpx on the event loop.
    return sharp(mask, { raw: { width, height, channels: 1 } }).threshold(1).toColourspace('b-w').png().toBuffer();
  }

  async writePng(path: string): Promise<void> {
    await writeFileAtomic(path, await this.toPng());
  }

  /** Rebuilds a map from a mask PNG written by toPng (white = tissue). */
  static async fromPng(png: Buffer, slideWidth: number, slideHeight: number, mode: TissueDetection['mode']): Promise<TissueMap> {
    const { data, info } = await sharp(png).greyscale().raw().toBuffer({ resolveWithObject: true });
    const mask = new Uint8Array(info.width * info.height);
    let count = 0;
    for (let i = 0; i < mask.length; i++) {
      mask[i] = (data[i * info.channels] as number) >= 128 ? 1 : 0;
      count += mask[i] as number;
    }
    const detection: TissueDetection = {
      width: info.width,
      height: info.height,
      mask,
      mode,
      threshold: Number.NaN,
      tissueFraction: count / mask.length,
      components: Number.NaN,
    };
    return new TissueMap(detection, slideWidth, slideHeight);
  }
}

export async function findTissue(source: SlideSource, options: TissueMapOptions = {}): Promise<TissueMap> {
  const { maskMicronsPerPixel, maxSide, minComponentMicrons2, ...detectOptions } = options;
  const longest = Math.max(source.width, source.height);
  const side = maxSide ?? MASK_DEFAULTS.maxSide;
  let downsample: number;
  if (source.mpp !== null) {
    const mpp0 = (source.mpp.x + source.mpp.y) / 2;
    downsample = Math.max(1, (maskMicronsPerPixel ?? MASK_DEFAULTS.maskMicronsPerPixel) / mpp0, longest / side);
    const pixelMicrons = downsample * mpp0;
    detectOptions.minComponentFraction ??=
      (minComponentMicrons2 ?? MASK_DEFAULTS.minComponentMicrons2) / (pixelMicrons * pixelMicrons) / ((source.width / downsample) * (source.height / downsample));
  } else {
    downsample = Math.max(1, longest / Math.min(side, MASK_DEFAULTS.noMppSide));
  }
  const overview = await readOverview(source, downsample);
  return new TissueMap(await detectTissueFast(overview.image, detectOptions), source.width, source.height, overview);
}
