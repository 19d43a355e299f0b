/**
 * Shapes of what a result folder holds, shared by the reports (worker/report), the review server
 * and the browser app. Types only and no imports: the browser app type-checks this file too.
 */

export type Verdict = 'confirmed' | 'rejected' | 'unsure';
export type ReviewState = 'not-started' | 'in-progress' | 'done';

export interface VerdictRecord {
  verdict: Verdict;
  note: string;
  reviewer: string;
  /** ISO 8601. */
  at: string;
}

export interface RegionReview extends VerdictRecord {
  /** Earlier verdicts of this region, oldest first: an edit never destroys one. */
  history: VerdictRecord[];
}

/** A slide's review counted against the regions its result has now. */
export interface Review {
  /** Increases by one with every change; sent as the ETag and expected back in If-Match. */
  version: number;
  regions: Record<string, RegionReview>;
  state: ReviewState;
  reviewed: number;
  total: number;
}

/** An anomalous region of regions.geojson, ranked for review (see ranked-regions.ts). */
export interface RankedRegion {
  /** Stable id (the GeoJSON feature id). */
  id: string;
  /** 1 = highest maximum score. */
  rank: number;
  name: string;
  scoreMax: number;
  scoreMean: number;
  areaUm2: number;
  cells: number;
  /** Level-0 pixels: [x, y, width, height] of the outline's bounds. */
  bbox: [number, number, number, number];
  /** Level-0 pixels: area-weighted centroid of the outer rings. */
  centroid: [number, number];
  /** Outer rings of the outline's polygons, level-0 pixels (holes omitted: this is for drawing). */
  outline: [number, number][][];
}
