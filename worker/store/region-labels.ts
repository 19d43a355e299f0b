/**
 * Where overlay.png puts the regions' rank numbers: one label per region, so a reader finds
 * region 1, 2, 3 … by its own number, whatever rings merge (region-outline.ts rings regions that
 * lie close as one area).
 *
 * Each region has an anchor: its innermost point (the pixel farthest from its edge, found on a
 * small raster of its outline; the one nearest its centroid among equals), where a dot marks it.
 * Labels are placed best rank first: on the anchor when the label fits inside the region, else
 * the cheapest of a fan of places around it (16 directions, growing distances), joined to the
 * dot by a leader line. A place is refused when it covers a label already placed or another
 * region's anchor; its cost grows with the leader's length, with the other regions (and their
 * rings) it covers, with the region's own cells it covers, and with leaders it crosses. A region
 * that finds no place within the fan's reach, or past `maxLabels`, goes unnumbered and the figure
 * says which (overlay-legend.ts). Everything here is figure pixels, origin at the image's corner.
 */
import { fillRings } from './region-outline.js';
import type { RankedRegion } from './result-types.js';

export interface LabelStyle {
  /** The figure's unit (1/400 of its long side): every distance here follows it. */
  unit: number;
  /** Label height in pixels. */
  height: number;
  /** Label width in pixels for a text. */
  width: (text: string) => number;
  /** Regions numbered at most (best ranks); the rest are counted as unnumbered. */
  maxLabels: number;
}

export interface RegionAnchor {
  rank: number;
  /** The region's innermost point. */
  x: number;
  y: number;
  /** Its distance to the region's edge (0 for a region smaller than a pixel). */
  radius: number;
}

export interface PlacedLabel {
  rank: number;
  text: string;
  /** The label's box. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** The point of its region it marks (a dot is drawn there when the label sits beside it). */
  anchor: { x: number; y: number };
  /** From the anchor to the nearest point of the label's box; null when the label sits on the anchor, inside its region. */
  leader: { x1: number; y1: number; x2: number; y2: number } | null;
}

export interface LabelPlan {
  labels: PlacedLabel[];
  /** Ranks not numbered on the figure (crowded out, or past maxLabels), ascending. */
  unnumbered: number[];
}

/** Long side of the raster an anchor is looked for on, whatever the region's size on the figure. */
const ANCHOR_RASTER = 192;

/**
 * The region's innermost point, figure pixels (`scale`: figure pixels per level-0 pixel): a
 * chamfer distance transform of its outline rasterised so its box's long side is ANCHOR_RASTER
 * pixels, so a huge region costs no more than a small one and a sub-pixel one still has a middle.
 */
