/**
 * The per-slide result folder: a stable, documented layout that the viewer, reports and people
 * with NumPy or QuPath read directly.
 *
 *   <root>/<slideId>/
 *     heatmap.npy       float32 [rows, cols], C order; NaN = cell without tissue (not scored)
 *     heatmap.json      HeatmapMeta: grid geometry on the slide, model, score method and params,
 *                       min/max/threshold, versions (heatmap-json.ts)
 *     tissue.png        the tissue mask the grid was built from (white = tissue)
 *     overlay.png       heatmap blended over the slide thumbnail
 *     regions.geojson   anomalous regions, QuPath-flavoured GeoJSON (geojson.ts), level-0 pixels
 *     analysis.json     AnalysisRecord: slide and model fingerprints, parameters (analysis-record.ts)
 *     summary.json      SlideSummary; written LAST: its presence means the result is complete
 *     failure.json      SlideFailure; only when the slide could not be processed
 *     review.json       the pathologist's verdicts (review-file.ts); written by the review server
 *
 * Every file is written to a temporary name in the same folder and renamed into place
 * (writeFileAtomic), so readers never see a half-written file, and a rename never crosses a
 * filesystem: safe on a shared filesystem mounted by many workers. Temporary files start with '.'
 * and end in '.tmp'; one left by a crashed worker is never mistaken for a result. No locks: job ids
 * make sure only one worker writes a given slide at a time.
 */
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-write.js';
import { CorruptResultError, StoreArgumentError } from './errors.js';
import { readJsonFile } from './json-file.js';
import { formatHeatmapMeta, type HeatmapMeta } from './heatmap-json.js';
import { encodeNpyFloat32 } from './npy.js';
import type { SlideFailure, SlideSummary } from './summary.js';
import type { AnalysisRecord } from './analysis-record.js';

export const RESULT_FILES = {
  heatmap: 'heatmap.npy',
  meta: 'heatmap.json',
  tissue: 'tissue.png',
  overlay: 'overlay.png',
  regions: 'regions.geojson',
  analysis: 'analysis.json',
  summary: 'summary.json',
  failure: 'failure.json',
} as const;

export interface ResultParts {
  /** meta.rows x meta.cols, row-major; NaN = no tissue. */
  heatmap: Float32Array;
  meta: HeatmapMeta;
  tissuePng: Buffer;
  overlayPng: Buffer;
  regionsGeoJson: object;
  analysis: AnalysisRecord;
  summary: SlideSummary;
}

const MAX_ID_LENGTH = 200;

function jsonText(value: unknown): string {
  // JSON.stringify writes Infinity/NaN as null; readers map a null threshold back to Infinity.
  return `${JSON.stringify(value, null, 2)}\n`;
}

export class ResultStore {
  constructor(readonly root: string) {}

  /** The slide's folder. The id must be one safe path component: it names a folder on shared storage. */
  slideDir(slideId: string): string {
    if (slideId === '' || slideId.length > MAX_ID_LENGTH || /[/\\\0]/.test(slideId) || slideId.startsWith('.')) {
      throw new StoreArgumentError(
        `slide id ${JSON.stringify(slideId.slice(0, 80))} cannot name a result folder: use 1-${MAX_ID_LENGTH} characters without '/', '\\' or NUL, not starting with '.'`,
      );
    }
    return join(this.root, slideId);
  }

  async writeResult(slideId: string, parts: ResultParts): Promise<void> {
    const dir = this.slideDir(slideId);
    const { heatmap, meta } = parts;
    if (heatmap.length !== meta.rows * meta.cols) {
      throw new StoreArgumentError(`slide ${slideId}: heatmap has ${heatmap.length} cells but meta says ${meta.rows} x ${meta.cols}`);
    }
    const file = (name: string): string => join(dir, name);
    // Re-running over an old result: withdraw its completion mark first, so the folder never
    // looks complete while it mixes old and new files.
    await rm(file(RESULT_FILES.summary), { force: true });
    // allSettled, not all: a failed write must not return while the others are still writing,
    // or a retry would race them and their temp files would outlive the failure.
    const writes = await Promise.allSettled([
      writeFileAtomic(file(RESULT_FILES.heatmap), encodeNpyFloat32(heatmap, [meta.rows, meta.cols])),
      writeFileAtomic(file(RESULT_FILES.meta), formatHeatmapMeta(meta)),
      writeFileAtomic(file(RESULT_FILES.tissue), parts.tissuePng),
      writeFileAtomic(file(RESULT_FILES.overlay), parts.overlayPng),
      writeFileAtomic(file(RESULT_FILES.regions), jsonText(parts.regionsGeoJson)),
      writeFileAtomic(file(RESULT_FILES.analysis), jsonText(parts.analysis)),
    ]);
    const failed = writes.find((w): w is PromiseRejectedResult => w.status === 'rejected');
    if (failed) throw failed.reason;
    await rm(file(RESULT_FILES.failure), { force: true });
    await writeFileAtomic(file(RESULT_FILES.summary), jsonText(parts.summary));
  }

  /** The summary of a complete result, or null when there is none (never run, running, crashed, failed). */
  async readSummary(slideId: string): Promise<SlideSummary | null> {
    const raw = await readJsonFile<SlideSummary & { threshold: number | null }>(join(this.slideDir(slideId), RESULT_FILES.summary));
    if (raw === null) return null;
    if (raw.status !== 'done' || typeof raw.slideId !== 'string') {
      throw new CorruptResultError(join(this.slideDir(slideId), RESULT_FILES.summary), 'not a slide summary (no status "done" or slideId)');
    }
    return { ...raw, threshold: raw.threshold ?? Infinity };
  }

  async hasResult(slideId: string): Promise<boolean> {
    try {
      return (await stat(join(this.slideDir(slideId), RESULT_FILES.summary))).isFile();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  /** Records why a slide has no result. A complete result already there is left alone. */
  /**
   * `analysisId` names the analysis in the record like summary.json's slideId does, so readers
   * (the review server, reports) find failed slides by the same id as finished ones.
   */
  async writeFailure(slideId: string, failure: { reason: string; slidePath: string; at: string; analysisId?: string }): Promise<void> {
    const record: SlideFailure = { slideId: failure.analysisId ?? slideId, status: 'failed', reason: failure.reason, slidePath: failure.slidePath, at: failure.at };
    await writeFileAtomic(join(this.slideDir(slideId), RESULT_FILES.failure), jsonText(record));
  }

  async readFailure(slideId: string): Promise<SlideFailure | null> {
    return readJsonFile<SlideFailure>(join(this.slideDir(slideId), RESULT_FILES.failure));
  }

}
