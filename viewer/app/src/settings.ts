/** What the page remembers between visits (localStorage): reviewer name, heatmap look, report paper. */
import type { ColormapName } from '../../../worker/store/colormap.js';
import type { PaperSize } from '../../../worker/report/report-options.js';

const KEY = 'flashslide.settings';

export interface Settings {
  reviewer: string;
  opacity: number;
  colormap: ColormapName;
  heatmapVisible: boolean;
  /** Page size of downloaded PDF reports. */
  paper: PaperSize;
}

const DEFAULTS: Settings = { reviewer: '', opacity: 0.5, colormap: 'inferno', heatmapVisible: true, paper: 'a4' };

export function loadSettings(): Settings {
  try {
    const raw = JSON.parse(localStorage.getItem(KEY) ?? '{}') as Partial<Settings>;
    return {
      reviewer: typeof raw.reviewer === 'string' ? raw.reviewer : DEFAULTS.reviewer,
      opacity: typeof raw.opacity === 'number' && raw.opacity >= 0 && raw.opacity <= 1 ? raw.opacity : DEFAULTS.opacity,
      colormap: raw.colormap === 'inferno' || raw.colormap === 'viridis' || raw.colormap === 'jet' ? raw.colormap : DEFAULTS.colormap,
      heatmapVisible: typeof raw.heatmapVisible === 'boolean' ? raw.heatmapVisible : DEFAULTS.heatmapVisible,
      paper: raw.paper === 'a4' || raw.paper === 'letter' ? raw.paper : DEFAULTS.paper,
    };
  } catch {
    return { ...DEFAULTS };
  }
}

export function saveSettings(patch: Partial<Settings>): void {
  try {
    localStorage.setItem(KEY, JSON.stringify({ ...loadSettings(), ...patch }));
  } catch {
    // storage full or disabled: the page still works, it just forgets
  }
}

const ORDER_KEY = 'flashslide.worklistOrder';

/** The worklist's order as last shown (its sort and filter), for "next slide". */
export function saveWorklistOrder(ids: string[]): void {
  try {
    sessionStorage.setItem(ORDER_KEY, JSON.stringify(ids));
  } catch {
    // ignore
  }
}

export function loadWorklistOrder(): string[] | null {
  try {
    const v = JSON.parse(sessionStorage.getItem(ORDER_KEY) ?? 'null') as unknown;
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : null;
  } catch {
    return null;
  }
}
