/**
 * review.json: the pathologist's verdicts, beside the result they judge (the review server writes
 * it, see viewer/server/review-store.ts; reports read it).
 *
 *   { "formatVersion": 1, "version": 7, "regions": { "<region id>": RegionReview, ... } }
 *
 * Verdicts of regions the current result no longer has (recomputed with other outlines) stay in
 * the file but are not counted.
 */
import { join } from 'node:path';
import { CorruptResultError } from './errors.js';
import { readJsonFile } from './json-file.js';
import type { RegionReview, Review, ReviewState } from './result-types.js';

export const REVIEW_FILE = 'review.json';

export interface ReviewFile {
  formatVersion: 1;
  version: number;
  regions: Record<string, RegionReview>;
}

export const EMPTY_REVIEW: Readonly<ReviewFile> = { formatVersion: 1, version: 0, regions: {} };

/** Not started: no verdict; done: every region has one (a slide without regions has nothing to review). */
export function reviewState(reviewed: number, total: number): ReviewState {
  if (total > 0 && reviewed >= total) return 'done';
  return reviewed === 0 ? 'not-started' : 'in-progress';
}

/** The review file of a result folder; an empty review when there is none yet. */
export async function readReviewFile(resultDir: string): Promise<ReviewFile> {
  const path = join(resultDir, REVIEW_FILE);
  const parsed = await readJsonFile<Partial<ReviewFile>>(path);
  if (parsed === null) return EMPTY_REVIEW;
  if (parsed.formatVersion !== 1 || typeof parsed.version !== 'number' || typeof parsed.regions !== 'object' || parsed.regions === null) {
    throw new CorruptResultError(path, 'not a flashslide review (formatVersion 1)');
  }
  return parsed as ReviewFile;
}

/** The file's verdicts counted against the region ids the result has now. */
export function toReview(file: ReviewFile, regionIds: readonly string[]): Review {
  const regions: Record<string, RegionReview> = {};
  for (const id of regionIds) {
    const r = file.regions[id];
    if (r !== undefined) regions[id] = r;
  }
  const reviewed = Object.keys(regions).length;
  return { version: file.version, regions, state: reviewState(reviewed, regionIds.length), reviewed, total: regionIds.length };
}
