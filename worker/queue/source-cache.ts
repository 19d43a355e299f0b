/**
 * Open slides kept between a worker's jobs. A slide is one plan job and hundreds of embed jobs,
 * and opening it again for every batch costs a header parse (and for some OpenSlide formats,
 * MRXS, seconds of index reading). Sources are shared by concurrent jobs of the same slide
 * (reads on one source may run concurrently) and closed once unused and evicted, or at close().
 */
import { verifySlideUnchanged } from '../pipeline/analysis-spec.js';
import { openSlide, type OpenSlideOptions } from '../slide/open-slide.js';
import type { SlideSource } from '../slide/slide-source.js';

interface Entry {
  source: Promise<SlideSource>;
  users: number;
  lastUsed: number;
}

export class SlideSourceCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly capacity = 2) {}

  /**
   * Runs `use` with the open slide at `path` (opened with `options`' mpp settings). The content
   * fingerprint is part of the key: a file replaced under the same name is opened anew.
   */
  async with<T>(path: string, fingerprint: string, options: OpenSlideOptions, use: (source: SlideSource) => Promise<T>): Promise<T> {
    const key = `${path}\u0000${fingerprint}\u0000${options.mpp ?? ''}\u0000${options.fallbackMpp ?? ''}`;
    let entry = this.entries.get(key);
    if (entry === undefined) {
      // Opened only if the file still holds the content the jobs were planned for.
      entry = { source: verifySlideUnchanged({ slidePath: path, slideFingerprint: fingerprint }).then(() => openSlide(path, options)), users: 0, lastUsed: 0 };
      this.entries.set(key, entry);
      // A slide that failed to open is not kept: the next job tries again (and fails with the reason).
      entry.source.catch(() => this.entries.delete(key));
    }
    entry.users++;
    try {
      return await use(await entry.source);
    } finally {
      entry.users--;
      entry.lastUsed = performance.now();
      await this.evict();
    }
  }

  /** Closes the least recently used unused slides beyond the capacity. */
  private async evict(): Promise<void> {
    const idle = [...this.entries.entries()].filter(([, e]) => e.users === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed);
    let excess = this.entries.size - this.capacity;
    for (const [key, e] of idle) {
      if (excess <= 0) break;
      this.entries.delete(key);
      excess--;
      await (await e.source.catch(() => null))?.close();
    }
  }

  /** Closes every slide; call once no job runs. */
  async close(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(all.map(async (e) => (await e.source.catch(() => null))?.close()));
  }
}
