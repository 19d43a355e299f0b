import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzeEmbedded } from '../../worker/pipeline/run-embedded.js';
import { buildReferenceFromSlides } from '../../worker/pipeline/reference-build.js';
import { decodeNpyFloat32 } from '../../worker/store/npy.js';
import { CMU, tempDir } from '../helpers.js';
import { PLANTED_BOX, writePlantedSlide } from '../planted-slide.js';

const box = PLANTED_BOX;

/** Top-`k` scored cells of a heatmap that lie inside the planted box. */
function hitsInBox(heat: Float32Array, cols: number, cell: number, k: number): number {
  const cells = Array.from(heat, (v, i) => ({ v, i })).filter((c) => Number.isFinite(c.v)).sort((a, b) => b.v - a.v);
  return cells.slice(0, k).filter(({ i }) => {
    const x = (i % cols) * cell;
    const y = Math.floor(i / cols) * cell;
    return x >= box.left - 16 && x < box.left + box.size && y >= box.top - 16 && y < box.top + box.size;
  }).length;
}

const plantedSlide = (dir: string): Promise<string> => writePlantedSlide(dir, 'planted.tif');

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
