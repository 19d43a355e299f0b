/**
 * SlideSource over libopenslide (through native/), for the vendor formats only OpenSlide reads
 * (Hamamatsu NDPI/VMS, MIRAX, Leica SCN, Ventana BIF, Philips TIFF) and the codecs libvips lacks
 * (Aperio JPEG 2000, ZSTD TIFF). Reads run on the libuv thread pool.
 */
import { BackendUnavailableError, CorruptSlideError, InvalidArgumentError, firstLine } from './errors.js';
import { checkRegionRequest } from './region-bounds.js';
import type { AssociatedImageName, Mpp, MppSource, RgbImage, SlideLevel, SlideSource } from './slide-source.js';
import { isPlausibleMpp } from './tiff-metadata.js';
import { loadNativeAddon, type NativeOpenSlide } from '../native/addon.js';

export const OPENSLIDE_REMEDY =
  'OpenSlide: install libopenslide-dev (Debian/Ubuntu: apt-get install libopenslide-dev) and rebuild with npm run build:native';

/** Whether this build can open files through OpenSlide. */
export function openSlideAvailable(): boolean {
  const addon = loadNativeAddon();
  return !(addon instanceof Error) && addon.OpenSlide !== undefined;
}

/** OpenSlide's vendor name for the file, or null when it does not recognise it or is unavailable. */
export function detectOpenSlideVendor(path: string): string | null {
  const addon = loadNativeAddon();
  if (addon instanceof Error || addon.openslideDetectVendor === undefined) return null;
  return addon.openslideDetectVendor(path);
}

export class OpenSlideSource implements SlideSource {
  readonly backend = 'openslide' as const;
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

  private constructor(
    readonly path: string,
    private readonly handle: NativeOpenSlide,
    mppOverride: number | undefined,
  ) {
    const props = handle.properties();
    this.properties = props;
    this.vendor = props['openslide.vendor'] ?? 'unknown';
    this.levels = handle.levels();
    const level0 = this.levels[0];
    if (level0 === undefined || level0.width < 1 || level0.height < 1) {
      throw new CorruptSlideError(path, 'OpenSlide reports no usable pyramid level');
    }
    this.width = level0.width;
    this.height = level0.height;
    const mx = Number(props['openslide.mpp-x']);
    const my = Number(props['openslide.mpp-y'] ?? props['openslide.mpp-x']);
    if (mppOverride !== undefined) {
      this.mpp = { x: mppOverride, y: mppOverride };
      this.mppSource = 'override';
      this.mppNote = null;
    } else if (isPlausibleMpp(mx) && isPlausibleMpp(my)) {
      this.mpp = { x: mx, y: my };
      // OpenSlide fills mpp from TIFF resolution tags only for generic TIFF; every other vendor
      // records it in its own metadata.
      this.mppSource = this.vendor === 'generic-tiff' ? 'tiff-resolution' : 'vendor';
      this.mppNote = null;
    } else {
      this.mpp = null;
      this.mppSource = null;
      this.mppNote = props['openslide.mpp-x'] === undefined ? `${this.vendor} metadata has no mpp` : `implausible mpp ${props['openslide.mpp-x']}`;
    }
    const mag = Number(props['openslide.objective-power']);
    this.objectivePower = Number.isFinite(mag) && mag > 0 ? mag : null;
    this.associatedImages = handle.associatedImages().map((a) => a.name);
  }

  /** `mppOverride` (already validated) replaces whatever the slide says. */
  static open(path: string, mppOverride?: number): OpenSlideSource {
    const addon = loadNativeAddon();
    if (addon instanceof Error) throw new BackendUnavailableError(path, 'this format', `the native addon: ${addon.message}`);
    if (addon.OpenSlide === undefined) throw new BackendUnavailableError(path, 'this format', OPENSLIDE_REMEDY);
    let handle: NativeOpenSlide;
    try {
      handle = new addon.OpenSlide(path);
    } catch (err) {
      throw new CorruptSlideError(path, `OpenSlide cannot open it: ${firstLine(err)}`, err);
    }
    try {
      return new OpenSlideSource(path, handle, mppOverride);
    } catch (err) {
      handle.close();
      throw err;
    }
  }

  async readRegion(level: number, x: number, y: number, width: number, height: number): Promise<RgbImage> {
    checkRegionRequest(this.path, this.levels, level, x, y, width, height);
    try {
      // OpenSlide itself returns transparent (-> white) pixels outside the slide.
      const data = await this.handle.readRegion(level, x, y, width, height);
      return { data, width, height };
    } catch (err) {
      throw new CorruptSlideError(this.path, `cannot read level ${level} at (${x}, ${y}) ${width}x${height}: ${firstLine(err)}`, err);
    }
  }

  async readAssociatedImage(name: AssociatedImageName): Promise<RgbImage> {
    if (!this.associatedImages.includes(name)) {
      throw new InvalidArgumentError(
        `no associated image "${name}" (available: ${this.associatedImages.join(', ') || 'none'})`,
        this.path,
      );
    }
    try {
      return await this.handle.readAssociatedImage(name);
    } catch (err) {
      throw new CorruptSlideError(this.path, `cannot read associated image "${name}": ${firstLine(err)}`, err);
    }
  }

  async close(): Promise<void> {
    this.handle.close();
  }
}
