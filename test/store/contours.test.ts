import { describe, expect, it } from 'vitest';
import { anomalousRegions, type AnomalousRegion, type Point, type Ring } from '../../worker/store/contours.js';
import { toQuPathGeoJson } from '../../worker/store/geojson.js';
import { seededRng } from '../../worker/util/random.js';

// Cells of 16 level-0 px at 0.5 um/px: 8 um wide, 64 um^2; the grid starts at (100, 200).
const GEOMETRY = { originX: 100, originY: 200, cellSize: 16, mpp: 0.5 };

/** A heatmap from a picture: '#' = 0.9 (anomalous), '.' = 0.1, ' ' = NaN (no tissue). */
function grid(...lines: string[]): { heatmap: Float32Array; rows: number; cols: number } {
  const rows = lines.length;
  const cols = Math.max(...lines.map((l) => l.length));
  const heatmap = new Float32Array(rows * cols).fill(Number.NaN);
  lines.forEach((line, r) => [...line].forEach((ch, c) => (heatmap[r * cols + c] = ch === '#' ? 0.9 : ch === '.' ? 0.1 : Number.NaN)));
  return { heatmap, rows, cols };
}

function regions(...lines: string[]): AnomalousRegion[] {
  const g = grid(...lines);
  return anomalousRegions(g.heatmap, g.rows, g.cols, 0.5, GEOMETRY);
}

/** Grid-corner coordinates to level-0 pixels, closing the ring. */
function px(...corners: Point[]): Ring {
  const ring = corners.map(([x, y]): Point => [100 + 16 * x, 200 + 16 * y]);
  return [...ring, ring[0] as Point];
}

function inside(ring: Ring, x: number, y: number): boolean {
  let odd = false;
  for (let i = 0; i + 1 < ring.length; i++) {
    const [x0, y0] = ring[i] as Point;
    const [x1, y1] = ring[i + 1] as Point;
    if (y0 > y !== y1 > y && x < ((x1 - x0) * (y - y0)) / (y1 - y0) + x0) odd = !odd;
  }
  return odd;
}

function signedArea(ring: Ring): number {
  let s = 0;
  for (let i = 0; i + 1 < ring.length; i++) s += (ring[i] as Point)[0] * (ring[i + 1] as Point)[1] - (ring[i + 1] as Point)[0] * (ring[i] as Point)[1];
  return s / 2;
}

