/**
 * Anomalous regions: the cells with score >= threshold, grouped into 8-connected components, each
 * outlined exactly along cell boundaries (a rectilinear polygon with holes) in level-0 pixels.
 *
 * Orientation: coordinates are level-0 pixels with y pointing DOWN. Exterior rings have positive
 * signed (shoelace) area computed on the raw (x, y) numbers, holes negative. That is the GeoJSON
 * right-hand rule (RFC 7946 3.1.6: exterior counter-clockwise, holes clockwise) as every tool that
 * checks it from the numbers sees it (shapely's orient, turf, geojsonhint). Drawn on screen with y
 * down, an exterior ring therefore runs clockwise: right along its top edge first.
 *
 * Connectivity: cells touching only at a corner belong to one region (8-connected), but the
 * geometry is never pinched there: every ring is simple, so a region whose cells meet only at
 * corners has several polygons (write it as a MultiPolygon), and a hole that touches its exterior
 * at a corner is a separate hole ring touching it at that one point. Both are valid OGC geometry.
 * Background is 4-connected, the usual dual of an 8-connected foreground: a background cell
 * enclosed except for diagonal gaps is a hole.
 */
import { StoreArgumentError } from './errors.js';

export interface RegionGeometry {
  /** Level-0 pixel of cell (0, 0)'s top-left corner. */
  originX: number;
  originY: number;
  /** Level-0 pixels per cell side. */
  cellSize: number;
  /** Microns per level-0 pixel. */
  mpp: number;
  /** Components with fewer cells are noise, not regions a pathologist should look at (default 1: keep all). */
  minCells?: number;
}

export type Point = [number, number];
/** Closed: the first point is repeated at the end. */
export type Ring = Point[];

export interface RegionPolygon {
  outer: Ring;
  holes: Ring[];
}

export interface AnomalousRegion {
  /** 1-based rank: region 1 has the largest scoreMass. */
  id: number;
  scoreMax: number;
  /**
   * Sum over the region's cells of (score - threshold): how much anomaly it holds. Ranking by it
   * puts a large, clearly abnormal area before a single hot cell, which is what a reviewer wants
   * to see first.
   */
  scoreMass: number;
  scoreMean: number;
  cellCount: number;
  areaUm2: number;
  /** Level-0 pixels. */
  bbox: { x: number; y: number; width: number; height: number };
  /** The cell with scoreMax and its centre in level-0 pixels, where a viewer should jump to. */
  peak: { row: number; col: number; x: number; y: number };
  /** One polygon, or several when cells meet only at corners. */
  polygons: RegionPolygon[];
}

const NEIGHBOURS_8: readonly (readonly [number, number])[] = [
  [-1, -1], [-1, 0], [-1, 1], [0, -1], [0, 1], [1, -1], [1, 0], [1, 1],
];

export function anomalousRegions(heatmap: Float32Array, rows: number, cols: number, threshold: number, geometry: RegionGeometry): AnomalousRegion[] {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 0 || cols < 0) throw new StoreArgumentError(`regions: grid ${rows} x ${cols} is not a non-negative integer size`);
  if (heatmap.length !== rows * cols) throw new StoreArgumentError(`regions: heatmap has ${heatmap.length} cells, expected rows x cols = ${rows} x ${cols}`);
  if (Number.isNaN(threshold)) throw new StoreArgumentError('regions: threshold is NaN');
  if (!(geometry.cellSize > 0) || !(geometry.mpp > 0)) throw new StoreArgumentError(`regions: cellSize and mpp must be positive, got ${geometry.cellSize} and ${geometry.mpp}`);

  // NaN >= t is false, so cells without tissue are never anomalous.
  const inMask = (r: number, c: number): boolean => r >= 0 && c >= 0 && r < rows && c < cols && (heatmap[r * cols + c] as number) >= threshold;
  const label = new Int32Array(rows * cols).fill(-1);
  const components: Int32Array[] = [];
  const queue = new Int32Array(rows * cols);
  for (let start = 0; start < rows * cols; start++) {
    if (label[start] !== -1 || !inMask(Math.floor(start / cols), start % cols)) continue;
    const id = components.length;
    let head = 0;
    let tail = 0;
    queue[tail++] = start;
    label[start] = id;
    while (head < tail) {
      const cell = queue[head++] as number;
      const r = Math.floor(cell / cols);
      const c = cell % cols;
      for (const [dr, dc] of NEIGHBOURS_8) {
        const n = (r + dr) * cols + (c + dc);
        if (inMask(r + dr, c + dc) && label[n] === -1) {
          label[n] = id;
          queue[tail++] = n;
        }
      }
    }
    components.push(queue.slice(0, tail).sort());
  }

  const minCells = geometry.minCells ?? 1;
  const unsorted = components
    .map((cells, id) => ({ cells, id }))
    .filter(({ cells }) => cells.length >= minCells)
    .map(({ cells, id }) => describe(cells, id, heatmap, cols, label, geometry, threshold));
  unsorted.sort((a, b) => b.region.scoreMass - a.region.scoreMass || a.firstCell - b.firstCell);
  return unsorted.map(({ region }, i) => ({ ...region, id: i + 1 }));
}

