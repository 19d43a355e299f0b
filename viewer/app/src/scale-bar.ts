/**
 * A scale bar in µm and the magnification, bottom left over the slide. OSD has none built in.
 * The scan's nominal magnification comes from its resolution (0.25 µm/px = 40x, 0.5 = 20x); the
 * view's is that times the screen pixels per slide pixel.
 */
import { h } from './dom.js';
import { fmtLength, fmtMagnification, magnificationFromMpp } from './format.js';
import { imageZoom, type TiledImage, type Viewer } from './viewer.js';

const TARGET_PX = 120;

/** The largest 1, 2 or 5 x 10^n not above `value`. */
export function niceLength(value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) return 0;
  const base = 10 ** Math.floor(Math.log10(value));
  for (const m of [5, 2, 1]) if (m * base <= value) return m * base;
  return base;
}

export function mountScaleBar(viewer: Viewer, item: TiledImage, mpp: number | null, objectivePower: number | null): () => void {
  const bar = h('div', { class: 'scale-bar__bar' });
  const label = h('span', { class: 'scale-bar__label' });
  const mag = h('span', { class: 'scale-bar__mag' });
  const el = h('div', { class: 'scale-bar', 'data-testid': 'scale-bar' }, h('div', { class: 'scale-bar__row' }, label, mag), bar);
  viewer.element.appendChild(el);
  const scan = mpp ? magnificationFromMpp(mpp) : objectivePower;

  const update = (): void => {
    const z = imageZoom(item);
    if (!(z > 0)) return;
    if (mpp) {
      const umPerScreenPx = mpp / z;
      const um = niceLength(TARGET_PX * umPerScreenPx);
      bar.style.width = `${Math.round(um / umPerScreenPx)}px`;
      label.textContent = fmtLength(um);
    } else {
      bar.style.width = '0';
      label.textContent = 'scale unknown (no µm/px)';
    }
    mag.textContent = scan ? `${fmtMagnification(scan * z)} view · ${fmtMagnification(scan)} scan` : '';
  };
  viewer.addHandler('update-viewport', update);
  viewer.addHandler('resize', update);
  update();
  return () => {
    viewer.removeHandler('update-viewport', update);
    viewer.removeHandler('resize', update);
    el.remove();
  };
}
