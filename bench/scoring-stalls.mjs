#!/usr/bin/env node
// How long scoring a slide holds the event loop: stage 3 (aggregate-stage.ts) on the main
// thread against the same on its scoring thread (aggregate-thread.ts), on a slide already
// embedded. While it runs a 1 ms timer measures the loop's stalls; in a batch, the engine's
// next forwards are launched from that loop, and it keeps only two queued (~100 ms on an H200).
//
//   node bench/scoring-stalls.mjs --data DIR [--repeat 2]
//
// DIR: a --data folder holding an embedded slide (e.g. `node bench/e2e-analyze.mjs --keep`,
// then its data/ folder). Needs dist/ (npm run build). Record results in bench/NOTES.md.
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { aggregateSlide } from '../dist/worker/pipeline/aggregate-stage.js';
import { aggregateOffThread } from '../dist/worker/pipeline/aggregate-thread.js';
import { readPlan } from '../dist/worker/pipeline/plan-stage.js';

const { values } = parseArgs({ options: { data: { type: 'string' }, repeat: { type: 'string', default: '2' } } });
if (values.data === undefined) throw new Error('--data DIR is required: a data folder with an embedded slide');
const embeddings = join(values.data, 'embeddings');
const [work] = readdirSync(embeddings);
if (work === undefined) throw new Error(`${embeddings} holds no work folder`);
const onDisk = JSON.parse(readFileSync(join(embeddings, work, 'plan.json'), 'utf8'));
const plan = await readPlan(onDisk.spec);
if (plan === null) throw new Error(`${join(embeddings, work)}: no plan for its own spec`);

async function measure(run) {
  const stalls = [];
  let last = performance.now();
  const tick = setInterval(() => {
    const now = performance.now();
    stalls.push(now - last);
    last = now;
  }, 1);
  const t = performance.now();
  const summary = await run();
  const wall = performance.now() - t;
  clearInterval(tick);
  const longest = Math.max(...stalls);
  const over = (ms) => stalls.filter((s) => s > ms).reduce((a, s) => a + s, 0);
  return { wall, longest, over50: over(50), over100: over(100), summary };
}

const timings = { planMs: plan.planMs, readMs: 0, inferenceMs: 0 };
const rows = [];
for (let r = 0; r < Number(values.repeat); r++) {
  rows.push(['main thread', await measure(() => aggregateSlide(plan, timings, 0))]);
  rows.push(['scoring thread', await measure(() => aggregateOffThread(plan, timings, 0))]);
}
const s = (ms) => `${(ms / 1000).toFixed(2)} s`;
console.log(`| ${plan.spec.slideName}: ${plan.regionPlan.regions.length} regions, ${plan.model.name} (dim ${plan.model.embedDim}); ${cpus().length} cores (${cpus()[0]?.model ?? '?'}) |`);
console.log('| scoring on | wall | longest stall of the event loop | time in stalls > 50 ms | > 100 ms |');
console.log('|---|---|---|---|---|');
for (const [where, m] of rows) console.log(`| ${where} | ${s(m.wall)} | ${m.longest.toFixed(0)} ms | ${s(m.over50)} | ${s(m.over100)} |`);
const scores = rows.map(([, m]) => m.summary.slideScore);
console.log(`| same slide score each run | ${scores.every((x) => x === scores[0]) ? 'yes' : `NO: ${scores.join(', ')}`} | | | |`);
