/**
 * Open slides and their versions for the tile routes. A slide is opened once and kept while
 * reviewers look at it (the worker's SlideSourceCache: shared by concurrent tile requests,
 * closed when evicted). Its content fingerprint versions the tile URLs, so a browser may cache
 * tiles forever: a different file under the same path gets different URLs.
 */
import { stat } from 'node:fs/promises';
import { fingerprintFile, stableHash } from '../../worker/pipeline/fingerprint.js';
import { SlideSourceCache } from '../../worker/queue/source-cache.js';
import type { SlideSource } from '../../worker/slide/slide-source.js';
import type { CatalogEntry, SlideCatalog } from './catalog.js';
import type { TileTarget } from './tiles/tile-routes.js';

/** How many slides stay open at once; each costs a file handle and the decoder's header state. */
const OPEN_SLIDES = 8;

export class SlideAccess {
  private readonly sources = new SlideSourceCache(OPEN_SLIDES);
  private readonly fingerprints = new Map<string, { key: string; fingerprint: Promise<string> }>();

  constructor(private readonly catalog: SlideCatalog) {}

  /** The slide file's content fingerprint, recomputed when its size or mtime changes. */
  async fingerprint(path: string): Promise<string> {
    const st = await stat(path);
    const key = `${st.size}:${st.mtimeMs}`;
    const hit = this.fingerprints.get(path);
    if (hit !== undefined && hit.key === key) return hit.fingerprint;
    const fingerprint = fingerprintFile(path);
    this.fingerprints.set(path, { key, fingerprint });
    fingerprint.catch(() => this.fingerprints.delete(path));
    return fingerprint;
  }

  async withSource<T>(entry: CatalogEntry, use: (s: SlideSource) => Promise<T>): Promise<T> {
    return this.sources.with(entry.slidePath, await this.fingerprint(entry.slidePath), {}, use);
  }

  /** Everything the tile routes need for one slide; null for an unknown id. Throws when the file is unreadable. */
  async target(id: string): Promise<TileTarget | null> {
    const entry = await this.catalog.get(id);
    if (entry === null) return null;
    const fingerprint = await this.fingerprint(entry.slidePath);
    return {
      id: entry.id,
      slideVersion: fingerprint.slice(0, 16),
      heatmapVersion: entry.status === 'done' ? heatmapVersion(entry) : null,
      withSource: (use) => this.withSource(entry, use),
      heatmap: () => this.catalog.heatmap(entry),
    };
  }

  async close(): Promise<void> {
    await this.sources.close();
  }
}

/** Changes when the result is recomputed (--force), so cached heatmap tiles are never stale. */
export function heatmapVersion(entry: CatalogEntry): string {
  return stableHash({ id: entry.id, at: entry.updatedAt }).slice(0, 16);
}
