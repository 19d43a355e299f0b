/** The worklist as the browser shows it: catalog entries plus each slide's review progress. */
import { existsSync } from 'node:fs';
import type { Review, Worklist, WorklistItem } from './api-types.js';
import type { CatalogEntry, SlideCatalog } from './catalog.js';
import type { RegionCache } from './regions.js';
import type { ReviewStore } from './review-store.js';

export interface WorklistDeps {
  catalog: SlideCatalog;
  regions: RegionCache;
  reviews: ReviewStore;
  queue: boolean;
}

/** The slide's review against its current regions; null until there is a result (or when unreadable). */
export async function reviewOf(entry: CatalogEntry, deps: Pick<WorklistDeps, 'regions' | 'reviews'>): Promise<Review | null> {
  if (entry.status !== 'done') return null;
  const ids = await deps.regions.ids(entry).catch(() => []);
  return deps.reviews.read(entry.resultDir, ids).catch(() => null);
}

export async function worklistItem(entry: CatalogEntry, deps: WorklistDeps): Promise<WorklistItem> {
  const review = await reviewOf(entry, deps);
  return {
    id: entry.id,
    name: entry.name,
    status: entry.status,
    progress: entry.progress,
    reason: entry.reason,
    score: entry.score,
    regions: entry.regions,
    reviewState: review?.state ?? 'not-started',
    reviewed: review?.reviewed ?? 0,
    updatedAt: entry.updatedAt,
    viewable: existsSync(entry.slidePath),
  };
}

export async function buildWorklist(deps: WorklistDeps): Promise<Worklist> {
  const entries = await deps.catalog.list();
  return { slides: await Promise.all(entries.map((e) => worklistItem(e, deps))), queue: deps.queue, queueError: deps.catalog.queueError };
}
