#!/usr/bin/env node
// End-to-end benchmark of `flashslide analyze` on a synthetic gigapixel slide.
//
//   node bench/e2e-analyze.mjs [--size 40000] [--device cpu|cuda|auto] [--region-size 1024] [--keep]
//                              [--model demo|W.safetensors] [--slide PATH (reused if it exists)]
//                              [--copies N] [--tokens all|tissue] [--token-margin N] [--result-to DIR]
//                              [--data-in DIR] [--embeddings keep|drop]
//
// The slide is a mosaic of real tissue (test/fixtures/slides/CMU-1-Small-Region.svs, with flips)
// separated by glass gaps, written by libvips as a tiled JPEG pyramidal TIFF with the original
// 0.499 µm/px in its resolution tags. The analysis runs as the CLI would, in a child process,
// with the demo model (or --model: a timm safetensors file with its config beside it); the table gives tissue megapixels per second (level-0 tissue area over
// wall time), the per-stage times from summary.json, and the child's peak RSS.
// --copies N analyses N links to the slide in one `analyze` call (a batch of N slides, the way a
// lab submits a day's scans), where one slide's scoring overlaps the next one's embedding.
// Record results with machine and date in bench/NOTES.md.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    'size': { type: 'string', default: '40000' },
    'device': { type: 'string', default: 'auto' },
    'region-size': { type: 'string', default: '1024' },
    'batch-size': { type: 'string', default: '4' },
    'keep': { type: 'boolean', default: false },
    'model': { type: 'string', default: 'demo' },
    // A mosaic to reuse (e.g. across models) or to write: synthesis takes a minute or more.
    'slide': { type: 'string' },
    'copies': { type: 'string', default: '1' },
    'tokens': { type: 'string', default: 'all' },
    'token-margin': { type: 'string' },
    // Copy the (first) slide's result folder here, e.g. to compare --tokens all and tissue.
    'result-to': { type: 'string' },
    // Where the --data folder is made (default: beside the slide in a temporary folder), e.g.
    // /dev/shm to take the disk out of the comparison.
    'data-in': { type: 'string' },
    // drop: parts of batches the streamed scoring took as they came are never written.
    'embeddings': { type: 'string', default: 'keep' },
  },
});
const size = Number(values.size);
const work = mkdtempSync(join(tmpdir(), 'flashslide-e2e-'));
const slide = values.slide ?? join(work, `mosaic-${size}.tif`);
const MPP = 0.499;

// --- synthesise -------------------------------------------------------------------------
const t0 = performance.now();
async function synthesise() {
  const src = join(root, 'test', 'fixtures', 'slides', 'CMU-1-Small-Region.svs');
  const base = await sharp(src).raw().toBuffer({ resolveWithObject: true });
  const { width: tw, height: th } = base.info;
  const variants = await Promise.all(
    [
      (s) => s,
      (s) => s.flop(),
      (s) => s.flip(),
      (s) => s.flip().flop(),
    ].map(async (f) => f(sharp(base.data, { raw: { width: tw, height: th, channels: 3 } })).png({ compressionLevel: 0 }).toBuffer()),
  );
  const gap = 400; // glass between tiles: regions there must be skipped
  const overlays = [];
  let k = 0;
  for (let y = 0; y + th <= size; y += th + gap) {
    for (let x = 0; x + tw <= size; x += tw + gap) {
      overlays.push({ input: variants[k++ % variants.length], left: x, top: y });
    }
  }
  await sharp({ create: { width: size, height: size, channels: 3, background: { r: 242, g: 242, b: 240 } }, limitInputPixels: false })
    .composite(overlays)
    .tiff({ tile: true, tileWidth: 256, tileHeight: 256, pyramid: true, compression: 'jpeg', quality: 85, resolutionUnit: 'cm', xres: 1000 / MPP, yres: 1000 / MPP /* px per mm */, bigtiff: true })
    .toFile(slide);
}
const reused = values.slide !== undefined && existsSync(slide);
if (!reused) await synthesise();
const synthS = (performance.now() - t0) / 1000;

// --- analyse ------------------------------------------------------------------------------
const data = values['data-in'] === undefined ? join(work, 'data') : mkdtempSync(join(values['data-in'], 'flashslide-e2e-data-'));
const copies = Math.max(1, Number(values.copies));
// Links with their own names: each is a slide of its own (own result and embeddings folders).
const slides = copies === 1 ? [slide] : Array.from({ length: copies }, (_, i) => {
  const link = join(work, `copy-${i + 1}.tif`);
  symlinkSync(slide, link);
  return link;
});
const args = [
  join(root, 'bin', 'flashslide.js'), 'analyze', ...slides, '--data', data, '--json',
  '--device', values.device, '--region-size', values['region-size'], '--batch-size', values['batch-size'],
  '--model', values.model, '--tokens', values.tokens, '--embeddings', values.embeddings,
  ...(values['token-margin'] === undefined ? [] : ['--token-margin', values['token-margin']]),
];
// Extra flags for the analysing node process, e.g. FLASHSLIDE_E2E_NODE_FLAGS="--cpu-prof
// --cpu-prof-dir=prof" (node refuses --cpu-prof in NODE_OPTIONS).
args.unshift(...(process.env.FLASHSLIDE_E2E_NODE_FLAGS ?? '').split(' ').filter((f) => f !== ''));
const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
const t1 = performance.now();
const r = timeBin
  ? spawnSync(timeBin, ['-f', 'peakRssKb=%M', process.execPath, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 })
  : spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
