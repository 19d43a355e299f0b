// Report export speed and memory: a PDF of a gigapixel result with many regions, and batch
// exports over many results, each in a fresh process whose peak RSS is its memory.
//
//   npx tsc -p tsconfig.json     # the compiled JS in dist/ is what runs
//   node bench/reports.mjs [--size 40000] [--regions 50] [--results 100] [--pdf-batch 10]
//
// The result is synthetic but complete and real in every file: the mosaic slide of bench/mosaic.mjs
// (real tissue, 40000 px square), a heatmap of 16 px cells (2500 x 2500) with background scores
// on tissue and `--regions` hot spots above the threshold, regions.geojson from the pipeline's own
// contour code, a review with verdicts. Copies of it (hard links for the big files, their own
// JSON) stand in for a batch of results. What is measured is report export alone.
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { MOSAIC_TILE, synthesiseMosaic } from './mosaic.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '40000' },
    regions: { type: 'string', default: '50' },
    results: { type: 'string', default: '100' },
    'pdf-batch': { type: 'string', default: '10' },
    slide: { type: 'string' },
    child: { type: 'string' },
  },
});

// --- child: one `flashslide report` in this process, then its time and peak memory -----------
if (values.child !== undefined) {
  const { main } = await import(join(dist, 'worker/cli/main.js'));
  const t0 = performance.now();
  const code = await main(JSON.parse(values.child));
  const ms = performance.now() - t0;
  process.stderr.write(`${JSON.stringify({ code, ms, maxRssMb: process.resourceUsage().maxRSS / 1024 })}\n`);
  process.exit(code);
}

const CELL = 16;
const MPP = 0.499;

function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

/** Whether level-0 pixel (x, y) is on a tissue tile of the mosaic (tiles fill their box, gaps are glass). */
function onTissue(x, y, size) {
  const { width, height, gap } = MOSAIC_TILE;
  const cx = x % (width + gap);
  const cy = y % (height + gap);
  const lastX = Math.floor((size - width) / (width + gap)) * (width + gap) + width;
  const lastY = Math.floor((size - height) / (height + gap)) * (height + gap) + height;
  return cx < width && cy < height && x < lastX && y < lastY;
}

