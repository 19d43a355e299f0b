/**
 * The pathologist's verdicts, one `review.json` per result folder, beside the result they judge
 * (format: worker/store/review-file.ts).
 *
 * - `version` increases with every change. Clients send the version they saw (If-Match); a
 *   stale one is refused with a conflict, so two browsers never overwrite each other blindly.
 * - An edit never destroys a verdict: the previous one moves into the region's `history`.
 * - Written atomically (temp file + rename) like every result file. Changes within this process
 *   are serialised per folder, so read-modify-write never interleaves.
 */
import { join } from 'node:path';
import { writeFileAtomic } from '../../worker/util/atomic-write.js';
import { REVIEW_FILE, readReviewFile, toReview, type ReviewFile } from '../../worker/store/review-file.js';
import type { RegionReview, Review, Verdict, VerdictInput, VerdictRecord } from './api-types.js';
import { BadRequestError, ConflictError } from './errors.js';

export { REVIEW_FILE };
export const VERDICTS: readonly Verdict[] = ['confirmed', 'rejected', 'unsure'];
const MAX_NOTE = 4000;
const MAX_REVIEWER = 120;

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
