import { describe, expect, it } from 'vitest';
import { SlideSourceCache } from '../../worker/queue/source-cache.js';
import type { SlideSource } from '../../worker/slide/slide-source.js';
import { BROKEN, CMU, NDPI } from '../helpers.js';

const keep = (s: SlideSource): Promise<SlideSource> => Promise.resolve(s);

describe('SlideSourceCache: a queue worker keeps slides open across their batch jobs', () => {
  it('reuses an open slide, shares it between concurrent jobs, and never closes one in use', async () => {
    const cache = new SlideSourceCache(1);
    try {
      const a = await cache.with(CMU, 'f1', {}, keep);
      expect(await cache.with(CMU, 'f1', {}, keep)).toBe(a);
      // Another content fingerprint or mpp override is another slide as far as reads go.
      const replaced = await cache.with(CMU, 'f2', {}, keep);
      expect(replaced).not.toBe(a);
      // Capacity 1: while CMU is in use, NDPI comes and goes; CMU stays open and readable.
      let release: () => void = () => undefined;
      const held = cache.with(CMU, 'f3', {}, async (s) => {
        await new Promise<void>((r) => (release = r));
        return s.readRegion(0, 1000, 1000, 64, 64);
      });
      await new Promise((r) => setTimeout(r, 50));
      const [x, y] = await Promise.all([cache.with(NDPI, 'n', {}, keep), cache.with(NDPI, 'n', {}, keep)]);
      expect(x).toBe(y);
      release();
      const region = await held;
      expect(region.data.length).toBe(64 * 64 * 3);
    } finally {
      await cache.close();
    }
  });

  it('does not keep a slide that failed to open: every job gets the reason', async () => {
    const cache = new SlideSourceCache();
    await expect(cache.with(BROKEN, 'b', {}, keep)).rejects.toThrow(/not a slide format/);
    await expect(cache.with(BROKEN, 'b', {}, keep)).rejects.toThrow(/not a slide format/);
    await cache.close();
  });
});
