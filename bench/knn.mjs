#!/usr/bin/env node
// Nearest-neighbour search benchmark: the reference scorer's k = 1 search, JavaScript (float64,
// one thread) against the addon (float32 sgemm blocks + row minimum on all CPU cores; cuBLASLt fp32
// on the GPU where the build has CUDA).
//
//   node bench/knn.mjs [--queries 100000] [--bank 20000] [--dims 384,1024] [--js-queries 500]
//                      [--devices cpu,cuda]
//
// Needs the compiled TypeScript (npm run build). The JavaScript search is timed on the first
// --js-queries queries and extrapolated (it would take hours on all of them); every native result
// is checked against it on those queries. Record results with machine and date in bench/NOTES.md.
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { JsNearestNeighbour } from '../dist/worker/score/nearest-neighbour.js';
import { nativeScoreKernels } from '../dist/worker/score/native-kernels.js';
import { availableDevices } from '../dist/worker/infer/vit-engine.js';
import { gaussianFill, seededRng } from '../dist/worker/util/random.js';

const { values } = parseArgs({
  options: {
    queries: { type: 'string', default: '100000' },
    bank: { type: 'string', default: '20000' },
    dims: { type: 'string', default: '384,1024' },
    'js-queries': { type: 'string', default: '500' },
    devices: { type: 'string', default: availableDevices().join(',') },
  },
});
const nq = Number(values.queries);
const nb = Number(values.bank);
const jsQueries = Math.min(nq, Number(values['js-queries']));
const dims = values.dims.split(',').map(Number);
const devices = values.devices.split(',').filter((d) => d === 'cpu' || d === 'cuda');
const kernels = nativeScoreKernels();
if (kernels === null) throw new Error('the addon has no scoring kernels: run npm run build');

/** Embedding-like rows: a shared offset plus unit noise, so centring matters as it does for a ViT. */
function rows(n, dim, seed) {
  const out = new Float32Array(n * dim);
  gaussianFill(out, seededRng(seed));
  for (let i = 0; i < out.length; i++) out[i] += 0.5 * ((i % dim) % 7);
  return out;
}

const table = [];
let failed = false;
for (const dim of dims) {
  const bank = { size: nb, dim, data: rows(nb, dim, 1) };
  const queries = rows(nq, dim, 2);
  const sub = { count: jsQueries, dim, data: queries.subarray(0, jsQueries * dim) };
  const t0 = performance.now();
  const js = new JsNearestNeighbour(bank).nearestSync(sub);
  const jsS = ((performance.now() - t0) / 1000) * (nq / jsQueries);
  const flop = 2 * nq * nb * dim;
  table.push({ dim, impl: 'js-float64 (1 thread)', seconds: jsS, note: `extrapolated from ${jsQueries} queries` });
  for (const device of devices) {
    const index = await kernels.createNearestIndex(bank.data, nb, dim, device);
    await index.search(queries.subarray(0, Math.min(nq, 1024) * dim), Math.min(nq, 1024)); // warm-up
    const t1 = performance.now();
    const got = await index.search(queries, nq);
    const s = (performance.now() - t1) / 1000;
    index.close();
    let maxRel = 0;
    for (let i = 0; i < jsQueries; i++) maxRel = Math.max(maxRel, Math.abs(got[i] - js[i]) / js[i]);
    if (!(maxRel < 1e-4)) failed = true;
    table.push({ dim, impl: `native-${device}`, seconds: s, note: `max rel diff vs JS ${maxRel.toExponential(1)}` });
  }
  for (const row of table.filter((r) => r.dim === dim)) {
    row.gflops = flop / row.seconds / 1e9;
    row.speedup = jsS / row.seconds;
  }
}

console.log(`nearest-neighbour search: ${nq} queries x ${nb} bank rows; ${cpus().length} cores, ${cpus()[0]?.model ?? '?'}`);
console.log('| dim | search | seconds | GFLOP/s | vs JS | note |\n|---|---|---|---|---|---|');
for (const r of table) {
  console.log(`| ${r.dim} | ${r.impl} | ${r.seconds.toFixed(2)} | ${r.gflops.toFixed(1)} | ${r.speedup.toFixed(1)}x | ${r.note} |`);
}
if (failed) {
  console.error('FAIL: a native search differs from the JavaScript search by more than 1e-4 relative');
  process.exit(1);
}
