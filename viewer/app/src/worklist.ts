/**
 * The worklist page: every slide the server knows, with thumbnail, status (live progress over
 * SSE), score, anomalous regions and review state; sort and filter; the submit form. Rows are
 * kept by slide id and updated in place, so a live update does not reload thumbnails.
 */
import type { SlideStatusName, Worklist, WorklistItem } from '../../server/api-types.js';
import { api, errorMessage } from './api.js';
import { subscribe } from './events.js';
import { h, replaceChildren } from './dom.js';
import { batchExportMenu } from './export-menu.js';
import { fmtInt, fmtScore, fmtWhen } from './format.js';
import { toggleHelp } from './help.js';
import { hooks } from './hooks.js';
import { bindKeys } from './keyboard.js';
import { accountBadge } from './session.js';
import { saveWorklistOrder } from './settings.js';
import { submitPanel } from './submit.js';
import { interceptLink, navigate, slideHref } from './url-state.js';

type SortKey = 'score' | 'name' | 'status' | 'updated';
type StatusFilter = 'all' | SlideStatusName;

const VIEW_KEY = 'flashslide.worklistView';
const STATUS_RANK: Record<SlideStatusName, number> = { running: 0, queued: 1, failed: 2, done: 3 };
const REVIEW_LABEL = { 'not-started': 'not started', 'in-progress': 'in progress', done: 'reviewed' } as const;

interface View {
  text: string;
  status: StatusFilter;
  sort: SortKey;
}

function loadView(): View {
  try {
    const v = JSON.parse(sessionStorage.getItem(VIEW_KEY) ?? '{}') as Partial<View>;
    return {
      text: typeof v.text === 'string' ? v.text : '',
      status: (['all', 'queued', 'running', 'done', 'failed'] as const).includes(v.status as StatusFilter) ? (v.status as StatusFilter) : 'all',
      sort: (['score', 'name', 'status', 'updated'] as const).includes(v.sort as SortKey) ? (v.sort as SortKey) : 'score',
    };
  } catch {
    return { text: '', status: 'all', sort: 'score' };
  }
}

/** The worklist's order for a view: what the table shows and what "next slide" follows. */
export function orderSlides(items: WorklistItem[], view: Pick<View, 'sort'>): WorklistItem[] {
  const byName = (a: WorklistItem, b: WorklistItem): number => a.name.localeCompare(b.name, undefined, { numeric: true });
  const cmp: Record<SortKey, (a: WorklistItem, b: WorklistItem) => number> = {
    score: (a, b) => (b.score ?? -Infinity) - (a.score ?? -Infinity) || byName(a, b),
    name: byName,
    status: (a, b) => STATUS_RANK[a.status] - STATUS_RANK[b.status] || byName(a, b),
    updated: (a, b) => (Date.parse(b.updatedAt ?? '') || 0) - (Date.parse(a.updatedAt ?? '') || 0) || byName(a, b),
  };
  return [...items].sort(cmp[view.sort]);
}

function matches(item: WorklistItem, view: View): boolean {
  if (view.status !== 'all' && item.status !== view.status) return false;
  const t = view.text.trim().toLowerCase();
  return !t || item.name.toLowerCase().includes(t) || item.id.startsWith(t);
}

interface Row {
  tr: HTMLTableRowElement;
  update(item: WorklistItem): void;
}

