/**
 * A result's anomalous regions for the review page, ranked (worker/store/ranked-regions.ts), read
 * once per result and kept (keyed by the result's time).
 */
import { rankRegions, readRegionFeatures } from '../../worker/store/ranked-regions.js';
import type { RegionItem } from './api-types.js';
import type { CatalogEntry } from './catalog.js';

export class RegionCache {
  private readonly cache = new Map<string, Promise<RegionItem[]>>();

  async regions(entry: CatalogEntry): Promise<RegionItem[]> {
    if (entry.status !== 'done') return [];
    const key = `${entry.id}\u0000${entry.updatedAt ?? ''}`;
    let hit = this.cache.get(key);
    if (hit === undefined) {
      hit = readRegionFeatures(entry.resultDir).then(rankRegions);
      this.cache.set(key, hit);
      hit.catch(() => this.cache.delete(key));
      while (this.cache.size > 256) this.cache.delete(this.cache.keys().next().value as string);
    }
    return hit;
  }

  async ids(entry: CatalogEntry): Promise<string[]> {
    return (await this.regions(entry)).map((r) => r.id);
  }
}
