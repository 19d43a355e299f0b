import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { analyzeEmbedded } from '../../worker/pipeline/run-embedded.js';
import { describeAnalysis } from '../../worker/pipeline/analysis-spec.js';
import { readPlan } from '../../worker/pipeline/plan-stage.js';
import { gatherRows, tissueLayout } from '../../worker/pipeline/tissue-chunks.js';
import { partPath } from '../../worker/pipeline/embed-stage.js';
import { PartFileError } from '../../worker/pipeline/errors.js';
import { SafetensorsFile, writeSafetensors } from '../../worker/infer/safetensors.js';
import { scoreEmbeddings } from '../../worker/score/score-embeddings.js';
import { SelfScorer } from '../../worker/score/self-scorer.js';
import { decodeNpyFloat32 } from '../../worker/store/npy.js';
import type { HeatmapMeta } from '../../worker/store/heatmap-json.js';
import { BOXES, BROKEN, CMU, KIDNEY, NDPI, SLIDES, TINY, tempDir } from '../helpers.js';
import { findSlides } from '../../worker/submit/find-slides.js';
import { DEMO_MODEL_SPEC } from '../../worker/infer/demo-model.js';
import { writeSlideWithDamagedTiles } from '../damaged-slide.js';

type HeatmapJson = HeatmapMeta;

const RESULT_FILES = ['heatmap.npy', 'heatmap.json', 'tissue.png', 'overlay.png', 'regions.geojson', 'summary.json'];

