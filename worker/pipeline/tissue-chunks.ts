/**
 * The slide's tissue patches as they come out of the embed stage's part files, one chunk per part,
 * never all at once: a 40000^2 px slide has millions of tissue patches (gigabytes as float32),
 * a part file a few thousand. Part files hold only the tissue cells their regions own (see
 * tissue-layout.ts and embed-stage.ts), so every tissue row appears in exactly one chunk.
 */
import { SafetensorsFile } from '../infer/safetensors.js';
import { partPath, PART_FORMAT } from './embed-stage.js';
import type { SlidePlan } from './plan-stage.js';
import { PartFileError } from './errors.js';
import type { TissueLayout } from './tissue-layout.js';

export { tissueLayout, type TissueLayout } from './tissue-layout.js';

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

/**
 * Reads the part files in order and yields each one's tissue cells. Each chunk is new memory
 * (the consumer may keep it); only one part file is read at a time.
 */
export async function* tissueChunks(plan: SlidePlan, layout: TissueLayout): AsyncGenerator<TissueChunk> {
  const { grid, row, dim } = layout;
  for (let b = 0; b < plan.batches.length; b++) {
    const path = partPath(plan, b);
    const part = await SafetensorsFile.read(path);
    if (part.metadata['partFormat'] !== PART_FORMAT) {
      throw new PartFileError(`${path}: part format ${part.metadata['partFormat'] ?? '1'}, this version reads ${PART_FORMAT}`);
    }
    const cells = part.int32('cells');
    const embeddings = part.info('embeddings');
    if (embeddings.shape.length !== 2 || embeddings.shape[0] !== cells.length || embeddings.shape[1] !== dim) {
      throw new PartFileError(`${path}: embeddings are ${JSON.stringify(embeddings.shape)}, expected [${cells.length}, ${dim}] for this plan`);
    }
    const rows = new Int32Array(cells.length);
    cells.forEach((cell, i) => {
      const r = cell >= 0 && cell < row.length ? (row[cell] as number) : -1;
      if (r < 0) throw new PartFileError(`${path}: cell ${cell} is not a tissue cell of this plan`);
      if (grid.ownerRegion[cell] === -1) throw new PartFileError(`${path}: cell ${cell} belongs to no region of this plan`);
      rows[i] = r;
    });
    yield { part: b, count: cells.length, dim, data: part.float32('embeddings'), rows, cells };
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