async function synthesiseResult(slide, size, regions, dataDir) {
  const { anomalousRegions } = await import(join(dist, 'worker/store/contours.js'));
  const { toQuPathGeoJson } = await import(join(dist, 'worker/store/geojson.js'));
  const { ResultStore } = await import(join(dist, 'worker/store/result-store.js'));
  const { slideScore, countCells } = await import(join(dist, 'worker/store/summary.js'));
  const { fingerprintFile } = await import(join(dist, 'worker/pipeline/fingerprint.js'));
  const { ReviewStore } = await import(join(dist, 'viewer/server/review-store.js'));
  const rows = Math.ceil(size / CELL);
  const cols = rows;
  const heatmap = new Float32Array(rows * cols).fill(Number.NaN);
  const rand = rng(7);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) if (onTissue(c * CELL + 8, r * CELL + 8, size)) heatmap[r * cols + c] = 4 + 2 * rand();
  const threshold = 9;
  // Hot spots on tissue, 6-30 cells across, well apart.
  const centres = [];
  while (centres.length < regions) {
    const r = Math.floor(rand() * rows);
    const c = Math.floor(rand() * cols);
    if (!Number.isFinite(heatmap[r * cols + c])) continue;
    if (centres.some(([r2, c2]) => Math.hypot(r - r2, c - c2) < 60)) continue;
    centres.push([r, c, 3 + rand() * 12]);
  }
  for (const [r0, c0, rad] of centres) {
    for (let r = Math.max(0, Math.floor(r0 - rad)); r <= Math.min(rows - 1, r0 + rad); r++) {
      for (let c = Math.max(0, Math.floor(c0 - rad)); c <= Math.min(cols - 1, c0 + rad); c++) {
        const d = Math.hypot(r - r0, c - c0) / rad;
        const i = r * cols + c;
        if (d <= 1 && Number.isFinite(heatmap[i])) heatmap[i] = 9.5 + 4 * (1 - d) + rand();
      }
    }
  }
  const found = anomalousRegions(heatmap, rows, cols, threshold, { originX: 0, originY: 0, cellSize: CELL, mpp: MPP, minCells: 4 });
  const id = '5eed'.padEnd(24, '0');
  const tissueSide = 1024;
  const mask = Buffer.alloc(tissueSide * tissueSide);
  for (let y = 0; y < tissueSide; y++) for (let x = 0; x < tissueSide; x++) mask[y * tissueSide + x] = onTissue(((x + 0.5) * size) / tissueSide, ((y + 0.5) * size) / tissueSide, size) ? 255 : 0;
  const tissuePng = await sharp(mask, { raw: { width: tissueSide, height: tissueSide, channels: 1 } }).png().toBuffer();
  let min = Infinity;
  let max = -Infinity;
  for (const v of heatmap) if (Number.isFinite(v)) [min, max] = [Math.min(min, v), Math.max(max, v)];
  const createdAt = new Date().toISOString();
  const meta = {
    formatVersion: 1, slideId: id, slidePath: slide, width: size, height: size, mpp: MPP, rows, cols, patchSizeLevel0: CELL, originX: 0, originY: 0,
    regionSize: 1024, model: 'flashslide-demo-vit-4x192-p16', scoreMethod: 'self', scoreParams: { synthetic: 'bench/reports.mjs' }, min, max, threshold, createdAt, flashslideVersion: 'bench',
  };
  const fingerprint = await fingerprintFile(slide);
  const analysis = {
    formatVersion: 1, analysisId: id, embeddingId: id,
    slide: { path: slide, name: slide.split('/').pop(), fingerprint, vendor: 'generic-tiff', backend: 'sharp', width: size, height: size, mpp: MPP, mppSource: 'tiff-resolution', objectivePower: null, levels: 8 },
    model: { name: 'flashslide-demo-vit-4x192-p16', weights: 'demo', weightsFingerprint: '0'.repeat(64), config: 'demo', description: 'synthetic result (bench)', patchSize: 16, embedDim: 192, demo: true, validation: null },
    parameters: { targetMpp: 0.5, effectiveMpp: MPP, regionSize: 1024, overlap: 0, scoreMethod: 'self', mppOverride: null, fallbackMpp: null },
    tissue: { mode: 'brightfield', fraction: 0.5 }, createdAt, flashslideVersion: 'bench',
  };
  const summary = {
    slideId: id, slidePath: slide, status: 'done', slideScore: slideScore(heatmap), ...countCells(heatmap, threshold), regionsCount: found.length, threshold,
    model: meta.model, scoreMethod: 'self', timings: { readMs: 0, inferenceMs: 0, scoringMs: 0, totalMs: 0 }, createdAt, flashslideVersion: 'bench',
  };
  const overlayPng = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#fff' } }).png().toBuffer();
  const folder = 'mosaic-result-0';
  await new ResultStore(dataDir).writeResult(folder, { heatmap, meta, tissuePng, overlayPng, regionsGeoJson: toQuPathGeoJson(found, { idSeed: id }), analysis, summary });
  const resultDir = join(dataDir, folder);
  const ids = JSON.parse(readFileSync(join(resultDir, 'regions.geojson'), 'utf8')).features.map((f) => String(f.id));
  const reviews = new ReviewStore();
  for (const [i, rid] of ids.slice(0, Math.ceil(ids.length / 2)).entries()) {
    await reviews.setVerdict(resultDir, ids, rid, { verdict: ['confirmed', 'rejected', 'unsure'][i % 3], note: `bench note ${i}, "quoted"`, reviewer: 'Bench' }, undefined);
  }
  return { resultDir, regions: found.length };
}

