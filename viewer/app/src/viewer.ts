/**
 * The OpenSeadragon viewer for one slide: the base slide as the first tiled image, a navigator,
 * our own zoom/home/fullscreen buttons (no OSD button images: nothing to serve, nothing from a
 * CDN) and OSD's keyboard handling off (the page's shortcuts own the keys; OSD's would rotate
 * the slide on `r`).
 */
import OpenSeadragon from 'openseadragon';
import type { DziInfo } from '../../server/api-types.js';
import { h } from './dom.js';
import { dziTileSource } from './dzi.js';
import { icon, type IconName } from './icons.js';
import type { ViewState } from './url-state.js';

export type Viewer = OpenSeadragon.Viewer;
export type TiledImage = OpenSeadragon.TiledImage;

export function createViewer(element: HTMLElement): Viewer {
  return OpenSeadragon({
    element,
    showNavigationControl: false,
    showNavigator: true,
    navigatorPosition: 'TOP_RIGHT',
    navigatorSizeRatio: 0.16,
    navigatorAutoFade: false,
    navigatorBackground: '#101214',
    navigatorBorderColor: '#3a3f46',
    navigatorDisplayRegionColor: '#4da3ff',
    keyboardNavEnabled: false,
    gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: true, flickEnabled: false },
    animationTime: 0.6,
    blendTime: 0,
    // 2 screen pixels per slide pixel at most: some room to see single cells, no more.
    maxZoomPixelRatio: 2,
    minZoomImageRatio: 0.8,
    visibilityRatio: 0.5,
    zoomPerScroll: 1.4,
    crossOriginPolicy: false,
    // What shows where a tile has not arrived yet (the page is dark).
    placeholderFillStyle: '#1b1e22',
  } as OpenSeadragon.Options);
}

/** Opens the slide as the first tiled image; resolves with it once it is in the world. */
export function openSlide(viewer: Viewer, tiles: DziInfo): Promise<TiledImage> {
  return new Promise((resolve, reject) => {
    viewer.addTiledImage({
      tileSource: dziTileSource(tiles),
      index: 0,
      x: 0,
      width: 1,
      success: (event) => resolve((event as unknown as { item: TiledImage }).item),
      error: (err) => reject(new Error(`the slide's tiles did not open: ${(err as unknown as { message?: string }).message ?? String(err)}`)),
    });
  });
}

/** Screen (CSS) pixels per level-0 pixel at the current (animated) view. */
export function imageZoom(item: TiledImage): number {
  return item.viewportToImageZoom(item.viewer.viewport.getZoom(true));
}

export function getViewState(item: TiledImage): ViewState {
  const centre = item.viewportToImageCoordinates(item.viewer.viewport.getCenter(false));
  return { x: centre.x, y: centre.y, z: item.viewportToImageZoom(item.viewer.viewport.getZoom(false)) };
}

export function applyViewState(item: TiledImage, view: ViewState, immediately = true): void {
  const vp = item.viewer.viewport;
  vp.zoomTo(item.imageToViewportZoom(view.z), undefined, immediately);
  vp.panTo(item.imageToViewportCoordinates(view.x, view.y), immediately);
}

/** Fits a level-0 rectangle with `margin` of its size on every side (at least `minSide` px shown). */
export function flyToRect(item: TiledImage, [x, y, w, h]: [number, number, number, number], margin = 0.6, minSide = 384): void {
  const side = Math.max(w, h, minSide);
  const padW = (Math.max(w, side) - w) / 2 + side * margin;
  const padH = (Math.max(h, side) - h) / 2 + side * margin;
  item.viewer.viewport.fitBounds(item.imageToViewportRectangle(x - padW, y - padH, w + 2 * padW, h + 2 * padH));
}

/** Our buttons over the viewer: zoom in/out, home, fullscreen. */
export function viewerButtons(viewer: Viewer, fullscreenTarget: HTMLElement): HTMLElement {
  const btn = (name: IconName, title: string, onClick: () => void): HTMLButtonElement =>
    h('button', { type: 'button', class: 'osd-btn', title, 'aria-label': title, onclick: onClick }, icon(name));
  return h('div', { class: 'osd-buttons' },
    btn('plus', 'Zoom in (+)', () => zoomBy(viewer, 2)),
    btn('minus', 'Zoom out (−)', () => zoomBy(viewer, 0.5)),
    btn('home', 'Whole slide (0)', () => viewer.viewport.goHome()),
    btn('fullscreen', 'Full screen (f)', () => toggleFullscreen(fullscreenTarget)),
  );
}

export function zoomBy(viewer: Viewer, factor: number): void {
  viewer.viewport.zoomBy(factor);
  viewer.viewport.applyConstraints();
}

export function panBy(viewer: Viewer, dxScreen: number, dyScreen: number): void {
  viewer.viewport.panBy(viewer.viewport.deltaPointsFromPixels(new OpenSeadragon.Point(dxScreen, dyScreen)));
  viewer.viewport.applyConstraints();
}

export function toggleFullscreen(el: HTMLElement): void {
  if (document.fullscreenElement) void document.exitFullscreen();
  else void el.requestFullscreen?.();
}
