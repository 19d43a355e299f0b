/**
 * Report downloads: on the slide page this slide's report in each format, on the worklist the
 * batch summary and ZIPs of every slide's report (or of the slides the filter shows). They are
 * plain `<a download>` links: the server answers with an attachment and the browser saves it, so
 * no report passes through the page's memory and a slow PDF shows in the browser's download bar.
 * Reports are rendered on request, so they carry the verdicts recorded up to the click.
 */
import type { SlideStatusName } from '../../server/api-types.js';
import type { PaperSize, ReportFormat } from '../../../worker/report/report-options.js';
import { api } from './api.js';
import { h, replaceChildren } from './dom.js';
import { dropdown, type Dropdown } from './dropdown.js';
import { fmtInt } from './format.js';
import { loadSettings, saveSettings } from './settings.js';

interface FormatInfo {
  label: string;
  /** What is in the file, in a few words (slide menu). */
  what: string;
  /** The batch ZIP's item. */
  zipLabel: string;
}

const FORMATS: Record<ReportFormat, FormatInfo> = {
  pdf: { label: 'PDF report', what: 'overview, heatmap, top regions, verdicts', zipLabel: 'PDF reports' },
  geojson: { label: 'QuPath GeoJSON', what: 'region outlines with verdicts, for QuPath', zipLabel: 'QuPath GeoJSON' },
  csv: { label: 'CSV (regions)', what: 'one row per region: score, area, position, verdict', zipLabel: 'Region CSVs' },
  json: { label: 'JSON', what: 'the whole report, machine-readable', zipLabel: 'JSON reports' },
};
const ORDER: readonly ReportFormat[] = ['pdf', 'geojson', 'csv', 'json'];

/** The server takes at most this many ids in one batch URL (report-routes.ts); more: clear the filter. */
const MAX_IDS = 1000;

let serial = 0;

function menuItem(testid: string, label: string, ext: string, what?: string): HTMLAnchorElement {
  return h('a', { class: 'menu-item', href: '#', download: true, 'data-testid': testid },
    h('span', { class: 'menu-item__label' }, label),
    h('span', { class: 'menu-item__ext' }, ext),
    what ? h('span', { class: 'menu-item__what' }, what) : null);
}

/** A4 / Letter as a two-way switch; remembered by this browser, shared by both menus. */
function paperChoice(onChange: (paper: PaperSize) => void): { element: HTMLElement; value(): PaperSize } {
  const name = `paper-${++serial}`;
  let paper = loadSettings().paper;
  const radio = (value: PaperSize, label: string): HTMLElement => {
    const input = h('input', { type: 'radio', name, value, checked: paper === value, 'data-testid': `paper-${value}` });
    input.addEventListener('change', () => {
      paper = value;
      saveSettings({ paper });
      onChange(paper);
    });
    return h('label', { class: 'segmented__option' }, input, h('span', null, label));
  };
  const element = h('div', { class: 'menu-row' },
    h('span', { class: 'menu-row__label', id: `${name}-label` }, 'PDF paper'),
    h('div', { class: 'segmented', role: 'radiogroup', 'aria-labelledby': `${name}-label` }, radio('a4', 'A4'), radio('letter', 'Letter')));
  return { element, value: () => paper };
}

export interface SlideExportMenu {
  element: HTMLElement;
  /** The slide's status (null: the slide could not be loaded); queued and running have no report. */
  setStatus(status: SlideStatusName | null): void;
  close(): void;
}

export function slideExportMenu(id: string): SlideExportMenu {
  const links = ORDER.map((format) => ({ format, a: menuItem(`export-${format}`, FORMATS[format].label, `.${format}`, FORMATS[format].what) }));
  const paper = paperChoice(() => setHrefs());
  const failedNote = h('p', { class: 'menu-note menu-note--warn', hidden: true }, 'The analysis failed: the report says why.');
  const menu: Dropdown = dropdown(
    { label: 'Export', icon: 'download', title: 'Download this slide\'s report', testid: 'export-menu' },
    h('div', { class: 'menu-head' }, h('h2', null, 'Report of this slide')),
    failedNote,
    links.map((l) => l.a),
    h('div', { class: 'menu-sep' }),
    paper.element,
    h('p', { class: 'menu-note' }, 'Made when you click, with the verdicts recorded so far.'),
  );

  function setHrefs(): void {
    for (const { format, a } of links) a.href = api.reportUrl(id, format, paper.value());
  }
  setHrefs();
  menu.setEnabled(false, 'Loading the slide…');

  return {
    element: menu.element,
    close: () => menu.close(),
    setStatus(status) {
      failedNote.hidden = status !== 'failed';
      if (status === null) menu.setEnabled(false, 'No report: the slide could not be loaded.');
      else if (status === 'queued') menu.setEnabled(false, 'No report yet: the slide is queued for analysis.');
      else if (status === 'running') menu.setEnabled(false, 'No report yet: the analysis is running.');
      else menu.setEnabled(true);
    },
  };
}

export interface BatchExportMenu {
  element: HTMLElement;
  /**
   * What a batch covers: the ids the worklist shows, in its order, and whether a filter narrows
   * them (then only those are exported; unfiltered, the server takes every slide it knows).
   */
  setScope(shownIds: readonly string[], filtered: boolean): void;
  close(): void;
}

export function batchExportMenu(): BatchExportMenu {
  const summary = (['csv', 'json'] as const).map((format) => ({ format, a: menuItem(`batch-${format}`, `Batch summary ${format.toUpperCase()}`, `.${format}`) }));
  const zips = ORDER.map((format) => ({ format, a: menuItem(`batch-zip-${format}`, FORMATS[format].zipLabel, '.zip') }));
  const scope = h('span', { class: 'menu-head__scope', 'data-testid': 'batch-scope' });
  const paper = paperChoice(() => setHrefs());
  const menu = dropdown(
    { label: 'Export', icon: 'download', title: 'Download reports of the slides listed', testid: 'batch-export' },
    h('div', { class: 'menu-head' }, h('h2', null, 'Batch export'), scope),
    h('div', { class: 'menu-sub' }, 'Summary: one row per slide'),
    summary.map((s) => s.a),
    h('div', { class: 'menu-sub' }, 'ZIP: a report per slide, with the summary'),
    zips.map((z) => z.a),
    h('div', { class: 'menu-sep' }),
    paper.element,
    h('p', { class: 'menu-note' }, 'Queued and running slides are in the summary only. PDFs take a few seconds per slide.'),
  );
  let ids: readonly string[] | undefined;
  menu.setEnabled(false, 'Loading the worklist…');

  function setHrefs(): void {
    for (const { format, a } of summary) a.href = api.batchSummaryUrl(format, ids);
    for (const { format, a } of zips) a.href = api.batchZipUrl(format, paper.value(), ids);
  }

  return {
    element: menu.element,
    close: () => menu.close(),
    setScope(shownIds, filtered) {
      const n = shownIds.length;
      ids = filtered ? shownIds : undefined;
      replaceChildren(scope, filtered ? `the ${fmtInt(n)} slide${n === 1 ? '' : 's'} the filter shows` : `all ${fmtInt(n)} slide${n === 1 ? '' : 's'}`);
      setHrefs();
      if (n === 0) menu.setEnabled(false, filtered ? 'No slide matches the filter: nothing to export.' : 'No slides yet: nothing to export.');
      else if (filtered && n > MAX_IDS) menu.setEnabled(false, `${fmtInt(n)} slides match the filter, more than one export takes (${fmtInt(MAX_IDS)}): clear the filter to export all.`);
      else menu.setEnabled(true);
    },
  };
}
