/**
 * Plans the regions a ViT will see whole: square windows of `regionSize` model pixels at the model's
 * resolution (default 0.5 µm/px), laid on a regular grid over the slide, keeping those that touch
 * tissue. One region = one attention sequence of (regionSize / patchSize)^2 patch tokens.
 *
 * Resolution: if a pyramid level is within `levelTolerance` (10 %) of the target, it is read as is
 * (no resampling: scanners' own downsampled levels are what the field feeds models). Otherwise the
 * coarsest level finer than the target is read and resampled, so we never invent detail; a slide
 * coarser than the target everywhere is read from level 0 and upsampled, with a warning.
 *
 * The grid starts at level-0 pixel (0, 0) and its last row/column may hang over the slide edge; the
 * reader pads that part with white, so every region has the same size and token grid. Overlap
 * is a multiple of the patch size so that overlapping regions share patch boundaries.
 */
import { InvalidArgumentError, MissingMppError } from '../slide/errors.js';
import type { SlideSource } from '../slide/slide-source.js';
import type { TissueMap } from '../tissue/tissue-map.js';

export interface RegionPlanOptions {
  /** Microns per pixel the model expects. */
  targetMpp: number;
  /** Region side in model pixels (224..4096, a multiple of patchSize). */
  regionSize: number;
  /** Model pixels shared by neighbouring regions (a multiple of patchSize, < regionSize). */
  overlap: number;
  /** ViT patch size in pixels. */
  patchSize: number;
  /** A level whose mpp is within this relative distance of the target is used without resampling. */
  levelTolerance: number;
  /** Keep a region when at least this fraction of it is tissue; 0 keeps any region that touches tissue. */
  minTissueFraction: number;
}

export const DEFAULT_REGION_PLAN_OPTIONS: Readonly<RegionPlanOptions> = {
  targetMpp: 0.5,
  regionSize: 1024,
  overlap: 0,
  patchSize: 16,
  levelTolerance: 0.1,
  minTissueFraction: 0,
};

export const REGION_SIZE_LIMITS = { min: 224, max: 4096 } as const;

export interface PlannedRegion {
  /** Grid position. */
  readonly col: number;
  readonly row: number;
  /** Level-0 rectangle the region covers (may extend past the slide edge). */
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly tissueFraction: number;
}

export interface RegionPlan {
  readonly targetMpp: number;
  /** mpp the model actually sees: the level's own when read natively, else exactly the target. */
  readonly effectiveMpp: number;
  readonly regionSize: number;
  readonly overlap: number;
  readonly patchSize: number;
  readonly tokensPerRegion: number;
  /** Level to read and how many of its pixels make one region (resampled to regionSize when different). */
  readonly level: number;
  readonly levelReadSize: number;
  readonly resampled: boolean;
  readonly warning: string | null;
  /** Level-0 pixels per model pixel. */
  readonly scale: number;
  readonly regionSizeLevel0: number;
  readonly strideLevel0: number;
  /** Grid across the whole slide. */
  readonly cols: number;
  readonly rows: number;
  readonly regions: readonly PlannedRegion[];
}

export function validateRegionOptions(options: Partial<RegionPlanOptions>): RegionPlanOptions {
  const o = { ...DEFAULT_REGION_PLAN_OPTIONS, ...options };
  if (!Number.isInteger(o.patchSize) || o.patchSize < 1 || o.patchSize > 64) {
    throw new InvalidArgumentError(`patch size ${o.patchSize} must be an integer in 1..64`);
  }
  if (!Number.isInteger(o.regionSize) || o.regionSize < REGION_SIZE_LIMITS.min || o.regionSize > REGION_SIZE_LIMITS.max || o.regionSize % o.patchSize !== 0) {
    throw new InvalidArgumentError(
      `region size ${o.regionSize} must be in ${REGION_SIZE_LIMITS.min}..${REGION_SIZE_LIMITS.max} and a multiple of the patch size ${o.patchSize}`,
    );
  }
  if (!Number.isInteger(o.overlap) || o.overlap < 0 || o.overlap >= o.regionSize || o.overlap % o.patchSize !== 0) {
    throw new InvalidArgumentError(`overlap ${o.overlap} must be a multiple of the patch size ${o.patchSize} in 0..${o.regionSize - o.patchSize}`);
  }
  if (!Number.isFinite(o.targetMpp) || o.targetMpp <= 0 || o.targetMpp > 100) {
    throw new InvalidArgumentError(`target mpp ${o.targetMpp} must be a positive number of microns per pixel (e.g. 0.5)`);
  }
  if (!(o.levelTolerance >= 0 && o.levelTolerance < 1)) throw new InvalidArgumentError(`level tolerance ${o.levelTolerance} must be in [0, 1)`);
  if (!(o.minTissueFraction >= 0 && o.minTissueFraction <= 1)) throw new InvalidArgumentError(`min tissue fraction ${o.minTissueFraction} must be in [0, 1]`);
  return o;
}

