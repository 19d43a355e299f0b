import type { AnalysisRecord } from '../../worker/store/analysis-record.js';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ResultStore, RESULT_FILES, type ResultParts } from '../../worker/store/result-store.js';
import { parseHeatmapMeta, type HeatmapMeta } from '../../worker/store/heatmap-json.js';
import { decodeNpyFloat32 } from '../../worker/store/npy.js';
import { anomalousRegions } from '../../worker/store/contours.js';
import { toQuPathGeoJson } from '../../worker/store/geojson.js';
import { renderOverlay } from '../../worker/store/overlay.js';
import { countCells, slideScore, type SlideSummary } from '../../worker/store/summary.js';
import { StoreArgumentError } from '../../worker/store/errors.js';
import { tempDir } from '../helpers.js';

async function parts(slideId: string, threshold = 0.8): Promise<ResultParts> {
  const rows = 3;
  const cols = 4;
  const heatmap = Float32Array.from([0.1, 0.2, Number.NaN, 0.9, 0.3, 0.95, 0.2, Number.NaN, 0.1, 0.1, 0.2, 0.3]);
  const geometry = { originX: 0, originY: 0, cellSize: 32, mpp: 0.25 };
  const regions = anomalousRegions(heatmap, rows, cols, threshold, geometry);
  const meta: HeatmapMeta = {
    formatVersion: 1,
    slideId,
    slidePath: `/slides/${slideId}.svs`,
    width: 128,
    height: 96,
    mpp: 0.25,
    rows,
    cols,
    patchSizeLevel0: 32,
    originX: 0,
    originY: 0,
    regionSize: 1024,
    model: 'demo',
    scoreMethod: 'self',
    scoreParams: { trimFraction: 0.1 },
    min: 0.1,
    max: 0.95,
    threshold,
    createdAt: '2025-01-01T00:00:00.000Z',
    flashslideVersion: '0.1.0',
  };
  const thumb = { data: Buffer.alloc(16 * 12 * 3, 200), width: 16, height: 12 };
  const tissuePng = await sharp(Buffer.alloc(16 * 12, 255), { raw: { width: 16, height: 12, channels: 1 } }).png().toBuffer();
  const overlayPng = await renderOverlay({ slideWidth: 128, slideHeight: 96, thumbnail: thumb, heatmap: { grid: heatmap, meta }, tissuePng, regions: [], title: 's', subtitle: 'm' }, { longSide: 400 });
  const summary: SlideSummary = {
    slideId,
    slidePath: meta.slidePath,
    status: 'done',
    slideScore: slideScore(heatmap),
    ...countCells(heatmap, threshold),
    regionsCount: regions.length,
    threshold,
    model: 'demo',
    scoreMethod: 'self',
    timings: { readMs: 1, inferenceMs: 2, scoringMs: 3, totalMs: 6 },
  };
  const analysis: AnalysisRecord = {
    formatVersion: 1,
    analysisId: slideId,
    embeddingId: slideId,
    slide: { path: meta.slidePath, name: `${slideId}.svs`, fingerprint: 'f'.repeat(64), vendor: 'aperio', backend: 'sharp', width: 128, height: 96, mpp: 0.25, mppSource: 'vendor', objectivePower: 40, levels: 1 },
    model: { name: 'demo', weights: '/m.safetensors', weightsFingerprint: 'a'.repeat(64), config: '/m.json', description: 'ViT', patchSize: 16, embedDim: 8, demo: true, validation: null },
    parameters: { targetMpp: 0.5, effectiveMpp: 0.5, regionSize: 1024, overlap: 0, scoreMethod: 'self', mppOverride: null, fallbackMpp: null },
    tissue: { mode: 'brightfield', fraction: 0.5 },
    createdAt: meta.createdAt,
    flashslideVersion: '0.1.0',
  };
  return { heatmap, meta, tissuePng, overlayPng, regionsGeoJson: toQuPathGeoJson(regions, { idSeed: slideId }), analysis, summary };
}

const visible = (dir: string): string[] => readdirSync(dir).filter((f) => !f.startsWith('.')).sort();

