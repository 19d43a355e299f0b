#!/usr/bin/env node
// The top self-time functions of a V8 CPU profile (node --cpu-prof), by function and place,
// and the share of the main thread that was idle (waiting on the thread pool, the GPU, I/O).
//
//   node bench/profile-summary.mjs PROFILE.cpuprofile [--top 25]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
const profile = JSON.parse(readFileSync(positionals[0], 'utf8'));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
// timeDeltas[i] is the time before sample i; samples[i] the node it landed in.
let total = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  total += dt;
  const n = byId.get(id);
  const f = n.callFrame;
  const key = `${f.functionName || '(anonymous)'} ${f.url ? `${f.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : ''}`.trim();
  self.set(key, (self.get(key) ?? 0) + dt);
});
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top));
console.log(`main thread: ${(total / 1e6).toFixed(1)} s sampled`);
console.log('| self s | share | function |\n|---|---|---|');
for (const [k, v] of rows) console.log(`| ${(v / 1e6).toFixed(2)} | ${((100 * v) / total).toFixed(1)} % | ${k.replace(/\|/g, '/')} |`);
