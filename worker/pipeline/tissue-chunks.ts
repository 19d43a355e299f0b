/**
 * The slide's tissue patches as they come out of the embed stage's part files, one chunk per part,
 * never all at once: a 40000^2 px slide has millions of tissue patches (gigabytes as float32),
 * a part file a few thousand.
 *
 * Rows: tissue cells are numbered in cell order (row-major over the patch grid); that number is a
 * patch's row in the scorer protocol (fitRows, the scores array). Each cell takes its embedding
 * from the one region that owns it (grid.ownerRegion, see patch-grid.ts), so every tissue row
 * appears in exactly one chunk.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SafetensorsFile } from '../infer/safetensors.js';
import { TissueMap } from '../tissue/tissue-map.js';
import { partPath } from './embed-stage.js';
import { buildPatchGrid, cellOf, type PatchGrid } from './patch-grid.js';
import { workDir, type SlidePlan } from './plan-stage.js';
import { PartFileError } from './errors.js';

/** The slide's patch grid and the row number of every tissue cell. */
export interface TissueLayout {
  grid: PatchGrid;
  /** For each grid cell: its row (tissue cells in cell order), or -1 when it is not scored. */
  row: Int32Array;
  /** Tissue cells, i.e. rows. */
  count: number;
  dim: number;
}

/** The tissue cells one part file owns, with their embeddings. */
export interface TissueChunk {
  /** Part (batch) index. */
  part: number;
  count: number;
  dim: number;
  /** count x dim float32. */
  data: Float32Array;
  /** Row of each of the `count` embeddings (see TissueLayout.row). */
  rows: Int32Array;
  /** Grid cell of each of the `count` embeddings. */
  cells: Int32Array;
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

/**
 * Reads the part files in order and yields each one's tissue cells. Each chunk is new memory
 * (the consumer may keep it); only one part file is read at a time.
 */
export async function* tissueChunks(plan: SlidePlan, layout: TissueLayout): AsyncGenerator<TissueChunk> {
  const { regionPlan } = plan;
  const { grid, row, dim } = layout;
  const n = grid.regionPatches;
  for (let b = 0; b < plan.batches.length; b++) {
    const part = await SafetensorsFile.read(partPath(plan, b));
    const regions = part.float32('regions');
    const embeddings = part.info('embeddings');
    if (embeddings.shape.length !== 3 || embeddings.shape[0] !== regions.length || embeddings.shape[1] !== n * n || embeddings.shape[2] !== dim) {
      throw new PartFileError(`${partPath(plan, b)}: embeddings are ${JSON.stringify(embeddings.shape)}, expected [${regions.length}, ${n * n}, ${dim}] for this plan`);
    }
    // Which patches of this part are tissue cells it owns: src patch index, row, cell.
    const src: number[] = [];
    const rows: number[] = [];
    const cells: number[] = [];
    regions.forEach((r, k) => {
      for (let pr = 0; pr < n; pr++) {
        for (let pc = 0; pc < n; pc++) {
          const cell = cellOf(regionPlan, grid, r, pr, pc);
          const dst = row[cell] as number;
          // A cell takes its embedding from the region that owns it (see patch-grid.ts).
          if (dst < 0 || grid.ownerRegion[cell] !== r) continue;
          src.push((k * n + pr) * n + pc);
          rows.push(dst);
          cells.push(cell);
        }
      }
    });
    const data = new Float32Array(src.length * dim);
    part.float32Rows('embeddings', dim, src, data);
    yield { part: b, count: src.length, dim, data, rows: Int32Array.from(rows), cells: Int32Array.from(cells) };
  }
}

/**
 * The embeddings of `wanted` rows (sorted, as fitRows returns them), in that order, read in one pass.
 * `onChunk` sees every chunk on the way (the aggregate stage sums them there).
 */
export async function gatherRows(plan: SlidePlan, layout: TissueLayout, wanted: Int32Array, onChunk?: (chunk: TissueChunk) => void): Promise<Float32Array> {
  const { dim, count } = layout;
  const slot = new Int32Array(count).fill(-1);
  wanted.forEach((r, i) => {
    if (!(r >= 0 && r < count)) throw new RangeError(`row ${r} is not a tissue row (0..${count - 1})`);
    slot[r] = i;
  });
  const out = new Float32Array(wanted.length * dim);
  let found = 0;
  for await (const chunk of tissueChunks(plan, layout)) {
    onChunk?.(chunk);
    for (let i = 0; i < chunk.count; i++) {
      const s = slot[chunk.rows[i] as number] as number;
      if (s < 0) continue;
      out.set(chunk.data.subarray(i * dim, (i + 1) * dim), s * dim);
      found++;
    }
  }
  if (found !== wanted.length) throw new PartFileError(`the part files hold ${found} of the ${wanted.length} tissue rows asked for: a part is missing or stale`);
  return out;
}
