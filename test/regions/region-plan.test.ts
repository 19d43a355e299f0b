import { afterAll, describe, expect, it } from 'vitest';
import { openSlide } from '../../worker/slide/open-slide.js';
import { findTissue, type TissueMap } from '../../worker/tissue/tissue-map.js';
import { planRegions, validateRegionOptions, type RegionPlan } from '../../worker/regions/region-plan.js';
import { readPlannedRegion } from '../../worker/regions/read-region.js';
import { InvalidArgumentError, MissingMppError } from '../../worker/slide/errors.js';
import type { SlideSource } from '../../worker/slide/slide-source.js';
import { CMU, KIDNEY, NDPI } from '../helpers.js';

/** Every tissue pixel of the mask lies inside some planned region. */
function uncoveredTissue(plan: RegionPlan, tissue: TissueMap): number {
  let uncovered = 0;
  const { width, height, mask } = tissue.detection;
  for (let my = 0; my < height; my++) {
    for (let mx = 0; mx < width; mx++) {
      if (mask[my * width + mx] !== 1) continue;
      const cx = (mx + 0.5) * tissue.downsampleX;
      const cy = (my + 0.5) * tissue.downsampleY;
      const inside = plan.regions.some((r) => cx >= r.x && cx < r.x + r.width && cy >= r.y && cy < r.y + r.height);
      if (!inside) uncovered++;
    }
  }
  return uncovered;
}

/** Fraction of stained (saturated, not white) pixels in a region as the model sees it, subsampled. */
function stainedFraction(data: Buffer): number {
  let stained = 0;
  let n = 0;
  for (let p = 0; p < data.length; p += 3 * 7) {
    const r = data[p] as number;
    const g = data[p + 1] as number;
    const b = data[p + 2] as number;
    const mx = Math.max(r, g, b);
    if (mx > 0 && (mx - Math.min(r, g, b)) / mx > 0.1) stained++;
    n++;
  }
  return stained / n;
}

/** Every slide the tests open, closed at the end (an open file left to the garbage collector warns). */
const opened: SlideSource[] = [];
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
});

async function setup(path: string, mpp?: number): Promise<{ source: SlideSource; tissue: TissueMap }> {
  const source = await openSlide(path, { mpp });
  opened.push(source);
  return { source, tissue: await findTissue(source) };
}

