#!/usr/bin/env node
// The plan stage's tissue detection, the addon's kernels against their JavaScript twins, on a
// synthetic gigapixel slide (bench/mosaic.mjs) or any slide.
//
//   node bench/tissue-plan.mjs [--size 40000] [--slide PATH (reused if it exists)] [--repeat 3]
//
// Prints the median of --repeat runs of each step: the overview (decode + area averaging), the
// mask (classification, Otsu, morphology, components) and, for the native mask, how long the
// event loop was blocked (the kernel runs on the thread pool). Needs dist/ (npm run build:app)
// and the addon (npm run build:native). Record results with machine and date in bench/NOTES.md.
import { existsSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { synthesiseMosaic } from './mosaic.mjs';
import { openSlide } from '../dist/worker/slide/open-slide.js';
import { readOverview } from '../dist/worker/tissue/overview.js';
import { detectTissue, detectTissueFast } from '../dist/worker/tissue/tissue-mask.js';
import { tissueKernels } from '../dist/worker/native/tissue-kernels.js';

const { values } = parseArgs({ options: { size: { type: 'string', default: '40000' }, slide: { type: 'string' }, repeat: { type: 'string', default: '3' } } });
if (tissueKernels() === null) throw new Error('the addon has no tissue kernels: run npm run build:native');
const slide = values.slide ?? join(tmpdir(), `mosaic-${values.size}.tif`);
if (!existsSync(slide)) await synthesiseMosaic(Number(values.size), slide);
const repeat = Number(values.repeat);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const source = await openSlide(slide);
const mpp = source.mpp === null ? null : (source.mpp.x + source.mpp.y) / 2;
// findTissue's mask size: 4 µm per pixel, at most 4096 px on the long side.
const downsample = Math.max(1, mpp === null ? 1 : 4 / mpp, Math.max(source.width, source.height) / 4096);
const times = { ovJs: [], ovNative: [], maskJs: [], maskNative: [], blocked: [] };
let image = null;
let same = true;
for (let r = 0; r < repeat; r++) {
  let t = performance.now();
  const a = await readOverview(source, downsample, { native: false });
  times.ovJs.push(performance.now() - t);
  t = performance.now();
  const b = await readOverview(source, downsample);
  times.ovNative.push(performance.now() - t);
  same &&= Buffer.compare(a.image.data, b.image.data) === 0;
  image = b.image;
  t = performance.now();
  const js = detectTissue(image);
  times.maskJs.push(performance.now() - t);
  // The event loop's longest stall while the native mask runs: a timer every millisecond.
  let longest = 0;
  let last = performance.now();
  const tick = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  t = performance.now();
  const native = await detectTissueFast(image);
  times.maskNative.push(performance.now() - t);
  clearInterval(tick);
  times.blocked.push(longest);
  same &&= Buffer.compare(Buffer.from(js.mask), Buffer.from(native.mask)) === 0;
}
await source.close();
const row = (what, js, native) => `| ${what} | ${median(js).toFixed(0)} ms | ${median(native).toFixed(0)} ms | ${(median(js) / median(native)).toFixed(1)}x |`;
console.log(`| ${slide}: ${source.width} x ${source.height} px, overview ${image.width} x ${image.height}; ${cpus().length} cores (${cpus()[0]?.model ?? '?'}); median of ${repeat} |`);
console.log('| step | JavaScript | addon | speed-up |');
console.log('|---|---|---|---|');
console.log(row('overview (decode + averaging)', times.ovJs, times.ovNative));
console.log(row('tissue mask', times.maskJs, times.maskNative));
console.log(`| event loop blocked during the addon's mask | | ${median(times.blocked).toFixed(0)} ms | |`);
console.log(`| identical overview and mask | ${same ? 'yes' : 'NO'} | | |`);
if (!same) process.exitCode = 1;
