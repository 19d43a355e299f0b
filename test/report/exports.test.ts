/**
 * Report exports over real results: the planted slide (8 anomalous regions) and CMU-1 analysed by
 * the pipeline, verdicts recorded through the review server's store with hostile notes, a slide
 * that failed (broken.svs), and an analysis interrupted before its summary. The CSV is read back
 * by a real CSV parser, the GeoJSON is checked against QuPath's reader rules, the CLI is the
 * built one, and the queue part uses a real Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { analyzeEmbedded } from '../../worker/pipeline/run-embedded.js';
import { describeAnalysis } from '../../worker/pipeline/analysis-spec.js';
import { submitSlides } from '../../worker/queue/submit.js';
import { loadSlideReport, type SlideReport } from '../../worker/report/slide-report.js';
import { regionsCsv } from '../../worker/report/export-report.js';
import { reviewedGeoJson } from '../../worker/report/geojson-report.js';
import type { RegionFeatureCollection } from '../../worker/store/geojson.js';
import { ReviewStore } from '../../viewer/server/review-store.js';
import { buildServer, type ReviewServer } from '../../viewer/server/server.js';
import { startRedis, type RedisHandle } from '../redis-server.js';
import { BROKEN, CMU, ROOT, TINY, cli, tempDir } from '../helpers.js';
import { writePlantedSlide } from '../planted-slide.js';

/** The notes a pathologist may type: commas, quotes, line breaks, non-ASCII, a formula-looking start. */
const HOSTILE_NOTES = [
  'Zellkern größer, "atypisch"\nµm ≥ 2; vgl. Block B',
  '=SUM(A1:A3), not a formula',
  'line one\r\nline two, "quoted"',
  '日本語のメモ — 핵',
];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

type Position = number[];
/**
 * What QuPath's GeoJSON reader (qupath-core PathObjectTypeAdapters, PathClass via Gson) needs to
 * import a feature as an annotation with its class, measurements and metadata; returns what is wrong.
 */
function quPathProblems(fc: { type: string; features: unknown[] }, width: number, height: number): string[] {
  const problems: string[] = [];
  if (fc.type !== 'FeatureCollection') problems.push('not a FeatureCollection');
  fc.features.forEach((raw, i) => {
    const f = raw as { type: string; id: unknown; geometry: { type: string; coordinates: unknown }; properties: Record<string, unknown> };
    const at = `feature ${i}`;
    if (f.type !== 'Feature') problems.push(`${at}: type ${f.type}`);
    if (typeof f.id !== 'string' || !UUID.test(f.id)) problems.push(`${at}: id is not a UUID (QuPath would drop it)`);
    const polys = (f.geometry.type === 'Polygon' ? [f.geometry.coordinates] : f.geometry.type === 'MultiPolygon' ? f.geometry.coordinates : []) as Position[][][];
    if (polys.length === 0) problems.push(`${at}: geometry ${f.geometry.type}`);
    for (const rings of polys) {
      for (const ring of rings) {
        if (ring.length < 4) problems.push(`${at}: ring of ${ring.length} positions`);
        const [first, last] = [ring[0] ?? [], ring[ring.length - 1] ?? []];
        if (first[0] !== last[0] || first[1] !== last[1]) problems.push(`${at}: ring not closed`);
        for (const p of ring) {
          if (p.length !== 2 || !p.every(Number.isFinite)) problems.push(`${at}: position ${JSON.stringify(p)}`);
          else if ((p[0] as number) < 0 || (p[1] as number) < 0 || (p[0] as number) > width + 1024 || (p[1] as number) > height + 1024) problems.push(`${at}: position ${JSON.stringify(p)} far outside the slide`);
        }
      }
    }
    const props = f.properties;
    if (props['objectType'] !== 'annotation') problems.push(`${at}: objectType ${String(props['objectType'])}`);
    if (typeof props['name'] !== 'string') problems.push(`${at}: name`);
    const cls = props['classification'] as { name?: unknown; color?: unknown } | undefined;
    if (typeof cls?.name !== 'string' || cls.name.includes(':')) problems.push(`${at}: classification name ${String(cls?.name)}`);
    const color = cls?.color;
    if (!Array.isArray(color) || color.length !== 3 || !color.every((c) => Number.isInteger(c) && c >= 0 && c <= 255)) problems.push(`${at}: classification color ${JSON.stringify(color)}`);
    const m = props['measurements'];
    if (typeof m !== 'object' || m === null || Array.isArray(m) || !Object.values(m).every((v) => typeof v === 'number' && Number.isFinite(v))) problems.push(`${at}: measurements must be finite numbers`);
    const md = props['metadata'];
    if (md !== undefined && (typeof md !== 'object' || md === null || !Object.values(md).every((v) => typeof v === 'string'))) problems.push(`${at}: metadata must be strings`);
  });
  return problems;
}