describe('anomalous regions', () => {
  it('outlines an L-shape exactly', () => {
    const [l, ...rest] = regions(
      '#..', //
      '#..',
      '##.',
    );
    expect(rest).toEqual([]);
    expect(l?.polygons).toEqual([{ outer: px([0, 0], [1, 0], [1, 2], [2, 2], [2, 3], [0, 3]), holes: [] }]);
    expect(l).toMatchObject({ id: 1, cellCount: 4, areaUm2: 256, bbox: { x: 100, y: 200, width: 32, height: 48 } });
    expect(l?.scoreMax).toBeCloseTo(0.9, 6);
    expect(l?.scoreMean).toBeCloseTo(0.9, 6);
    // Exterior: positive signed area on the raw numbers (GeoJSON's counter-clockwise), 4 cells.
    expect(signedArea(l?.polygons[0]?.outer as Ring)).toBe(4 * 16 * 16);
  });

  it('outlines a ring with its hole, whether the hole is low-scoring tissue or no tissue', () => {
    for (const middle of ['#.#', '# #']) {
      const [ring, ...rest] = regions('###', middle, '###');
      expect(rest).toEqual([]);
      expect(ring?.cellCount).toBe(8);
      expect(ring?.areaUm2).toBe(8 * 64);
      expect(ring?.polygons).toEqual([{ outer: px([0, 0], [3, 0], [3, 3], [0, 3]), holes: [px([1, 1], [1, 2], [2, 2], [2, 1])] }]);
      expect(signedArea(ring?.polygons[0]?.holes[0] as Ring)).toBe(-256);
    }
  });

  it('joins cells touching at a corner into one region of separate squares', () => {
    const [pair, ...rest] = regions(
      '#.', //
      '.#',
    );
    expect(rest).toEqual([]);
    expect(pair?.cellCount).toBe(2);
    expect(pair?.polygons).toEqual([
      { outer: px([0, 0], [1, 0], [1, 1], [0, 1]), holes: [] },
      { outer: px([1, 1], [2, 1], [2, 2], [1, 2]), holes: [] },
    ]);
    const geometry = toQuPathGeoJson([pair as AnomalousRegion]).features[0]?.geometry;
    expect(geometry?.type).toBe('MultiPolygon');
  });

  it('keeps a hole that touches its exterior at a corner as a separate simple ring', () => {
    const [r] = regions('###', '#.#', '##.');
    expect(r?.polygons).toEqual([{ outer: px([0, 0], [3, 0], [3, 2], [2, 2], [2, 3], [0, 3]), holes: [px([1, 1], [1, 2], [2, 2], [2, 1])] }]);
  });

  it('sorts regions by their highest score and numbers them from 1', () => {
    const g = grid('#..#', '...#', '#...');
    g.heatmap[0] = 0.6;
    g.heatmap[3] = 0.95;
    g.heatmap[8] = 0.7;
    const found = anomalousRegions(g.heatmap, g.rows, g.cols, 0.5, GEOMETRY);
    expect(found.map((r) => [r.id, r.cellCount, r.scoreMax])).toEqual([
      [1, 2, Math.fround(0.95)],
      [2, 1, Math.fround(0.7)],
      [3, 1, Math.fround(0.6)],
    ]);
    expect(found[0]?.scoreMean).toBeCloseTo((0.95 + 0.9) / 2, 6);
    expect(found[0]?.peak).toEqual({ row: 0, col: 3, x: 100 + 3.5 * 16, y: 200 + 0.5 * 16 });
  });

  it('finds nothing above an infinite threshold or in a grid without tissue', () => {
    const g = grid('##', '##');
    expect(anomalousRegions(g.heatmap, 2, 2, Infinity, GEOMETRY)).toEqual([]);
    expect(regions('  ', '  ')).toEqual([]);
    expect(anomalousRegions(new Float32Array(0), 0, 0, 0.5, GEOMETRY)).toEqual([]);
    expect(() => anomalousRegions(new Float32Array(3), 2, 2, 0.5, GEOMETRY)).toThrow(/expected rows x cols/);
  });

  it('gives simple, correctly oriented rings covering exactly the cells, on random grids', () => {
    const rng = seededRng(2024);
    let holes = 0;
    let multi = 0;
    // Dense enough for holes and corner-touching cells to be common.
    const T = 0.4;
    for (let trial = 0; trial < 40; trial++) {
      const rows = 3 + Math.floor(rng() * 12);
      const cols = 3 + Math.floor(rng() * 12);
      const heatmap = Float32Array.from({ length: rows * cols }, () => (rng() < 0.1 ? Number.NaN : rng()));
      const geometry = { originX: 0, originY: 0, cellSize: 1, mpp: 1 };
      const found = anomalousRegions(heatmap, rows, cols, T, geometry);
      let covered = 0;
      for (const region of found) {
        let area = 0;
        for (const { outer, holes } of region.polygons) {
          for (const ring of [outer, ...holes]) {
            expect(ring[0]).toEqual(ring[ring.length - 1]);
            const corners = ring.slice(0, -1).map(([x, y]) => `${x},${y}`);
            expect(new Set(corners).size).toBe(corners.length);
          }
          expect(signedArea(outer)).toBeGreaterThan(0);
          area += signedArea(outer);
          for (const h of holes) {
            expect(signedArea(h)).toBeLessThan(0);
            area += signedArea(h);
          }
        }
        expect(area).toBe(region.cellCount);
        expect(region.areaUm2).toBe(region.cellCount);
        covered += region.cellCount;
        holes += region.polygons.reduce((n, p) => n + p.holes.length, 0);
        if (region.polygons.length > 1) multi++;
      }
      expect(covered).toBe(heatmap.filter((v) => v >= T).length);
      // Each anomalous cell lies in exactly one polygon (inside its exterior, outside its holes),
      // every other cell in none: holes belong to the right exterior.
      const polygons = found.flatMap((r) => r.polygons);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const hits = polygons.filter((p) => inside(p.outer, c + 0.5, r + 0.5) && !p.holes.some((h) => inside(h, c + 0.5, r + 0.5))).length;
          expect(hits).toBe((heatmap[r * cols + c] as number) >= T ? 1 : 0);
        }
      }
    }
    expect(holes).toBeGreaterThan(5);
    expect(multi).toBeGreaterThan(5);
  });
});

describe('QuPath GeoJSON', () => {
  it('writes closed polygons with QuPath annotation properties and stable ids', () => {
    const found = regions('###', '#.#', '###', '...', '#..');
    const fc = toQuPathGeoJson(found, { idSeed: 'slide-1' });
    expect(fc.type).toBe('FeatureCollection');
    expect(fc.features).toHaveLength(2);
    const [ring] = fc.features;
    expect(ring).toMatchObject({
      type: 'Feature',
      geometry: { type: 'Polygon', coordinates: [px([0, 0], [3, 0], [3, 3], [0, 3]), px([1, 1], [1, 2], [2, 2], [2, 1])] },
      properties: {
        objectType: 'annotation',
        name: 'Anomaly 1',
        classification: { name: 'Anomaly', color: [230, 40, 40] },
        isLocked: false,
        measurements: { 'Area µm^2': 512, Cells: 8 },
      },
    });
    expect(ring?.properties.measurements['Score max']).toBeCloseTo(0.9, 6);
    expect(ring?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(toQuPathGeoJson(found, { idSeed: 'slide-1' })).toEqual(fc);
    expect(toQuPathGeoJson(found, { idSeed: 'slide-2' }).features[0]?.id).not.toBe(ring?.id);
    expect(new Set(fc.features.map((f) => f.id)).size).toBe(2);
    // Valid JSON as written to disk.
    expect(JSON.parse(JSON.stringify(fc))).toEqual(fc);
  });
});
