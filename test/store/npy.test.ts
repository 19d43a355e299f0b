import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeNpyFloat32, encodeNpyFloat32 } from '../../worker/store/npy.js';
import { StoreArgumentError } from '../../worker/store/errors.js';
import { tempDir } from '../helpers.js';

const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

describe('npy', () => {
  it('writes the NumPy 1.0 header byte for byte', () => {
    const data = Float32Array.from([1, 2, 3, 4, 5, Number.NaN]);
    const bytes = encodeNpyFloat32(data, [2, 3]);
    expect([...bytes.subarray(0, 8)]).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    const headerLen = bytes.readUInt16LE(8);
    expect((10 + headerLen) % 64).toBe(0);
    const header = bytes.subarray(10, 10 + headerLen).toString('latin1');
    const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    expect(header).toBe(dict + ' '.repeat(headerLen - dict.length - 1) + '\n');
    expect(headerLen).toBe(118);
    expect(bytes.length).toBe(10 + headerLen + 24);
    expect(bytes.readFloatLE(10 + headerLen + 4)).toBe(2);
  });

  it('round-trips, NaN included, for 2-D, 1-D and 0-D shapes', () => {
    const data = Float32Array.from({ length: 12 }, (_, i) => (i === 7 ? Number.NaN : i * 0.25 - 1));
    const back = decodeNpyFloat32(encodeNpyFloat32(data, [3, 4]));
    expect(back.shape).toEqual([3, 4]);
    expect(back.data).toEqual(data);
    const oneD = encodeNpyFloat32(Float32Array.from([1, 2, 3, 4, 5]), [5]);
    expect(oneD.toString('latin1')).toContain("'shape': (5,), }");
    expect(decodeNpyFloat32(oneD).shape).toEqual([5]);
    expect(decodeNpyFloat32(encodeNpyFloat32(Float32Array.from([7]), []))).toEqual({ data: Float32Array.from([7]), shape: [] });
  });

  it('rejects a shape that does not match the data, and files that are not float32 .npy', () => {
    expect(() => encodeNpyFloat32(new Float32Array(5), [2, 3])).toThrow(StoreArgumentError);
    expect(() => decodeNpyFloat32(Buffer.from('PK\u0003\u0004 not npy'))).toThrow(/bad magic/);
    const f8 = encodeNpyFloat32(new Float32Array(2), [2]);
    f8.write('<f8', f8.indexOf('<f4'), 'latin1');
    expect(() => decodeNpyFloat32(f8)).toThrow(/not little-endian float32/);
  });

  it.skipIf(!hasNumpy)('is read by numpy itself', () => {
    const path = join(tempDir(), 'heatmap.npy');
    writeFileSync(path, encodeNpyFloat32(Float32Array.from([0.5, Number.NaN, -2, 3.25, 1e-3, 7]), [2, 3]));
    const out = execFileSync('python3', ['-c', 'import numpy as np, sys, json; a = np.load(sys.argv[1]); print(json.dumps([a.dtype.str, list(a.shape), bool(a.flags.c_contiguous), [None if x != x else float(x) for x in a.ravel()]]))', path]);
    expect(JSON.parse(out.toString())).toEqual(['<f4', [2, 3], true, [0.5, null, -2, 3.25, Math.fround(1e-3), 7]]);
  });
});