export function regionAnchor(region: RankedRegion, scale: number): RegionAnchor {
  const [bx, by, bw, bh] = region.bbox;
  const fx = bx * scale;
  const fy = by * scale;
  const centre = { rank: region.rank, x: (bx + bw / 2) * scale, y: (by + bh / 2) * scale, radius: 0 };
  const long = Math.max(bw, bh) * scale;
  if (!(long > 0)) return centre;
  const f = ANCHOR_RASTER / long;
  // One background pixel around the region's box, so every region pixel has a distance.
  const w = Math.ceil(bw * scale * f) + 2;
  const h = Math.ceil(bh * scale * f) + 2;
  const mask = new Uint8Array(w * h);
  const marked = fillRings(mask, w, h, region.outline.map((ring) => ring.map(([x, y]) => [(x * scale - fx) * f + 1, (y * scale - fy) * f + 1] as const)));
  if (marked === 0) return centre;
  // Chamfer 3-4: forward and backward passes; 3 per pixel step.
  const d = new Int32Array(w * h);
  const far = 1 << 28;
  for (let i = 0; i < d.length; i++) d[i] = mask[i] === 1 ? far : 0;
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      const i = y * w + x;
      if (d[i] === 0) continue;
      d[i] = Math.min(d[i] as number, (d[i - 1] as number) + 3, (d[i - w] as number) + 3, (d[i - w - 1] as number) + 4, (d[i - w + 1] as number) + 4);
    }
  }
  for (let y = h - 2; y >= 1; y--) {
    for (let x = w - 2; x >= 1; x--) {
      const i = y * w + x;
      if (d[i] === 0) continue;
      d[i] = Math.min(d[i] as number, (d[i + 1] as number) + 3, (d[i + w] as number) + 3, (d[i + w + 1] as number) + 4, (d[i + w - 1] as number) + 4);
    }
  }
  let deepest = 0;
  for (let i = 0; i < d.length; i++) if ((d[i] as number) > deepest) deepest = d[i] as number;
  // Among the points within a third of a raster pixel of the deepest, the one nearest the centroid.
  const cx = (region.centroid[0] * scale - fx) * f + 1;
  const cy = (region.centroid[1] * scale - fy) * f + 1;
  let best = 0;
  let bestC = Infinity;
  for (let i = 0; i < d.length; i++) {
    if ((d[i] as number) < deepest - 1) continue;
    const x = i % w;
    const c = Math.hypot(x + 0.5 - cx, (i - x) / w + 0.5 - cy);
    if (c < bestC) {
      best = i;
      bestC = c;
    }
  }
  const px = best % w;
  const py = (best - px) / w;
  return { rank: region.rank, x: fx + (px + 0.5 - 1) / f, y: fy + (py + 0.5 - 1) / f, radius: deepest / 3 / f };
}

interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

const intersects = (a: Rect, b: Rect): boolean => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
const grow = (r: Rect, by: number): Rect => ({ x: r.x - by, y: r.y - by, width: r.width + 2 * by, height: r.height + 2 * by });
const contains = (r: Rect, x: number, y: number): boolean => x >= r.x && x <= r.x + r.width && y >= r.y && y <= r.y + r.height;

/** The point of `r` nearest to (x, y). */
const nearest = (r: Rect, x: number, y: number): [number, number] => [Math.max(r.x, Math.min(r.x + r.width, x)), Math.max(r.y, Math.min(r.y + r.height, y))];

type Segment = { x1: number; y1: number; x2: number; y2: number };

function segmentsCross(a: Segment, b: Segment): boolean {
  const side = (px: number, py: number, qx: number, qy: number, rx: number, ry: number): number => Math.sign((qx - px) * (ry - py) - (qy - py) * (rx - px));
  return (
    side(a.x1, a.y1, a.x2, a.y2, b.x1, b.y1) * side(a.x1, a.y1, a.x2, a.y2, b.x2, b.y2) < 0 &&
    side(b.x1, b.y1, b.x2, b.y2, a.x1, a.y1) * side(b.x1, b.y1, b.x2, b.y2, a.x2, a.y2) < 0
  );
}

/** Whether a segment passes through a box (Liang–Barsky clipping). */
function segmentHitsRect(s: Segment, r: Rect): boolean {
  let t0 = 0;
  let t1 = 1;
  const dx = s.x2 - s.x1;
  const dy = s.y2 - s.y1;
  for (const [p, q] of [[-dx, s.x1 - r.x], [dx, r.x + r.width - s.x1], [-dy, s.y1 - r.y], [dy, r.y + r.height - s.y1]] as const) {
    if (p === 0) {
      if (q < 0) return false;
      continue;
    }
    const t = q / p;
    if (p < 0) t0 = Math.max(t0, t);
    else t1 = Math.min(t1, t);
    if (t0 > t1) return false;
  }
  return t1 - t0 > 1e-6;
}

/**
 * The regions on a coarse raster (cells of half a unit): which region covers each cell (its
 * index + 1, 0 for none), to price how much of which region a label would cover.
 */
class Coverage {
  readonly q: number;
  readonly gw: number;
  readonly gh: number;
  readonly owner: Int32Array;

