/**
 * Turns raw TIFF directories into slide structure: which pages are pyramid levels, which are
 * associated images, the vendor, and microns per pixel with where it came from.
 */
import { COMPRESSION_NEEDS_OPENSLIDE, TiffTag, type TiffDirectory, type TiffFile } from './tiff-directory.js';
import type { Mpp, MppSource } from './slide-source.js';

export interface TiffLevel {
  readonly width: number;
  readonly height: number;
  readonly downsample: number;
  /** What sharp needs to open this level: a page, optionally a SubIFD of that page. */
  readonly page: number;
  readonly subifd: number;
  /** Where the level is stored as baseline JPEG tiles: their grid and bytes; null otherwise. */
  readonly jpegTiles?: StoredJpegTiles | null;
}

/**
 * A level stored as 8-bit RGB/YCbCr JPEG tiles (compression 7, chunky): enough to hand out a
 * stored tile as a complete JPEG file without decoding it (the tile viewer's fast path).
 */
export interface StoredJpegTiles {
  readonly tileWidth: number;
  readonly tileHeight: number;
  readonly cols: number;
  readonly rows: number;
  readonly offsets: readonly number[];
  readonly byteCounts: readonly number[];
  /** The shared quantisation and Huffman tables (JPEGTables), an abbreviated JPEG stream. */
  readonly tables: Buffer | null;
  /** Photometric RGB: the JPEG holds RGB, not YCbCr (decoders need an Adobe marker to know). */
  readonly rgb: boolean;
}

function numbers(d: TiffDirectory, tag: number): number[] | null {
  const v = d.tags.get(tag);
  return Array.isArray(v) ? v : null;
}

/** The level's stored JPEG tiles, or null when it is not stored that way (or says so inconsistently). */
export function storedJpegTiles(d: TiffDirectory): StoredJpegTiles | null {
  if (!d.tiled || d.compression !== 7 || d.tileWidth === null || d.tileHeight === null) return null;
  const spp = numbers(d, TiffTag.SamplesPerPixel)?.[0] ?? 1;
  const bits = numbers(d, TiffTag.BitsPerSample) ?? [8];
  const planar = numbers(d, TiffTag.PlanarConfiguration)?.[0] ?? 1;
  const photometric = numbers(d, TiffTag.PhotometricInterpretation)?.[0];
  if (spp !== 3 || planar !== 1 || !bits.every((b) => b === 8) || (photometric !== 2 && photometric !== 6)) return null;
  const cols = Math.ceil(d.width / d.tileWidth);
  const rows = Math.ceil(d.height / d.tileHeight);
  const offsets = numbers(d, TiffTag.TileOffsets);
  const byteCounts = numbers(d, TiffTag.TileByteCounts);
  if (offsets === null || byteCounts === null || offsets.length !== cols * rows || byteCounts.length !== cols * rows) return null;
  const tables = numbers(d, TiffTag.JPEGTables);
  return { tileWidth: d.tileWidth, tileHeight: d.tileHeight, cols, rows, offsets, byteCounts, tables: tables === null ? null : Buffer.from(tables), rgb: photometric === 2 };
}

export interface TiffAssociated {
  readonly name: string;
  readonly page: number;
  readonly width: number;
  readonly height: number;
}

export interface TiffSlideLayout {
  readonly vendor: string;
  readonly levels: readonly TiffLevel[];
  readonly associated: readonly TiffAssociated[];
  readonly mpp: Mpp | null;
  readonly mppSource: MppSource;
  readonly mppNote: string | null;
  readonly objectivePower: number | null;
  readonly properties: Record<string, string>;
  /** Set when some page uses a codec only OpenSlide decodes, or the file is a vendor format sharp misreads. */
  readonly needsOpenSlide: string | null;
}

/**
 * Microns per pixel outside this range are not a microscope scan: 72 or 96 dpi written by image
 * tools (~265-353 µm/px) is the classic case. Treating those as real would silently plan regions at
 * the wrong scale, so they are reported as absent instead.
 */
export const PLAUSIBLE_MPP = { min: 0.02, max: 100 } as const;

export function isPlausibleMpp(v: number): boolean {
  return Number.isFinite(v) && v >= PLAUSIBLE_MPP.min && v <= PLAUSIBLE_MPP.max;
}

