/**
 * The heatmap grid: one cell per ViT patch over the whole region grid, in level-0 coordinates.
 *
 * Region (col, row) covers cells [row*s, row*s + n) x [col*s, col*s + n), with n = regionSize/patch
 * patches per side and s = (regionSize - overlap)/patch the stride in patches. Where regions
 * overlap, a cell takes its embedding from the region in which it lies furthest from the border
 * (most context on every side); ties go to the earlier region. A cell is tissue when at least half
 * of it is tissue in the mask; only tissue cells are scored, the rest are NaN in the heatmap.
 */
import type { RegionPlan } from '../regions/region-plan.js';
import type { TissueMap } from '../tissue/tissue-map.js';

export interface PatchGrid {
  readonly rows: number;
  readonly cols: number;
  /** Level-0 pixels per cell side and the level-0 position of cell (0, 0)'s top-left corner. */
  readonly cellSizeLevel0: number;
  readonly originX: number;
  readonly originY: number;
  /** Patches per region side. */
  readonly regionPatches: number;
  /** For each cell: index into plan.regions of the region whose embedding it uses, or -1. */
  readonly ownerRegion: Int32Array;
  /** For each cell: 1 when scored (tissue and owned). */
  readonly tissue: Uint8Array;
  readonly tissueCells: number;
}

/** Minimum tissue coverage of a cell for it to be scored. */
export const CELL_TISSUE_FRACTION = 0.5;

export function buildPatchGrid(plan: RegionPlan, tissue: TissueMap): PatchGrid {
  const n = plan.regionSize / plan.patchSize;
  const s = (plan.regionSize - plan.overlap) / plan.patchSize;
  const rows = (plan.rows - 1) * s + n;
  const cols = (plan.cols - 1) * s + n;
  const cellSizeLevel0 = plan.patchSize * plan.scale;
  const ownerRegion = new Int32Array(rows * cols).fill(-1);
  const centrality = new Int16Array(rows * cols).fill(-1);
  plan.regions.forEach((region, index) => {
    for (let pr = 0; pr < n; pr++) {
      const cr = region.row * s + pr;
      const vr = Math.min(pr, n - 1 - pr);
      for (let pc = 0; pc < n; pc++) {
        const cell = cr * cols + region.col * s + pc;
        const c = Math.min(vr, pc, n - 1 - pc);
        if (c > (centrality[cell] as number)) {
          centrality[cell] = c;
          ownerRegion[cell] = index;
        }
      }
    }
  });
  const mask = new Uint8Array(rows * cols);
  let tissueCells = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const cell = r * cols + c;
      if (ownerRegion[cell] === -1) continue;
      const { total, tissue: t } = tissue.count(c * cellSizeLevel0, r * cellSizeLevel0, cellSizeLevel0, cellSizeLevel0);
      if (total > 0 && t / total >= CELL_TISSUE_FRACTION) {
        mask[cell] = 1;
        tissueCells++;
      }
    }
  }
  return { rows, cols, cellSizeLevel0, originX: 0, originY: 0, regionPatches: n, ownerRegion, tissue: mask, tissueCells };
}

/** The cell a region's patch (pr, pc) lands on. */
export function cellOf(plan: RegionPlan, grid: PatchGrid, regionIndex: number, pr: number, pc: number): number {
  const region = plan.regions[regionIndex];
  if (region === undefined) throw new Error(`region ${regionIndex} out of range`);
  const s = (plan.regionSize - plan.overlap) / plan.patchSize;
  return (region.row * s + pr) * grid.cols + region.col * s + pc;
}