describe('embedded mode (analyze) on real slides', () => {
  it('CMU-1: every result file, heatmap geometry on the region grid, NaN outside tissue; another score method reuses the embeddings', async () => {
    const data = tempDir();
    const [o] = await analyzeEmbedded([CMU], { dataDir: data, regionSize: 512, device: 'cpu' });
    expect(o?.status, o?.reason).toBe('done');
    const dir = o!.resultDir!;
    for (const f of RESULT_FILES) expect(existsSync(join(dir, f)), f).toBe(true);
    const meta = JSON.parse(readFileSync(join(dir, 'heatmap.json'), 'utf8')) as HeatmapJson;
    // 512 px regions at level 0 (0.499 µm/px is within 10 % of 0.5): a 5 x 6 region grid of 32 x 32 patches.
    expect(meta).toMatchObject({ width: 2220, height: 2967, rows: 6 * 32, cols: 5 * 32, patchSizeLevel0: 16, originX: 0, originY: 0, regionSize: 512, scoreMethod: 'self' });
    expect(meta.model).toBe('flashslide-demo-vit-4x192-p16');
    const { shape, data: heat } = decodeNpyFloat32(readFileSync(join(dir, 'heatmap.npy')));
    expect(shape).toEqual([meta.rows, meta.cols]);
    const at = (x: number, y: number): number => heat[Math.floor(y / 16) * meta.cols + Math.floor(x / 16)] as number;
    expect(Number.isNaN(at(100, 100))).toBe(true); // glass, top-left
    expect(Number.isNaN(at(1100, 2600))).toBe(false); // dense tissue
    expect(Number.isNaN(at(2219 + 100, 100))).toBe(true); // past the slide edge
    const finite = Array.from(heat).filter(Number.isFinite);
    expect(finite.length).toBeGreaterThan(0.2 * meta.rows * meta.cols);
    expect(Math.min(...finite)).toBeCloseTo(meta.min as number, 4);
    expect(Math.max(...finite)).toBeCloseTo(meta.max as number, 4);
    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as { tissueCells: number; timings: Record<string, number>; embeddings: unknown };
    expect(summary.tissueCells).toBe(finite.length);
    expect(summary.timings['inferenceMs']).toBeGreaterThan(0);
    const overlay = await sharp(join(dir, 'overlay.png')).metadata();
    expect(overlay.format).toBe('png');

    // The heatmap was scored part by part (two streaming passes over the part files); scoring all
    // tissue patches at once, in memory, gives the same scores in the same cells.
    const spec = await describeAnalysis(CMU, { dataDir: data, regionSize: 512, device: 'cpu' });
    const plan = await readPlan(spec);
    expect(plan).not.toBeNull();
    const layout = await tissueLayout(plan!);
    expect(layout.count).toBe(finite.length);
    expect(plan!.batches.length).toBeGreaterThan(1);
    const all = await gatherRows(plan!, layout, Int32Array.from({ length: layout.count }, (_, i) => i));
    const inMemory = await scoreEmbeddings(new SelfScorer(), { count: layout.count, dim: layout.dim, data: all });
    let worst = 0;
    for (let cell = 0; cell < heat.length; cell++) {
      const r = layout.row[cell] as number;
      if (r < 0) {
        expect(Number.isNaN(heat[cell] as number)).toBe(true);
        continue;
      }
      worst = Math.max(worst, Math.abs((heat[cell] as number) - (inMemory[r] as number)) / Math.max(1e-6, Math.abs(inMemory[r] as number)));
    }
    expect(worst, 'largest relative difference, streamed vs in memory').toBeLessThan(1e-5);

    // Same slide, same options: the finished result is reused; --force recomputes it.
    const [again] = await analyzeEmbedded([CMU], { dataDir: data, regionSize: 512, device: 'cpu' });
    expect(again?.status).toBe('cached');
    expect(again?.resultDir).toBe(dir);

    // Another score method on the same slide is another result, from the same embeddings: the
    // ViT does not run again and the part files are not rewritten.
    // Every patch of every region went through the ViT (--tokens all), and the summary says how many.
    const modelTokens = plan!.regionPlan.regions.length * (plan!.model.prefixTokens + (plan!.regionPlan.regionSize / plan!.model.patchSize) ** 2);
    expect(summary.embeddings).toEqual({ dir: spec.workDir, batches: plan!.batches.length, batchesComputed: plan!.batches.length, modelTokens, partsWritten: plan!.batches.length });
    const partTimes = plan!.batches.map((_, b) => statSync(partPath(plan!, b)).mtimeMs);
    const probe = join(tempDir(), 'probe.safetensors');
    const weight = Float32Array.from({ length: 2 * layout.dim }, (_, i) => Math.sin(i * 12.9898) * 0.05);
    await writeSafetensors(probe, { weight: { dtype: 'F32', shape: [2, layout.dim], data: weight }, bias: { dtype: 'F32', shape: [2], data: Float32Array.from([0, 0]) } }, { classes: '["normal","tumor"]' });
    const [probed] = await analyzeEmbedded([CMU], { dataDir: data, regionSize: 512, device: 'cpu', scoreMethod: `head:${probe}` });
    expect(probed?.status, probed?.reason).toBe('done');
    expect(probed?.resultDir).not.toBe(dir);
    const probedSummary = JSON.parse(readFileSync(join(probed!.resultDir!, 'summary.json'), 'utf8')) as typeof summary;
    expect(probedSummary.embeddings).toEqual({ dir: spec.workDir, batches: plan!.batches.length, batchesComputed: 0, partsWritten: 0 });
    expect(probedSummary.timings['inferenceMs']).toBe(0);
    expect(probedSummary.tissueCells).toBe(layout.count);
    expect(plan!.batches.map((_, b) => statSync(partPath(plan!, b)).mtimeMs)).toEqual(partTimes);

    // Part files hold exactly the tissue cells, each once, from the region that owns it: no glass,
    // no prefix tokens, no border patch another region owns.
    let stored = 0;
    const seen = new Uint8Array(layout.row.length);
    for (let b = 0; b < plan!.batches.length; b++) {
      const part = await SafetensorsFile.read(partPath(plan!, b));
      const cells = part.int32('cells');
      expect(part.info('embeddings').shape).toEqual([cells.length, layout.dim]);
      const regions = Array.from(part.float32('regions'));
      for (const cell of cells) {
        expect(layout.row[cell], `cell ${cell} of part ${b}`).toBeGreaterThanOrEqual(0);
        expect(regions).toContain(layout.grid.ownerRegion[cell]);
        expect(seen[cell]).toBe(0);
        seen[cell] = 1;
      }
      stored += cells.length;
    }
    expect(stored).toBe(layout.count);

    // A part in another format (a work folder left by an older version) is refused, saying how to fix it.
    const stale = partPath(plan!, 0);
    const old = await SafetensorsFile.read(stale);
    await writeSafetensors(stale, { regions: { dtype: 'F32', shape: [1], data: old.float32('regions').subarray(0, 1) } }, { partFormat: '1' });
    await expect(gatherRows(plan!, layout, Int32Array.from([0]))).rejects.toThrow(/part format 1.*recompute/);
    await expect(gatherRows(plan!, layout, Int32Array.from([0]))).rejects.toBeInstanceOf(PartFileError);
  });

  it('every real slide of the fixtures folder, broken.svs among them: results, or a reason a person can act on; one failure stops no other slide', async () => {
    const data = tempDir();
    const slides = await findSlides([SLIDES]);
    expect(slides).toEqual([BOXES, BROKEN, CMU, NDPI, KIDNEY, TINY]);
    const outcomes = await analyzeEmbedded(slides, { dataDir: data, regionSize: 512, device: 'cpu' });
    // One slide's scoring overlaps the next one's embedding; outcomes still come in input order.
    expect(outcomes.map((o) => o.slidePath)).toEqual(slides);
    const by = new Map(outcomes.map((o) => [o.slidePath, o]));
    // No scan resolution in the file: refused before any work, with the flag that fixes it.
    for (const s of [BOXES, KIDNEY]) {
      expect(by.get(s)?.status).toBe('failed');
      expect(by.get(s)?.reason).toMatch(/no microns-per-pixel in the slide.*pass --mpp/);
    }
    expect(by.get(BROKEN)?.reason).toMatch(/broken\.svs: not a slide format/);
    const failure = JSON.parse(readFileSync(join(by.get(BROKEN)!.resultDir!, 'failure.json'), 'utf8')) as { reason: string };
    expect(failure.reason).toMatch(/not a slide format/);
    // H&E (Aperio) and fluorescence (Hamamatsu NDPI through OpenSlide) both give scored tissue.
    for (const s of [CMU, NDPI]) {
      const o = by.get(s);
      expect(o?.status, o?.reason).toBe('done');
      const summary = JSON.parse(readFileSync(join(o!.resultDir!, 'summary.json'), 'utf8')) as { tissueCells: number; slideScore: number | null };
      expect(summary.tissueCells).toBeGreaterThan(1000);
      expect(Number.isFinite(summary.slideScore)).toBe(true);
    }
    // 16 x 16 px of glass: a complete result that says "no tissue", not a score of 0.
    const tiny = by.get(TINY);
    expect(tiny?.status, tiny?.reason).toBe('done');
    expect(tiny?.slideScore).toBeNull();
    const meta = JSON.parse(readFileSync(join(tiny!.resultDir!, 'heatmap.json'), 'utf8')) as HeatmapJson;
    expect([meta.min, meta.max]).toEqual([null, null]);
    expect(Array.from(decodeNpyFloat32(readFileSync(join(tiny!.resultDir!, 'heatmap.npy'))).data).every(Number.isNaN)).toBe(true);
    expect(JSON.parse(readFileSync(join(tiny!.resultDir!, 'regions.geojson'), 'utf8'))).toMatchObject({ type: 'FeatureCollection', features: [] });
  });

  it('a slide whose tissue tiles are damaged: planned, then failed by the batch that reads them, with where and why; the next slide goes on', async () => {
    const data = tempDir();
    const damaged = join(data, 'damaged.tif');
    await writeSlideWithDamagedTiles(CMU, damaged, 0.499, [[1100, 2600]]); // dense tissue, bottom
    const outcomes = await analyzeEmbedded([damaged, CMU], { dataDir: data, regionSize: 512, device: 'cpu' });
    expect(outcomes.map((o) => o.status)).toEqual(['failed', 'done']);
    expect(outcomes[0]?.reason).toMatch(/damaged\.tif: cannot decode level 0 at \(1024, 2560\) 512x407: the image data there is damaged/);
    const spec = await describeAnalysis(damaged, { dataDir: data, regionSize: 512, device: 'cpu' });
    expect(await readPlan(spec), 'the plan was made: the damage is only in level 0').not.toBeNull();
    expect(existsSync(join(spec.resultDir, 'summary.json'))).toBe(false);
    expect(JSON.parse(readFileSync(join(spec.resultDir, 'failure.json'), 'utf8'))).toMatchObject({ reason: outcomes[0]?.reason });
  });

  it('two analyses of one slide at once (another score, another batch size): one plan, shared embeddings, both results', async () => {
    const data = tempDir();
    const probe = join(tempDir(), 'probe.safetensors');
    const dim = DEMO_MODEL_SPEC.embedDim;
    await writeSafetensors(probe, { weight: { dtype: 'F32', shape: [2, dim], data: new Float32Array(2 * dim).fill(0.01) }, bias: { dtype: 'F32', shape: [2], data: new Float32Array(2) } }, { classes: '["normal","tumor"]' });
    const common = { dataDir: data, regionSize: 512, device: 'cpu' as const };
    const [[a], [b]] = await Promise.all([
      analyzeEmbedded([CMU], { ...common, batchSize: 2 }),
      analyzeEmbedded([CMU], { ...common, batchSize: 3, scoreMethod: `head:${probe}` }),
    ]);
    expect([a?.status, b?.status], `${a?.reason} ${b?.reason}`).toEqual(['done', 'done']);
    const spec = await describeAnalysis(CMU, common);
    const plan = await readPlan(spec);
    const read = (dir: string): { embeddings: { dir: string; batches: number } } => JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
    const [sa, sb] = [read(a!.resultDir!), read(b!.resultDir!)];
    expect(sa.embeddings.dir).toBe(sb.embeddings.dir);
    // Whichever planned first set the batches (2 or 3 regions each); both analyses used them.
    expect([sa.embeddings.batches, sb.embeddings.batches]).toEqual([plan!.batches.length, plan!.batches.length]);
    expect([Math.ceil(21 / 2), Math.ceil(21 / 3)]).toContain(plan!.batches.length);
  });

  it('--fallback-mpp gives a scale only to slides without one; the others keep their own', async () => {
    const data = tempDir();
    const outcomes = await analyzeEmbedded([BOXES, CMU, NDPI], { dataDir: data, regionSize: 512, device: 'cpu', fallbackMpp: 0.5 });
    expect(outcomes.map((o) => o.status), outcomes.map((o) => o.reason).join(' ')).toEqual(['done', 'done', 'done']);
    const mpp = outcomes.map((o) => (JSON.parse(readFileSync(join(o.resultDir!, 'heatmap.json'), 'utf8')) as HeatmapJson).mpp);
    expect(mpp[0]).toBe(0.5); // boxes: 72 dpi tags, no scan resolution
    expect(mpp[1]).toBeCloseTo(0.499, 6); // Aperio metadata
    expect(mpp[2]).toBeCloseTo(0.2282, 4); // Hamamatsu metadata
    const [bad] = await analyzeEmbedded([BOXES], { dataDir: data, regionSize: 512, device: 'cpu', fallbackMpp: 500 });
    expect(bad?.reason).toMatch(/--fallback-mpp 500 is not a plausible microns-per-pixel/);
  });
});
