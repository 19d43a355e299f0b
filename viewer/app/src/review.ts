/**
 * A slide's review: the verdicts as last read, and recording one with optimistic concurrency
 * (If-Match: "<version>"). When someone else wrote first (409) the review is read again and the
 * user is told; nothing is overwritten silently.
 */
import type { RegionReview, Review, Verdict } from '../../server/api-types.js';
import { api, ApiRequestError, errorMessage } from './api.js';
import { toast } from './toast.js';

export const CONFLICT_MESSAGE = 'someone else changed this review — reloaded';

export class ReviewStore {
  review: Review | null = null;
  private busy = false;

  constructor(
    private readonly slideId: string,
    private readonly onChange: (review: Review | null) => void,
  ) {}

  async load(): Promise<void> {
    try {
      this.review = await api.review(this.slideId);
    } catch (err) {
      toast(`Could not read the review: ${errorMessage(err)}`, 'error');
    }
    this.onChange(this.review);
  }

  of(regionId: string): RegionReview | undefined {
    return this.review?.regions[regionId];
  }

  /** Records a verdict; false when it was not saved (conflict, error, or a save still under way). */
  async record(regionId: string, verdict: Verdict, note: string, reviewer: string): Promise<boolean> {
    if (this.busy) return false;
    if (!this.review) await this.load();
    if (!this.review) return false;
    this.busy = true;
    try {
      this.review = await api.putVerdict(this.slideId, regionId, this.review.version, {
        verdict,
        note,
        ...(reviewer ? { reviewer } : {}),
      });
      this.onChange(this.review);
      return true;
    } catch (err) {
      if (err instanceof ApiRequestError && (err.status === 409 || err.status === 412)) {
        toast(CONFLICT_MESSAGE, 'warn', 6000);
        await this.load();
      } else {
        toast(`The verdict was not saved: ${errorMessage(err)}`, 'error');
      }
      return false;
    } finally {
      this.busy = false;
    }
  }
}
