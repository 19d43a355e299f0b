/**
 * Anomalous regions outlined on a raster figure (overlay.png). A region is a set of grid cells,
 * often ragged or a scatter of cells touching at corners; at figure scale a cell may be a few
 * pixels or less than one. Tracing every cell's edge then hides what it marks, so the outline is
 * drawn around the regions instead: a ring `gap` pixels outside the regions closed over gaps
 * narrower than 2 x merge (distances to the nearest pixel, stamped from the shapes' edges), which
 * also keeps a sub-pixel region visible as a small ring. Regions whose rings touch form one group
 * (one ring around them); each region is still numbered on its own, at its own innermost point
 * (region-labels.ts).
 */
import type { RgbImage } from '../slide/slide-source.js';
import type { RankedRegion } from './result-types.js';

export interface OutlineStyle {
  /** Pixels between the regions' cells and the ring's inner edge. */
  gap: number;
  /** Width of the ring in pixels. */
  width: number;
  /** Width of the dark edge on either side of the ring (reads on light and dark tissue). */
  halo: number;
  /** Regions (and cells of one region) closer than twice this many pixels are ringed as one shape. */
  merge: number;
  colour: readonly [number, number, number];
  haloColour: readonly [number, number, number];
  haloOpacity: number;
}

/** Regions whose rings touch, and the box of their rings' outer edge (figure pixels, exclusive end). */
export interface RegionGroup {
  /** Ranks, ascending. */
  ranks: number[];
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/**
 * Marks the pixels whose centres lie inside `rings` (even-odd, so holes stay open), figure
 * coordinates; returns how many were marked.
 */
export function fillRings(mask: Uint8Array, width: number, height: number, rings: readonly (readonly [number, number])[][]): number {
  const edges: number[] = [];
  let minY = Infinity;
  let maxY = -Infinity;
  for (const ring of rings) {
    for (let i = 0; i + 1 < ring.length; i++) {
      const [ax, ay] = ring[i] as readonly [number, number];
      const [bx, by] = ring[i + 1] as readonly [number, number];
      if (ay === by) continue;
      edges.push(ax, ay, bx, by);
      minY = Math.min(minY, ay, by);
      maxY = Math.max(maxY, ay, by);
    }
  }
  if (edges.length === 0) return 0;
  let marked = 0;
  const xs: number[] = [];
  const yStart = Math.max(0, Math.ceil(minY - 0.5));
  const yEnd = Math.min(height - 1, Math.floor(maxY - 0.5));
  for (let y = yStart; y <= yEnd; y++) {
    const yc = y + 0.5;
    xs.length = 0;
    for (let e = 0; e < edges.length; e += 4) {
      const ay = edges[e + 1] as number;
      const by = edges[e + 3] as number;
      if ((ay <= yc && yc < by) || (by <= yc && yc < ay)) {
        const ax = edges[e] as number;
        const bx = edges[e + 2] as number;
        xs.push(ax + ((yc - ay) * (bx - ax)) / (by - ay));
      }
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const from = Math.max(0, Math.ceil((xs[k] as number) - 0.5));
      const to = Math.min(width - 1, Math.ceil((xs[k + 1] as number) - 0.5) - 1);
      for (let x = from; x <= to; x++) {
        const i = y * width + x;
        if (mask[i] === 0) {
          mask[i] = 1;
          marked++;
        }
      }
    }
  }
  return marked;
}

/**
 * Distance from each pixel to the nearest pixel with mask == `to` (pixel centres, Euclidean),
 * capped at `cap`: every such pixel on the edge of its set stamps a disc of radius `cap`, so
 * the work follows the shapes' perimeter, not the figure's size. Outside the array counts as
 * neither (a shape cut by the figure's edge gets no edge there).
 */
function distanceTo(mask: Uint8Array, w: number, h: number, to: 0 | 1, cap: number): Float32Array {
  const d = new Float32Array(w * h).fill(cap);
  const r = Math.ceil(cap);
  const disc: number[] = [];
  for (let dy = -r; dy <= r; dy++) for (let dx = -r; dx <= r; dx++) if (Math.hypot(dx, dy) < cap) disc.push(dx, dy, Math.hypot(dx, dy));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (mask[i] !== to) continue;
      d[i] = 0;
      const edge = (x > 0 && mask[i - 1] !== to) || (x + 1 < w && mask[i + 1] !== to) || (y > 0 && mask[i - w] !== to) || (y + 1 < h && mask[i + w] !== to);
      if (!edge) continue;
      for (let k = 0; k < disc.length; k += 3) {
        const nx = x + (disc[k] as number);
        const ny = y + (disc[k + 1] as number);
        if (nx < 0 || nx >= w || ny < 0 || ny >= h) continue;
        const j = ny * w + nx;
        const v = disc[k + 2] as number;
        if (v < (d[j] as number)) d[j] = v;
      }
    }
  }
  return d;
}