function makeRow(item: WorklistItem): Row {
  const href = slideHref(item.id);
  const link = h('a', { href, class: 'slide-link' }, item.name);
  interceptLink(link);
  const placeholder = (): HTMLElement => h('div', { class: 'thumb thumb--missing', title: 'no image: the server cannot read the slide file' }, 'no image');
  let thumb: HTMLElement;
  if (item.viewable) {
    const img = h('img', { class: 'thumb', alt: '', loading: 'lazy', decoding: 'async', src: api.thumbnailUrl(item.id) });
    img.addEventListener('error', () => img.replaceWith(placeholder()));
    thumb = img;
  } else {
    thumb = placeholder();
  }
  const reason = h('div', { class: 'reason' });
  const status = h('td', { class: 'col-status' });
  const score = h('td', { class: 'num col-score' });
  const regions = h('td', { class: 'num col-regions' });
  const review = h('td', { class: 'col-review' });
  const updated = h('td', { class: 'col-updated muted' });
  const tr = h('tr', { 'data-id': item.id },
    h('td', { class: 'col-thumb' }, thumb),
    h('td', { class: 'col-name' }, link, h('span', { class: 'slide-id', title: 'analysis id' }, item.id.slice(0, 8)), reason),
    status, score, regions, review, updated);
  tr.addEventListener('click', (e) => {
    if ((e.target as HTMLElement).closest('a')) return;
    navigate(href);
  });
  const update = (it: WorklistItem): void => {
    tr.dataset.status = it.status;
    link.textContent = it.name;
    reason.textContent = it.status === 'failed' ? (it.reason ?? 'failed') : !it.viewable ? 'slide file not readable by the server' : '';
    const badge = h('span', { class: `status status--${it.status}` }, it.status);
    if (it.status === 'running' && it.progress) {
      const pct = it.progress.total ? (100 * it.progress.done) / it.progress.total : 0;
      replaceChildren(status, badge,
        h('div', { class: 'bar bar--inline', title: `${it.progress.done} of ${it.progress.total} regions` }, h('div', { class: 'bar__fill', style: `width:${pct.toFixed(1)}%` })),
        h('span', { class: 'muted small' }, `${fmtInt(it.progress.done)} / ${fmtInt(it.progress.total)}`));
    } else if (it.status === 'running') {
      replaceChildren(status, badge, h('span', { class: 'muted small' }, 'planning…'));
    } else {
      replaceChildren(status, badge);
    }
    score.textContent = fmtScore(it.score);
    regions.textContent = it.regions === null ? '—' : fmtInt(it.regions);
    regions.classList.toggle('has-regions', (it.regions ?? 0) > 0);
    replaceChildren(review,
      h('span', { class: `review review--${it.reviewState}` }, REVIEW_LABEL[it.reviewState]),
      it.regions ? h('span', { class: 'muted small' }, ` ${it.reviewed}/${it.regions}`) : null);
    updated.textContent = fmtWhen(it.updatedAt);
    updated.title = it.updatedAt ?? '';
  };
  update(item);
  return { tr, update };
}

