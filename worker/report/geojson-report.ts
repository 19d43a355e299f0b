/**
 * The regions with the pathologist's verdicts as a GeoJSON FeatureCollection for QuPath
 * (File > Import objects), checked against QuPath's reader (qupath-core PathObjectTypeAdapters)
 * as well as RFC 7946:
 * - `id` is a UUID (the region's, stable across exports), which QuPath keeps as the object's id:
 *   importing the same file twice gives duplicate ids, which QuPath offers to renumber (it does
 *   not replace the objects it has);
 * - `properties.objectType: "annotation"`; level-0 pixel coordinates, closed rings;
 * - `classification: { name, color: [r, g, b] }` names the verdict: "Anomaly" while open,
 *   "Anomaly (confirmed)", "Anomaly (rejected)", "Anomaly (unsure)" (no ':' in the names, which
 *   QuPath would read as a derived class);
 * - `measurements` is a flat object of finite numbers only (QuPath stores doubles);
 * - `metadata` holds strings only (QuPath keeps primitive values as text): verdict, note,
 *   reviewer, time, slide and analysis id.
 * A foreign member `flashslide` (ignored by QuPath) carries the slide's status, and for a failed
 * slide the reason, so an empty collection is never mistaken for "nothing found".
 */
import type { RegionFeature, Rgb } from '../store/geojson.js';
import type { Verdict } from '../store/result-types.js';
import { REPORT_FORMAT_VERSION, type SlideReport } from './slide-report.js';

export const VERDICT_CLASSES: Record<Verdict | 'open', { name: string; color: Rgb }> = {
  open: { name: 'Anomaly', color: [230, 40, 40] },
  confirmed: { name: 'Anomaly (confirmed)', color: [170, 0, 90] },
  rejected: { name: 'Anomaly (rejected)', color: [140, 140, 140] },
  unsure: { name: 'Anomaly (unsure)', color: [240, 160, 0] },
};

/** A region feature of regions.geojson with the verdict's class and the review as metadata. */
export type ReviewedFeature = Omit<RegionFeature, 'properties'> & {
  properties: RegionFeature['properties'] & { metadata: Record<string, string> };
};

export interface ReviewedFeatureCollection {
  type: 'FeatureCollection';
  features: ReviewedFeature[];
  flashslide: {
    formatVersion: typeof REPORT_FORMAT_VERSION;
    analysisId: string;
    slide: string;
    status: SlideReport['status'];
    reason: string | null;
    diagnostic: boolean;
  };
}

function finiteOnly(values: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => Number.isFinite(v)));
}

export function reviewedGeoJson(report: SlideReport): ReviewedFeatureCollection {
  return {
    type: 'FeatureCollection',
    features: report.regions.map((r) => {
      const cls = VERDICT_CLASSES[r.review?.verdict ?? 'open'];
      const metadata: Record<string, string> = { slide: report.name, analysis_id: report.analysisId, rank: String(r.rank), verdict: r.review?.verdict ?? 'open' };
      if (r.review !== null) {
        if (r.review.note !== '') metadata['note'] = r.review.note;
        if (r.review.reviewer !== '') metadata['reviewer'] = r.review.reviewer;
        metadata['reviewed_at'] = r.review.at;
      }
      return {
        type: 'Feature',
        id: r.id,
        geometry: r.geometry,
        properties: {
          objectType: 'annotation',
          name: `${r.name} (rank ${r.rank})`,
          classification: { name: cls.name, color: [...cls.color] },
          isLocked: false,
          measurements: finiteOnly({
            Rank: r.rank,
            'Score max': r.scoreMax,
            'Score mean': r.scoreMean,
            'Area µm^2': r.areaUm2,
            'Area mm^2': r.areaMm2,
            Cells: r.cells,
          }),
          metadata,
        },
      };
    }),
    flashslide: {
      formatVersion: REPORT_FORMAT_VERSION,
      analysisId: report.analysisId,
      slide: report.name,
      status: report.status,
      reason: report.failure?.reason ?? null,
      diagnostic: report.diagnostic,
    },
  };
}
