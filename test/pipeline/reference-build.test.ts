import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildReferenceFromSlides } from '../../worker/pipeline/reference-build.js';
import { readReferenceBank } from '../../worker/score/reference-bank.js';
import { CMU, tempDir } from '../helpers.js';

describe('flashslide reference build', () => {
  it('reads at most maxPatchesPerSlide tissue patches of a slide (a seeded sample) and is reproducible', async () => {
    const dir = tempDir();
    const options = { dataDir: join(dir, 'data'), regionSize: 512, device: 'cpu' as const, maxSize: 500 };
    const all = await buildReferenceFromSlides([CMU], join(dir, 'all.safetensors'), options);
    // CMU-1-Small-Region has 9585 tissue patches at 512 px regions: all of them by default.
    expect(all.sourcePatches).toBe(9585);
    const a = await buildReferenceFromSlides([CMU], join(dir, 'a.safetensors'), { ...options, maxPatchesPerSlide: 2000 });
    const b = await buildReferenceFromSlides([CMU], join(dir, 'b.safetensors'), { ...options, maxPatchesPerSlide: 2000 });
    expect(a.sourcePatches).toBe(2000);
    expect(a.size).toBe(500);
    expect(b.data).toEqual(a.data);
    expect((await readReferenceBank(join(dir, 'a.safetensors'))).sourcePatches).toBe(2000);
    await expect(buildReferenceFromSlides([CMU], join(dir, 'c.safetensors'), { ...options, maxPatchesPerSlide: 0 })).rejects.toThrow(/maxPatchesPerSlide must be a positive integer/);
  });
});