const clamp01 = (v: number): number => (v <= 0 ? 0 : v >= 1 ? 1 : v);

/**
 * Draws the rings into `image` (RGB, in place) and returns the groups, in the order of their
 * best (lowest) rank. `scale`: figure pixels per level-0 pixel.
 *
 * The shape ringed is the regions closed (dilated by `merge`, eroded back to `gap` outside
 * them): scattered cells and stripes closer than 2 x merge read as one area, as the eye groups
 * them, and the ring runs `gap` outside the outermost cells.
 */
export function outlineRegions(image: RgbImage, regions: readonly RankedRegion[], scale: number, style: OutlineStyle): RegionGroup[] {
  const { width, height, data } = image;
  if (regions.length === 0 || width === 0 || height === 0) return [];
  const { gap, halo } = style;
  const inner = gap;
  const outer = gap + style.width;
  // The closing's reach; past the ring and its halo, so they lie inside the dilated set.
  const merge = Math.max(style.merge, outer + halo + 2);

  // The box around every region and its rings: all arrays are this size, not the figure's.
  let bx0 = width;
  let by0 = height;
  let bx1 = 0;
  let by1 = 0;
  for (const r of regions) {
    const [x, y, w, h] = r.bbox;
    bx0 = Math.min(bx0, Math.floor(x * scale));
    by0 = Math.min(by0, Math.floor(y * scale));
    bx1 = Math.max(bx1, Math.ceil((x + w) * scale) + 1);
    by1 = Math.max(by1, Math.ceil((y + h) * scale) + 1);
  }
  const margin = Math.ceil(merge) + 2;
  bx0 = Math.max(0, Math.min(width - 1, bx0) - margin);
  by0 = Math.max(0, Math.min(height - 1, by0) - margin);
  bx1 = Math.min(width, Math.max(bx1, bx0 + 1) + margin);
  by1 = Math.min(height, Math.max(by1, by0 + 1) + margin);
  const w = bx1 - bx0;
  const h = by1 - by0;

  const mask = new Uint8Array(w * h);
  const seeds: number[] = [];
  for (const r of regions) {
    fillRings(mask, w, h, r.outline.map((ring) => ring.map(([x, y]) => [x * scale - bx0, y * scale - by0] as const)));
    // A seed pixel per region, marked, so a region smaller than a pixel still gets its ring:
    // the centre of its box, or where that is off the region (an L, a ring), any pixel of it.
    const [x, y, rw, rh] = r.bbox;
    const fx0 = Math.max(0, Math.floor(x * scale) - bx0);
    const fy0 = Math.max(0, Math.floor(y * scale) - by0);
    const fx1 = Math.min(w - 1, Math.ceil((x + rw) * scale) - bx0);
    const fy1 = Math.min(h - 1, Math.ceil((y + rh) * scale) - by0);
    const sx = Math.max(0, Math.min(w - 1, Math.floor((x + rw / 2) * scale) - bx0));
    const sy = Math.max(0, Math.min(h - 1, Math.floor((y + rh / 2) * scale) - by0));
    let seed = sy * w + sx;
    if (mask[seed] !== 1) {
      let found = -1;
      for (let yy = fy0; yy <= fy1 && found < 0; yy++) for (let xx = fx0; xx <= fx1 && found < 0; xx++) if (mask[yy * w + xx] === 1) found = yy * w + xx;
      if (found >= 0) seed = found;
      else mask[seed] = 1;
    }
    seeds.push(seed);
  }

  // Closing: dilate by `merge` (distance to the regions), then erode by merge - gap (distance
  // to what the dilation left out). t: a pixel's distance outside the closed shape, plus gap;
  // distances run between pixel centres, edges lie half a pixel before them, hence the 0.5.
  const toRegions = distanceTo(mask, w, h, 1, merge + 1);
  for (let i = 0; i < mask.length; i++) mask[i] = (toRegions[i] as number) <= merge ? 1 : 0;
  const erode = merge - gap;
  const toOutside = distanceTo(mask, w, h, 0, erode + halo + 2);
  const t = toOutside; // reused in place
  for (let i = 0; i < t.length; i++) t[i] = mask[i] === 1 ? gap + erode + 0.5 - (toOutside[i] as number) : merge + gap;

  // Groups: the connected parts of the shapes with their rings, found from each region's seed.
  const group = new Int32Array(w * h).fill(-1);
  const groups: RegionGroup[] = [];
  const queue: number[] = [];
  const order = regions.map((_, i) => i).sort((a, b) => (regions[a] as RankedRegion).rank - (regions[b] as RankedRegion).rank);
  for (const k of order) {
    const seed = seeds[k] as number;
    const rank = (regions[k] as RankedRegion).rank;
    const known = group[seed] as number;
    if (known >= 0) {
      (groups[known] as RegionGroup).ranks.push(rank);
      continue;
    }
    const id = groups.length;
    const g = { ranks: [rank], x0: w, y0: h, x1: 0, y1: 0 };
    groups.push(g);
    group[seed] = id;
    queue.length = 0;
    queue.push(seed);
    while (queue.length > 0) {
      const i = queue.pop() as number;
      const x = i % w;
      const y = (i - x) / w;
      if (x < g.x0) g.x0 = x;
      if (x + 1 > g.x1) g.x1 = x + 1;
      if (y < g.y0) g.y0 = y;
      if (y + 1 > g.y1) g.y1 = y + 1;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          const ny = y + dy;
          if (nx < 0 || nx >= w || ny < 0 || ny >= h) continue;
          const n = ny * w + nx;
          if (group[n] === -1 && (t[n] as number) <= outer + halo) {
            group[n] = id;
            queue.push(n);
          }
        }
      }
    }
  }

  // The ring: halo | colour | halo, with soft edges (t is continuous, so edges anti-alias).
  const [cr, cg, cb] = style.colour;
  const [hr, hg, hb] = style.haloColour;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const d = t[y * w + x] as number;
      if (d <= inner - halo - 0.5 || d >= outer + halo + 0.5) continue;
      const ring = clamp01(d - inner + 0.5) * clamp01(outer - d + 0.5);
      const dark = clamp01(d - (inner - halo) + 0.5) * clamp01(outer + halo - d + 0.5) * style.haloOpacity * (1 - ring);
      const p = ((y + by0) * width + x + bx0) * 3;
      if (dark > 0) {
        data[p] = Math.round((data[p] as number) * (1 - dark) + hr * dark);
        data[p + 1] = Math.round((data[p + 1] as number) * (1 - dark) + hg * dark);
        data[p + 2] = Math.round((data[p + 2] as number) * (1 - dark) + hb * dark);
      }
      if (ring > 0) {
        data[p] = Math.round((data[p] as number) * (1 - ring) + cr * ring);
        data[p + 1] = Math.round((data[p + 1] as number) * (1 - ring) + cg * ring);
        data[p + 2] = Math.round((data[p + 2] as number) * (1 - ring) + cb * ring);
      }
    }
  }

  return groups.map((g) => ({ ranks: g.ranks.sort((a, b) => a - b), x0: g.x0 + bx0, y0: g.y0 + by0, x1: g.x1 + bx0, y1: g.y1 + by0 }));
}

/** Ranks as a short label: [1, 3, 4, 5, 9] -> "1, 3–5, 9"; past `maxParts` parts, "… +n". */
export function rankLabel(ranks: readonly number[], maxParts = 3): string {
  const sorted = [...ranks].sort((a, b) => a - b);
  const parts: string[] = [];
  const counts: number[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && (sorted[j + 1] as number) === (sorted[j] as number) + 1) j++;
    const a = sorted[i] as number;
    const b = sorted[j] as number;
    parts.push(a === b ? `${a}` : b === a + 1 ? `${a}, ${b}` : `${a}–${b}`);
    counts.push(j - i + 1);
    i = j + 1;
  }
  if (parts.length <= maxParts) return parts.join(', ');
  const rest = counts.slice(maxParts).reduce((s, c) => s + c, 0);
  return `${parts.slice(0, maxParts).join(', ')} +${rest}`;
}
