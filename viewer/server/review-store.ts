/**
 * The pathologist's verdicts, one `review.json` per result folder, beside the result they judge.
 *
 *   { "formatVersion": 1, "version": 7, "regions": { "<region id>": RegionReview, ... } }
 *
 * - `version` increases with every change. Clients send the version they saw (If-Match); a
 *   stale one is refused with a conflict, so two browsers never overwrite each other blindly.
 * - An edit never destroys a verdict: the previous one moves into the region's `history`.
 * - Written atomically (temp file + rename) like every result file. Changes within this process
 *   are serialised per folder, so read-modify-write never interleaves.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../worker/util/atomic-write.js';
import type { RegionReview, Review, ReviewState, Verdict, VerdictInput, VerdictRecord } from './api-types.js';
import { BadRequestError, ConflictError } from './errors.js';

export const REVIEW_FILE = 'review.json';
export const VERDICTS: readonly Verdict[] = ['confirmed', 'rejected', 'unsure'];
const MAX_NOTE = 4000;
const MAX_REVIEWER = 120;

interface ReviewFile {
  formatVersion: 1;
  version: number;
  regions: Record<string, RegionReview>;
}

const EMPTY: ReviewFile = { formatVersion: 1, version: 0, regions: {} };

/** Not started: no verdict; done: every region has one (a slide without regions has nothing to review). */
export function reviewState(reviewed: number, total: number): ReviewState {
  if (total > 0 && reviewed >= total) return 'done';
  return reviewed === 0 ? 'not-started' : 'in-progress';
}

export class ReviewStore {
  private readonly locks = new Map<string, Promise<unknown>>();

  /** The review of the result in `resultDir`, counted against the region ids the result has now. */
  async read(resultDir: string, regionIds: readonly string[]): Promise<Review> {
    return toReview(await readReviewFile(resultDir), regionIds);
  }

  /**
   * Records a verdict. `ifMatch` is the version the client last saw; undefined only for callers
   * that deliberately skip the check (none of the HTTP routes do).
   */
  async setVerdict(resultDir: string, regionIds: readonly string[], regionId: string, input: VerdictInput, ifMatch: number | undefined): Promise<Review> {
    if (!regionIds.includes(regionId)) throw new BadRequestError(`region ${regionId} is not one of this slide's anomalous regions`);
    const record = checkVerdict(input);
    return this.serialised(resultDir, async () => {
      const current = await readReviewFile(resultDir);
      if (ifMatch !== undefined && ifMatch !== current.version) {
        throw new ConflictError(`the review changed since you loaded it (you have version ${ifMatch}, the server has ${current.version}): reload and decide again`);
      }
      const previous = current.regions[regionId];
      const history = previous === undefined ? [] : [...previous.history, withoutHistory(previous)];
      const next: ReviewFile = { formatVersion: 1, version: current.version + 1, regions: { ...current.regions, [regionId]: { ...record, history } } };
      await writeFileAtomic(join(resultDir, REVIEW_FILE), `${JSON.stringify(next, null, 2)}\n`);
      return toReview(next, regionIds);
    });
  }

  private async serialised<T>(key: string, work: () => Promise<T>): Promise<T> {
    const before = this.locks.get(key) ?? Promise.resolve();
    const run = before.then(work, work);
    const settled = run.catch(() => undefined);
    this.locks.set(key, settled);
    void settled.then(() => {
      if (this.locks.get(key) === settled) this.locks.delete(key);
    });
    return run;
  }
}

function withoutHistory(r: RegionReview): VerdictRecord {
  return { verdict: r.verdict, note: r.note, reviewer: r.reviewer, at: r.at };
}

function checkVerdict(input: VerdictInput): VerdictRecord {
  if (!VERDICTS.includes(input.verdict)) throw new BadRequestError(`verdict must be one of ${VERDICTS.join(', ')}`);
  const note = (input.note ?? '').trim();
  const reviewer = (input.reviewer ?? '').trim();
  if (note.length > MAX_NOTE) throw new BadRequestError(`the note has ${note.length} characters; at most ${MAX_NOTE}`);
  if (reviewer.length > MAX_REVIEWER) throw new BadRequestError(`the reviewer name has ${reviewer.length} characters; at most ${MAX_REVIEWER}`);
  return { verdict: input.verdict, note, reviewer, at: new Date().toISOString() };
}

async function readReviewFile(resultDir: string): Promise<ReviewFile> {
  let text: string;
  try {
    text = await readFile(join(resultDir, REVIEW_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY;
    throw err;
  }
  const parsed = JSON.parse(text) as Partial<ReviewFile>;
  if (parsed.formatVersion !== 1 || typeof parsed.version !== 'number' || typeof parsed.regions !== 'object' || parsed.regions === null) {
    throw new Error(`${join(resultDir, REVIEW_FILE)} is not a flashslide review (formatVersion 1)`);
  }
  return parsed as ReviewFile;
}

function toReview(file: ReviewFile, regionIds: readonly string[]): Review {
  // Verdicts of regions the current result no longer has (recomputed with other outlines) are
  // kept in the file but not counted.
  const regions: Record<string, RegionReview> = {};
  for (const id of regionIds) {
    const r = file.regions[id];
    if (r !== undefined) regions[id] = r;
  }
  const reviewed = Object.keys(regions).length;
  return { version: file.version, regions, state: reviewState(reviewed, regionIds.length), reviewed, total: regionIds.length };
}