export function mountWorklist(root: HTMLElement): () => void {
  hooks.page = 'worklist';
  const view = loadView();
  let items: WorklistItem[] = [];
  let selected = -1;
  const rows = new Map<string, Row>();

  const filter = h('input', { type: 'search', id: 'filter', placeholder: 'Filter by name  ( / )', value: view.text, 'aria-label': 'Filter by name' });
  const status = h('select', { id: 'status-filter', 'aria-label': 'Status' },
    (['all', 'running', 'queued', 'done', 'failed'] as const).map((s) => h('option', { value: s }, s === 'all' ? 'all statuses' : s)));
  status.value = view.status;
  const sort = h('select', { id: 'sort', 'aria-label': 'Sort' },
    h('option', { value: 'score' }, 'score, highest first'),
    h('option', { value: 'name' }, 'name'),
    h('option', { value: 'status' }, 'status'),
    h('option', { value: 'updated' }, 'newest first'));
  sort.value = view.sort;
  const counts = h('span', { class: 'counts muted' });
  const live = h('span', { class: 'live', title: 'live updates' });
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty muted' });
  const submit = submitPanel();
  const exportMenu = batchExportMenu();
  const table = h('table', { class: 'worklist', 'data-testid': 'worklist' },
    h('thead', null, h('tr', null,
      h('th', { class: 'col-thumb' }), h('th', { 'data-sort': 'name', title: 'Sort by name' }, 'Slide'), h('th', { class: 'col-status', 'data-sort': 'status', title: 'Sort by status' }, 'Status'),
      h('th', { class: 'num col-score', 'data-sort': 'score', title: 'Sort by score' }, 'Score'),
      h('th', { class: 'num col-regions' }, 'Regions'), h('th', { class: 'col-review' }, 'Review'), h('th', { class: 'col-updated', 'data-sort': 'updated', title: 'Sort by time' }, 'Updated'))),
    tbody);

  replaceChildren(root,
    h('header', { class: 'topbar' },
      h('a', { href: '/', class: 'brand' }, 'flashslide', h('span', null, 'review')),
      counts,
      h('span', { class: 'spacer' }),
      live,
      accountBadge(),
      h('button', { type: 'button', class: 'icon-btn', title: 'Keyboard shortcuts (?)', onclick: toggleHelp }, '?')),
    h('main', { class: 'worklist-page' },
      h('div', { class: 'toolbar' }, filter, status, sort, h('span', { class: 'spacer' }), exportMenu.element),
      submit.element,
      table,
      empty));

  const save = (): void => {
    view.text = filter.value;
    view.status = status.value as StatusFilter;
    view.sort = sort.value as SortKey;
    sessionStorage.setItem(VIEW_KEY, JSON.stringify(view));
  };

  const render = (): void => {
    const shown = orderSlides(items, view).filter((it) => matches(it, view));
    const ids = new Set(items.map((it) => it.id));
    for (const [id, row] of rows) if (!ids.has(id)) { row.tr.remove(); rows.delete(id); }
    for (const it of items) {
      const row = rows.get(it.id);
      if (row) row.update(it);
      else rows.set(it.id, makeRow(it));
    }
    tbody.replaceChildren(...shown.map((it) => (rows.get(it.id) as Row).tr));
    saveWorklistOrder(shown.map((it) => it.id));
    // A filter narrows the export to what it shows; the order does not matter to a batch.
    exportMenu.setScope(shown.map((it) => it.id), shown.length < items.length);
    selected = Math.min(selected, shown.length - 1);
    markSelected();
    for (const th of table.querySelectorAll<HTMLElement>('th[data-sort]')) th.classList.toggle('is-sorted', th.dataset.sort === view.sort);
    const by = (s: SlideStatusName): number => items.filter((it) => it.status === s).length;
    counts.textContent = `${items.length} slides · ${by('done')} done · ${by('running')} running · ${by('queued')} queued${by('failed') ? ` · ${by('failed')} failed` : ''}`;
    empty.hidden = shown.length > 0;
    empty.textContent = items.length ? 'No slide matches the filter.' : 'No slides yet. Submit one above, or run `flashslide analyze` into this server\'s data folder.';
  };

  const markSelected = (): void => {
    tbody.querySelectorAll('tr.is-selected').forEach((tr) => tr.classList.remove('is-selected'));
    const tr = tbody.children[selected] as HTMLElement | undefined;
    tr?.classList.add('is-selected');
    tr?.scrollIntoView({ block: 'nearest' });
  };

  const setWorklist = (w: Worklist): void => {
    items = w.slides;
    submit.setQueue(w.queue);
    render();
  };

  for (const el of [filter, status, sort]) el.addEventListener('input', () => { save(); render(); });
  for (const th of table.querySelectorAll<HTMLElement>('th[data-sort]')) {
    th.addEventListener('click', () => {
      sort.value = th.dataset.sort as SortKey;
      save();
      render();
    });
  }

  const unsubscribe = subscribe({
    worklist: setWorklist,
    slide: (item) => {
      const i = items.findIndex((it) => it.id === item.id);
      if (i >= 0) items[i] = item;
      else items.push(item);
      render();
    },
    connection: (open) => {
      live.classList.toggle('is-live', open);
      live.textContent = open ? 'live' : 'offline';
    },
  });

  api.worklist().then(setWorklist, (err) => {
    empty.hidden = false;
    empty.textContent = `Could not load the worklist: ${errorMessage(err)}`;
  });

  const unbind = bindKeys({
    '/': () => filter.focus(),
    '?': toggleHelp,
    j: () => { selected = Math.min(tbody.children.length - 1, selected + 1); markSelected(); },
    k: () => { selected = Math.max(0, selected - 1); markSelected(); },
    Enter: () => {
      const id = (tbody.children[selected] as HTMLElement | undefined)?.dataset.id;
      if (id) navigate(slideHref(id));
    },
  });

  return () => {
    unsubscribe();
    unbind();
    exportMenu.close();
  };
}
