/** The worklist as the browser shows it: catalog entries plus each slide's review progress. */
import { existsSync } from 'node:fs';
import type { Worklist, WorklistItem } from './api-types.js';
import type { CatalogEntry, SlideCatalog } from './catalog.js';
import type { RegionCache } from './regions.js';
import type { ReviewStore } from './review-store.js';

export interface WorklistDeps {
  catalog: SlideCatalog;
  regions: RegionCache;
  reviews: ReviewStore;
  queue: boolean;
}

export async function worklistItem(entry: CatalogEntry, deps: WorklistDeps): Promise<WorklistItem> {
  const ids = entry.status === 'done' ? await deps.regions.ids(entry).catch(() => []) : [];
  const review = entry.status === 'done' ? await deps.reviews.read(entry.resultDir, ids).catch(() => null) : null;
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
