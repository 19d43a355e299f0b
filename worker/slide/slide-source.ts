/**
 * The one interface every slide backend implements. Coordinates follow OpenSlide's convention,
 * because pathologists' tools (QuPath, OpenSlide, ASAP) all use it: `x`, `y` are level-0 pixels,
 * `width`, `height` are pixels of the requested level.
 */

export type BackendName = 'sharp' | 'openslide';

export type MppSource = 'vendor' | 'tiff-resolution' | 'override' | null;

export interface SlideLevel {
  readonly width: number;
  readonly height: number;
  /** Level-0 pixels per pixel of this level. */
  readonly downsample: number;
}

export interface Mpp {
  readonly x: number;
  readonly y: number;
}

/** An RGB image, 3 bytes per pixel, row-major, no padding. */
export interface RgbImage {
  readonly data: Buffer;
  readonly width: number;
  readonly height: number;
}

export type AssociatedImageName = 'thumbnail' | 'label' | 'macro' | (string & {});

export interface ReadRegionOptions {
  /**
   * Which parts of the request the caller will use, asked for rectangles in request pixels (from
   * its top-left corner): a backend may leave a rectangle it is told is unwanted undecoded, and
   * fill it with any value. Token dropping reads only the tiles under the patches it keeps.
   */
  wanted?: (x: number, y: number, width: number, height: number) => boolean;
}

export interface SlideSource {
  readonly path: string;
  readonly backend: BackendName;
  /** OpenSlide-style vendor name: 'aperio', 'hamamatsu', 'generic-tiff', 'ome-tiff', 'image', ... */
  readonly vendor: string;
  /** Level-0 size. */
  readonly width: number;
  readonly height: number;
  /** Pyramid levels, finest first; levels[0] is level 0. */
  readonly levels: readonly SlideLevel[];
  /** Microns per level-0 pixel, or null when the slide does not say (and no override was given). */
  readonly mpp: Mpp | null;
  readonly mppSource: MppSource;
  /** Why mpp is null, for the error a later stage raises when it needs one. */
  readonly mppNote: string | null;
  /** Scanner objective magnification when recorded (e.g. 20, 40). */
  readonly objectivePower: number | null;
  readonly associatedImages: readonly AssociatedImageName[];
  /** Raw vendor properties, for `inspect` and debugging. */
  readonly properties: Readonly<Record<string, string>>;

  /**
   * Reads w x h pixels of `level` whose top-left corner is level-0 pixel (x, y). Only the tiles that
   * overlap the rectangle are decoded. Pixels outside the slide are white (glass), so callers can ask
   * for regions that hang over the edge.
   */
  readRegion(level: number, x: number, y: number, width: number, height: number, options?: ReadRegionOptions): Promise<RgbImage>;
  readAssociatedImage(name: AssociatedImageName): Promise<RgbImage>;
  /**
   * Optional fast path for tile servers: the size of the JPEG tiles `level` is stored in, or null
   * when it is not stored as JPEG tiles this backend can hand out as they are.
   */
  storedTileSize?(level: number): { width: number; height: number } | null;
  /**
   * The stored tile (col, row) of `level` as a complete JPEG file, without decoding it; null when
   * there is none (not stored as JPEG tiles, a sparse tile, a stream that does not look like JPEG).
   */
  readStoredTile?(level: number, col: number, row: number): Promise<Buffer | null>;
  close(): Promise<void>;
}

/** Largest single read: 2^28 px (768 MiB of RGB). Larger requests are a bug or an attack, not a region. */
export const MAX_REGION_PIXELS = 1 << 28;
