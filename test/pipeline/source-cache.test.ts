import { describe, expect, it } from 'vitest';
import { SlideSourceCache } from '../../worker/queue/source-cache.js';
import type { SlideSource } from '../../worker/slide/slide-source.js';
import { fingerprintFile } from '../../worker/pipeline/fingerprint.js';
import { BROKEN, CMU, NDPI } from '../helpers.js';

const keep = (s: SlideSource): Promise<SlideSource> => Promise.resolve(s);

describe('SlideSourceCache: a queue worker keeps slides open across their batch jobs', () => {
  it('reuses an open slide, shares it between concurrent jobs, and never closes one in use', async () => {
    const cache = new SlideSourceCache(1);
    const [cmu, ndpi] = await Promise.all([fingerprintFile(CMU), fingerprintFile(NDPI)]);
    try {
      const a = await cache.with(CMU, cmu, {}, keep);
      expect(await cache.with(CMU, cmu, {}, keep)).toBe(a);
      // Another mpp override is another slide as far as reads go.
      const overridden = await cache.with(CMU, cmu, { mpp: 0.25 }, keep);
      expect(overridden).not.toBe(a);
      // A fingerprint the file does not have: the jobs were planned for other bytes.
      await expect(cache.with(CMU, 'f'.repeat(64), {}, keep)).rejects.toThrow(/the slide changed since it was submitted/);
      // Capacity 1: while CMU is in use, NDPI comes and goes; CMU stays open and readable.
      let release: () => void = () => undefined;
      const held = cache.with(CMU, cmu, { mpp: 0.3 }, async (s) => {
        await new Promise<void>((r) => (release = r));
        return s.readRegion(0, 1000, 1000, 64, 64);
      });
      await new Promise((r) => setTimeout(r, 50));
      const [x, y] = await Promise.all([cache.with(NDPI, ndpi, {}, keep), cache.with(NDPI, ndpi, {}, keep)]);
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
    const broken = await fingerprintFile(BROKEN);
    await expect(cache.with(BROKEN, broken, {}, keep)).rejects.toThrow(/not a slide format/);
    await expect(cache.with(BROKEN, broken, {}, keep)).rejects.toThrow(/not a slide format/);
    await cache.close();
  });
});