const wallS = (performance.now() - t1) / 1000;
if (r.status !== 0) {
  process.stderr.write(r.stderr);
  throw new Error(`analyze exited ${r.status}`);
}
const peakKb = Number(/peakRssKb=(\d+)/.exec(r.stderr)?.[1] ?? NaN);
const outcomes = JSON.parse(r.stdout);
const [outcome] = outcomes;
if (outcomes.some((o) => o.status !== 'done')) throw new Error(`not every slide was analysed: ${r.stdout}`);
const summary = JSON.parse(readFileSync(join(outcome.resultDir, 'summary.json'), 'utf8'));
const embeddingsDir = summary.embeddings.dir;
const plan = JSON.parse(readFileSync(join(embeddingsDir, 'plan.json'), 'utf8'));
const partsDir = join(embeddingsDir, 'parts');
const partsBytes = existsSync(partsDir) ? readdirSync(partsDir).reduce((a, f) => a + statSync(join(partsDir, f)).size, 0) : 0;

const tissueMpx = (plan.tissue.fraction * size * size) / 1e6;
const s = (ms) => (ms / 1000).toFixed(1);
const rows = [
  ['slide', `${size} x ${size} px (${(size * size / 1e9).toFixed(2)} Gpx, ${(statSync(slide).size / 2 ** 20).toFixed(0)} MiB JPEG TIFF, ${reused ? 'reused' : `synthesised in ${synthS.toFixed(0)} s`})`],
  ['model', values.model === 'demo' ? 'demo (4-block, 192-wide ViT, patch 16, random)' : values.model],
  ['machine', `${cpus().length} cores, ${cpus()[0]?.model ?? '?'}; device ${values.device}`],
  ['tissue', `${(plan.tissue.fraction * 100).toFixed(1)} % = ${tissueMpx.toFixed(0)} Mpx at level 0`],
  ['tokens', values.tokens === 'all' ? 'all' : `tissue (margin ${values['token-margin'] ?? 'default'})`],
  ['regions', `${plan.regionPlan.regions.length} of ${plan.regionPlan.cols * plan.regionPlan.rows} grid cells, ${plan.regionPlan.regionSize} px, batch ${values['batch-size']}`],
  ['plan (tissue + regions)', `${s(summary.timings.planMs)} s`],
  ['region reads (overlapped)', `${s(summary.timings.readMs)} s`],
  ['inference', `${s(summary.timings.inferenceMs)} s`],
  ['tokens through the ViT', summary.embeddings.modelTokens === undefined ? 'n/a' : `${(summary.embeddings.modelTokens / 1e6).toFixed(2)} M (every patch of every region: ${((plan.regionPlan.regions.length * (plan.model.prefixTokens + (plan.regionPlan.regionSize / plan.model.patchSize) ** 2)) / 1e6).toFixed(2)} M)`],
  ['engine in the embed phase', summary.timings.engineIdle === undefined ? 'n/a' : (() => {
    const e = summary.timings.engineIdle;
    const pc = (v) => `${((100 * v) / e.phaseMs).toFixed(0)} %`;
    return `${s(e.phaseMs)} s: busy ${pc(e.busyMs)}; idle before the first forward ${s(e.firstMs)} s, waiting for reads ${s(e.readMs)} s, waiting otherwise ${s(e.otherMs)} s, after the last ${s(e.tailMs)} s`;
  })()],
  ['part files written', summary.timings.writeMs === undefined ? 'n/a' : `${summary.embeddings.partsWritten ?? '?'} of ${summary.embeddings.batches} in ${s(summary.timings.writeMs)} s (overlapped with the next forward)`],
  ['scoring + store', `${s(summary.timings.scoringMs)} s${summary.timings.scoringSteps ? ` (${Object.entries(summary.timings.scoringSteps).map(([k, v]) => `${k.replace(/Ms$/, '')} ${s(v)}`).join(', ')})` : ''}`],
  ...(copies === 1
    ? [['total (wall)', `${wallS.toFixed(1)} s`]]
    : [
        ['first slide (its own total)', `${s(summary.timings.totalMs)} s`],
        [`batch of ${copies} slides (wall)`, `${wallS.toFixed(1)} s = ${(wallS / copies).toFixed(1)} s per slide`],
        // The issue's measure for a batch: the engine's forwards over the whole wall (process
        // start and model load included).
        ['engine busy over the batch', (() => {
          const busyMs = outcomes.reduce((acc, o) => acc + JSON.parse(readFileSync(join(o.resultDir, 'summary.json'), 'utf8')).timings.inferenceMs, 0);
          return `${s(busyMs)} s of ${wallS.toFixed(1)} s = ${((100 * busyMs) / (1000 * wallS)).toFixed(0)} %`;
        })()],
      ]),
  ['throughput', `${((copies * tissueMpx) / wallS).toFixed(2)} tissue Mpx/s, ${((copies * plan.regionPlan.regions.length) / wallS).toFixed(2)} regions/s`],
  ['peak RSS', Number.isFinite(peakKb) ? `${(peakKb / 1024).toFixed(0)} MiB` : 'n/a (no /usr/bin/time)'],
  ['embeddings on disk', summary.embeddings.dropped ? `none (--embeddings drop; ${data})` : `${(partsBytes / 2 ** 20).toFixed(0)} MiB (BF16) in ${data}`],
];
console.log('| measure | value |\n|---|---|');
for (const [a, b] of rows) console.log(`| ${a} | ${b} |`);
if (values['result-to'] !== undefined) cpSync(outcome.resultDir, values['result-to'], { recursive: true });
if (!values.keep) {
  rmSync(work, { recursive: true, force: true });
  rmSync(data, { recursive: true, force: true });
} else console.log(`kept ${work} (data: ${data})`);
