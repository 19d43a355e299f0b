/**
 * Region outlines drawn over the slide: one SVG over the viewer whose group transform maps
 * level-0 pixels to screen pixels, refreshed on every OSD redraw (`update-viewport`). All
 * anomalous regions show faintly; the current one is bold, with its rank beside it.
 */
import OpenSeadragon from 'openseadragon';
import type { RegionItem, Verdict } from '../../server/api-types.js';
import { svg } from './dom.js';
import type { TiledImage, Viewer } from './viewer.js';

export interface Outlines {
  setRegions(regions: RegionItem[]): void;
  setCurrent(index: number): void;
  setVerdicts(verdicts: Map<string, Verdict>): void;
  destroy(): void;
}

function pathOf(outline: [number, number][][]): string {
  return outline
    .map((ring) => ring.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${x} ${y}`).join('') + 'Z')
    .join('');
}

export function mountOutlines(viewer: Viewer, item: TiledImage): Outlines {
  const root = svg('svg', { class: 'outlines', 'aria-hidden': 'true' });
  const all = svg('g', { class: 'outlines__all' });
  const current = svg('g', { class: 'outlines__current' });
  root.append(all, current);
  viewer.element.appendChild(root);
  let regions: RegionItem[] = [];
  let currentIndex = -1;
  let verdicts = new Map<string, Verdict>();
  let label: SVGTextElement | null = null;

  const drawAll = (): void => {
    all.replaceChildren(...regions.map((r) => {
      const v = verdicts.get(r.id);
      return svg('path', { d: pathOf(r.outline), class: `outline${v ? ` outline--${v}` : ''}` });
    }));
    place();
  };

  const drawCurrent = (): void => {
    current.replaceChildren();
    label?.remove();
    label = null;
    const r = regions[currentIndex];
    if (r) {
      current.appendChild(svg('path', { d: pathOf(r.outline), class: 'outline outline--current' }));
      label = svg('text', { class: 'outline__label' });
      label.textContent = `#${r.rank}`;
      root.appendChild(label);
    }
    place();
  };

  const place = (): void => {
    const o = item.imageToViewerElementCoordinates(new OpenSeadragon.Point(0, 0));
    const e = item.imageToViewerElementCoordinates(new OpenSeadragon.Point(1000, 0));
    const s = (e.x - o.x) / 1000;
    const m = `matrix(${s} 0 0 ${s} ${o.x} ${o.y})`;
    all.setAttribute('transform', m);
    current.setAttribute('transform', m);
    const r = regions[currentIndex];
    if (label && r) {
      const [x, y] = r.bbox;
      label.setAttribute('x', String(o.x + x * s));
      label.setAttribute('y', String(o.y + y * s - 6));
    }
  };

  viewer.addHandler('update-viewport', place);
  return {
    setRegions(next) {
      regions = next;
      drawAll();
      drawCurrent();
    },
    setCurrent(index) {
      if (index === currentIndex) return;
      currentIndex = index;
      drawCurrent();
    },
    setVerdicts(next) {
      const same = next.size === verdicts.size && [...next].every(([k, v]) => verdicts.get(k) === v);
      verdicts = next;
      if (!same) drawAll();
    },
    destroy() {
      viewer.removeHandler('update-viewport', place);
      root.remove();
    },
  };
}