  constructor(regions: readonly RankedRegion[], anchors: readonly RegionAnchor[], scale: number, width: number, height: number, unit: number) {
    this.q = Math.max(1, unit / 2);
    this.gw = Math.max(1, Math.ceil(width / this.q));
    this.gh = Math.max(1, Math.ceil(height / this.q));
    this.owner = new Int32Array(this.gw * this.gh);
    const k = scale / this.q;
    const one = new Uint8Array(this.gw * this.gh);
    for (const [i, r] of regions.entries()) {
      const [bx, by, bw, bh] = r.bbox;
      const x0 = Math.max(0, Math.floor(bx * k));
      const y0 = Math.max(0, Math.floor(by * k));
      const x1 = Math.min(this.gw, Math.ceil((bx + bw) * k) + 1);
      const y1 = Math.min(this.gh, Math.ceil((by + bh) * k) + 1);
      if (x1 <= x0 || y1 <= y0) continue;
      // Rasterised in its own box of the coarse grid, then copied in.
      const w = x1 - x0;
      const h = y1 - y0;
      const sub = one.subarray(0, w * h);
      sub.fill(0);
      const n = fillRings(sub, w, h, r.outline.map((ring) => ring.map(([x, y]) => [x * k - x0, y * k - y0] as const)));
      if (n === 0) {
        const a = anchors[i];
        const ax = Math.floor((a === undefined ? (bx + bw / 2) * scale : a.x) / this.q);
        const ay = Math.floor((a === undefined ? (by + bh / 2) * scale : a.y) / this.q);
        if (ax >= 0 && ax < this.gw && ay >= 0 && ay < this.gh) this.owner[ay * this.gw + ax] = i + 1;
        continue;
      }
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (sub[y * w + x] === 1) this.owner[(y + y0) * this.gw + x + x0] = i + 1;
    }
  }

  /** Fractions of `r` covered by region `own` and by any other region. */
  covered(r: Rect, own: number): { own: number; other: number } {
    const x0 = Math.max(0, Math.floor(r.x / this.q));
    const y0 = Math.max(0, Math.floor(r.y / this.q));
    const x1 = Math.min(this.gw, Math.ceil((r.x + r.width) / this.q));
    const y1 = Math.min(this.gh, Math.ceil((r.y + r.height) / this.q));
    let mine = 0;
    let other = 0;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const o = this.owner[y * this.gw + x] as number;
        if (o === own + 1) mine++;
        else if (o !== 0) other++;
      }
    }
    const all = Math.max(1, (x1 - x0) * (y1 - y0));
    return { own: mine / all, other: other / all };
  }
}

/** Gaps between a region's dot and its label tried, in units: short leaders first. */
const DISTANCES = [1.5, 3, 4.5, 6.5, 9, 12, 16, 21, 27, 34, 42, 52];
/** Directions tried, starting above right (where a reader looks for a label first). */
const ANGLES = Array.from({ length: 16 }, (_, i) => -Math.PI / 4 + (i % 2 === 0 ? 1 : -1) * Math.ceil(i / 2) * (Math.PI / 8));

/** Costs, in units of leader length. */
const COST = {
  /** Per whole label's area over other regions (or within a unit and a half of them: their rings). */
  other: 60,
  /** Per whole label's area over its own region when it sits beside it (it hides what it marks). */
  own: 15,
  /** Per placed label the leader runs through. */
  leaderThroughLabel: 40,
  /** Per placed leader crossed, or run through by the label. */
  crossing: 25,
};