describe('report exports of reviewed real results', () => {
  let dir: string;
  let data: string;
  let planted: SlideReport;
  let plantedDir: string;
  let cmuDir: string;
  let brokenDir: string;
  let interruptedSlide: string;
  const regionsGeo = (resultDir: string): RegionFeatureCollection => JSON.parse(readFileSync(join(resultDir, 'regions.geojson'), 'utf8')) as RegionFeatureCollection;

  beforeAll(async () => {
    dir = tempDir();
    data = join(dir, 'data');
    const plantedPath = await writePlantedSlide(dir);
    // broken.svs copied: a slide path of its own, so its failure is this test's
    const broken = join(dir, 'broken.svs');
    cpSync(BROKEN, broken);
    interruptedSlide = join(dir, 'interrupted.svs');
    cpSync(TINY, interruptedSlide);
    const outcomes = await analyzeEmbedded([plantedPath, CMU, broken, interruptedSlide], { dataDir: data, regionSize: 512, device: 'cpu' });
    expect(outcomes.map((o) => o.status)).toEqual(['done', 'done', 'failed', 'done']);
    const dirOf = (i: number): string => (outcomes[i] as { resultDir: string }).resultDir;
    [plantedDir, cmuDir, brokenDir] = [dirOf(0), dirOf(1), dirOf(2)];
    // A crash between the result files and summary.json: a folder that must not look finished.
    rmSync(join(dirOf(3), 'summary.json'));

    const store = new ReviewStore();
    const first = await loadSlideReport(plantedDir);
    const ids = first.regions.map((r) => r.id);
    expect(ids.length).toBeGreaterThanOrEqual(5);
    await store.setVerdict(plantedDir, ids, ids[0] as string, { verdict: 'confirmed', note: HOSTILE_NOTES[0], reviewer: 'Dr. Ärztin, M.' }, undefined);
    await store.setVerdict(plantedDir, ids, ids[1] as string, { verdict: 'rejected', note: HOSTILE_NOTES[1], reviewer: 'Dr. B' }, undefined);
    await store.setVerdict(plantedDir, ids, ids[2] as string, { verdict: 'unsure', note: HOSTILE_NOTES[2], reviewer: 'Dr. B' }, undefined);
    await store.setVerdict(plantedDir, ids, ids[3] as string, { verdict: 'confirmed', note: HOSTILE_NOTES[3], reviewer: '' }, undefined);
    // An edited verdict keeps the first one in its history.
    await store.setVerdict(plantedDir, ids, ids[1] as string, { verdict: 'rejected', note: HOSTILE_NOTES[1], reviewer: 'Dr. C' }, undefined);
    planted = await loadSlideReport(plantedDir);
  }, 240_000);

  it('loads identity, provenance and the review: fingerprints from analysis.json, verdict counts, demo model not diagnostic', async () => {
    const spec = await describeAnalysis(join(dir, 'planted-CMU-1.tif'), { regionSize: 512, dataDir: data });
    expect(planted.provenance).toBe('analysis.json');
    expect(planted.slide.fingerprint).toBe(spec.slideFingerprint);
    expect(planted.model?.weightsFingerprint).toBe(spec.modelFingerprint);
    expect(planted.model?.demo).toBe(true);
    expect(planted.diagnostic).toBe(false);
    expect(planted.slide).toMatchObject({ width: 2220, height: 2967, vendor: 'generic-tiff' });
    expect(planted.review).toMatchObject({ reviewed: 4, confirmed: 2, rejected: 1, unsure: 1, state: 'in-progress', lastReviewer: 'Dr. C' });
    expect(planted.regions.find((r) => r.review?.verdict === 'rejected')?.review?.history).toHaveLength(1);
    expect(planted.result?.anomalousAreaMm2).toBeCloseTo(planted.result!.anomalousCells * (planted.result!.cellUm / 1000) ** 2, 12);
  });

  it('CSV: one row per region that a real CSV parser reads back exactly, hostile notes included, scores as in regions.geojson', () => {
    const text = regionsCsv(planted);
    expect(text.split('\r\n')[0]).toBe('slide,analysis_id,rank,region_id,name,score_max,score_mean,area_um2,area_mm2,cells,centroid_x_px,centroid_y_px,centroid_x_um,centroid_y_um,bbox_x_px,bbox_y_px,bbox_width_px,bbox_height_px,bbox_x_um,bbox_y_um,bbox_width_um,bbox_height_um,verdict,note,reviewer,reviewed_at');
    const rows = parseCsv(text, { columns: true, bom: true }) as Record<string, string>[];
    const geo = regionsGeo(plantedDir);
    expect(rows).toHaveLength(geo.features.length);
    expect(rows.map((r) => Number(r['rank']))).toEqual(geo.features.map((_, i) => i + 1));
    const byId = new Map(geo.features.map((f) => [String(f.id), f]));
    for (const row of rows) {
      const f = byId.get(row['region_id'] as string);
      expect(f, `row ${row['rank']} names a region of regions.geojson`).toBeDefined();
      expect(Number(row['score_max'])).toBe(f?.properties.measurements['Score max']);
      expect(Number(row['area_um2'])).toBeCloseTo(f?.properties.measurements['Area µm^2'] as number, 2);
      expect(Number(row['centroid_x_um'])).toBeCloseTo(Number(row['centroid_x_px']) * 0.499, 0);
      expect(Number(row['bbox_width_um'])).toBeCloseTo(Number(row['bbox_width_px']) * 0.499, 0);
      expect(Number(row['bbox_y_um'])).toBeCloseTo(Number(row['bbox_y_px']) * 0.499, 0);
    }
    expect(rows.map((r) => r['note']).filter((n) => n !== '')).toEqual(expect.arrayContaining(HOSTILE_NOTES));
    expect(rows.filter((r) => r['verdict'] === 'rejected')).toHaveLength(1);
    expect(rows.find((r) => r['verdict'] === 'rejected')?.['reviewer']).toBe('Dr. C');
    expect(rows.filter((r) => r['verdict'] === '')).toHaveLength(rows.length - 4);
  });

  it('GeoJSON: every region, verdicts as QuPath classes, and nothing QuPath would refuse', () => {
    const fc = reviewedGeoJson(planted);
    const text = JSON.stringify(fc);
    const back = JSON.parse(text) as typeof fc;
    expect(quPathProblems(back, 2220, 2967)).toEqual([]);
    expect(back.features.map((f) => f.id).sort()).toEqual(regionsGeo(plantedDir).features.map((f) => String(f.id)).sort());
    const classes = back.features.map((f) => f.properties.classification.name).sort();
    expect(classes.filter((c) => c === 'Anomaly (confirmed)')).toHaveLength(2);
    expect(classes.filter((c) => c === 'Anomaly (rejected)')).toHaveLength(1);
    expect(classes.filter((c) => c === 'Anomaly (unsure)')).toHaveLength(1);
    expect(classes.filter((c) => c === 'Anomaly')).toHaveLength(back.features.length - 4);
    const rejected = back.features.find((f) => f.properties.classification.name === 'Anomaly (rejected)');
    expect(rejected?.properties.metadata).toMatchObject({ verdict: 'rejected', note: HOSTILE_NOTES[1], reviewer: 'Dr. C' });
    expect(back.flashslide).toMatchObject({ status: 'done', diagnostic: false });
    // The checker itself refuses what QuPath would: a class without a colour, a NaN measurement, a non-UUID id.
    const bad = JSON.parse(text) as { type: string; features: { id: string; properties: { classification: { color?: unknown }; measurements: Record<string, unknown> } }[] };
    const f0 = bad.features[0]!;
    delete f0.properties.classification.color;
    f0.properties.measurements['x'] = null;
    f0.id = 'region-1';
    expect(quPathProblems(bad, 2220, 2967)).toHaveLength(3);
  });

  it('flashslide report: one slide to a file in each text format, and to stdout', () => {
    const out = tempDir();
    for (const format of ['csv', 'json', 'geojson'] as const) {
      const file = join(out, `planted.${format}`);
      const r = cli(['report', join(dir, 'planted-CMU-1.tif'), '--data', data, '--format', format, '--out', file]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(file);
      expect(existsSync(file)).toBe(true);
    }
    expect(readFileSync(join(out, 'planted.csv'), 'utf8')).toBe(regionsCsv(planted));
    const json = JSON.parse(readFileSync(join(out, 'planted.json'), 'utf8')) as { formatVersion: number; kind: string; regions: { note: string | null; history: unknown[] }[]; review: { confirmed: number } };
    expect(json).toMatchObject({ formatVersion: 1, kind: 'flashslide-slide-report', review: { confirmed: 2 } });
    expect(json.regions).toHaveLength(planted.regions.length);
    expect(json.regions.map((r) => r.note)).toEqual(expect.arrayContaining(HOSTILE_NOTES));
    // by analysis id prefix, to stdout
    const r = cli(['report', planted.analysisId.slice(0, 8), '--data', data, '--format', 'geojson', '--out', '-']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ type: 'FeatureCollection', flashslide: { analysisId: planted.analysisId } });
  });

  it('flashslide report --all: a file per finished or failed slide and a batch summary with the failure reason and the unfinished slide', () => {
    const out = join(tempDir(), 'reports');
    const r = cli(['report', '--all', '--data', data, '--format', 'csv', '--out', out]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const files = readdirSync(out).sort();
    expect(files).toEqual(expect.arrayContaining(['batch.csv', 'batch.json', `${plantedDir.split('/').pop()}.csv`, `${cmuDir.split('/').pop()}.csv`, `${brokenDir.split('/').pop()}.csv`]));
    expect(files).toHaveLength(5);
    const rows = parseCsv(readFileSync(join(out, 'batch.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
    expect(rows).toHaveLength(4);
    const by = new Map(rows.map((row) => [row['slide'], row]));
    expect(by.get('planted-CMU-1.tif')).toMatchObject({ status: 'done', review_state: 'in-progress', confirmed: '2', rejected: '1', unsure: '1', diagnostic: 'false' });
    expect(Number(by.get('planted-CMU-1.tif')?.['anomalous_regions'])).toBe(planted.regions.length);
    expect(by.get('broken.svs')).toMatchObject({ status: 'failed' });
    expect(by.get('broken.svs')?.['reason']).toMatch(/not a slide format/);
    expect(by.get('interrupted.svs')).toMatchObject({ status: 'running', report_file: '' });
    expect(by.get('interrupted.svs')?.['reason']).toMatch(/not finished/);
    expect(r.stdout).toMatch(/FAILED: .*not a slide format/);
    expect(r.stdout).toMatch(/batch: 2 done, 1 failed, 1 not finished/);
    const batchJson = JSON.parse(readFileSync(join(out, 'batch.json'), 'utf8')) as { formatVersion: number; slides: unknown[] };
    expect(batchJson.formatVersion).toBe(1);
    expect(batchJson.slides).toHaveLength(4);
    // The failed slide's own report says why, it is not skipped.
    const failedJson = cli(['report', brokenDir, '--data', data, '--format', 'json', '--out', '-']);
    expect(failedJson.code).toBe(0);
    expect(JSON.parse(failedJson.stdout)).toMatchObject({ status: 'failed', failure: { reason: expect.stringMatching(/not a slide format/) } });
    // Its CSV too: the slide's batch row (status and reason), not a header-only region table
    // that would read as "analysed, nothing found".
    const failedCsv = cli(['report', brokenDir, '--data', data, '--format', 'csv', '--out', '-']);
    expect(failedCsv.code).toBe(0);
    const failedRows = parseCsv(failedCsv.stdout, { columns: true }) as Record<string, string>[];
    expect(failedRows).toHaveLength(1);
    expect(failedRows[0]).toMatchObject({ slide: 'broken.svs', status: 'failed', reason: expect.stringMatching(/not a slide format/) });
  });

  it('names a slide that has no report: unfinished, never analysed, unknown; exit 3, nothing written', () => {
    const out = tempDir();
    const unfinished = cli(['report', interruptedSlide, '--data', data, '--format', 'csv', '--out', join(out, 'x.csv')]);
    expect(unfinished.code).toBe(3);
    expect(unfinished.stderr).toMatch(/interrupted\.svs: its analysis started but has not finished/);
    const never = cli(['report', BROKEN, '--data', data, '--format', 'csv', '--out', join(out, 'y.csv')]);
    expect(never.code).toBe(3);
    expect(never.stderr).toMatch(/has not been analysed into/);
    const unknown = cli(['report', 'no-such-slide.svs', '--data', data, '--format', 'csv']);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toMatch(/no-such-slide\.svs: no slide file, result folder or analysis id/);
    expect(readdirSync(out)).toEqual([]);
    expect(cli(['report', '--all', '--data', data]).stderr).toMatch(/needs --format/);
    expect(cli(['report', '--all', '--data', data, '--format', 'docx']).code).toBe(2);
  });

  describe('from the review server', () => {
    let server: ReviewServer;
    let base: string;
    beforeAll(async () => {
      server = await buildServer({ dataDir: data, appDir: join(ROOT, 'dist', 'app'), slideRoots: [dir] });
      base = await server.app.listen({ host: '127.0.0.1', port: 0 });
    });
    afterAll(async () => {
      await server?.close();
    });

    it('downloads the same CSV and GeoJSON as the CLI, as attachments named after the result', async () => {
      const res = await fetch(`${base}/api/slides/${planted.analysisId}/report.csv`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/csv/);
      expect(res.headers.get('content-disposition')).toContain(`filename="${plantedDir.split('/').pop()}.csv"`);
      expect(await res.text()).toBe(regionsCsv(planted));
      const geo = await fetch(`${base}/api/slides/${planted.analysisId}/report.geojson`);
      expect(quPathProblems((await geo.json()) as { type: string; features: unknown[] }, 2220, 2967)).toEqual([]);
      expect((await fetch(`${base}/api/slides/${planted.analysisId}/report.docx`)).status).toBe(400);
      expect((await fetch(`${base}/api/slides/${'0'.repeat(24)}/report.csv`)).status).toBe(404);
    });

    it('batch: the summary with every slide, and a ZIP of per-slide files plus the summary', async () => {
      const summary = await (await fetch(`${base}/api/reports/batch.csv`)).text();
      const rows = parseCsv(summary, { columns: true }) as Record<string, string>[];
      expect(rows.map((r) => r['status']).sort()).toEqual(['done', 'done', 'failed', 'running']);
      const zip = Buffer.from(await (await fetch(`${base}/api/reports/batch.zip?format=json`)).arrayBuffer());
      expect(zip.subarray(0, 2).toString()).toBe('PK');
      const zipFile = join(tempDir(), 'batch.zip');
      writeFileSync(zipFile, zip);
      const listing = execFileSync('python3', ['-c', 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print("\\n".join(z.namelist()))', zipFile], { encoding: 'utf8' });
      const names = listing.trim().split('\n').map((n) => n.split('/').pop());
      expect(names).toHaveLength(5);
      expect(names).toEqual(expect.arrayContaining(['batch.csv', 'batch.json', `${plantedDir.split('/').pop()}.json`]));
      const one = await fetch(`${base}/api/reports/batch.json?ids=${planted.analysisId}`);
      expect(((await one.json()) as { slides: unknown[] }).slides).toHaveLength(1);
    });
  });

  describe('with the queue', () => {
    let redis: RedisHandle;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis?.stop();
    });

    it('a slide still queued is an error naming it; --all lists it as queued', async () => {
      const queuedSlide = join(dir, 'queued.svs');
      cpSync(TINY, queuedSlide);
      const [status] = await submitSlides([queuedSlide], { redisUrl: redis.url, dataDir: data, regionSize: 512 });
      expect(status?.state).toBe('queued');
      const r = cli(['report', queuedSlide, '--data', data, '--format', 'csv', '--redis', redis.url]);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/queued\.svs: slide queued\.svs is still queued/);
      const out = join(tempDir(), 'b');
      const all = cli(['report', '--all', '--data', data, '--format', 'json', '--redis', redis.url, '--out', out]);
      expect(all.code).toBe(0);
      const batch = JSON.parse(readFileSync(join(out, 'batch.json'), 'utf8')) as { slides: { slide: string; status: string }[] };
      expect(batch.slides.find((s) => s.slide === 'queued.svs')?.status).toBe('queued');
    });
  });
});
