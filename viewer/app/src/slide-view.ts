/**
 * The slide page: OpenSeadragon with the slide and the heatmap over it, the heatmap controls,
 * the regions to review, the slide's facts, a readout under the cursor, a scale bar, and the
 * keyboard. A queued or running slide opens too: its tiles show at once, and the heatmap and
 * regions are added when its result lands (an SSE `slide` event for it says so).
 */
import type { HeatmapInfo, RegionItem, SlideDetail, Verdict, WorklistItem } from '../../server/api-types.js';
import { ALL_COLORMAPS } from '../../../worker/store/colormap.js';
import { api, errorMessage } from './api.js';
import { h, replaceChildren } from './dom.js';
import { subscribe } from './events.js';
import { fmtInt } from './format.js';
import { heatmapControls } from './heatmap-controls.js';
import { HeatmapLayer, type HeatmapLook } from './heatmap-layer.js';
import { HeatmapProbe } from './heatmap-probe.js';
import { toggleHelp } from './help.js';
import { hooks, resetHooks } from './hooks.js';
import { slideExportMenu } from './export-menu.js';
import { bindKeys } from './keyboard.js';
import { metadataPanel } from './metadata.js';
import { mountOutlines, type Outlines } from './outlines.js';
import { mountReadout, type Readout } from './readout.js';
import { regionsPanel } from './regions-panel.js';
import { ReviewStore } from './review.js';
import { mountScaleBar } from './scale-bar.js';
import { accountBadge, signedInUser } from './session.js';
import { loadSettings, loadWorklistOrder, saveSettings } from './settings.js';
import { toast } from './toast.js';
import { interceptLink, navigate, replaceUrl, slideHref, type ViewState } from './url-state.js';
import {
  applyViewState, createViewer, flyToRect, getViewState, openSlide, panBy, toggleFullscreen, viewerButtons, zoomBy,
  type TiledImage, type Viewer,
} from './viewer.js';
import { orderSlides } from './worklist.js';

