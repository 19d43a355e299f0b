/**
 * regions.geojson: the anomalous regions as a GeoJSON FeatureCollection that QuPath imports as
 * annotations (File > Import objects, or drag and drop), in level-0 pixel coordinates as QuPath
 * expects. A region whose cells meet only at corners is a MultiPolygon, never a pinched Polygon.
 * Ring orientation: see contours.ts.
 */
import { createHash } from 'node:crypto';
import type { AnomalousRegion, Ring } from './contours.js';

export type Rgb = [number, number, number];

export interface GeoJsonPolygon {
  type: 'Polygon';
  coordinates: Ring[];
}

export interface GeoJsonMultiPolygon {
  type: 'MultiPolygon';
  coordinates: Ring[][];
}

export interface RegionFeature {
  type: 'Feature';
  id: string;
  geometry: GeoJsonPolygon | GeoJsonMultiPolygon;
  properties: {
    objectType: 'annotation';
    name: string;
    classification: { name: string; color: Rgb };
    isLocked: boolean;
    measurements: Record<string, number>;
  };
}

export interface RegionFeatureCollection {
  type: 'FeatureCollection';
  features: RegionFeature[];
}

export interface GeoJsonOptions {
  /** QuPath class of every region. */
  className: string;
  color: Rgb;
  /** Annotation names are `${namePrefix} ${id}`. */
  namePrefix: string;
  /** Mixed into feature ids, so regions of different slides never share an id. */
  idSeed: string;
}

export const GEOJSON_DEFAULTS: Readonly<GeoJsonOptions> = { className: 'Anomaly', color: [230, 40, 40], namePrefix: 'Anomaly', idSeed: '' };

/**
 * A UUID-shaped id (version 5 layout) hashed from the seed and the region's geometry: stable across
 * re-runs of the same result, so re-importing into QuPath updates rather than duplicates.
 */
export function featureId(seed: string, region: AnomalousRegion): string {
  const h = createHash('sha1').update(seed).update('\0').update(JSON.stringify(region.polygons)).digest();
  h[6] = ((h[6] as number) & 0x0f) | 0x50;
  h[8] = ((h[8] as number) & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function closed(ring: Ring): Ring {
  const first = ring[0];
  const last = ring[ring.length - 1];
  if (first === undefined || last === undefined) return ring;
  return first[0] === last[0] && first[1] === last[1] ? ring : [...ring, [first[0], first[1]]];
}

export function toQuPathGeoJson(regions: readonly AnomalousRegion[], options: Partial<GeoJsonOptions> = {}): RegionFeatureCollection {
  const o = { ...GEOJSON_DEFAULTS, ...options };
  return {
    type: 'FeatureCollection',
    features: regions.map((region) => {
      const polygons = region.polygons.map((p) => [closed(p.outer), ...p.holes.map(closed)]);
      const geometry: GeoJsonPolygon | GeoJsonMultiPolygon =
        polygons.length === 1 ? { type: 'Polygon', coordinates: polygons[0] as Ring[] } : { type: 'MultiPolygon', coordinates: polygons };
      return {
        type: 'Feature',
        id: featureId(o.idSeed, region),
        geometry,
        properties: {
          objectType: 'annotation',
          name: `${o.namePrefix} ${region.id}`,
          classification: { name: o.className, color: [...o.color] },
          isLocked: false,
          measurements: {
            'Score max': region.scoreMax,
            'Score mean': region.scoreMean,
            'Area µm^2': region.areaUm2,
            Cells: region.cellCount,
          },
        },
      };
    }),
  };
}
