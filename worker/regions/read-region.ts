/**
 * Reads one planned region as the model will see it: regionSize x regionSize RGB at the plan's
 * effective resolution, resampled only when the plan says the level is not native.
 */
import sharp from 'sharp';
import type { ReadRegionOptions, RgbImage, SlideSource } from '../slide/slide-source.js';
import type { PlannedRegion, RegionPlan } from './region-plan.js';

/**
 * `keptPatches` (token dropping): a patch mask (regionPatches^2, row-major) of the patches the
 * model will see; read natively, the tiles under none of them need not be decoded.
 */
export async function readPlannedRegion(source: SlideSource, plan: RegionPlan, region: PlannedRegion, keptPatches?: Uint8Array): Promise<RgbImage> {
  const n = plan.levelReadSize;
  const options = keptPatches === undefined || plan.resampled ? {} : { wanted: patchesWanted(keptPatches, plan.regionSize / plan.patchSize, plan.patchSize) };
  const img = await source.readRegion(plan.level, region.x, region.y, n, n, options);
  if (!plan.resampled) return img;
  // Lanczos when shrinking keeps nuclei edges crisp without aliasing; cubic when enlarging.
  const kernel = n > plan.regionSize ? 'lanczos3' : 'cubic';
  const data = await sharp(img.data, { raw: { width: n, height: n, channels: 3 } })
    .resize(plan.regionSize, plan.regionSize, { kernel, fit: 'fill' })
    .raw()
    .toBuffer();
  return { data, width: plan.regionSize, height: plan.regionSize };
}

/** Whether a rectangle of the region (pixels at the model's resolution) touches a kept patch. */
function patchesWanted(mask: Uint8Array, n: number, patch: number): NonNullable<ReadRegionOptions['wanted']> {
  return (x, y, width, height) => {
    const c0 = Math.max(0, Math.floor(x / patch));
    const c1 = Math.min(n - 1, Math.floor((x + width - 1) / patch));
    const r0 = Math.max(0, Math.floor(y / patch));
    const r1 = Math.min(n - 1, Math.floor((y + height - 1) / patch));
    for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) if (mask[r * n + c] === 1) return true;
    return false;
  };
}
