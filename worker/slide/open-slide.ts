/**
 * Opens a slide with the right backend, chosen from the file's content (never its extension):
 *
 *   TIFF family  -> sharp, unless a page uses a codec libvips lacks or the file is a vendor TIFF
 *                   only OpenSlide understands (NDPI); if sharp cannot decode a probe tile we
 *                   fall back to OpenSlide.
 *   anything else -> OpenSlide when it recognises the file (MRXS, VMS, ...), else sharp for plain
 *                   raster images (JPEG, PNG, ...), else a clear "unsupported format" error.
 */
import { open as openFile, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import sharp, { type Metadata } from 'sharp';
import { BackendUnavailableError, CorruptSlideError, InvalidArgumentError, SlideError, SlideNotFoundError, TooLargeSlideError, UnsupportedFormatError } from './errors.js';
import { OPENSLIDE_REMEDY, OpenSlideSource, detectOpenSlideVendor, openSlideAvailable } from './openslide-source.js';
import { SharpSlideSource } from './sharp-source.js';
import type { BackendName, Mpp, MppSource, SlideSource } from './slide-source.js';
import { TiffStructureError, isTiffMagic, readTiffDirectories, type TiffFile } from './tiff-directory.js';
import { CONVERT_HINT, checkDecodeBounds, checkRasterBounds, type CheckedDirectory } from './decode-bounds.js';
import { PLAUSIBLE_MPP, describeTiffLayout, type TiffSlideLayout } from './tiff-metadata.js';

export interface OpenSlideOptions {
  /** Microns per level-0 pixel to use instead of (or where there is no) slide metadata. */
  mpp?: number | undefined;
  /** Microns per level-0 pixel to use only where the slide has none (ignored when `mpp` is set). */
  fallbackMpp?: number | undefined;
  /** Force a backend; 'auto' (default) picks per file. */
  backend?: BackendName | 'auto' | undefined;
}

/** Extensions of formats that exist only as OpenSlide formats, to name the right remedy when it is missing. */
const OPENSLIDE_ONLY_EXTENSIONS = new Set(['.mrxs', '.vms', '.vmu', '.ndpi', '.scn', '.bif', '.svslide']);

const RASTER_FORMATS = new Set(['jpeg', 'png', 'webp', 'jp2', 'heif', 'tiff']);

function checkMppOverride(path: string, mpp: number | undefined, flag = '--mpp'): number | undefined {
  if (mpp === undefined) return undefined;
  if (!Number.isFinite(mpp) || mpp < PLAUSIBLE_MPP.min || mpp > PLAUSIBLE_MPP.max) {
    throw new InvalidArgumentError(`${flag} ${mpp} is not a plausible microns-per-pixel (expected ${PLAUSIBLE_MPP.min}..${PLAUSIBLE_MPP.max}, e.g. 0.25 at 40x, 0.5 at 20x)`, path);
  }
  return mpp;
}

function overrideMpp<T extends { mpp: Mpp | null; mppSource: MppSource; mppNote: string | null }>(layout: T, mpp: number | undefined): T {
  return mpp === undefined ? layout : { ...layout, mpp: { x: mpp, y: mpp }, mppSource: 'override', mppNote: null };
}

/**
 * Bounds on what a file may claim before any pixel is decoded. A few kilobytes of TIFF header can
 * describe a 10^12-pixel image (tiles that all point at the same bytes) and a small PNG a
 * 40000^2 one: without a pyramid, every tissue overview would decode all of it.
 *   singleLevelPixels: the level a tissue overview reads (the coarsest one at least as large as
 *     the overview) may hold at most this many pixels (16384^2): for an image without a pyramid
 *     that is level 0, and a pyramid whose levels stop far above overview size (a huge level 0
 *     and a thumbnail-sized page) is no better;
 *   level0Pixels: no scanner writes more than this at level 0 (2^36, e.g. 260000 x 260000).
 * What one read may decode, and how far stored data may expand, is bounded in decode-bounds.ts.
 */
export const SLIDE_LIMITS = { singleLevelPixels: 2 ** 28, level0Pixels: 2 ** 36 } as const;

/**
 * Longest side of the largest overview the pipeline reads (worker/tissue/tissue-map.ts: the mask
 * is at most 4096 px; thumbnails for the viewer and reports are smaller).
 */
const OVERVIEW_MAX_SIDE = 4096;

/** The level readOverview (worker/tissue/overview.ts) picks for the largest overview: the coarsest not smaller than it. */
export function overviewLevel(levels: readonly { width: number; height: number }[]): number {
  const l0 = levels[0];
  if (l0 === undefined) return 0;
  const target = Math.max(1, Math.max(l0.width, l0.height) / OVERVIEW_MAX_SIDE);
  const outW = Math.max(1, Math.round(l0.width / target));
  const outH = Math.max(1, Math.round(l0.height / target));
  let level = 0;
  levels.forEach((l, i) => {
    if (l.width >= outW && l.height >= outH) level = i;
  });
  return level;
}

function checkBounded(path: string, levels: readonly { width: number; height: number }[]): void {
  const l0 = levels[0];
  if (l0 === undefined) return;
  const px = l0.width * l0.height;
  if (px > SLIDE_LIMITS.level0Pixels) {
    throw new CorruptSlideError(path, `it claims ${l0.width} x ${l0.height} px at full resolution, more than any scanner writes (${SLIDE_LIMITS.level0Pixels} px): refused before decoding`);
  }
  if (levels.length === 1 && px > SLIDE_LIMITS.singleLevelPixels) {
    throw new TooLargeSlideError(
      path,
      `${l0.width} x ${l0.height} px in a single level (no pyramid): larger than ${SLIDE_LIMITS.singleLevelPixels} px, every overview would decode all of it; ${CONVERT_HINT}`,
    );
  }
  const i = overviewLevel(levels);
  const lvl = levels[i] as { width: number; height: number };
  if (lvl.width * lvl.height > SLIDE_LIMITS.singleLevelPixels) {
    const next = levels[i + 1];
    throw new TooLargeSlideError(
      path,
      `its pyramid stops too early: level ${i} (${lvl.width} x ${lvl.height} px) is the coarsest large enough for an overview${next === undefined ? '' : ` (the next is ${next.width} x ${next.height} px)`}, ` +
        `and it holds more than ${SLIDE_LIMITS.singleLevelPixels} px, every overview would decode all of it; ${CONVERT_HINT}`,
    );
  }
}

/** The TIFF directories a SharpSlideSource or OpenSlide would decode for this layout. */
function decodedDirectories(tiff: TiffFile, layout: TiffSlideLayout): CheckedDirectory[] {
  const out: CheckedDirectory[] = [];
  layout.levels.forEach((l, i) => {
    const page = tiff.pages[l.page];
    const dir = l.subifd >= 0 ? page?.subIfds[l.subifd] : page;
    if (dir !== undefined) out.push({ dir, what: `level ${i}`, isLevel: true });
  });
  for (const a of layout.associated) {
    const dir = tiff.pages[a.page];
    if (dir !== undefined) out.push({ dir, what: `the ${a.name} image`, isLevel: false });
  }
  return out;
}

async function probe(source: SlideSource): Promise<void> {
  // Decode a small window of the coarsest level: cheap, and it exercises the codec of the file.
  const last = source.levels.length - 1;
  const lvl = source.levels[last];
  if (lvl === undefined) return;
  await source.readRegion(last, 0, 0, Math.min(32, lvl.width), Math.min(32, lvl.height));
}

function openWithOpenSlide(path: string, format: string, mpp: number | undefined): SlideSource {
  if (!openSlideAvailable()) throw new BackendUnavailableError(path, format, OPENSLIDE_REMEDY);
  const source = OpenSlideSource.open(path, mpp);
  try {
    checkBounded(path, source.levels);
  } catch (err) {
    void source.close();
    throw err;
  }
  return source;
}

async function openTiff(path: string, options: OpenSlideOptions, mpp: number | undefined): Promise<SlideSource> {
  let layout: TiffSlideLayout;
  let tiff: TiffFile;
  try {
    tiff = await readTiffDirectories(path);
    layout = describeTiffLayout(tiff);
  } catch (err) {
    if (!(err instanceof TiffStructureError)) throw err;
    if (options.backend === 'openslide' || (options.backend !== 'sharp' && detectOpenSlideVendor(path) !== null)) return openWithOpenSlide(path, 'this TIFF', mpp);
    throw new CorruptSlideError(path, `damaged TIFF: ${err.message}`, err);
  }
  // Both backends decode these directories through libtiff, except NDPI, whose one-strip JPEG
  // levels OpenSlide reads piecewise through their restart markers (and whose pyramid OpenSlide
  // reports itself: checked in openWithOpenSlide).
  if (layout.vendor !== 'hamamatsu') {
    checkBounded(path, layout.levels);
    checkDecodeBounds(path, decodedDirectories(tiff, layout), tiff.fileSize, SLIDE_LIMITS.singleLevelPixels);
  }
  const wantOpenSlide = options.backend === 'openslide' || (options.backend !== 'sharp' && layout.needsOpenSlide !== null);
  if (wantOpenSlide) return openWithOpenSlide(path, layout.needsOpenSlide ?? 'this TIFF', mpp);

  const source = new SharpSlideSource({ path, ...overrideMpp(layout, mpp) });
  try {
    await probe(source);
    return source;
  } catch (err) {
    // The probe may have opened the file for the stored-tile check: release it before falling back.
    await source.close();
    if (options.backend !== 'sharp' && openSlideAvailable() && detectOpenSlideVendor(path) !== null) {
      return openWithOpenSlide(path, 'this TIFF', mpp);
    }
    throw err;
  }
}

async function openRaster(path: string, mpp: number | undefined): Promise<SlideSource | null> {
  let meta: Metadata;
  try {
    meta = await sharp(path, { limitInputPixels: false }).metadata();
  } catch {
    return null;
  }
  if (meta.format === undefined || !RASTER_FORMATS.has(meta.format) || !meta.width || !meta.height) return null;
  checkBounded(path, [{ width: meta.width, height: meta.height }]);
  checkRasterBounds(path, meta.format.toUpperCase(), meta.width, meta.height, meta.channels ?? 3, meta.depth);
  const source = new SharpSlideSource({
    path,
    vendor: 'image',
    levels: [{ width: meta.width, height: meta.height, downsample: 1, page: 0, subifd: -1 }],
    associated: [],
    ...overrideMpp({ mpp: null, mppSource: null, mppNote: `a plain ${meta.format} image carries no scan resolution` }, mpp),
    objectivePower: null,
    properties: { 'image.format': meta.format },
  });
  try {
    await probe(source);
  } catch (err) {
    await source.close();
    throw err;
  }
  return source;
}

/** Opens `path` as a slide. Every failure is a SlideError with a message a person can act on. */
export async function openSlide(path: string, options: OpenSlideOptions = {}): Promise<SlideSource> {
  const fallback = options.mpp === undefined ? checkMppOverride(path, options.fallbackMpp, '--fallback-mpp') : undefined;
  const source = await openSlideWithMpp(path, options);
  if (source.mpp !== null || fallback === undefined) return source;
  // No scan resolution in the file: open it again with the fallback as its override (the
  // backends take the mpp at open; a slide is opened once per stage, so this costs little).
  await source.close();
  return openSlideWithMpp(path, { ...options, mpp: fallback });
}

async function openSlideWithMpp(path: string, options: OpenSlideOptions): Promise<SlideSource> {
  const mpp = checkMppOverride(path, options.mpp);
  let size: number;
  try {
    const st = await stat(path);
    if (st.isDirectory()) throw new SlideNotFoundError(path, 'is a directory, not a slide file (for MIRAX give the .mrxs file beside its folder)');
    size = st.size;
  } catch (err) {
    if (err instanceof SlideError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new SlideNotFoundError(path, code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : `cannot stat: ${String(err)}`);
  }
  if (size === 0) throw new CorruptSlideError(path, 'the file is empty');

  const head = Buffer.alloc(16);
  const fh = await openFile(path, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new SlideNotFoundError(path, err.code === 'EACCES' ? 'permission denied' : `cannot open: ${err.message}`);
  });
  try {
    await fh.read(head, 0, 16, 0);
  } finally {
    await fh.close();
  }

  // TIFFs go through our directory reader whichever backend decodes them, so that both refuse
  // the same hostile files before decoding (openTiff honours --backend).
  if (isTiffMagic(head)) return openTiff(path, options, mpp);
  if (options.backend === 'openslide') return openWithOpenSlide(path, 'this file', mpp);

  if (options.backend !== 'sharp' && detectOpenSlideVendor(path) !== null) return openWithOpenSlide(path, 'this file', mpp);
  const ext = extname(path).toLowerCase();
  if (OPENSLIDE_ONLY_EXTENSIONS.has(ext) && !openSlideAvailable()) {
    throw new BackendUnavailableError(path, `a ${ext} slide`, OPENSLIDE_REMEDY);
  }
  const raster = await openRaster(path, mpp);
  if (raster !== null) return raster;
  const hex = head.subarray(0, 8).toString('hex').replace(/(..)/g, '$1 ').trim();
  throw new UnsupportedFormatError(
    path,
    `not a slide format flashslide reads (first bytes ${hex}; expected TIFF/SVS/OME-TIFF, an OpenSlide format such as NDPI or MRXS, or a JPEG/PNG image)`,
  );
}