/** Copies of the result under other analysis ids: big files hard-linked, JSON rewritten. */
function copies(resultDir, dataDir, count) {
  const names = readdirSync(resultDir);
  for (let k = 1; k < count; k++) {
    const dir = join(dataDir, `mosaic-result-${k}`);
    if (existsSync(dir)) continue;
    mkdirSync(dir);
    const id = k.toString(16).padStart(4, '0').padEnd(24, 'a');
    for (const n of names) {
      if (n.endsWith('.json')) {
        const j = JSON.parse(readFileSync(join(resultDir, n), 'utf8'));
        if ('slideId' in j) j.slideId = id;
        if ('analysisId' in j) j.analysisId = id;
        writeFileSync(join(dir, n), JSON.stringify(j));
      } else if (n.endsWith('.tmp')) continue;
      else linkSync(join(resultDir, n), join(dir, n));
    }
  }
}

function run(args) {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', JSON.stringify(args)], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const last = r.stderr.trim().split('\n').pop();
  let out;
  try {
    out = JSON.parse(last);
  } catch {
    throw new Error(`report ${args.join(' ')} failed:\n${r.stderr}\n${r.stdout}`);
  }
  if (out.code !== 0) throw new Error(`report ${args.join(' ')} exited ${out.code}:\n${r.stderr}`);
  return out;
}

const size = Number(values.size);
const work = join(tmpdir(), 'flashslide-bench-reports');
mkdirSync(work, { recursive: true });
const slide = values.slide ?? join(tmpdir(), 'flashslide-bench-tiles', `mosaic-${size}.tif`);
if (!existsSync(slide)) {
  mkdirSync(dirname(slide), { recursive: true });
  await synthesiseMosaic(size, slide);
}
const batchData = join(work, 'data');
rmSync(batchData, { recursive: true, force: true });
const t0 = performance.now();
const { resultDir, regions } = await synthesiseResult(slide, size, Number(values.regions), batchData);
console.log(`result: ${size} px mosaic, ${regions} anomalous regions, half reviewed (synthesised in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);

const out = join(work, 'out');
rmSync(out, { recursive: true, force: true });
mkdirSync(out);
const rows = [];
const row = (what, slides, r, file) => rows.push({ what, slides, s: r.ms / 1000, perSlide: r.ms / 1000 / slides, rss: r.maxRssMb, size: file === undefined ? '' : `${(statSync(file).size / 1e6).toFixed(1)} MB` });

const single = (format, extra = []) => {
  const file = join(out, `one.${format}`);
  row(`${format} one slide${extra.length ? ` ${extra.join(' ')}` : ''}`, 1, run(['report', resultDir, '--data', batchData, '--format', format, '--out', file, ...extra]), file);
};
single('pdf');
single('pdf', ['--top', '50']);
single('csv');
single('geojson');
single('json');

const pdfBatch = Number(values['pdf-batch']);
const results = Number(values.results);
copies(resultDir, batchData, Math.max(results, pdfBatch));
const subset = (n) => Array.from({ length: n }, (_, k) => join(batchData, `mosaic-result-${k}`));
row('pdf batch', pdfBatch, run(['report', ...subset(pdfBatch), '--data', batchData, '--format', 'pdf', '--out', join(out, 'pdf-batch')]));
row('csv batch', 10, run(['report', ...subset(10), '--data', batchData, '--format', 'csv', '--out', join(out, 'csv-10')]));
row('csv batch', results, run(['report', ...subset(results), '--data', batchData, '--format', 'csv', '--out', join(out, 'csv-all')]));
row('json batch', results, run(['report', ...subset(results), '--data', batchData, '--format', 'json', '--out', join(out, 'json-all')]));

const model = cpus()[0]?.model ?? 'unknown CPU';
let commit = 'unknown';
try {
  commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim();
} catch {}
console.log(`machine: ${model}, nproc ${availableParallelism()}; date ${new Date().toISOString().slice(0, 10)}; commit ${commit}; node ${process.version}`);
console.log('');
console.log('| export | slides | wall s | s / slide | peak RSS MiB | file |');
console.log('|---|---:|---:|---:|---:|---|');
for (const r of rows) console.log(`| ${r.what} | ${r.slides} | ${r.s.toFixed(2)} | ${r.perSlide.toFixed(3)} | ${r.rss.toFixed(0)} | ${r.size} |`);
