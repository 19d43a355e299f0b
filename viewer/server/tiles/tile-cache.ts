/**
 * Encoded tiles kept in memory, least recently used out first, bounded by their bytes (not their
 * count: a flat heatmap PNG is a few hundred bytes, a slide JPEG tens of kilobytes). Panning back
 * over a region, or a second reviewer opening the same slide, then costs no decoding at all.
 */

export interface TileCacheOptions {
  /** Most bytes of tile data held. */
  maxBytes?: number;
}

export const TILE_CACHE_DEFAULTS: Readonly<Required<TileCacheOptions>> = { maxBytes: 256 * 1024 * 1024 };

export interface TileCacheStats {
  hits: number;
  misses: number;
  evictions: number;
  entries: number;
  bytes: number;
  maxBytes: number;
}

export class TileCache {
  readonly maxBytes: number;
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  constructor(options: TileCacheOptions = {}) {
    const { maxBytes } = { ...TILE_CACHE_DEFAULTS, ...options };
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError(`tile cache size ${maxBytes} is not a non-negative integer of bytes`);
    this.maxBytes = maxBytes;
  }

  /** The tile, now the most recently used; undefined (a miss) when absent. */
  get(key: string): Buffer | undefined {
    const hit = this.entries.get(key);
    if (hit === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(key);
    this.entries.set(key, hit);
    return hit;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Stores the tile, evicting the least recently used ones beyond maxBytes. A tile larger than the whole cache is not kept. */
  set(key: string, value: Buffer): void {
    this.delete(key);
    if (value.byteLength > this.maxBytes) return;
    this.entries.set(key, value);
    this.bytes += value.byteLength;
    for (const [k, v] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= v.byteLength;
      this.evictions++;
    }
  }

  delete(key: string): boolean {
    const old = this.entries.get(key);
    if (old === undefined) return false;
    this.entries.delete(key);
    this.bytes -= old.byteLength;
    return true;
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }

  stats(): TileCacheStats {
    return { hits: this.hits, misses: this.misses, evictions: this.evictions, entries: this.entries.size, bytes: this.bytes, maxBytes: this.maxBytes };
  }
}
