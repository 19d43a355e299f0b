#!/usr/bin/env node
// Queue mode over several GPUs: one `flashslide worker` per GPU on one Redis and one --data
// folder, against a single worker, on the same batch of distinct mosaics.
//
//   node bench/scale-workers.mjs [--slides 6] [--size 40000] [--workers N (default: one per GPU)]
//                                [--model W.safetensors] [--batch-size 8] [--redis-server PATH]
//                                [--work DIR (mosaics are reused from there)]
//
// Run A: one worker (GPU 0) processes the batch, submitted at once and waited for. Run B: N
// workers, worker i on GPU i % GPUs (CUDA_VISIBLE_DEVICES), into a fresh data folder. Prints the
// wall time of each, the speed-up, and whether every slide's heatmap is identical in both
// (bit for bit). Needs a GPU build and a redis-server. Record results in bench/NOTES.md.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { synthesiseMosaic } from './mosaic.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(root, 'bin', 'flashslide.js');
const { values } = parseArgs({
  options: {
    'slides': { type: 'string', default: '6' },
    'size': { type: 'string', default: '40000' },
    'workers': { type: 'string' },
    'model': { type: 'string', default: 'demo' },
    'batch-size': { type: 'string', default: '8' },
    'device': { type: 'string', default: 'cuda' },
    'redis-server': { type: 'string', default: 'redis-server' },
    'work': { type: 'string', default: '/tmp/flashslide-scale' },
  },
});
const count = Number(values.slides);
const size = Number(values.size);
const gpus = (() => {
  const r = spawnSync('nvidia-smi', ['-L'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.split('\n').filter((l) => l.startsWith('GPU ')).length : 0;
})();
const workers = Number(values.workers ?? Math.max(1, gpus));
const work = values.work;
const slidesDir = join(work, 'slides');
mkdirSync(slidesDir, { recursive: true });

// Distinct slides (other content, so no analysis is shared between them), made in parallel.
const t0 = performance.now();
const slides = Array.from({ length: count }, (_, i) => join(slidesDir, `mosaic-${size}-v${i}.tif`));
await Promise.all(slides.map((s, i) => (existsSync(s) ? null : synthesiseMosaic(size, s, i))));
console.log(`${count} mosaics of ${size} px ready in ${((performance.now() - t0) / 1000).toFixed(0)} s; ${gpus} GPU(s), ${workers} worker(s) for run B`);

const freePort = () =>
  new Promise((res) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
const port = await freePort();
const redis = spawn(values['redis-server'], ['--port', String(port), '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
await new Promise((r) => setTimeout(r, 1000));
const url = `redis://127.0.0.1:${port}`;
const modelRoot = values.model === 'demo' ? work : dirname(values.model);
const analysis = ['--device', values.device, '--batch-size', values['batch-size'], '--model', values.model];

async function run(name, n) {
  const data = join(work, `data-${name}`);
  spawnSync('rm', ['-rf', data]);
  mkdirSync(data, { recursive: true });
  const procs = Array.from({ length: n }, (_, i) =>
    spawn(process.execPath, [BIN, 'worker', '--redis', url, '--data', data, '--slides', slidesDir, '--models', modelRoot, '--device', values.device], {
      env: { ...process.env, ...(gpus > 0 ? { CUDA_VISIBLE_DEVICES: String(i % gpus) } : {}) },
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  );
  await new Promise((r) => setTimeout(r, 3000)); // workers connected and engines loading
  const t = performance.now();
  const r = spawnSync(process.execPath, [BIN, 'submit', ...slides, '--wait', '--json', '--redis', url, '--data', data, ...analysis], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const wall = (performance.now() - t) / 1000;
  for (const p of procs) p.kill('SIGTERM');
  await Promise.all(procs.map((p) => new Promise((res) => (p.exitCode !== null || p.signalCode !== null ? res() : p.once('exit', res)))));
  const states = JSON.parse(r.stdout || '[]');
  if (r.status !== 0 || states.some((s) => s.state !== 'done')) throw new Error(`run ${name}: ${r.stderr}${r.stdout}`);
  return { wall, results: states.map((s) => s.resultDir) };
}

try {
  const a = await run('one-worker', 1);
  const b = await run(`${workers}-workers`, workers);
  let identical = 0;
  for (let i = 0; i < count; i++) {
    const ha = readFileSync(join(a.results[i], 'heatmap.npy'));
    const hb = readFileSync(join(b.results[i], 'heatmap.npy'));
    if (ha.equals(hb)) identical++;
  }
  console.log('| run | workers | wall | slides/min | speed-up | heatmaps identical to run A |\n|---|---|---|---|---|---|');
  console.log(`| A | 1 | ${a.wall.toFixed(1)} s | ${((60 * count) / a.wall).toFixed(2)} | 1.00x | - |`);
  console.log(`| B | ${workers} | ${b.wall.toFixed(1)} s | ${((60 * count) / b.wall).toFixed(2)} | ${(a.wall / b.wall).toFixed(2)}x | ${identical}/${count} |`);
  if (identical !== count) process.exitCode = 1;
} finally {
  redis.kill();
}
// Keep the mosaics for another run; the data folders are large.
for (const d of readdirSync(work)) if (d.startsWith('data-')) spawnSync('rm', ['-rf', join(work, d)]);
