import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { analyzeEmbedded } from '../../worker/pipeline/run-embedded.js';
import { buildReferenceFromSlides } from '../../worker/pipeline/reference-build.js';
import { decodeNpyFloat32 } from '../../worker/store/npy.js';
import { CMU, tempDir } from '../helpers.js';

/** A texture no H&E slide has: fine diagonal stripes in stain-like colours. */
function foreignTexture(size: number): Buffer {
  const px = Buffer.alloc(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const on = Math.floor((x + y) / 3) % 2 === 0;
      px.set(on ? [90, 40, 150] : [235, 150, 200], (y * size + x) * 3);
    }
  }
  return px;
}

const box = { left: 960, top: 2240, size: 256 }; // inside dense tissue

/** Top-`k` scored cells of a heatmap that lie inside the planted box. */
function hitsInBox(heat: Float32Array, cols: number, cell: number, k: number): number {
  const cells = Array.from(heat, (v, i) => ({ v, i })).filter((c) => Number.isFinite(c.v)).sort((a, b) => b.v - a.v);
  return cells.slice(0, k).filter(({ i }) => {
    const x = (i % cols) * cell;
    const y = Math.floor(i / cols) * cell;
    return x >= box.left - 16 && x < box.left + box.size && y >= box.top - 16 && y < box.top + box.size;
  }).length;
}

async function plantedSlide(dir: string): Promise<string> {
  const slide = join(dir, 'planted.tif');
    // A real slide with a foreign texture pasted in, written as a tiled pyramidal TIFF whose
    // resolution tags carry the original 0.499 µm/px (20040 px/cm = 2004 px/mm for sharp).
    await sharp(CMU)
      .composite([{ input: foreignTexture(box.size), raw: { width: box.size, height: box.size, channels: 3 }, left: box.left, top: box.top }])
      .tiff({ tile: true, pyramid: true, compression: 'jpeg', quality: 90, resolutionUnit: 'cm', xres: 10000 / 0.499 / 10, yres: 10000 / 0.499 / 10 })
      .toFile(slide);
  return slide;
}

describe('a planted anomaly', () => {
  it('lands in the top-scoring cells and the first anomalous region of the self score', async () => {
    const dir = tempDir();
    const slide = await plantedSlide(dir);
    const [o] = await analyzeEmbedded([slide], { dataDir: join(dir, 'data'), regionSize: 512, device: 'cpu' });
    expect(o?.status, o?.reason).toBe('done');
    const meta = JSON.parse(readFileSync(join(o!.resultDir!, 'heatmap.json'), 'utf8')) as { cols: number; patchSizeLevel0: number };
    const { data: heat } = decodeNpyFloat32(readFileSync(join(o!.resultDir!, 'heatmap.npy')));
    const hits = hitsInBox(heat, meta.cols, meta.patchSizeLevel0, 100);
    expect(hits, `${hits} of the top 100 cells lie in the planted box`).toBeGreaterThanOrEqual(80);

    const geo = JSON.parse(readFileSync(join(o!.resultDir!, 'regions.geojson'), 'utf8')) as { features: { geometry: { type: string; coordinates: unknown } }[] };
    expect(geo.features.length).toBeGreaterThan(0);
    // Polygon or MultiPolygon: collect every vertex of the first (largest-mass) region.
    const points: number[][] = [];
    const collect = (v: unknown): void => {
      if (Array.isArray(v) && typeof v[0] === 'number') points.push(v as number[]);
      else if (Array.isArray(v)) v.forEach(collect);
    };
    collect(geo.features[0]!.geometry.coordinates);
    const xs = points.map((p) => p[0] as number);
    const ys = points.map((p) => p[1] as number);
    // The strongest region overlaps the planted box.
    expect(Math.min(...xs)).toBeLessThan(box.left + box.size);
    expect(Math.max(...xs)).toBeGreaterThan(box.left);
    expect(Math.min(...ys)).toBeLessThan(box.top + box.size);
    expect(Math.max(...ys)).toBeGreaterThan(box.top);
  });

  it('is found by the reference score against a bank built from the unaltered slide', async () => {
    const dir = tempDir();
    const slide = await plantedSlide(dir);
    const bank = join(dir, 'normal-bank.safetensors');
    const built = await buildReferenceFromSlides([CMU], bank, { dataDir: join(dir, 'data'), regionSize: 512, device: 'cpu', maxSize: 3000 });
    expect(built.size).toBe(3000);
    const [o] = await analyzeEmbedded([slide], { dataDir: join(dir, 'data'), regionSize: 512, device: 'cpu', scoreMethod: `reference:${bank}` });
    expect(o?.status, o?.reason).toBe('done');
    const meta = JSON.parse(readFileSync(join(o!.resultDir!, 'heatmap.json'), 'utf8')) as { cols: number; patchSizeLevel0: number; scoreMethod: string };
    expect(meta.scoreMethod).toMatch(/^reference:/);
    const { data: heat } = decodeNpyFloat32(readFileSync(join(o!.resultDir!, 'heatmap.npy')));
    expect(hitsInBox(heat, meta.cols, meta.patchSizeLevel0, 100)).toBeGreaterThanOrEqual(80);
  });
});
