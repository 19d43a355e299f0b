import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SafetensorsError, SafetensorsFile, SafetensorsReader, writeSafetensors } from '../../worker/infer/safetensors.js';
import { tempDir } from '../helpers.js';

async function sample(): Promise<{ path: string; emb: Uint16Array; sums: Float64Array }> {
  const path = join(tempDir(), 'part.safetensors');
  const rows = 50;
  const dim = 7;
  const emb = Uint16Array.from({ length: rows * dim }, (_, i) => (i * 40503) & 0xffff);
  const sums = Float64Array.from({ length: dim }, (_, j) => Math.PI * 10 ** j);
  await writeSafetensors(
    path,
    {
      cells: { dtype: 'I32', shape: [rows], data: Int32Array.from({ length: rows }, (_, i) => i * 3 - 7) },
      embeddings: { dtype: 'BF16', shape: [rows, dim], data: emb },
      sums: { dtype: 'F64', shape: [dim], data: sums },
    },
    { partFormat: '3' },
  );
  return { path, emb, sums };
}

describe('SafetensorsReader: a file read piece by piece', () => {
  it('gives the same tensors as reading the whole file, rows in any order, F64 exactly', async () => {
    const { path, emb, sums } = await sample();
    const whole = await SafetensorsFile.read(path);
    const r = await SafetensorsReader.open(path);
    try {
      expect(r.metadata).toEqual({ partFormat: '3' });
      expect(Array.from(await r.int32('cells'))).toEqual(Array.from(whole.int32('cells')));
      expect(Array.from(await r.float64('sums'))).toEqual(Array.from(sums));
      // A run of neighbours (read as one), a repeat, the last row, the first, out of order.
      const rows = [10, 11, 12, 49, 3, 3, 0];
      const got = await r.readRows('embeddings', rows);
      const bits = new Uint16Array(got.buffer, got.byteOffset, got.length / 2);
      const want = rows.flatMap((row) => Array.from(emb.subarray(row * 7, (row + 1) * 7)));
      expect(Array.from(bits)).toEqual(want);
      expect((await r.readRows('embeddings', [])).length).toBe(0);
      await expect(r.readRows('embeddings', [50])).rejects.toThrow(RangeError);
      await expect(r.readRows('sums', [0])).rejects.toThrow(/not 2-D/);
      await expect(r.float64('cells')).rejects.toThrow(/is I32, expected F64/);
      expect(() => r.info('nope')).toThrow(/missing tensor "nope"/);
    } finally {
      await r.close();
    }
  });

  it('refuses a truncated file or a missing one at open, as SafetensorsFile does', async () => {
    const { path } = await sample();
    const bytes = readFileSync(path);
    const cut = join(tempDir(), 'cut.safetensors');
    writeFileSync(cut, bytes.subarray(0, bytes.length - 5));
    await expect(SafetensorsReader.open(cut)).rejects.toThrow(/truncated: tensor data ends at byte/);
    await expect(SafetensorsReader.open(cut)).rejects.toBeInstanceOf(SafetensorsError);
    await expect(SafetensorsReader.open(join(tempDir(), 'none.safetensors'))).rejects.toThrow(/no such file/);
    writeFileSync(cut, bytes.subarray(0, 5));
    await expect(SafetensorsReader.open(cut)).rejects.toThrow(/only 5 bytes/);
  });
});
