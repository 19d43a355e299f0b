/**
 * The slide's tissue patches as they come out of the embed stage's part files, one chunk per part,
 * never all at once: a 40000^2 px slide has millions of tissue patches (gigabytes as float32),
 * a part file a few thousand. Part files hold only the tissue cells their regions own (see
 * tissue-layout.ts and embed-stage.ts), so every tissue row appears in exactly one chunk.
 *
 * Two ways to read them: tissueChunks streams every part whole (the scoring pass), gatherRows
 * reads only the rows asked for (a fit sample) plus each part's column sums, from the file
 * positions of those rows: a few MB instead of the gigabytes of a large model's parts.
 */
import { SafetensorsFile, SafetensorsReader, type TensorInfo } from '../infer/safetensors.js';
import { decodeBf16 } from '../infer/bf16.js';
import type { RowSums } from '../score/score-embeddings.js';
import { partPath, PART_FORMAT } from './embed-stage.js';
import type { SlidePlan } from './plan-stage.js';
import { PartFileError } from './errors.js';
import type { TissueLayout } from './tissue-layout.js';

export { tissueLayout, type TissueLayout } from './tissue-layout.js';

/** The tissue cells one part file owns, with their embeddings. */
export interface TissueChunk {
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
 * A part file, or PartFileError: a part that cannot be read (truncated by a power loss, since
 * parts are not flushed to the disk, or deleted) fails the slide with a way out, not as a bug.
 */
async function openPart(path: string): Promise<SafetensorsReader> {
  try {
    return await SafetensorsReader.open(path);
  } catch (err) {
    throw new PartFileError(`${path}: cannot read this part file (${(err as Error).message.replace(`${path}: `, '')})`);
  }
}

async function readPart(path: string): Promise<SafetensorsFile> {
  try {
    return await SafetensorsFile.read(path);
  } catch (err) {
    throw new PartFileError(`${path}: cannot read this part file (${(err as Error).message.replace(`${path}: `, '')})`);
  }
}

/** Part files of another format (a work folder written by another version) are refused first. */
function checkPartFormat(path: string, metadata: Readonly<Record<string, string>>): void {
  if (metadata['partFormat'] !== PART_FORMAT) {
    throw new PartFileError(`${path}: part format ${metadata['partFormat'] ?? '1'}, this version reads ${PART_FORMAT}`);
  }
}

/** Checks a part file against the plan and maps its cells to tissue rows. */
function partRows(path: string, embeddings: Pick<TensorInfo, 'dtype' | 'shape'>, cells: Int32Array, layout: TissueLayout): Int32Array {
  const { grid, row, dim } = layout;
  if (embeddings.dtype !== 'BF16' || embeddings.shape.length !== 2 || embeddings.shape[0] !== cells.length || embeddings.shape[1] !== dim) {
    throw new PartFileError(`${path}: embeddings are ${embeddings.dtype}${JSON.stringify(embeddings.shape)}, expected BF16[${cells.length}, ${dim}] for this plan`);
  }
  const rows = new Int32Array(cells.length);
  cells.forEach((cell, i) => {
    const r = cell >= 0 && cell < row.length ? (row[cell] as number) : -1;
    if (r < 0) throw new PartFileError(`${path}: cell ${cell} is not a tissue cell of this plan`);
    if (grid.ownerRegion[cell] === -1) throw new PartFileError(`${path}: cell ${cell} belongs to no region of this plan`);
    rows[i] = r;
  });
  return rows;
}

/**
 * Reads the part files in order and yields each one's tissue cells. Each chunk is new memory
 * (the consumer may keep it); only one part file is read at a time.
 */
export async function* tissueChunks(plan: SlidePlan, layout: TissueLayout, batches: readonly number[] = plan.batches.map((_, i) => i)): AsyncGenerator<TissueChunk & { batch: number }> {
  for (const b of batches) {
    const path = partPath(plan, b);
    const part = await readPart(path);
    checkPartFormat(path, part.metadata);
    const cells = part.int32('cells');
    const rows = partRows(path, part.info('embeddings'), cells, layout);
    yield { batch: b, count: cells.length, dim: layout.dim, data: part.float32('embeddings'), rows, cells };
  }
}

/**
 * A batch's tissue cells as the engine returned them (embedded mode streams them to the scoring
 * before, or instead of, reading its part file back): the chunk its part file would give.
 */
export function chunkOfBatch(label: string, cells: Int32Array, embeddings: Uint16Array, layout: TissueLayout): TissueChunk {
  const { dim } = layout;
  const rows = partRows(label, { dtype: 'BF16', shape: [embeddings.length / dim, dim] }, cells, layout);
  const data = new Float32Array(cells.length * dim);
  decodeBf16(embeddings, data);
  return { count: cells.length, dim, data, rows, cells };
}

/**
 * The embeddings of `wanted` rows (any order), in that order, reading only those rows of the part
 * files of `batches` (default: all, in order). `sums`, when given, receives those parts' column
 * sums (the `sums` tensor the embed stage wrote), added in the order of `batches`.
 */
export async function gatherRows(plan: SlidePlan, layout: TissueLayout, wanted: Int32Array, sums?: RowSums, batches: readonly number[] = plan.batches.map((_, i) => i)): Promise<Float32Array> {
  const { dim, count } = layout;
  const slot = new Int32Array(count).fill(-1);
  wanted.forEach((r, i) => {
    if (!(r >= 0 && r < count)) throw new RangeError(`row ${r} is not a tissue row (0..${count - 1})`);
    slot[r] = i;
  });
  const out = new Float32Array(wanted.length * dim);
  let found = 0;
  for (const b of batches) {
    const path = partPath(plan, b);
    const part = await openPart(path);
    try {
      checkPartFormat(path, part.metadata);
      const cells = await part.int32('cells');
      const rows = partRows(path, part.info('embeddings'), cells, layout);
      if (sums !== undefined) sums.addTotals(await part.float64('sums'), cells.length);
      const inPart: number[] = [];
      const slots: number[] = [];
      rows.forEach((r, i) => {
        const s = slot[r] as number;
        if (s < 0) return;
        inPart.push(i);
        slots.push(s);
      });
      if (inPart.length === 0) continue;
      const raw = await part.readRows('embeddings', inPart);
      const bits = new Uint16Array(raw.buffer, raw.byteOffset, raw.length / 2);
      slots.forEach((s, k) => decodeBf16(bits.subarray(k * dim, (k + 1) * dim), out.subarray(s * dim, (s + 1) * dim)));
      found += inPart.length;
    } finally {
      await part.close();
    }
  }
  if (found !== wanted.length) throw new PartFileError(`the part files hold ${found} of the ${wanted.length} tissue rows asked for: a part is missing or stale`);
  return out;
}
