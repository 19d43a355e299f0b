/**
 * Shared request checks and edge handling for readRegion, so every backend rejects the same bad
 * requests with the same words and pads off-slide pixels with the same white.
 */
import { InvalidArgumentError } from './errors.js';
import { MAX_REGION_PIXELS, type RgbImage, type SlideLevel } from './slide-source.js';

export interface LevelWindow {
  /** Requested rectangle in level pixels (may extend past the level). */
  readonly lx: number;
  readonly ly: number;
  /** The part of it inside the level. */
  readonly ix: number;
  readonly iy: number;
  readonly iw: number;
  readonly ih: number;
}

export function checkRegionRequest(
  path: string,
  levels: readonly SlideLevel[],
  level: number,
  x: number,
  y: number,
  width: number,
  height: number,
): LevelWindow {
  const lvl = levels[level];
  if (!Number.isInteger(level) || lvl === undefined) {
    throw new InvalidArgumentError(`level ${level} does not exist (the slide has levels 0..${levels.length - 1})`, path);
  }
  for (const [name, v] of [['x', x], ['y', y], ['width', width], ['height', height]] as const) {
    if (!Number.isSafeInteger(v)) throw new InvalidArgumentError(`region ${name}=${v} is not an integer`, path);
  }
  if (width < 1 || height < 1) throw new InvalidArgumentError(`region ${width}x${height} is empty`, path);
  if (width * height > MAX_REGION_PIXELS) {
    throw new InvalidArgumentError(
      `region ${width}x${height} exceeds the ${MAX_REGION_PIXELS} pixel limit of one read; read it in tiles`,
      path,
    );
  }
  const lx = Math.floor(x / lvl.downsample);
  const ly = Math.floor(y / lvl.downsample);
  const ix = Math.max(0, lx);
  const iy = Math.max(0, ly);
  const iw = Math.max(0, Math.min(lvl.width, lx + width) - ix);
  const ih = Math.max(0, Math.min(lvl.height, ly + height) - iy);
  return { lx, ly, ix, iy, iw, ih };
}

/** Places the decoded in-slide part into a white canvas of the requested size. */
export function padToRequest(inner: Buffer | null, win: LevelWindow, width: number, height: number): RgbImage {
  if (inner !== null && win.iw === width && win.ih === height) return { data: inner, width, height };
  const out = Buffer.alloc(width * height * 3, 255);
  if (inner !== null && win.iw > 0 && win.ih > 0) {
    const dx = win.ix - win.lx;
    const dy = win.iy - win.ly;
    const rowBytes = win.iw * 3;
    for (let r = 0; r < win.ih; r++) {
      inner.copy(out, ((dy + r) * width + dx) * 3, r * rowBytes, (r + 1) * rowBytes);
    }
  }
  return { data: out, width, height };
}
