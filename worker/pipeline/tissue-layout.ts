/**
 * Which patches of the slide are scored: the patch grid (patch-grid.ts) and the row number of
 * every tissue cell. Tissue cells are numbered in cell order (row-major over the patch grid);
 * that number is a patch's row in the scorer protocol (fitRows, the scores array). Each cell
 * takes its embedding from the one region that owns it (grid.ownerRegion), so the embed stage
 * stores, per region, exactly the tissue cells it owns and nothing else.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TissueMap } from '../tissue/tissue-map.js';
import { buildPatchGrid, cellOf, type PatchGrid } from './patch-grid.js';
import { workDir, type SlidePlan } from './plan-stage.js';
import type { RegionPlan } from '../regions/region-plan.js';

export interface TissueLayout {
  grid: PatchGrid;
  /** For each grid cell: its row (tissue cells in cell order), or -1 when it is not scored. */
  row: Int32Array;
  /** Tissue cells, i.e. rows. */
  count: number;
  dim: number;
}

export async function tissueLayout(plan: SlidePlan): Promise<TissueLayout> {
  const tissuePng = await readFile(join(workDir(plan.spec), 'tissue.png'));
  const tissue = await TissueMap.fromPng(tissuePng, plan.slide.width, plan.slide.height, plan.tissue.mode);
  const grid = buildPatchGrid(plan.regionPlan, tissue);
  const row = new Int32Array(grid.rows * grid.cols).fill(-1);
  let count = 0;
  for (let cell = 0; cell < row.length; cell++) if (grid.tissue[cell] === 1) row[cell] = count++;
  return { grid, row, count, dim: plan.model.embedDim };
}

// The embed stage needs the layout for every batch of a slide, and a worker runs a slide's
// batches one after another: building it costs ~0.5 s on a 40000^2 px slide, so the last few
// are kept per process (keyed by the work folder, which names the analysis).
const CACHED_LAYOUTS = 2;
const layouts = new Map<string, Promise<TissueLayout>>();

export function cachedTissueLayout(plan: SlidePlan): Promise<TissueLayout> {
  const key = workDir(plan.spec);
  let layout = layouts.get(key);
  if (layout === undefined) {
    layout = tissueLayout(plan);
    // A failed build must not stay cached: the next batch retries it.
    layout.catch(() => layouts.delete(key));
    layouts.set(key, layout);
    while (layouts.size > CACHED_LAYOUTS) layouts.delete(layouts.keys().next().value as string);
  }
  return layout;
}

/**
 * The patches of region `region` that enter the model with token dropping (`--tokens tissue`):
 * its tissue cells, owned or not, grown by `margin` patches in every direction (a square
 * neighbourhood) so that tissue at the edge keeps some of its surroundings. Patch indices
 * pr * n + pc, increasing; never empty (a region without a tissue cell keeps its first patch).
 */
export function keptTissuePatches(regionPlan: RegionPlan, grid: PatchGrid, region: number, margin: number): Int32Array {
  const n = grid.regionPatches;
  const tissue = new Uint8Array(n * n);
  for (let pr = 0; pr < n; pr++) for (let pc = 0; pc < n; pc++) tissue[pr * n + pc] = grid.tissue[cellOf(regionPlan, grid, region, pr, pc)] === 1 ? 1 : 0;
  // Separable dilation: rows, then columns.
  const rowsGrown = new Uint8Array(n * n);
  for (let pr = 0; pr < n; pr++) {
    for (let pc = 0; pc < n; pc++) {
      if (tissue[pr * n + pc] !== 1) continue;
      for (let c = Math.max(0, pc - margin); c <= Math.min(n - 1, pc + margin); c++) rowsGrown[pr * n + c] = 1;
    }
  }
  const kept: number[] = [];
  for (let pr = 0; pr < n; pr++) {
    for (let pc = 0; pc < n; pc++) {
      let on = false;
      for (let r = Math.max(0, pr - margin); r <= Math.min(n - 1, pr + margin) && !on; r++) on = rowsGrown[r * n + pc] === 1;
      if (on) kept.push(pr * n + pc);
    }
  }
  return Int32Array.from(kept.length === 0 ? [0] : kept);
}

/** The tissue cells region `region` (index into plan.regions) owns: patch index pr * n + pc, and cell. */
export function ownedTissuePatches(plan: SlidePlan, layout: TissueLayout, region: number): { patches: number[]; cells: number[] } {
  const { grid, row } = layout;
  const n = grid.regionPatches;
  const patches: number[] = [];
  const cells: number[] = [];
  for (let pr = 0; pr < n; pr++) {
    for (let pc = 0; pc < n; pc++) {
      const cell = cellOf(plan.regionPlan, grid, region, pr, pc);
      if ((row[cell] as number) < 0 || grid.ownerRegion[cell] !== region) continue;
      patches.push(pr * n + pc);
      cells.push(cell);
    }
  }
  return { patches, cells };
}