function parseAperio(description: string): Record<string, string> {
  // "Aperio Image Library v10.0.51\r\n46920x33014 [0,100 46000x32914] (256x256) JPEG/RGB Q=30|AppMag = 20|MPP = 0.499|..."
  const props: Record<string, string> = {};
  const parts = description.split('|');
  props['aperio.Header'] = (parts[0] ?? '').trim();
  for (const part of parts.slice(1)) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    if (key) props[`aperio.${key}`] = part.slice(eq + 1).trim();
  }
  return props;
}

const OME_UNIT_TO_MICRONS: Record<string, number> = {
  'm': 1e6,
  'cm': 1e4,
  'mm': 1e3,
  'µm': 1,
  'μm': 1,
  'um': 1,
  'nm': 1e-3,
};

function parseOmeMpp(xml: string): { mpp: Mpp | null; note: string | null } {
  // The first <Pixels> element describes the first image, which is the one we read.
  const pixels = /<(?:\w+:)?Pixels\b([^>]*)>/.exec(xml)?.[1];
  if (!pixels) return { mpp: null, note: 'OME-XML has no <Pixels> element' };
  const attr = (name: string): string | undefined => new RegExp(`\\b${name}="([^"]*)"`).exec(pixels)?.[1];
  const sx = Number(attr('PhysicalSizeX'));
  const sy = Number(attr('PhysicalSizeY') ?? attr('PhysicalSizeX'));
  if (!Number.isFinite(sx) || sx <= 0) return { mpp: null, note: 'OME-XML has no PhysicalSizeX' };
  const fx = OME_UNIT_TO_MICRONS[attr('PhysicalSizeXUnit') ?? 'µm'];
  const fy = OME_UNIT_TO_MICRONS[attr('PhysicalSizeYUnit') ?? attr('PhysicalSizeXUnit') ?? 'µm'];
  if (fx === undefined || fy === undefined) return { mpp: null, note: 'OME-XML PhysicalSize unit is not a length' };
  return { mpp: { x: sx * fx, y: (Number.isFinite(sy) && sy > 0 ? sy : sx) * fy }, note: null };
}

function mppFromResolutionTags(dir: TiffDirectory): { mpp: Mpp | null; note: string } {
  const unitTag = dir.tags.get(TiffTag.ResolutionUnit);
  const unit = Array.isArray(unitTag) ? unitTag[0] : 2; // TIFF default is inch
  const xr = dir.tags.get(TiffTag.XResolution);
  const yr = dir.tags.get(TiffTag.YResolution);
  const xres = Array.isArray(xr) ? xr[0] : undefined;
  const yres = Array.isArray(yr) ? yr[0] : xres;
  if (xres === undefined || xres <= 0) return { mpp: null, note: 'no TIFF resolution tags' };
  const micronsPerUnit = unit === 2 ? 25400 : unit === 3 ? 10000 : null;
  if (micronsPerUnit === null) return { mpp: null, note: 'TIFF resolution unit is "none"' };
  const mpp = { x: micronsPerUnit / xres, y: micronsPerUnit / (yres !== undefined && yres > 0 ? yres : xres) };
  if (!isPlausibleMpp(mpp.x) || !isPlausibleMpp(mpp.y)) {
    const dpi = (xres * 25400) / micronsPerUnit;
    return {
      mpp: null,
      note: `TIFF resolution ${dpi.toFixed(0)} dpi (${mpp.x.toFixed(1)} µm/px) is a software default, not a scan resolution`,
    };
  }
  return { mpp, note: '' };
}

/** Which sub-image an Aperio/generic page is, from its description and shape. */
function associatedName(dir: TiffDirectory, vendor: string, index: number): string | null {
  // Aperio writes "...Library v11\nlabel 387x463"; other writers put the word alone or first.
  const kind = /^\s*(label|macro)\b/im.exec(dir.description)?.[1]?.toLowerCase();
  if (kind === 'label' || kind === 'macro') return kind;
  if (vendor === 'aperio' && index === 1 && !dir.tiled) return 'thumbnail';
  return null;
}