export function mountSlide(root: HTMLElement, id: string, initialView: ViewState | null): () => void {
  resetHooks();
  hooks.page = 'slide';
  const settings = loadSettings();
  const cleanups: (() => void)[] = [];
  let closed = false;

  let detail: SlideDetail | null = null;
  let viewer: Viewer | null = null;
  let baseItem: TiledImage | null = null;
  let layer: HeatmapLayer | null = null;
  let probe: HeatmapProbe | null = null;
  let outlines: Outlines | null = null;
  let readout: Readout | null = null;
  let regions: RegionItem[] | null = null;
  let current = -1;

  // ---- page skeleton
  const back = h('a', { href: '/', class: 'btn btn--ghost', title: 'Back to the worklist (b)' }, '‹ Worklist');
  interceptLink(back);
  const title = h('h1', { class: 'slide-title' }, 'Loading…');
  const statusChip = h('span', { class: 'status' });
  const stage = h('div', { class: 'stage' });
  const osd = h('div', { class: 'osd', id: 'osd' });
  const stageMessage = h('div', { class: 'stage__message', hidden: true, 'data-testid': 'stage-message' });
  stage.append(osd, stageMessage);
  const banner = h('div', { class: 'banner', hidden: true, 'data-testid': 'status-banner' });
  const controls = heatmapControls((patch) => applyLook(patch));
  // Signed in, the server records verdicts under the account's name: the panel shows it instead of a name field.
  const account = signedInUser();
  const panel = regionsPanel(account === null ? { typed: settings.reviewer } : { signedIn: account }, {
    select: (i) => selectRegion(i),
    step: (d) => stepRegion(d),
    verdict: (v) => void recordVerdict(v),
    reviewer: (name) => { settings.reviewer = name; saveSettings({ reviewer: name }); },
  });
  const meta = metadataPanel();
  const exportMenu = slideExportMenu(id);
  cleanups.push(() => exportMenu.close());
  const sidebar = h('aside', { class: 'sidebar' }, banner, controls.element, panel.element, meta.element);
  replaceChildren(root,
    h('header', { class: 'topbar' },
      back, title, statusChip,
      h('span', { class: 'spacer' }),
      exportMenu.element,
      h('button', { type: 'button', class: 'btn btn--ghost', title: 'Previous slide ([)', onclick: () => void otherSlide(-1) }, '‹ Prev slide'),
      h('button', { type: 'button', class: 'btn', id: 'next-slide', title: 'Next slide of the worklist (])', onclick: () => void otherSlide(1) }, 'Next slide ›', h('kbd', null, ']')),
      accountBadge(),
      h('button', { type: 'button', class: 'icon-btn', title: 'Keyboard shortcuts (?)', onclick: toggleHelp }, '?')),
    h('div', { class: 'slide-page' }, stage, sidebar));
  controls.setHeatmap(null, lookFromSettings(0));

  const review = new ReviewStore(id, (r) => {
    hooks.review = r;
    renderRegions();
  });

  function lookFromSettings(threshold: number): HeatmapLook {
    return { opacity: settings.opacity, visible: settings.heatmapVisible, colormap: settings.colormap, threshold };
  }

  function applyLook(patch: Partial<HeatmapLook>): void {
    if (!layer) return;
    if (patch.opacity !== undefined) { layer.setOpacity(patch.opacity); settings.opacity = patch.opacity; }
    if (patch.visible !== undefined) { layer.setVisible(patch.visible); settings.heatmapVisible = patch.visible; }
    if (patch.colormap !== undefined) { layer.setColormap(patch.colormap); settings.colormap = patch.colormap; }
    if (patch.threshold !== undefined) layer.setThreshold(patch.threshold);
    saveSettings({ opacity: settings.opacity, heatmapVisible: settings.heatmapVisible, colormap: settings.colormap });
  }

  function showMessage(text: string | null): void {
    stageMessage.hidden = !text;
    stageMessage.textContent = text ?? '';
  }

  // ---- status
  function renderStatus(s: Pick<WorklistItem, 'status' | 'progress' | 'reason' | 'name'>): void {
    statusChip.className = `status status--${s.status}`;
    statusChip.textContent = s.status;
    exportMenu.setStatus(s.status);
    if (s.status === 'running' || s.status === 'queued') {
      const p = s.progress;
      const pct = p && p.total ? (100 * p.done) / p.total : 0;
      replaceChildren(banner,
        h('strong', null, s.status === 'queued' ? 'Queued for analysis.' : 'Analysing…'),
        p ? h('span', null, ` ${fmtInt(p.done)} of ${fmtInt(p.total)} regions`) : h('span', null, s.status === 'running' ? ' planning' : ''),
        h('div', { class: 'bar' }, h('div', { class: 'bar__fill', style: `width:${pct.toFixed(1)}%` })),
        h('span', { class: 'muted small' }, 'The heatmap appears here when the result lands.'));
      banner.hidden = false;
    } else if (s.status === 'failed') {
      replaceChildren(banner, h('strong', null, 'Analysis failed. '), s.reason ?? '');
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
  }

  // ---- the slide
  async function load(): Promise<void> {
    try {
      detail = await api.slide(id);
    } catch (err) {
      title.textContent = 'Slide not found';
      exportMenu.setStatus(null);
      showMessage(errorMessage(err));
      return;
    }
    if (closed) return;
    hooks.slide = detail;
    title.textContent = detail.name;
    document.title = `${detail.name} · flashslide`;
    renderStatus(detail);
    meta.render(detail);
    if (!detail.tiles) {
      // slideError: the server's reason, when it sends one (not in the contract yet).
      const reason = (detail as SlideDetail & { slideError?: string | null }).slideError;
      showMessage(`The server cannot read this slide file (moved, or not mounted), so there is no image to show.${detail.result ? ' The result and its regions are listed on the right.' : ''}${reason ? `\n\n${reason}` : ''}`);
    } else {
      await openViewer(detail);
    }
    await landResult(detail);
  }

  async function openViewer(d: SlideDetail): Promise<void> {
    if (!d.tiles) return;
    viewer = createViewer(osd);
    hooks.viewer = viewer;
    cleanups.push(() => viewer?.destroy());
    viewer.element.appendChild(viewerButtons(viewer, stage));
    try {
      baseItem = await openSlide(viewer, d.tiles);
    } catch (err) {
      showMessage(errorMessage(err));
      return;
    }
    if (closed) return;
    hooks.baseItem = baseItem;
    if (initialView) applyViewState(baseItem, initialView, true);
    const item = baseItem;
    cleanups.push(mountScaleBar(viewer, item, d.slide?.mpp ?? null, d.slide?.objectivePower ?? null));
    readout = mountReadout(viewer, item, d.slide?.mpp ?? null);
    outlines = mountOutlines(viewer, item);
    cleanups.push(() => readout?.destroy(), () => outlines?.destroy());
    const syncUrl = (): void => replaceUrl(slideHref(id, getViewState(item)));
    viewer.addHandler('animation-finish', syncUrl);
    if (initialView) syncUrl();
  }

  /** Adds what the result brings (heatmap, regions, review) once; safe to call again. */
  async function landResult(d: SlideDetail): Promise<void> {
    if (d.heatmap && !layer && viewer && baseItem) addHeatmap(d.heatmap);
    if (!d.heatmap) {
      let why = 'The heatmap appears when the analysis finishes.';
      if (d.status === 'failed') why = 'No heatmap: the analysis failed.';
      else if (d.result && !d.tiles) why = 'No heatmap: it is drawn over the slide, and the server cannot read the slide file.';
      else if (d.result && d.result.tissueCells === 0) why = 'No heatmap: no tissue was found on this slide.';
      else if (d.result) why = 'This result has no heatmap.';
      controls.setHeatmap(null, lookFromSettings(0), why);
    }
    if (d.result && regions === null) {
      try {
        const list = await api.regions(id);
        if (closed) return;
        regions = list.regions;
        hooks.regions = regions;
        outlines?.setRegions(regions);
        await review.load();
      } catch (err) {
        toast(`Could not load the regions: ${errorMessage(err)}`, 'error');
      }
    }
    renderRegions();
  }

  function addHeatmap(info: HeatmapInfo): void {
    if (!viewer) return;
    const look = lookFromSettings(info.min);
    layer = new HeatmapLayer(viewer, info, look);
    const l = layer;
    cleanups.push(() => l.destroy());
    controls.setHeatmap(info, look);
    probe = new HeatmapProbe(info);
    readout?.setProbe(probe, info.threshold);
    Object.defineProperty(hooks, 'heatmap', { configurable: true, enumerable: true, get: () => ({ ...l.state, coloured: l.coloured }) });
    hooks.settled = () => l.settled();
    hooks.scoreAt = async (x, y) => (await probe?.scoreAt(x, y))?.score ?? null;
    l.add().then((item) => {
      hooks.heatmapItem = item;
    }, (err) => toast(errorMessage(err), 'error'));
  }

  // ---- regions and review
  function renderRegions(): void {
    const why = detail && !detail.result ? (detail.status === 'failed' ? 'No regions: the analysis failed.' : 'Regions appear when the analysis finishes.') : undefined;
    panel.render(regions, current, review.review, why);
    hooks.currentRegion = current;
    if (outlines && review.review) {
      outlines.setVerdicts(new Map(Object.entries(review.review.regions).map(([k, v]) => [k, v.verdict])));
    }
  }

  function selectRegion(i: number): void {
    if (!regions || !regions[i]) return;
    current = i;
    outlines?.setCurrent(i);
    renderRegions();
    if (baseItem) flyToRect(baseItem, regions[i].bbox);
  }

  function stepRegion(delta: 1 | -1): void {
    if (!regions || regions.length === 0) {
      toast(regions ? 'This slide has no anomalous regions.' : 'No regions yet.', 'info');
      return;
    }
    const n = regions.length;
    selectRegion(current < 0 ? (delta > 0 ? 0 : n - 1) : (current + delta + n) % n);
  }

  async function recordVerdict(v: Verdict): Promise<void> {
    const r = regions?.[current];
    if (!r) {
      toast(regions?.length ? 'Choose a region first (n).' : 'No region to review.', 'info');
      return;
    }
    const ok = await review.record(r.id, v, panel.note(), account === null ? settings.reviewer : '');
    if (ok) toast(`Region #${r.rank}: ${v}`, 'ok', 1800);
  }

  // ---- next slide
  async function otherSlide(delta: 1 | -1): Promise<void> {
    let order = loadWorklistOrder();
    if (!order || !order.includes(id)) {
      try {
        order = orderSlides((await api.worklist()).slides, { sort: 'score' }).map((s) => s.id);
      } catch (err) {
        toast(errorMessage(err), 'error');
        return;
      }
    }
    const next = order[order.indexOf(id) + delta];
    if (next) navigate(slideHref(next));
    else toast(delta > 0 ? 'This is the last slide of the worklist.' : 'This is the first slide of the worklist.', 'info');
  }

  // ---- live updates
  cleanups.push(subscribe({
    slide: (item) => onItem(item),
    worklist: (w) => {
      const item = w.slides.find((s) => s.id === id);
      if (item) onItem(item);
    },
  }));

  let latest: WorklistItem | null = null;
  let refreshing = false;
  let again = false;

  function onItem(item: WorklistItem): void {
    if (item.id !== id || !detail) return;
    latest = item;
    renderStatus(item);
    const landed = item.status === 'done' && !detail.result;
    const changed = item.status !== detail.status || (item.viewable && !detail.tiles);
    if (landed || changed) void refresh();
  }

  /** Reads the detail again and adds what is new; retried while the result is announced but not readable yet. */
  async function refresh(attempt = 0): Promise<void> {
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    try {
      const d = await api.slide(id);
      if (closed) return;
      const hadTiles = !!detail?.tiles;
      detail = d;
      hooks.slide = d;
      meta.render(d);
      renderStatus(latest ?? d);
      if (!hadTiles && d.tiles && !viewer) {
        showMessage(null);
        await openViewer(d);
      }
      await landResult(d);
    } catch (err) {
      toast(errorMessage(err), 'error');
    } finally {
      refreshing = false;
    }
    if (closed) return;
    if (again) {
      again = false;
      return refresh();
    }
    // The worklist can say "done" a moment before the result's files are all there.
    if (latest?.status === 'done' && !detail?.result && attempt < 20) setTimeout(() => void refresh(attempt + 1), 1000);
  }

  // ---- keyboard
  cleanups.push(bindKeys({
    n: () => stepRegion(1),
    p: () => stepRegion(-1),
    c: () => void recordVerdict('confirmed'),
    r: () => void recordVerdict('rejected'),
    u: () => void recordVerdict('unsure'),
    e: () => panel.focusNote(),
    h: () => {
      if (!layer) return;
      const visible = !layer.state.visible;
      applyLook({ visible });
      controls.setVisible(visible);
    },
    m: () => {
      if (!layer) return;
      const i = ALL_COLORMAPS.indexOf(layer.state.colormap);
      const colormap = ALL_COLORMAPS[(i + 1) % ALL_COLORMAPS.length] ?? 'inferno';
      applyLook({ colormap });
      controls.setHeatmap(layer.info, { ...layer.state });
      toast(`Colours: ${colormap}`, 'info', 1200);
    },
    ']': () => void otherSlide(1),
    '[': () => void otherSlide(-1),
    b: () => navigate('/'),
    '?': toggleHelp,
    f: () => toggleFullscreen(stage),
    '+': () => viewer && zoomBy(viewer, 2),
    '=': () => viewer && zoomBy(viewer, 2),
    '-': () => viewer && zoomBy(viewer, 0.5),
    '0': () => viewer?.viewport.goHome(),
    ArrowLeft: () => viewer && panBy(viewer, -120, 0),
    ArrowRight: () => viewer && panBy(viewer, 120, 0),
    ArrowUp: () => viewer && panBy(viewer, 0, -120),
    ArrowDown: () => viewer && panBy(viewer, 0, 120),
  }));

  void load();

  return () => {
    closed = true;
    for (const fn of cleanups.reverse()) {
      try {
        fn();
      } catch {
        // a half-built page: keep tearing down
      }
    }
    resetHooks();
    document.title = 'flashslide review';
  };
}
