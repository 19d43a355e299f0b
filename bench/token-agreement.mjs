#!/usr/bin/env node
// How much token dropping (--tokens tissue) changes a result: two result folders of one slide,
// analysed with --tokens all (A) and --tokens tissue (B).
//
//   node bench/token-agreement.mjs RESULT_A RESULT_B [--label NAME]
//
// Prints one table row: cells scored in both, Spearman's rank correlation of the cell scores,
// the overlap of the top 1 % and top 5 % cells, the slide scores, and the anomalous regions:
// how many each has and the share of A's top 10 regions that overlap one of B's (bounding
// boxes intersect), and the other way round. Record the rows in bench/NOTES.md.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(import.meta.url), '..', '..');
const { decodeNpyFloat32 } = await import(join(root, 'dist', 'worker', 'store', 'npy.js'));
const { values, positionals } = parseArgs({ allowPositionals: true, options: { label: { type: 'string' }, header: { type: 'boolean' } } });
if (values.header) {
  console.log('| slide | cells | Spearman | top 1 % cells shared | top 5 % cells shared | slide score all / tissue | regions all / tissue | top-10 regions of all found in tissue / of tissue in all |');
  console.log('|---|---|---|---|---|---|---|---|');
  process.exit(0);
}
const [a, b] = positionals;
if (a === undefined || b === undefined) throw new Error('usage: token-agreement.mjs RESULT_ALL RESULT_TISSUE [--label NAME]');
const heat = (dir) => decodeNpyFloat32(readFileSync(join(dir, 'heatmap.npy'))).data;
const ha = heat(a);
const hb = heat(b);
if (ha.length !== hb.length) throw new Error(`heatmaps of different sizes: ${ha.length} vs ${hb.length} cells`);
const idx = [];
for (let i = 0; i < ha.length; i++) if (!Number.isNaN(ha[i]) && !Number.isNaN(hb[i])) idx.push(i);
const n = idx.length;
const ranks = (h) => {
  const order = idx.map((i, k) => [h[i], k]).sort((x, y) => x[0] - y[0]);
  const r = new Float64Array(n);
  order.forEach(([, k], j) => (r[k] = j));
  return r;
};
const ra = ranks(ha);
const rb = ranks(hb);
let d2 = 0;
for (let k = 0; k < n; k++) d2 += (ra[k] - rb[k]) ** 2;
const spearman = 1 - (6 * d2) / (n * (n * n - 1));
const topShare = (q) => {
  const cut = n * (1 - q);
  let inA = 0;
  let both = 0;
  for (let k = 0; k < n; k++) {
    if (ra[k] < cut) continue;
    inA++;
    if (rb[k] >= cut) both++;
  }
  return inA === 0 ? 1 : both / inA;
};
const summary = (dir) => JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
const regions = (dir) =>
  JSON.parse(readFileSync(join(dir, 'regions.geojson'), 'utf8'))
    .features.map((f) => {
      const points = f.geometry.type === 'Polygon' ? f.geometry.coordinates.flat(1) : f.geometry.coordinates.flat(2);
      const xs = points.map((p) => p[0]);
      const ys = points.map((p) => p[1]);
      const score = f.properties?.measurements?.['Score max'] ?? 0;
      return { x0: Math.min(...xs), x1: Math.max(...xs), y0: Math.min(...ys), y1: Math.max(...ys), score };
    })
    .sort((p, q) => q.score - p.score);
const ga = regions(a);
const gb = regions(b);
const found = (from, into) => {
  const top = from.slice(0, 10);
  if (top.length === 0) return 'n/a';
  const hit = top.filter((r) => into.some((s) => r.x0 <= s.x1 && s.x0 <= r.x1 && r.y0 <= s.y1 && s.y0 <= r.y1)).length;
  return `${hit}/${top.length}`;
};
const sa = summary(a);
const sb = summary(b);
const f = (v) => (v === null ? 'none' : v.toFixed(3));
console.log(`| ${values.label ?? a} | ${n} | ${spearman.toFixed(4)} | ${(topShare(0.01) * 100).toFixed(0)} % | ${(topShare(0.05) * 100).toFixed(0)} % | ${f(sa.slideScore)} / ${f(sb.slideScore)} | ${ga.length} / ${gb.length} | ${found(ga, gb)} / ${found(gb, ga)} |`);
