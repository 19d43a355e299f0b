/**
 * regions.geojson (QuPath annotations in level-0 pixels) as a ranked list, highest maximum score
 * first: the order a pathologist walks the regions in, in the viewer and in reports alike.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CorruptResultError } from './errors.js';
import type { RegionFeature, RegionFeatureCollection } from './geojson.js';
import { RESULT_FILES } from './result-store.js';
import type { RankedRegion } from './result-types.js';

type Point = [number, number];

function outerRings(feature: RegionFeature): Point[][] {
  const g = feature.geometry;
  const polygons = g.type === 'Polygon' ? [g.coordinates] : g.coordinates;
  return polygons.map((rings) => (rings[0] ?? []).map(([x, y]) => [x, y] as Point));
}

/** Area-weighted centroid of the outer rings (shoelace), the point a reviewer is flown to. */
function centroid(rings: Point[][]): Point {
  let a = 0;
  let cx = 0;
  let cy = 0;
  for (const ring of rings) {
    for (let i = 0; i + 1 < ring.length; i++) {
      const [x0, y0] = ring[i] as Point;
      const [x1, y1] = ring[i + 1] as Point;
      const cross = x0 * y1 - x1 * y0;
      a += cross;
      cx += (x0 + x1) * cross;
      cy += (y0 + y1) * cross;
    }
  }
  if (a === 0) {
    const first = rings[0]?.[0] ?? [0, 0];
    return [first[0], first[1]];
  }
  return [cx / (3 * a), cy / (3 * a)];
}

export function rankRegions(collection: RegionFeatureCollection): RankedRegion[] {
  const items = collection.features.map((f) => {
    const outline = outerRings(f);
    const xs = outline.flat().map((p) => p[0]);
    const ys = outline.flat().map((p) => p[1]);
    const [x0, y0, x1, y1] = [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
    const m = f.properties.measurements;
    return {
      id: String(f.id),
      rank: 0,
      name: f.properties.name,
      scoreMax: Number(m['Score max']),
      scoreMean: Number(m['Score mean']),
      areaUm2: Number(m['Area µm^2']),
      cells: Number(m['Cells']),
      bbox: [x0, y0, x1 - x0, y1 - y0] as [number, number, number, number],
      centroid: centroid(outline),
      outline,
    };
  });
  items.sort((a, b) => b.scoreMax - a.scoreMax || b.areaUm2 - a.areaUm2);
  return items.map((r, i) => ({ ...r, rank: i + 1 }));
}

/** regions.geojson of a result folder, parsed and checked to be a FeatureCollection. */
export async function readRegionFeatures(resultDir: string): Promise<RegionFeatureCollection> {
  const path = join(resultDir, RESULT_FILES.regions);
  let parsed: Partial<RegionFeatureCollection>;
  try {
    parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<RegionFeatureCollection>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new CorruptResultError(path, 'missing', err);
    throw new CorruptResultError(path, `not valid JSON (${(err as Error).message})`, err);
  }
  if (parsed.type !== 'FeatureCollection' || !Array.isArray(parsed.features)) throw new CorruptResultError(path, 'not a GeoJSON FeatureCollection');
  return parsed as RegionFeatureCollection;
}