interface LevelChoice {
  level: number;
  native: boolean;
  warning: string | null;
}

function chooseLevel(source: SlideSource, mpp0: number, o: RegionPlanOptions): LevelChoice {
  const levelMpp = source.levels.map((l) => mpp0 * l.downsample);
  let best = -1;
  let bestDistance = Infinity;
  levelMpp.forEach((m, i) => {
    const distance = Math.abs(m / o.targetMpp - 1);
    if (distance <= o.levelTolerance && distance < bestDistance) {
      best = i;
      bestDistance = distance;
    }
  });
  if (best >= 0) return { level: best, native: true, warning: null };
  let finer = -1;
  levelMpp.forEach((m, i) => {
    if (m <= o.targetMpp) finer = i; // levels are finest first, so the last match is the coarsest finer one
  });
  if (finer >= 0) return { level: finer, native: false, warning: null };
  return {
    level: 0,
    native: false,
    warning: `the slide's finest level is ${mpp0.toFixed(3)} µm/px, coarser than the target ${o.targetMpp} µm/px: regions are upsampled and carry less detail than the model expects`,
  };
}

export function planRegions(source: SlideSource, tissue: TissueMap, options: Partial<RegionPlanOptions> = {}): RegionPlan {
  const o = validateRegionOptions(options);
  if (source.mpp === null) throw new MissingMppError(source.path, source.mppNote ?? 'no resolution metadata', source.objectivePower);
  const mpp0 = (source.mpp.x + source.mpp.y) / 2;
  const choice = chooseLevel(source, mpp0, o);
  const lvl = source.levels[choice.level];
  if (lvl === undefined) throw new Error('level choice out of range');

  const scale = choice.native ? lvl.downsample : o.targetMpp / mpp0;
  const effectiveMpp = choice.native ? mpp0 * lvl.downsample : o.targetMpp;
  const levelReadSize = choice.native ? o.regionSize : Math.max(1, Math.round((o.regionSize * scale) / lvl.downsample));
  const regionSizeLevel0 = Math.round(o.regionSize * scale);
  const strideLevel0 = (o.regionSize - o.overlap) * scale;
  const cols = Math.max(1, Math.ceil((source.width - regionSizeLevel0) / strideLevel0) + 1);
  const rows = Math.max(1, Math.ceil((source.height - regionSizeLevel0) / strideLevel0) + 1);

  const regions: PlannedRegion[] = [];
  for (let row = 0; row < rows; row++) {
    for (let col = 0; col < cols; col++) {
      const x = Math.round(col * strideLevel0);
      const y = Math.round(row * strideLevel0);
      const { total, tissue: t } = tissue.count(x, y, regionSizeLevel0, regionSizeLevel0);
      if (t === 0) continue;
      // The fraction is of the whole region, including any part past the slide edge.
      const inside = (Math.min(source.width, x + regionSizeLevel0) - x) * (Math.min(source.height, y + regionSizeLevel0) - y);
      const tissueFraction = (t / total) * (inside / (regionSizeLevel0 * regionSizeLevel0));
      if (tissueFraction < o.minTissueFraction) continue;
      regions.push({ col, row, x, y, width: regionSizeLevel0, height: regionSizeLevel0, tissueFraction });
    }
  }

  const grid = o.regionSize / o.patchSize;
  return {
    targetMpp: o.targetMpp,
    effectiveMpp,
    regionSize: o.regionSize,
    overlap: o.overlap,
    patchSize: o.patchSize,
    tokensPerRegion: grid * grid,
    level: choice.level,
    levelReadSize,
    resampled: !choice.native,
    warning: choice.warning,
    scale,
    regionSizeLevel0,
    strideLevel0,
    cols,
    rows,
    regions,
  };
}
