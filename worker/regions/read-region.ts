/**
 * Reads one planned region as the model will see it: regionSize x regionSize RGB at the plan's
 * effective resolution, resampled only when the plan says the level is not native.
 */
import sharp from 'sharp';
import type { RgbImage, SlideSource } from '../slide/slide-source.js';
import type { PlannedRegion, RegionPlan } from './region-plan.js';

export async function readPlannedRegion(source: SlideSource, plan: RegionPlan, region: PlannedRegion): Promise<RgbImage> {
  const n = plan.levelReadSize;
  const img = await source.readRegion(plan.level, region.x, region.y, n, n);
  if (!plan.resampled) return img;
  // Lanczos when shrinking keeps nuclei edges crisp without aliasing; cubic when enlarging.
  const kernel = n > plan.regionSize ? 'lanczos3' : 'cubic';
  const data = await sharp(img.data, { raw: { width: n, height: n, channels: 3 } })
    .resize(plan.regionSize, plan.regionSize, { kernel, fit: 'fill' })
    .raw()
    .toBuffer();
  return { data, width: plan.regionSize, height: plan.regionSize };
}