export function describeTiffLayout(tiff: TiffFile): TiffSlideLayout {
  const first = tiff.pages[0];
  if (first === undefined) throw new Error('TIFF without pages');
  const properties: Record<string, string> = {};
  let vendor = 'generic-tiff';
  let needsOpenSlide: string | null = null;

  if (first.tags.has(TiffTag.NdpiFormatFlag)) {
    vendor = 'hamamatsu';
    needsOpenSlide = 'Hamamatsu NDPI';
  } else if (first.description.startsWith('Aperio')) {
    vendor = 'aperio';
    Object.assign(properties, parseAperio(first.description));
  } else if (/<OME[\s>]/.test(first.description)) {
    vendor = 'ome-tiff';
  }
  for (const dir of tiff.pages) {
    const codec = COMPRESSION_NEEDS_OPENSLIDE.get(dir.compression);
    if (codec !== undefined) {
      needsOpenSlide ??= `${codec} compression`;
      break;
    }
  }

  // Levels: level 0 is page 0; further levels are the SubIFDs of page 0 (OME-TIFF, libvips
  // subifd pyramids) or else later pages that shrink with the same aspect ratio and are tiled
  // like level 0 (Aperio, generic pyramids). A strip-only single image is a one-level slide.
  const levels: TiffLevel[] = [{ width: first.width, height: first.height, downsample: 1, page: 0, subifd: -1, jpegTiles: storedJpegTiles(first) }];
  const associated: TiffAssociated[] = [];
  const aspect = first.width / first.height;
  const fitsPyramid = (d: TiffDirectory): boolean => {
    const prev = levels[levels.length - 1];
    if (prev === undefined || d.width >= prev.width || d.height >= prev.height) return false;
    // Rounding of odd sizes moves the aspect ratio by at most ~1 px per side per level.
    return Math.abs(d.width / d.height - aspect) <= aspect * 0.02 + 2 / d.height;
  };
  const addLevel = (d: TiffDirectory, page: number, subifd: number): void => {
    levels.push({
      width: d.width,
      height: d.height,
      downsample: (first.width / d.width + first.height / d.height) / 2,
      page,
      subifd,
      jpegTiles: storedJpegTiles(d),
    });
  };
  if (first.subIfds.length > 0) {
    first.subIfds.forEach((d, i) => {
      if (fitsPyramid(d)) addLevel(d, 0, i);
    });
  }
  tiff.pages.forEach((d, index) => {
    if (index === 0) return;
    const name = associatedName(d, vendor, index);
    if (name !== null) {
      associated.push({ name, page: index, width: d.width, height: d.height });
    } else if (first.subIfds.length === 0 && d.tiled === first.tiled && fitsPyramid(d)) {
      addLevel(d, index, -1);
    }
  });

  let mpp: Mpp | null = null;
  let mppSource: MppSource = null;
  let mppNote: string | null = null;
  let objectivePower: number | null = null;
  if (vendor === 'aperio') {
    const v = Number(properties['aperio.MPP']);
    if (isPlausibleMpp(v)) {
      mpp = { x: v, y: v };
      mppSource = 'vendor';
    } else {
      mppNote = 'Aperio description has no usable MPP field';
    }
    const mag = Number(properties['aperio.AppMag']);
    if (Number.isFinite(mag) && mag > 0) objectivePower = mag;
  } else if (vendor === 'ome-tiff') {
    const ome = parseOmeMpp(first.description);
    if (ome.mpp && isPlausibleMpp(ome.mpp.x) && isPlausibleMpp(ome.mpp.y)) {
      mpp = ome.mpp;
      mppSource = 'vendor';
    } else {
      mppNote = ome.note ?? 'OME-XML physical size is implausible';
    }
  }
  if (mpp === null) {
    const fromTags = mppFromResolutionTags(first);
    if (fromTags.mpp) {
      mpp = fromTags.mpp;
      mppSource = 'tiff-resolution';
      mppNote = null;
    } else {
      mppNote = mppNote === null ? fromTags.note : `${mppNote}; ${fromTags.note}`;
    }
  }
  if (mpp !== null) {
    properties['openslide.mpp-x'] = String(mpp.x);
    properties['openslide.mpp-y'] = String(mpp.y);
  }
  properties['tiff.Compression'] = String(first.compression);
  if (first.description && vendor !== 'aperio') properties['tiff.ImageDescription'] = first.description.slice(0, 2000);

  return { vendor, levels, associated, mpp, mppSource, mppNote, objectivePower, properties, needsOpenSlide };
}
