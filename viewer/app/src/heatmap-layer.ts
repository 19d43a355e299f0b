/**
 * The heatmap as OpenSeadragon's second tiled image (same size as the slide, x 0, width 1),
 * coloured in the browser through OSD 6's tile data pipeline: every heatmap tile passes the
 * `tile-invalidated` event when it loads, and again when requestInvalidate() is called after the
 * colour map or threshold changed; the handler reads the tile's original grey + alpha pixels
 * (getData('context2d'), a copy), recolours them with the current table and hands them back
 * (setData). The tiles already loaded are recoloured in place, so no tile is fetched again.
 */
import OpenSeadragon from 'openseadragon';
import type { ColormapName } from '../../../worker/store/colormap.js';
import type { HeatmapInfo } from '../../server/api-types.js';
import { dziTileSource, tilesUrl } from './dzi.js';
import { colourise, colourTable, thresholdLevel } from './heatmap-colour.js';

export interface HeatmapLook {
  opacity: number;
  visible: boolean;
  colormap: ColormapName;
  /** Cells scoring below this are not drawn. */
  threshold: number;
}

type TiledImage = OpenSeadragon.TiledImage;

export class HeatmapLayer {
  item: TiledImage | null = null;
  /** Tiles coloured so far (loads and recolours), for tests and curiosity. */
  coloured = 0;
  private table: Uint8ClampedArray;
  private pending: Promise<unknown> = Promise.resolve();
  private readonly look: HeatmapLook;
  private destroyed = false;
  private readonly tilesUrl: string;

  constructor(
    private readonly viewer: OpenSeadragon.Viewer,
    readonly info: HeatmapInfo,
    look: HeatmapLook,
  ) {
    this.look = { ...look };
    this.tilesUrl = tilesUrl(info.dzi.url.split('?')[0] ?? '');
    this.table = this.buildTable();
    viewer.addHandler('tile-invalidated', this.onTileInvalidated);
  }

  get state(): Readonly<HeatmapLook> {
    return this.look;
  }

  /** Adds the tiled image above the slide; resolves once it is in the world. */
  add(): Promise<TiledImage> {
    return new Promise((resolve, reject) => {
      this.viewer.addTiledImage({
        tileSource: dziTileSource(this.info.dzi),
        x: 0,
        width: 1,
        opacity: this.effectiveOpacity(),
        // Hidden (opacity 0) images load nothing unless preloading: keep the tiles ready for `h`.
        preload: true,
        success: (event) => {
          const item = (event as unknown as { item: TiledImage }).item;
          if (this.destroyed) {
            this.viewer.world.removeItem(item);
            return;
          }
          this.item = item;
          resolve(item);
        },
        error: (err) => reject(new Error(`the heatmap tiles did not open: ${(err as unknown as { message?: string }).message ?? String(err)}`)),
      });
    });
  }

  setOpacity(opacity: number): void {
    this.look.opacity = opacity;
    this.item?.setOpacity(this.effectiveOpacity());
  }

  setVisible(visible: boolean): void {
    this.look.visible = visible;
    this.item?.setOpacity(this.effectiveOpacity());
  }

  setColormap(colormap: ColormapName): void {
    if (colormap === this.look.colormap) return;
    this.look.colormap = colormap;
    this.recolour();
  }

  setThreshold(threshold: number): void {
    const before = thresholdLevel(this.look.threshold, this.info);
    this.look.threshold = threshold;
    if (thresholdLevel(threshold, this.info) !== before) this.recolour();
  }

  /** Resolves when the tiles loaded so far show the current colour map and threshold. */
  async settled(): Promise<void> {
    let seen: Promise<unknown>;
    do {
      seen = this.pending;
      await seen;
    } while (seen !== this.pending);
  }

  destroy(): void {
    this.destroyed = true;
    this.viewer.removeHandler('tile-invalidated', this.onTileInvalidated);
    if (this.item) this.viewer.world.removeItem(this.item);
    this.item = null;
  }

  private effectiveOpacity(): number {
    return this.look.visible ? this.look.opacity : 0;
  }

  private buildTable(): Uint8ClampedArray {
    return colourTable(this.look.colormap, thresholdLevel(this.look.threshold, this.info), this.info);
  }

  private recolour(): void {
    this.table = this.buildTable();
    if (!this.item) return;
    const items: TiledImage[] = [this.item];
    // The navigator holds its own copy of the image (same tile source); recolour it as well.
    const nav = this.viewer.navigator as OpenSeadragon.Navigator | undefined;
    if (nav?.world) {
      for (let i = 0; i < nav.world.getItemCount(); i++) {
        const it = nav.world.getItemAt(i);
        if (it !== this.item && this.isHeatmap(it)) items.push(it);
      }
    }
    this.pending = Promise.all(items.map((it) => it.requestInvalidate(true)));
  }

  /** The heatmap's own image or the navigator's copy, known by tile URL (tiles may load before add() resolves). */
  private isHeatmap(tiledImage: TiledImage | undefined): boolean {
    if (!tiledImage) return false;
    return tiledImage === this.item || (tiledImage.source as Partial<OpenSeadragon.DziTileSource> | undefined)?.tilesUrl === this.tilesUrl;
  }

  private readonly onTileInvalidated = async (event: OpenSeadragon.TileInvalidatedEvent): Promise<void> => {
    if (!this.isHeatmap(event.tiledImage)) return;
    const ctx = (await event.getData('context2d')) as CanvasRenderingContext2D | null;
    if (!ctx || (await event.outdated())) return;
    const { width, height } = ctx.canvas;
    if (width === 0 || height === 0) return;
    const pixels = ctx.getImageData(0, 0, width, height);
    colourise(pixels.data, this.table);
    ctx.putImageData(pixels, 0, 0);
    await event.setData(ctx, 'context2d');
    this.coloured++;
  };
}
