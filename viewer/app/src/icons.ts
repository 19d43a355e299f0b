/** The few icons the viewer's buttons need, as inline SVG (no icon font, no image files). */
import { svg } from './dom.js';

const PATHS = {
  plus: 'M8 3v10M3 8h10',
  minus: 'M3 8h10',
  home: 'M2.5 8 8 3l5.5 5M4.5 6.5V13h7V6.5',
  fullscreen: 'M2.5 6V2.5H6M10 2.5h3.5V6M13.5 10v3.5H10M6 13.5H2.5V10',
  download: 'M8 2.5v8M4.5 7.5 8 11l3.5-3.5M3 13.5h10',
} as const;

export type IconName = keyof typeof PATHS;

export function icon(name: IconName): SVGSVGElement {
  const el = svg('svg', { viewBox: '0 0 16 16', width: 16, height: 16, 'aria-hidden': 'true', class: 'icon' });
  el.appendChild(svg('path', { d: PATHS[name], fill: 'none', stroke: 'currentColor', 'stroke-width': 1.6, 'stroke-linecap': 'round', 'stroke-linejoin': 'round' }));
  return el;
}
