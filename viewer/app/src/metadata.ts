/** The slide's facts: scanner, size, resolution, magnification, model, score method, timings. */
import type { SlideDetail } from '../../server/api-types.js';
import { h, replaceChildren } from './dom.js';
import { fmtInt, fmtMagnification, fmtMs, fmtScore, fmtWhen, magnificationFromMpp } from './format.js';

const TIMING_LABELS: Record<string, string> = {
  planMs: 'plan', readMs: 'reads', inferenceMs: 'inference', writeMs: 'writes', scoringMs: 'scoring', totalMs: 'total',
};

export function metadataPanel(): { element: HTMLElement; render(d: SlideDetail): void } {
  const body = h('div');
  const element = h('section', { class: 'panel metadata', 'aria-label': 'Slide information' },
    h('details', { open: true }, h('summary', null, h('h2', null, 'Slide')), body));
  return {
    element,
    render(d) {
      const rows: [string, string][] = [];
      const s = d.slide;
      if (s) {
        rows.push(['scanner', `${s.vendor}${s.backend ? ` (${s.backend})` : ''}`]);
        const mm = s.mpp ? ` · ${((s.width * s.mpp) / 1000).toFixed(1)} × ${((s.height * s.mpp) / 1000).toFixed(1)} mm` : '';
        rows.push(['size', `${fmtInt(s.width)} × ${fmtInt(s.height)} px${mm}`]);
        rows.push(['levels', String(s.levels)]);
        rows.push(['resolution', s.mpp ? `${s.mpp.toFixed(4)} µm/px` : 'unknown']);
        const mag = s.mpp ? magnificationFromMpp(s.mpp) : s.objectivePower;
        rows.push(['magnification', mag ? `${fmtMagnification(mag)}${s.objectivePower && s.mpp ? ` (file says ${fmtMagnification(s.objectivePower)})` : ''}` : 'unknown']);
      } else {
        rows.push(['file', 'the server cannot open this slide file']);
      }
      const r = d.result;
      if (r) {
        rows.push(['slide score', fmtScore(r.score, 3)]);
        rows.push(['model', r.model]);
        rows.push(['score method', r.scoreMethod]);
        rows.push(['threshold', r.threshold === null ? 'none' : fmtScore(r.threshold, 3)]);
        const pct = r.tissueCells ? ` (${((100 * r.anomalousCells) / r.tissueCells).toFixed(2)} %)` : '';
        rows.push(['cells', `${fmtInt(r.tissueCells)} tissue · ${fmtInt(r.anomalousCells)} anomalous${pct}`]);
        rows.push(['regions', fmtInt(r.regions)]);
        rows.push(['analysed', fmtWhen(r.createdAt)]);
      }
      if (d.heatmap) rows.push(['grid', `${fmtInt(d.heatmap.cols)} × ${fmtInt(d.heatmap.rows)} cells of ${+d.heatmap.cellSize.toFixed(2)} px`]);
      const timings = r ? Object.entries(r.timings).filter(([, v]) => typeof v === 'number') : [];
      const params = r ? Object.entries(r.scoreParams) : [];
      replaceChildren(body,
        h('dl', { class: 'kv', 'data-testid': 'metadata' }, rows.map(([k, v]) => [h('dt', null, k), h('dd', null, v)])),
        timings.length ? h('details', { class: 'sub' }, h('summary', null, 'Timings'),
          h('dl', { class: 'kv' }, timings.map(([k, v]) => [h('dt', null, TIMING_LABELS[k] ?? k.replace(/Ms$/, '')), h('dd', null, fmtMs(v))]))) : null,
        params.length ? h('details', { class: 'sub' }, h('summary', null, 'Score parameters'),
          h('dl', { class: 'kv' }, params.map(([k, v]) => [h('dt', null, k), h('dd', null, typeof v === 'string' ? v : JSON.stringify(v))]))) : null,
      );
    },
  };
}