/** The labels of `regions` on a figure `width` x `height` px, `scale` figure px per level-0 px. */
export function placeRegionLabels(regions: readonly RankedRegion[], scale: number, width: number, height: number, style: LabelStyle): LabelPlan {
  const { unit, height: lh } = style;
  const order = regions.map((_, i) => i).sort((a, b) => (regions[a] as RankedRegion).rank - (regions[b] as RankedRegion).rank);
  const numbered = order.slice(0, Math.max(0, style.maxLabels));
  const unnumbered = order.slice(numbered.length).map((i) => (regions[i] as RankedRegion).rank);
  const anchors: (RegionAnchor | undefined)[] = new Array(regions.length);
  for (const i of numbered) anchors[i] = regionAnchor(regions[i] as RankedRegion, scale);
  const coverage = new Coverage(regions, anchors as RegionAnchor[], scale, width, height, unit);

  const labels: PlacedLabel[] = [];
  const leaders: Segment[] = [];
  const fits = (r: Rect): boolean => r.x >= 0 && r.y >= 0 && r.x + r.width <= width && r.y + r.height <= height;
  for (const i of numbered) {
    const region = regions[i] as RankedRegion;
    const a = anchors[i] as RegionAnchor;
    const text = String(region.rank);
    const lw = Math.max(lh, Math.round(style.width(text)));
    const candidates: { rect: Rect; centred: boolean }[] = [{ rect: { x: Math.round(a.x - lw / 2), y: Math.round(a.y - lh / 2), width: lw, height: lh }, centred: true }];
    for (const gap of DISTANCES) {
      for (const t of ANGLES) {
        const dx = Math.cos(t);
        const dy = Math.sin(t);
        // The box's centre so its nearest point lies `gap` units from the anchor along the direction.
        const reach = Math.min(Math.abs(dx) > 1e-9 ? lw / 2 / Math.abs(dx) : Infinity, Math.abs(dy) > 1e-9 ? lh / 2 / Math.abs(dy) : Infinity);
        const cx = a.x + dx * (gap * unit + reach);
        const cy = a.y + dy * (gap * unit + reach);
        const rect = { x: Math.round(Math.max(0, Math.min(width - lw, cx - lw / 2))), y: Math.round(Math.max(0, Math.min(height - lh, cy - lh / 2))), width: lw, height: lh };
        candidates.push({ rect, centred: false });
      }
    }
    let best: { rect: Rect; leader: Segment | null; cost: number } | null = null;
    for (const { rect, centred } of candidates) {
      if (!fits(rect)) continue;
      const cover = coverage.covered(rect, i);
      if (centred && cover.own < 0.85) continue;
      const spaced = grow(rect, unit * 0.6);
      if (labels.some((l) => intersects(spaced, l))) continue;
      const guard = grow(rect, unit);
      if (!centred && contains(guard, a.x, a.y)) continue;
      let blocked = false;
      for (const j of numbered) {
        const b = anchors[j] as RegionAnchor;
        if (j !== i && contains(guard, b.x, b.y)) {
          blocked = true;
          break;
        }
      }
      if (blocked) continue;
      let leader: Segment | null = null;
      let cost = 0;
      if (!centred) {
        const [nx, ny] = nearest(rect, a.x, a.y);
        leader = { x1: a.x, y1: a.y, x2: nx, y2: ny };
        cost += Math.hypot(nx - a.x, ny - a.y) / unit;
        cost += COST.own * cover.own;
        for (const l of labels) if (segmentHitsRect(leader, l)) cost += COST.leaderThroughLabel;
        for (const s of leaders) if (segmentsCross(leader, s)) cost += COST.crossing;
      }
      cost += COST.other * coverage.covered(grow(rect, unit * 1.5), i).other;
      for (const s of leaders) if (segmentHitsRect(s, rect)) cost += COST.crossing;
      if (best === null || cost < best.cost) best = { rect, leader, cost };
      if (centred && cost === 0) break;
    }
    if (best === null) {
      unnumbered.push(region.rank);
      continue;
    }
    labels.push({ rank: region.rank, text, ...best.rect, anchor: { x: a.x, y: a.y }, leader: best.leader });
    if (best.leader !== null) leaders.push(best.leader);
  }
  return { labels, unnumbered: unnumbered.sort((x, y) => x - y) };
}
