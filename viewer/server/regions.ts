/**
 * A result's anomalous regions for the review page: regions.geojson (QuPath annotations in
 * level-0 pixels) turned into a ranked list, highest maximum score first, which is the order a
 * pathologist walks them in. Read once per result and kept (keyed by the result's time).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RESULT_FILES } from '../../worker/store/result-store.js';
import type { RegionFeatureCollection } from '../../worker/store/geojson.js';
import type { RegionItem } from './api-types.js';
import type { CatalogEntry } from './catalog.js';

type Point = [number, number];

function outerRings(feature: RegionFeatureCollection['features'][number]): Point[][] {
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

export function rankRegions(collection: RegionFeatureCollection): RegionItem[] {
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

export class RegionCache {
  private readonly cache = new Map<string, Promise<RegionItem[]>>();

  async regions(entry: CatalogEntry): Promise<RegionItem[]> {
    if (entry.status !== 'done') return [];
    const key = `${entry.id}\u0000${entry.updatedAt ?? ''}`;
    let hit = this.cache.get(key);
    if (hit === undefined) {
      hit = readFile(join(entry.resultDir, RESULT_FILES.regions), 'utf8').then((t) => rankRegions(JSON.parse(t) as RegionFeatureCollection));
      this.cache.set(key, hit);
      hit.catch(() => this.cache.delete(key));
      while (this.cache.size > 256) this.cache.delete(this.cache.keys().next().value as string);
    }
    return hit;
  }

  async ids(entry: CatalogEntry): Promise<string[]> {
    return (await this.regions(entry)).map((r) => r.id);
  }
}