describe('region planning at native resolution', () => {
  it('CMU-1 at 0.5 µm/px: level 0 read natively, regions cover all tissue and none is empty glass', async () => {
    const { source, tissue } = await setup(CMU);
    const plan = planRegions(source, tissue, { regionSize: 512 });
    expect(plan.level).toBe(0);
    expect(plan.resampled).toBe(false);
    expect(plan.effectiveMpp).toBeCloseTo(0.499, 6);
    expect(plan.tokensPerRegion).toBe(32 * 32);
    expect(plan.cols).toBe(5); // ceil((2220 - 512) / 512) + 1
    expect(plan.rows).toBe(6);
    expect(plan.regions.length).toBeGreaterThan(5);
    expect(plan.regions.length).toBeLessThan(plan.cols * plan.rows); // the empty glass corners are skipped
    expect(uncoveredTissue(plan, tissue)).toBe(0);
    for (const region of plan.regions) {
      expect(region.tissueFraction).toBeGreaterThan(0);
      const img = await readPlannedRegion(source, plan, region);
      expect([img.width, img.height]).toEqual([512, 512]);
      // The pixels the model will see hold stain in proportion to the mask's tissue estimate
      // (the mask is coarser, so it runs a little higher).
      expect(stainedFraction(img.data)).toBeGreaterThan(0.25 * region.tissueFraction);
    }
    // A skipped grid cell really is glass.
    // Every skipped grid cell really is glass: at most debris below the 50x50 µm minimum piece
    // (2500 µm² is 3.8 % of a 256 µm cell).
    const kept = new Set(plan.regions.map((r) => `${r.col},${r.row}`));
    let skipped = 0;
    for (let row = 0; row < plan.rows; row++) {
      for (let col = 0; col < plan.cols; col++) {
        if (kept.has(`${col},${row}`)) continue;
        skipped++;
        const glass = await source.readRegion(0, col * 512, row * 512, 512, 512);
        expect(stainedFraction(glass.data)).toBeLessThan(0.02);
      }
    }
    expect(skipped).toBeGreaterThan(3);
  });

  it('NDPI (0.228 µm/px): level 1 at 0.456 µm/px is within 10 % of 0.5 and read natively', async () => {
    const { source, tissue } = await setup(NDPI);
    const plan = planRegions(source, tissue);
    expect(plan.level).toBe(1);
    expect(plan.resampled).toBe(false);
    expect(plan.effectiveMpp).toBeCloseTo(0.4564, 3);
    expect(plan.regionSizeLevel0).toBe(2048);
    expect(uncoveredTissue(plan, tissue)).toBe(0);
  });

  it('no level near the target: the coarsest finer level is read and resampled to the region size', async () => {
    const { source, tissue } = await setup(CMU);
    const plan = planRegions(source, tissue, { targetMpp: 1.0, regionSize: 256 });
    expect(plan.level).toBe(0);
    expect(plan.resampled).toBe(true);
    expect(plan.effectiveMpp).toBe(1.0);
    expect(plan.levelReadSize).toBe(513); // 256 * 1.0 / 0.499
    const img = await readPlannedRegion(source, plan, plan.regions[0]!);
    expect([img.width, img.height, img.data.length]).toEqual([256, 256, 256 * 256 * 3]);
    expect(uncoveredTissue(plan, tissue)).toBe(0);
  });

  it('a target finer than the scan upsamples, with a warning', async () => {
    const { source, tissue } = await setup(CMU);
    const plan = planRegions(source, tissue, { targetMpp: 0.25, regionSize: 224, patchSize: 14 });
    expect(plan.resampled).toBe(true);
    expect(plan.warning).toMatch(/coarser than the target/);
  });

  it('overlap: stride shrinks by the overlap, coverage still complete', async () => {
    const { source, tissue } = await setup(CMU);
    const plan = planRegions(source, tissue, { regionSize: 512, overlap: 128 });
    expect(plan.strideLevel0).toBeCloseTo(384, 6);
    expect(plan.regions.every((r) => r.x % 384 === 0 || r.x === Math.round(r.col * 384))).toBe(true);
    expect(uncoveredTissue(plan, tissue)).toBe(0);
  });

  it('minTissueFraction drops regions with little tissue', async () => {
    const { source, tissue } = await setup(CMU);
    const all = planRegions(source, tissue, { regionSize: 512 });
    const dense = planRegions(source, tissue, { regionSize: 512, minTissueFraction: 0.5 });
    expect(dense.regions.length).toBeLessThan(all.regions.length);
    expect(dense.regions.every((r) => r.tissueFraction >= 0.5)).toBe(true);
  });

  it('a slide without mpp cannot be planned unless mpp is given', async () => {
    const { source, tissue } = await setup(KIDNEY);
    expect(() => planRegions(source, tissue)).toThrow(MissingMppError);
    expect(() => planRegions(source, tissue)).toThrow(/pass --mpp/);
    const withMpp = await setup(KIDNEY, 0.25);
    expect(() => planRegions(withMpp.source, withMpp.tissue, { regionSize: 256 })).not.toThrow();
  });

  it('rejects region sizes and overlaps the model cannot take', () => {
    expect(() => validateRegionOptions({ regionSize: 200 })).toThrow(InvalidArgumentError);
    expect(() => validateRegionOptions({ regionSize: 8192 })).toThrow(/224\.\.4096/);
    expect(() => validateRegionOptions({ regionSize: 1000 })).toThrow(/multiple of the patch size 16/);
    expect(() => validateRegionOptions({ regionSize: 1022, patchSize: 14 })).not.toThrow();
    expect(() => validateRegionOptions({ overlap: 1024 })).toThrow(/overlap/);
    expect(() => validateRegionOptions({ overlap: 10 })).toThrow(/overlap/);
    expect(() => validateRegionOptions({ targetMpp: 0 })).toThrow(/target mpp/);
  });
});
