/**
 * `window.flashslide`: the page's state for tests and for poking at from the console. Read it,
 * don't drive the app through it (the tests press keys and move sliders like a user).
 *
 *   page           'worklist' | 'slide' | 'login' | 'none'
 *   viewer         the OpenSeadragon viewer (slide page), else null
 *   baseItem       world item 0: the slide
 *   heatmapItem    world item 1: the heatmap (null until the result lands)
 *   slide          the SlideDetail shown
 *   regions        RegionItem[] in rank order
 *   currentRegion  index into regions, -1 before the first `n`
 *   review         the Review as last read or written (version, verdicts)
 *   heatmap        { opacity, visible, colormap, threshold, coloured } (coloured: tiles coloured so far)
 *   settled()      resolves once the heatmap tiles show the current colour map and threshold
 *   scoreAt(x, y)  the score of the heatmap cell at a level-0 point (null: no tissue or no heatmap)
 */
import type OpenSeadragon from 'openseadragon';
import type { ColormapName } from '../../../worker/store/colormap.js';
import type { RegionItem, Review, SlideDetail } from '../../server/api-types.js';

export interface FlashslideHooks {
  page: 'worklist' | 'slide' | 'login' | 'none';
  viewer: OpenSeadragon.Viewer | null;
  baseItem: OpenSeadragon.TiledImage | null;
  heatmapItem: OpenSeadragon.TiledImage | null;
  slide: SlideDetail | null;
  regions: RegionItem[];
  currentRegion: number;
  review: Review | null;
  heatmap: { opacity: number; visible: boolean; colormap: ColormapName; threshold: number; coloured: number } | null;
  settled(): Promise<void>;
  scoreAt(x: number, y: number): Promise<number | null>;
}

declare global {
  interface Window {
    flashslide: FlashslideHooks;
  }
}

function blank(): FlashslideHooks {
  return {
    page: 'none',
    viewer: null,
    baseItem: null,
    heatmapItem: null,
    slide: null,
    regions: [],
    currentRegion: -1,
    review: null,
    heatmap: null,
    settled: () => Promise.resolve(),
    scoreAt: () => Promise.resolve(null),
  };
}

export const hooks: FlashslideHooks = blank();
window.flashslide = hooks;

/** Back to nothing (a page unmounted). */
export function resetHooks(): void {
  // defineProperty, not assignment: the slide page installs getters (heatmap).
  for (const [key, value] of Object.entries(blank())) {
    Object.defineProperty(hooks, key, { value, writable: true, configurable: true, enumerable: true });
  }
}