describe('result store', () => {
  it('writes every file of the layout and reads the summary back', async () => {
    const store = new ResultStore(tempDir());
    const p = await parts('slide-1');
    expect(await store.hasResult('slide-1')).toBe(false);
    expect(await store.readSummary('slide-1')).toBeNull();
    await store.writeResult('slide-1', p);
    expect(await store.hasResult('slide-1')).toBe(true);
    const dir = store.slideDir('slide-1');
    expect(readdirSync(dir).sort()).toEqual(['analysis.json', 'heatmap.json', 'heatmap.npy', 'overlay.png', 'regions.geojson', 'summary.json', 'tissue.png']);
    expect(await store.readSummary('slide-1')).toEqual(p.summary);
    expect(p.summary).toMatchObject({ tissueCells: 10, anomalousCells: 2, regionsCount: 2 });
    const npy = decodeNpyFloat32(readFileSync(join(dir, RESULT_FILES.heatmap)));
    expect(npy.shape).toEqual([3, 4]);
    expect(npy.data).toEqual(p.heatmap);
    expect(parseHeatmapMeta(readFileSync(join(dir, RESULT_FILES.meta), 'utf8'))).toEqual(p.meta);
    expect(JSON.parse(readFileSync(join(dir, RESULT_FILES.regions), 'utf8'))).toEqual(p.regionsGeoJson);
    expect(readFileSync(join(dir, RESULT_FILES.overlay)).equals(p.overlayPng)).toBe(true);
  });

  it('stores an infinite threshold as null and reads it back as Infinity', async () => {
    const store = new ResultStore(tempDir());
    await store.writeResult('s', await parts('s', Infinity));
    const dir = store.slideDir('s');
    expect(JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')).threshold).toBeNull();
    expect((await store.readSummary('s'))?.threshold).toBe(Infinity);
    expect(parseHeatmapMeta(readFileSync(join(dir, 'heatmap.json'), 'utf8')).threshold).toBe(Infinity);
  });

  it('never looks complete after a crash: leftover temp files and failed writes leave no summary', async () => {
    const store = new ResultStore(tempDir());
    // A worker died while writing summary.json: only its temp file is there.
    const crashed = store.slideDir('crashed');
    mkdirSync(crashed, { recursive: true });
    writeFileSync(join(crashed, '.summary.json.4242.deadbeef.tmp'), '{"slideId":"crashed","status":"done"');
    expect(await store.hasResult('crashed')).toBe(false);
    expect(await store.readSummary('crashed')).toBeNull();

    // A write that fails half-way (overlay.png cannot be replaced: a folder is in the way)...
    const dir = store.slideDir('half');
    mkdirSync(join(dir, RESULT_FILES.overlay), { recursive: true });
    await expect(store.writeResult('half', await parts('half'))).rejects.toThrow();
    expect(await store.hasResult('half')).toBe(false);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    // ...also withdraws an older complete result instead of mixing old and new files.
    rmSync(join(dir, RESULT_FILES.overlay), { recursive: true });
    await store.writeResult('half', await parts('half'));
    expect(await store.hasResult('half')).toBe(true);
    rmSync(join(dir, RESULT_FILES.overlay));
    mkdirSync(join(dir, RESULT_FILES.overlay));
    await expect(store.writeResult('half', await parts('half'))).rejects.toThrow();
    expect(await store.hasResult('half')).toBe(false);
  });

  it('records failures, and a later success replaces them', async () => {
    const store = new ResultStore(tempDir());
    await store.writeFailure('bad', { reason: 'truncated TIFF', slidePath: '/slides/bad.svs', at: '2025-01-01T00:00:00.000Z' });
    expect(await store.readFailure('bad')).toEqual({ slideId: 'bad', status: 'failed', reason: 'truncated TIFF', slidePath: '/slides/bad.svs', at: '2025-01-01T00:00:00.000Z' });
    expect(await store.hasResult('bad')).toBe(false);
    await store.writeResult('bad', await parts('bad'));
    expect(await store.readFailure('bad')).toBeNull();
    expect(existsSync(join(store.slideDir('bad'), RESULT_FILES.failure))).toBe(false);
    expect(visible(store.slideDir('bad'))).toContain('summary.json');
  });

  it('refuses slide ids that are not one safe folder name, and heatmaps of the wrong size', async () => {
    const store = new ResultStore(tempDir());
    for (const id of ['', '.', '..', '../escape', 'a/b', 'a\\b', '.hidden', 'x'.repeat(201)]) {
      expect(() => store.slideDir(id), JSON.stringify(id)).toThrow(StoreArgumentError);
    }
    expect(store.slideDir('TCGA-AA-3518 01Z.svs')).toBe(join(store.root, 'TCGA-AA-3518 01Z.svs'));
    const p = await parts('x');
    await expect(store.writeResult('x', { ...p, heatmap: new Float32Array(5) })).rejects.toThrow(/heatmap has 5 cells but meta says 3 x 4/);
    expect(await store.hasResult('x')).toBe(false);
  });
});
