/**
 * Reference banks end to end on real slides: the sampling of `reference build`, and the bank's
 * own threshold (issue 12): scored against a bank of itself a slide has (almost) nothing
 * anomalous; a slide unlike the bank is mostly anomalous; a bank without a threshold is refused.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { analyzeEmbedded } from '../../worker/pipeline/run-embedded.js';
import { buildReferenceFromSlides } from '../../worker/pipeline/reference-build.js';
import { buildReferenceBank, readReferenceBank, writeReferenceBank } from '../../worker/score/reference-bank.js';
import { decodeNpyFloat32 } from '../../worker/store/npy.js';
import { CMU, cli, tempDir } from '../helpers.js';

const OPTIONS = { regionSize: 512, device: 'cpu' as const };

/** Fraction of tissue cells at or above the result's threshold, and its region count. */
function anomalous(resultDir: string): { fraction: number; regions: number; threshold: number } {
  const meta = JSON.parse(readFileSync(join(resultDir, 'heatmap.json'), 'utf8')) as { threshold: number };
  const summary = JSON.parse(readFileSync(join(resultDir, 'summary.json'), 'utf8')) as { regionsCount: number };
  const { data } = decodeNpyFloat32(readFileSync(join(resultDir, 'heatmap.npy')));
  let tissue = 0;
  let above = 0;
  for (const v of data) {
    if (!Number.isFinite(v)) continue;
    tissue++;
    if (v >= meta.threshold) above++;
  }
  return { fraction: above / tissue, regions: summary.regionsCount, threshold: meta.threshold };
}

describe('flashslide reference build', () => {
  let dir: string;
  let data: string;
  let bank: string;
  beforeAll(async () => {
    dir = tempDir();
    data = join(dir, 'data');
    bank = join(dir, 'cmu-bank.safetensors');
    await buildReferenceFromSlides([CMU], bank, { ...OPTIONS, dataDir: data });
  }, 120_000);

  it('reads at most maxPatchesPerSlide tissue patches of a slide (a seeded sample), holds a tenth out, and is reproducible', async () => {
    const options = { ...OPTIONS, dataDir: data, maxSize: 500 };
    const all = await readReferenceBank(bank);
    // CMU-1-Small-Region has 9585 tissue patches at 512 px regions: 958 held out, the rest offered to the coreset.
    expect(all.sourcePatches).toBe(9585 - 958);
    expect(all.threshold).toMatchObject({ quantile: 0.99, sample: 958 });
    const a = await buildReferenceFromSlides([CMU], join(dir, 'a.safetensors'), { ...options, maxPatchesPerSlide: 2000 });
    const b = await buildReferenceFromSlides([CMU], join(dir, 'b.safetensors'), { ...options, maxPatchesPerSlide: 2000 });
    expect(a.sourcePatches).toBe(1800);
    expect(a.size).toBe(500);
    expect(b.data).toEqual(a.data);
    expect(b.threshold).toEqual(a.threshold);
    expect((await readReferenceBank(join(dir, 'a.safetensors'))).threshold).toEqual(a.threshold);
    await expect(buildReferenceFromSlides([CMU], join(dir, 'c.safetensors'), { ...options, maxPatchesPerSlide: 0 })).rejects.toThrow(/maxPatchesPerSlide must be a positive integer/);
  });

  it('scored against a bank of itself, a slide has (almost) nothing anomalous', async () => {
    const [o] = await analyzeEmbedded([CMU], { ...OPTIONS, dataDir: data, scoreMethod: `reference:${bank}` });
    expect(o?.status, o?.reason).toBe('done');
    const a = anomalous(o!.resultDir!);
    // Only the held-out tenth can be above the bank's 0.99 quantile: about 0.1 % of the cells.
    expect(a.fraction).toBeLessThan(0.01);
    expect(a.regions).toBeLessThanOrEqual(1);
    expect(a.threshold).toBeGreaterThan(0);
  });

  it('a slide unlike the bank (the same tissue, stained another colour) is largely anomalous', async () => {
    const other = join(dir, 'restained.tif');
    const pxPerMm = 1000 / 0.499;
    await sharp(CMU)
      .modulate({ hue: 150 })
      .tiff({ tile: true, pyramid: true, compression: 'jpeg', quality: 90, resolutionUnit: 'cm', xres: pxPerMm, yres: pxPerMm })
      .toFile(other);
    const [o] = await analyzeEmbedded([other], { ...OPTIONS, dataDir: data, scoreMethod: `reference:${bank}` });
    expect(o?.status, o?.reason).toBe('done');
    // A slide-relative threshold calls a few % of any slide anomalous; the bank's calls a third
    // and more of this one (the demo model's random features see colour only so far).
    expect(anomalous(o!.resultDir!).fraction).toBeGreaterThan(0.25);
  });

  it('a bank without its own threshold is refused before any work, with how to rebuild it', async () => {
    const old = join(dir, 'old-bank.safetensors');
    const built = await readReferenceBank(bank);
    await writeReferenceBank(old, buildReferenceBank([{ count: built.size, dim: built.dim, data: built.data }], { model: built.model, maxSize: 100 }));
    const r = cli(['analyze', CMU, '--data', join(dir, 'other-data'), '--region-size', '512', '--score', `reference:${old}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no threshold of its own .*rebuild it with `flashslide reference build/);
    // Called as a library, past the CLI's check: the scorer refuses it too.
    await expect(analyzeEmbedded([CMU], { ...OPTIONS, dataDir: data, scoreMethod: `reference:${old}` })).rejects.toThrow(/no threshold of its own/);
  });
});