function describe(
  cells: Int32Array,
  id: number,
  heatmap: Float32Array,
  cols: number,
  label: Int32Array,
  g: RegionGeometry,
  threshold: number,
): { region: AnomalousRegion; firstCell: number } {
  let max = -Infinity;
  let peak = cells[0] as number;
  let sum = 0;
  let minR = Infinity;
  let maxR = -Infinity;
  let minC = Infinity;
  let maxC = -Infinity;
  for (const cell of cells) {
    const v = heatmap[cell] as number;
    sum += v;
    if (v > max) {
      max = v;
      peak = cell;
    }
    const r = Math.floor(cell / cols);
    const c = cell % cols;
    minR = Math.min(minR, r);
    maxR = Math.max(maxR, r);
    minC = Math.min(minC, c);
    maxC = Math.max(maxC, c);
  }
  const s = g.cellSize;
  const toLevel0 = (ring: GridRing): Ring => {
    const out: Ring = ring.map(([x, y]) => [g.originX + x * s, g.originY + y * s]);
    out.push([...(out[0] as Point)]);
    return out;
  };
  const polygons = outline(cells, id, cols, label).map((p) => ({ outer: toLevel0(p.outer), holes: p.holes.map(toLevel0) }));
  const peakRow = Math.floor(peak / cols);
  const peakCol = peak % cols;
  const region: AnomalousRegion = {
    id: 0,
    scoreMax: max,
    scoreMass: sum - threshold * cells.length,
    scoreMean: sum / cells.length,
    cellCount: cells.length,
    areaUm2: cells.length * (s * g.mpp) ** 2,
    bbox: { x: g.originX + minC * s, y: g.originY + minR * s, width: (maxC - minC + 1) * s, height: (maxR - minR + 1) * s },
    peak: { row: peakRow, col: peakCol, x: g.originX + (peakCol + 0.5) * s, y: g.originY + (peakRow + 0.5) * s },
    polygons,
  };
  return { region, firstCell: cells[0] as number };
}

/** A ring in grid-corner coordinates (cell (r, c) spans x in [c, c+1], y in [r, r+1]), not closed. */
type GridRing = Point[];

interface GridPolygon {
  outer: GridRing;
  holes: GridRing[];
}

/**
 * Boundary edges of the component, directed so the component lies on their left (in the raw
 * coordinates' orientation), are chained into cycles, the cycles split into simple rings at corners
 * they pass twice, and the rings sorted into exteriors (positive area) and holes (negative).
 */
