// The addon's tissue kernels against their JavaScript twins: the same overview bytes and the
// same mask, bit for bit, on real slides of each kind and on random images in both modes.
import { afterAll, describe, expect, it } from 'vitest';
import { openSlide } from '../../worker/slide/open-slide.js';
import { readOverview } from '../../worker/tissue/overview.js';
import { detectTissue, detectTissueFast, type TissueDetectionOptions } from '../../worker/tissue/tissue-mask.js';
import { tissueKernels } from '../../worker/native/tissue-kernels.js';
import type { RgbImage, SlideSource } from '../../worker/slide/slide-source.js';
import { seededRng } from '../../worker/util/random.js';
import { CMU, KIDNEY, NDPI, TINY } from '../helpers.js';

async function expectSameDetection(image: RgbImage, options: Partial<TissueDetectionOptions> = {}): Promise<void> {
  const js = detectTissue(image, options);
  const native = await detectTissueFast(image, options);
  expect({ ...native, mask: null }).toEqual({ ...js, mask: null });
  expect(Buffer.compare(Buffer.from(native.mask), Buffer.from(js.mask))).toBe(0);
}

describe('native tissue kernels', () => {
  const opened: SlideSource[] = [];
  afterAll(async () => {
    await Promise.all(opened.map((s) => s.close()));
  });

  it('are built into the addon (the plan stage relies on them for speed)', () => {
    expect(tissueKernels()).not.toBeNull();
  });

  for (const [name, path] of [['CMU-1 (brightfield)', CMU], ['NDPI (fluorescence)', NDPI], ['kidney strip', KIDNEY], ['tiny Aperio', TINY]] as const) {
    it(`${name}: same overview and same mask as the JavaScript`, async () => {
      const s = await openSlide(path);
      opened.push(s);
      const downsample = Math.max(2, Math.max(s.width, s.height) / 2048);
      const js = await readOverview(s, downsample, { native: false });
      const native = await readOverview(s, downsample);
      expect(native.image.width).toBe(js.image.width);
      expect(Buffer.compare(native.image.data, js.image.data)).toBe(0);
      await expectSameDetection(native.image);
      await expectSameDetection(native.image, { morphologyRadius: 4, minComponentFraction: 1e-3 });
    });
  }

  it('random images: every mode, radius and threshold band agrees', async () => {
    const rng = seededRng(20261201);
    for (let trial = 0; trial < 12; trial++) {
      const width = 1 + Math.floor(rng() * 300);
      const height = 1 + Math.floor(rng() * 200);
      const data = Buffer.alloc(width * height * 3);
      // Blobs of a few colours over a background, so that components of every size occur.
      const background = trial % 3 === 0 ? 10 : 235;
      data.fill(background);
      for (let b = 0; b < 40; b++) {
        const [x0, y0] = [Math.floor(rng() * width), Math.floor(rng() * height)];
        const [bw, bh] = [1 + Math.floor(rng() * 30), 1 + Math.floor(rng() * 30)];
        const colour = [Math.floor(rng() * 256), Math.floor(rng() * 256), Math.floor(rng() * 256)];
        for (let y = y0; y < Math.min(height, y0 + bh); y++) for (let x = x0; x < Math.min(width, x0 + bw); x++) data.set(colour, (y * width + x) * 3);
      }
      for (let i = 0; i < data.length; i++) if (rng() < 0.05) data[i] = Math.floor(rng() * 256);
      const modes = ['auto', 'brightfield', 'fluorescence'] as const;
      await expectSameDetection({ data, width, height }, {
        mode: modes[trial % 3],
        morphologyRadius: trial % 4,
        fluorescenceClosingRadius: 1 + (trial % 7),
        minComponentFraction: rng() * 0.01,
        minSaturation: 0.02 + rng() * 0.05,
        maxSaturation: 0.1 + rng() * 0.2,
      });
    }
  });

  it('refuses pixels shorter than width x height x 3 instead of reading past them', async () => {
    const k = tissueKernels();
    expect(k).not.toBeNull();
    const params = { mode: 0, fluorescenceMedian: 77, dark: 31, satMin: 13, satMax: 38, fluoMin: 20, radius: 2, fluorescenceClosing: 6, minArea: 4 } as const;
    expect(() => k!.detectTissueMask(new Uint8Array(10), 4, 4, params)).toThrow(/width x height x 3/);
  });
});