function outline(cells: Int32Array, id: number, cols: number, label: Int32Array): GridPolygon[] {
  const rows = label.length / cols;
  const vCols = cols + 1;
  const vertex = (x: number, y: number): number => y * vCols + x;
  const member = (r: number, c: number): boolean => r >= 0 && c >= 0 && r < rows && c < cols && label[r * cols + c] === id;
  const from: number[] = [];
  const to: number[] = [];
  const outgoing = new Map<number, number[]>();
  const addEdge = (x0: number, y0: number, x1: number, y1: number): void => {
    const a = vertex(x0, y0);
    from.push(a);
    to.push(vertex(x1, y1));
    const list = outgoing.get(a);
    if (list === undefined) outgoing.set(a, [from.length - 1]);
    else list.push(from.length - 1);
  };
  for (const cell of cells) {
    const r = Math.floor(cell / cols);
    const c = cell % cols;
    if (!member(r - 1, c)) addEdge(c, r, c + 1, r);
    if (!member(r, c + 1)) addEdge(c + 1, r, c + 1, r + 1);
    if (!member(r + 1, c)) addEdge(c + 1, r + 1, c, r + 1);
    if (!member(r, c - 1)) addEdge(c, r + 1, c, r);
  }
  const dir = (e: number): Point => {
    const a = from[e] as number;
    const b = to[e] as number;
    return [(b % vCols) - (a % vCols), Math.floor(b / vCols) - Math.floor(a / vCols)];
  };
  // Where two edges leave a corner (cells meeting diagonally), take the left turn, which keeps
  // hugging the cell we came along; the ring split below makes the choice immaterial to the result.
  const next = (e: number): number => {
    const out = outgoing.get(to[e] as number) as number[];
    if (out.length === 1) return out[0] as number;
    const [dx, dy] = dir(e);
    const left = out.find((o) => {
      const [ox, oy] = dir(o);
      return ox === -dy && oy === dx;
    });
    return left ?? (out[0] as number);
  };

  const used = new Uint8Array(from.length);
  const rings: GridRing[] = [];
  for (let e0 = 0; e0 < from.length; e0++) {
    if (used[e0]) continue;
    const cycle: number[] = [];
    for (let e = e0; !used[e]; e = next(e)) {
      used[e] = 1;
      cycle.push(from[e] as number);
    }
    for (const loop of splitAtRepeats(cycle)) {
      rings.push(canonical(dropCollinear(loop.map((v): Point => [v % vCols, Math.floor(v / vCols)]))));
    }
  }

  const outers = rings.filter((r) => signedArea(r) > 0).sort(byFirstPoint);
  const holes = rings.filter((r) => signedArea(r) < 0).sort(byFirstPoint);
  const polygons: GridPolygon[] = outers.map((outer) => ({ outer, holes: [] }));
  for (const hole of holes) {
    const probe = cellRightOfFirstEdge(hole);
    let best: GridPolygon | undefined;
    let bestArea = Infinity;
    for (const p of polygons) {
      const area = signedArea(p.outer);
      if (area < bestArea && contains(p.outer, probe)) {
        best = p;
        bestArea = area;
      }
    }
    (best ?? (polygons[0] as GridPolygon)).holes.push(hole);
  }
  return polygons;
}

/** Splits a closed vertex cycle into simple closed loops wherever it revisits a vertex. */
function splitAtRepeats(cycle: readonly number[]): number[][] {
  const loops: number[][] = [];
  const stack: number[] = [];
  const position = new Map<number, number>();
  for (const v of cycle) {
    const at = position.get(v);
    if (at === undefined) {
      position.set(v, stack.length);
      stack.push(v);
      continue;
    }
    const loop = stack.splice(at + 1);
    for (const u of loop) position.delete(u);
    loops.push([v, ...loop]);
  }
  loops.push(stack);
  return loops;
}

/** Keeps only the corners of a rectilinear ring. */
function dropCollinear(ring: GridRing): GridRing {
  const n = ring.length;
  return ring.filter((p, i) => {
    const a = ring[(i + n - 1) % n] as Point;
    const b = ring[(i + 1) % n] as Point;
    return !((a[0] === p[0] && p[0] === b[0]) || (a[1] === p[1] && p[1] === b[1]));
  });
}

/** Starts the ring at its top-most, then left-most corner, so output is deterministic. */
function canonical(ring: GridRing): GridRing {
  let k = 0;
  ring.forEach((p, i) => {
    if (byPoint(p, ring[k] as Point) < 0) k = i;
  });
  return [...ring.slice(k), ...ring.slice(0, k)];
}

function byPoint(a: Point, b: Point): number {
  return a[1] - b[1] || a[0] - b[0];
}

function byFirstPoint(a: GridRing, b: GridRing): number {
  return byPoint(a[0] as Point, b[0] as Point);
}

/** Shoelace area on the raw coordinates: > 0 for exteriors here, < 0 for holes. */
function signedArea(ring: GridRing): number {
  let s = 0;
  for (let i = 0; i < ring.length; i++) {
    const [x0, y0] = ring[i] as Point;
    const [x1, y1] = ring[(i + 1) % ring.length] as Point;
    s += x0 * y1 - x1 * y0;
  }
  return s / 2;
}

/**
 * Centre of the cell just right of the ring's first edge: the component is on the left of every
 * edge, so this cell is background, inside the hole. Half-integer, so never on a grid line.
 */
function cellRightOfFirstEdge(ring: GridRing): Point {
  const [x0, y0] = ring[0] as Point;
  const [x1, y1] = ring[1] as Point;
  const dx = Math.sign(x1 - x0);
  const dy = Math.sign(y1 - y0);
  return [x0 + 0.5 * dx + 0.5 * dy, y0 + 0.5 * dy - 0.5 * dx];
}

/** Even-odd ray casting; `p` never lies on an edge (half-integer vs integer coordinates). */
function contains(ring: GridRing, p: Point): boolean {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i] as Point;
    const [xj, yj] = ring[j] as Point;
    if (yi > p[1] !== yj > p[1] && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}
