/**
 * The review app in headless Chromium against a real review server over real results: the
 * planted CMU-1 (anomalous regions) and CMU-1 itself, analysed into a temp data folder. Checks
 * what a pathologist relies on: both layers load, opacity/colour map/threshold change the pixels
 * (colour map and threshold without a single new tile request), the colours are worker's LUT,
 * the readout shows the cell's stored score, `n` flies to the top region, a verdict survives a
 * reload, shortcuts stay quiet in the note field, a concurrent edit is reported (409), and the
 * export menus download every report format through the browser.
 *
 * With sign-in on: the sign-in form, a verdict recorded under the signed-in name (the app sends
 * the CSRF header), sign-out; and no Content-Security-Policy violation on any page.
 *
 * FLASHSLIDE_SCREENSHOTS=1 writes docs/worklist.png, docs/review-page.png,
 * docs/report-export.png and docs/sign-in.png (otherwise they go to the temp folder, so a test run
 * does not touch tracked files).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { parse as parseCsv } from 'csv-parse/sync';
import { build } from 'vite';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildServer, type ReviewServer } from '../../viewer/server/server.js';
import { hashPassword } from '../../viewer/server/auth/passwords.js';
import type { Review, SlideDetail } from '../../viewer/server/api-types.js';
import { analyzeEmbedded } from '../../worker/pipeline/run-embedded.js';
import { decodeNpyFloat32 } from '../../worker/store/npy.js';
import { colormapLut, lutIndex } from '../../worker/store/colormap.js';
import { CMU, ROOT, tempDir } from '../helpers.js';
import { PLANTED_BOX, writePlantedSlide } from '../planted-slide.js';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const VIEWPORT = { width: 1440, height: 900 };

/** What the page exposes as window.flashslide (viewer/app/src/hooks.ts), as far as the test reads it. */
interface Pt { x: number; y: number }
interface PageHooks {
  page: string;
  viewer: {
    world: { getItemCount(): number; getItemAt(i: number): { getFullyLoaded(): boolean } };
    viewport: { getCenter(current?: boolean): Pt; pixelFromPoint(p: Pt, current?: boolean): Pt };
    element: { getBoundingClientRect(): { left: number; top: number } };
    isAnimating?: () => boolean;
  } | null;
  baseItem: {
    viewportToImageCoordinates(p: Pt): Pt;
    imageToViewportCoordinates(x: number, y: number, current?: boolean): Pt;
  } | null;
  heatmapItem: unknown;
  regions: { id: string; rank: number; bbox: [number, number, number, number] }[];
  currentRegion: number;
  review: Review | null;
  heatmap: { opacity: number; visible: boolean; colormap: string; threshold: number; coloured: number } | null;
  settled(): Promise<void>;
}
type Win = { flashslide: PageHooks; requestAnimationFrame(cb: () => void): number; OpenSeadragon?: unknown };

interface Clip { x: number; y: number; width: number; height: number }

let dir: string;
let server: ReviewServer;
let base: string;
let browser: Browser;
let page: Page;
let plantedId: string;
let plantedDir: string;
let shotsDir: string;
let appDir: string;
let dataDir: string;
const tileRequests: string[] = [];
const badResponses: string[] = [];
const pageErrors: string[] = [];
/** Console messages about the Content-Security-Policy: the app and OpenSeadragon must work under it. */
const cspViolations: string[] = [];

async function rawRgb(png: Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

async function grab(clip: Clip): Promise<Buffer> {
  return (await rawRgb(await page.screenshot({ clip }))).data;
}

function meanAbsDiff(a: Buffer, b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs((a[i] as number) - (b[i] as number));
  return sum / a.length;
}

/** Per pixel: the largest channel difference. */
function pixelDiffs(a: Buffer, b: Buffer): Uint8Array {
  const out = new Uint8Array(a.length / 3);
  for (let p = 0; p < out.length; p++) {
    out[p] = Math.max(Math.abs((a[p * 3] as number) - (b[p * 3] as number)), Math.abs((a[p * 3 + 1] as number) - (b[p * 3 + 1] as number)), Math.abs((a[p * 3 + 2] as number) - (b[p * 3 + 2] as number)));
  }
  return out;
}

/** Lets OSD draw what changed: heatmap tiles recoloured, then a few frames and no animation. */
async function redrawn(): Promise<void> {
  await page.evaluate(async () => {
    const w = globalThis as unknown as Win;
    await w.flashslide.settled();
    for (let i = 0; i < 4; i++) await new Promise<void>((r) => w.requestAnimationFrame(() => r()));
  });
  await page.waitForTimeout(150);
}

async function bothLayersLoaded(): Promise<void> {
  await page.waitForFunction(() => {
    const v = (globalThis as unknown as Win).flashslide?.viewer;
    if (!v || v.world.getItemCount() !== 2) return false;
    return v.world.getItemAt(0).getFullyLoaded() && v.world.getItemAt(1).getFullyLoaded();
  }, undefined, { timeout: 20_000 });
}

async function animationDone(): Promise<void> {
  // The viewport centre stops moving.
  let last = '';
  for (let i = 0; i < 60; i++) {
    const now = await page.evaluate(() => JSON.stringify((globalThis as unknown as Win).flashslide.viewer?.viewport.getCenter(true)));
    if (now === last) return;
    last = now;
    await page.waitForTimeout(100);
  }
}

/** The slide area of the viewer, clear of the buttons, navigator, scale bar and readout. */
async function stageClip(): Promise<Clip> {
  const box = await page.locator('#osd').boundingBox();
  if (!box) throw new Error('no #osd');
  return { x: Math.round(box.x + 60), y: Math.round(box.y + 20), width: Math.round(box.width - 280), height: Math.round(box.height - 80) };
}

/** Screen position (page pixels) of a level-0 point. */
async function screenOf(x: number, y: number): Promise<Pt> {
  return page.evaluate(([ix, iy]) => {
    const fs = (globalThis as unknown as Win).flashslide;
    // Components, not a plain {x, y}: OSD only unpacks its own Point class.
    const p = fs.viewer!.viewport.pixelFromPoint(fs.baseItem!.imageToViewportCoordinates(ix, iy, true), true);
    const r = fs.viewer!.element.getBoundingClientRect();
    return { x: r.left + p.x, y: r.top + p.y };
  }, [x, y] as const);
}

/** Opens the drop-down `menu` (if closed), clicks the link `testid`, and returns the file the browser saved. */
async function downloadVia(menu: string, testid: string): Promise<{ name: string; body: Buffer }> {
  const toggle = page.locator(`[data-testid=${menu}]`);
  if ((await toggle.getAttribute('aria-expanded')) !== 'true') await toggle.click();
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.locator(`[data-testid=${testid}]`).click()]);
  const path = await download.path();
  expect(await download.failure(), `${testid} download`).toBeNull();
  // A followed link closes the menu.
  expect(await toggle.getAttribute('aria-expanded')).toBe('false');
  return { name: download.suggestedFilename(), body: readFileSync(path) };
}

async function putVerdictFromOutside(regionId: string, version: number): Promise<Review> {
  const res = await fetch(`${base}/api/slides/${plantedId}/review/regions/${regionId}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', 'if-match': `"${version}"` },
    body: JSON.stringify({ verdict: 'rejected', note: 'second opinion', reviewer: 'Someone Else' }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Review;
}

beforeAll(async () => {
  dir = tempDir('flashslide-viewer-');
  shotsDir = process.env.FLASHSLIDE_SCREENSHOTS === '1' ? join(ROOT, 'docs') : join(dir, 'shots');
  mkdirSync(shotsDir, { recursive: true });
  const planted = await writePlantedSlide(dir);
  dataDir = join(dir, 'data');
  const outcomes = await analyzeEmbedded([planted, CMU], { dataDir, regionSize: 512, device: 'cpu' });
  for (const o of outcomes) expect(o.status, o.reason).toBe('done');
  plantedDir = outcomes[0]!.resultDir!;

  appDir = join(dir, 'app');
  await build({ configFile: join(ROOT, 'viewer', 'app', 'vite.config.ts'), logLevel: 'warn', build: { outDir: appDir, emptyOutDir: true, sourcemap: false } });
  expect(readdirSync(appDir)).toContain('index.html');

  server = await buildServer({ dataDir, appDir, slideRoots: [dir], pollSeconds: 1 });
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  const address = server.app.server.address();
  if (address === null || typeof address === 'string') throw new Error(`unexpected server address ${String(address)}`);
  base = `http://127.0.0.1:${address.port}`;

  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  page = await browser.newPage({ viewport: VIEWPORT });
  // Tiles are served as immutable: with the cache on, a tile fetched again could come from the
  // memory cache without a request, and "no new tile request" would prove nothing.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/tiles/')) tileRequests.push(r.url());
  });
  page.on('response', (r) => {
    // 409 and 503: the concurrent edit and the submission without a queue this test provokes.
    if (r.status() >= 400 && !(r.status() === 409 && r.url().includes('/review/')) && !(r.status() === 503 && /\/api\/(submit|upload)/.test(r.url()))) badResponses.push(`${r.status()} ${r.url()}`);
  });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the review app', () => {
  it('lists both slides in the worklist with scores and regions', async () => {
    await page.goto(`${base}/`);
    const rows = page.locator('[data-testid=worklist] tbody tr');
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(2);
    const planted = page.locator('tbody tr', { hasText: 'planted-CMU-1.tif' });
    plantedId = (await planted.getAttribute('data-id')) ?? '';
    expect(plantedId).toMatch(/^[0-9a-f]{24}$/);
    expect(Number(await planted.locator('.col-regions').textContent())).toBeGreaterThan(0);
    expect(await planted.locator('.status').textContent()).toBe('done');
    // Sorted by score, highest first: the planted slide scores higher than CMU-1.
    expect(await rows.first().getAttribute('data-id')).toBe(plantedId);
    // No queue behind this server: the form says so in the server's words (503).
    await page.locator('#submit summary').click();
    await page.locator('#submit-path').fill(join(dir, 'planted-CMU-1.tif'));
    await page.locator('#submit-path').press('Enter');
    await expect.poll(() => page.locator('[data-testid=submit-message]').textContent()).toMatch(/no queue/);
    await page.locator('[data-testid=submit-message]').evaluate((el) => { el.textContent = ''; });
    await page.locator('#submit-file').setInputFiles({ name: 'upload.svs', mimeType: 'application/octet-stream', buffer: Buffer.from('not a slide') });
    await page.locator('#submit form:nth-of-type(2) button').click();
    await expect.poll(() => page.locator('[data-testid=submit-message]').textContent()).toMatch(/no queue/);
    await page.locator('#submit summary').click();
    await page.waitForFunction(() => [...(globalThis as unknown as { document: { images: { complete: boolean; naturalWidth: number }[] } }).document.images].every((i) => i.complete && i.naturalWidth > 0));
    await page.screenshot({ path: join(shotsDir, 'worklist.png') });
  });

  it('opens the planted slide with the slide and the heatmap as two tiled images', async () => {
    await page.locator('tbody tr', { hasText: 'planted-CMU-1.tif' }).locator('a').click();
    await page.waitForURL(`**/slides/${plantedId}**`);
    await bothLayersLoaded();
    const world = await page.evaluate(() => {
      const fs = (globalThis as unknown as Win).flashslide;
      const v = fs.viewer as unknown as { world: { getItemCount(): number; getItemAt(i: number): unknown } };
      return { count: v.world.getItemCount(), second: v.world.getItemAt(1) === fs.heatmapItem, first: v.world.getItemAt(0) === fs.baseItem, regions: fs.regions.length };
    });
    expect(world).toEqual({ count: 2, second: true, first: true, regions: expect.any(Number) });
    expect(world.regions).toBeGreaterThan(0);
    await expect.poll(() => page.locator('[data-testid=metadata]').textContent()).toContain('0.4990 µm/px');
    expect(await page.locator('[data-testid=metadata]').textContent()).toContain('20×');
    expect(await page.locator('[data-testid=scale-bar]').textContent()).toMatch(/\d+ (µm|mm)/);
  });

  it('changes the rendered pixels with the opacity slider', async () => {
    const clip = await stageClip();
    await page.locator('#heatmap-opacity').fill('100');
    await redrawn();
    const full = await grab(clip);
    await page.locator('#heatmap-opacity').fill('15');
    await redrawn();
    const faint = await grab(clip);
    expect(await page.evaluate(() => (globalThis as unknown as Win).flashslide.heatmap?.opacity)).toBeCloseTo(0.15);
    expect(meanAbsDiff(full, faint), 'mean |difference| over the slide area').toBeGreaterThan(8);
    await page.locator('#heatmap-opacity').fill('100');
    await redrawn();
  });

  it('switches the colour map in the browser without fetching a tile', async () => {
    const clip = await stageClip();
    const before = await grab(clip);
    const requests = tileRequests.length;
    const coloured = await page.evaluate(() => (globalThis as unknown as Win).flashslide.heatmap!.coloured);
    await page.locator('#heatmap-colormap').selectOption('viridis');
    await redrawn();
    const after = await grab(clip);
    expect(meanAbsDiff(before, after), 'inferno -> viridis').toBeGreaterThan(8);
    expect(await page.evaluate(() => (globalThis as unknown as Win).flashslide.heatmap!.coloured)).toBeGreaterThan(coloured);
    await page.waitForTimeout(400);
    expect(tileRequests.slice(requests), 'tile requests after the colour map changed').toEqual([]);
  });

  it('hides the cells below the threshold (they show the slide) and keeps the ones above', async () => {
    const clip = await stageClip();
    const requests = tileRequests.length;
    const coloured = await grab(clip);
    await page.keyboard.press('h');
    await redrawn();
    expect(await page.evaluate(() => (globalThis as unknown as Win).flashslide.heatmap!.visible)).toBe(false);
    const slideOnly = await grab(clip);
    await page.keyboard.press('h');
    await page.locator('#threshold-method').click();
    await redrawn();
    const thresholded = await grab(clip);
    const heat = pixelDiffs(coloured, slideOnly);
    const nowSlide = pixelDiffs(thresholded, slideOnly);
    const nowHeat = pixelDiffs(thresholded, coloured);
    let covered = 0;
    let hidden = 0;
    let kept = 0;
    for (let p = 0; p < heat.length; p++) {
      if ((heat[p] as number) < 40) continue; // not covered by a coloured cell
      covered++;
      if ((nowSlide[p] as number) <= 6) hidden++;
      else if ((nowHeat[p] as number) <= 6) kept++;
    }
    expect(covered, 'pixels the heatmap colours').toBeGreaterThan(10_000);
    // Most cells score below the method threshold: nearly all colour goes, a little stays.
    expect(hidden / covered, `hidden ${hidden} of ${covered}`).toBeGreaterThan(0.8);
    expect(kept, 'pixels of cells above the threshold still coloured').toBeGreaterThan(0);
    expect(tileRequests.slice(requests), 'tile requests after the threshold changed').toEqual([]);
  });

  it('flies to the top region on `n`, with its cells in the LUT colours and the readout showing their stored score', async () => {
    await page.keyboard.press('n');
    await animationDone();
    const { centre, bbox } = await page.evaluate(() => {
      const fs = (globalThis as unknown as Win).flashslide;
      return { centre: fs.baseItem!.viewportToImageCoordinates(fs.viewer!.viewport.getCenter(true)), bbox: fs.regions[0]!.bbox };
    });
    const [bx, by, bw, bh] = bbox;
    expect(centre.x).toBeGreaterThanOrEqual(bx);
    expect(centre.x).toBeLessThanOrEqual(bx + bw);
    expect(centre.y).toBeGreaterThanOrEqual(by);
    expect(centre.y).toBeLessThanOrEqual(by + bh);
    // The planted texture is where the top region is.
    expect(bx < PLANTED_BOX.left + PLANTED_BOX.size && bx + bw > PLANTED_BOX.left).toBe(true);
    expect(page.url()).toMatch(/[?&]x=\d+&y=\d+&z=[\d.]+/);
    await bothLayersLoaded();
    await redrawn();

    // The highest-scoring cell in view: its colour is viridis' LUT entry for its stored score,
    // and the readout under the cursor says that score within one quantisation step.
    const meta = JSON.parse(readFileSync(join(plantedDir, 'heatmap.json'), 'utf8')) as { cols: number; rows: number; patchSizeLevel0: number; originX: number; originY: number; min: number; max: number; threshold: number };
    const { data: scores } = decodeNpyFloat32(readFileSync(join(plantedDir, 'heatmap.npy')));
    let best = -1;
    for (let i = 0; i < scores.length; i++) {
      const c = i % meta.cols;
      const r = Math.floor(i / meta.cols);
      const x = meta.originX + (c + 0.5) * meta.patchSizeLevel0;
      const y = meta.originY + (r + 0.5) * meta.patchSizeLevel0;
      if (x < bx || x > bx + bw || y < by || y > by + bh || !Number.isFinite(scores[i])) continue;
      if (best < 0 || (scores[i] as number) > (scores[best] as number)) best = i;
    }
    expect(best).toBeGreaterThanOrEqual(0);
    const col = best % meta.cols;
    const row = Math.floor(best / meta.cols);
    const cellCentre = await screenOf(meta.originX + (col + 0.5) * meta.patchSizeLevel0, meta.originY + (row + 0.5) * meta.patchSizeLevel0);
    const px = await rawRgb(await page.screenshot({ clip: { x: Math.round(cellCentre.x), y: Math.round(cellCentre.y), width: 1, height: 1 } }));
    const detail = (await (await fetch(`${base}/api/slides/${plantedId}`)).json()) as SlideDetail;
    const hm = detail.heatmap!;
    const q = Math.round(((scores[best] as number) - hm.offset) / hm.scale);
    const lut = colormapLut('viridis');
    const li = lutIndex(hm.offset + q * hm.scale, hm.min, hm.max);
    const expected = [lut[li * 3], lut[li * 3 + 1], lut[li * 3 + 2]] as number[];
    const got = [...px.data.subarray(0, 3)];
    const off = Math.max(...got.map((v, i) => Math.abs(v - (expected[i] as number))));
    expect(off, `cell colour ${got} vs viridis LUT ${expected}`).toBeLessThanOrEqual(8);

    await page.mouse.move(cellCentre.x, cellCentre.y);
    const readout = page.locator('[data-testid=readout-score]');
    await expect.poll(() => readout.getAttribute('data-score'), { timeout: 5000 }).not.toBeNull();
    const shown = Number(await readout.getAttribute('data-score'));
    expect(Math.abs(shown - (scores[best] as number)), `readout ${shown} vs stored ${scores[best]}`).toBeLessThanOrEqual(hm.scale);
    expect(await readout.textContent()).toContain('anomalous');
  });

  it('records a verdict with `c` (not while typing a note) that survives a reload', async () => {
    const region = await page.evaluate(() => (globalThis as unknown as Win).flashslide.regions[0]!.id);
    const version = await page.evaluate(() => (globalThis as unknown as Win).flashslide.review!.version);
    await page.locator('#reviewer').fill('Dr Test');
    await page.locator('#reviewer').press('Tab');
    await page.locator('#region-note').click();
    await page.keyboard.type('stripes: clearly not tissue');
    await page.waitForTimeout(300);
    expect(await page.evaluate(() => (globalThis as unknown as Win).flashslide.review!.version), 'shortcuts fired while typing').toBe(version);
    await page.keyboard.press('Escape');
    await page.keyboard.press('c');
    await page.waitForFunction((id) => (globalThis as unknown as Win).flashslide.review?.regions[id]?.verdict === 'confirmed', region);
    expect(await page.locator('[data-testid=review-progress]').textContent()).toMatch(/^1 of \d+ reviewed$/);

    await page.reload();
    await bothLayersLoaded();
    await page.waitForFunction(() => (globalThis as unknown as Win).flashslide.review !== null);
    const saved = await page.evaluate((id) => (globalThis as unknown as Win).flashslide.review!.regions[id], region);
    expect(saved).toMatchObject({ verdict: 'confirmed', note: 'stripes: clearly not tissue', reviewer: 'Dr Test' });
    await expect.poll(() => page.locator(`[data-region="${region}"] .chip`).textContent()).toBe('Confirmed');
    // The link reproduced the view: still over the region.
    const centre = await page.evaluate(() => {
      const fs = (globalThis as unknown as Win).flashslide;
      return fs.baseItem!.viewportToImageCoordinates(fs.viewer!.viewport.getCenter(true));
    });
    const [bx, by, bw, bh] = await page.evaluate(() => (globalThis as unknown as Win).flashslide.regions[0]!.bbox);
    expect(centre.x >= bx && centre.x <= bx + bw && centre.y >= by && centre.y <= by + bh, `centre ${JSON.stringify(centre)}`).toBe(true);
    // And from outside the browser.
    const review = (await (await fetch(`${base}/api/slides/${plantedId}/review`)).json()) as Review;
    expect(review.regions[region]?.verdict).toBe('confirmed');
  });

  it('reports a concurrent edit (409), reloads the review, and then saves', async () => {
    await page.keyboard.press('n'); // region #1 again (the reload cleared the selection)
    await animationDone();
    const { region, version } = await page.evaluate(() => {
      const fs = (globalThis as unknown as Win).flashslide;
      return { region: fs.regions[fs.currentRegion]!.id, version: fs.review!.version };
    });
    const theirs = await putVerdictFromOutside(region, version);
    await page.keyboard.press('u');
    await expect.poll(() => page.locator('[data-testid=toast]').allTextContents()).toContain('someone else changed this review — reloaded');
    await page.waitForFunction((v) => (globalThis as unknown as Win).flashslide.review?.version === v, theirs.version);
    expect(await page.evaluate((id) => (globalThis as unknown as Win).flashslide.review!.regions[id]!.verdict, region)).toBe('rejected');
    await page.keyboard.press('c');
    await page.waitForFunction(([id, v]) => {
      const r = (globalThis as unknown as Win).flashslide.review;
      return r !== null && r.version > (v as number) && r.regions[id as string]?.verdict === 'confirmed';
    }, [region, theirs.version] as const);
  });

  it('shows the keyboard help on `?` and takes the review page screenshot', async () => {
    await page.keyboard.press('?');
    await expect.poll(() => page.locator('[data-testid=help]').isVisible()).toBe(true);
    expect(await page.locator('[data-testid=help]').textContent()).toContain('next / previous region');
    await page.keyboard.press('Escape');
    await expect.poll(() => page.locator('[data-testid=help]').count()).toBe(0);

    await page.locator('#heatmap-colormap').selectOption('inferno');
    await page.locator('#heatmap-opacity').fill('50');
    await page.locator('#threshold-all').click();
    await page.evaluate(() => (globalThis as unknown as { document: { activeElement: { blur?(): void } | null } }).document.activeElement?.blur?.());
    await redrawn();
    await page.evaluate(() => (globalThis as unknown as { document: { querySelectorAll(s: string): { remove(): void }[] } }).document.querySelectorAll('.toast').forEach((t) => t.remove()));
    await page.mouse.move(VIEWPORT.width / 2 - 200, VIEWPORT.height / 2);
    await page.waitForTimeout(400);
    await page.screenshot({ path: join(shotsDir, 'review-page.png') });
  });

  it('moves to the next slide of the worklist on `]`', async () => {
    const cmuId = await page.evaluate(async () => {
      const w = (await (await fetch('/api/worklist')).json()) as { slides: { id: string; name: string }[] };
      return w.slides.find((s) => s.name === 'CMU-1-Small-Region.svs')!.id;
    });
    await page.keyboard.press(']');
    await page.waitForURL(`**/slides/${cmuId}`);
    await bothLayersLoaded();
    await expect.poll(() => page.locator('.slide-title').textContent()).toBe('CMU-1-Small-Region.svs');
    expect(pageErrors, 'uncaught errors in the page').toEqual([]);
    expect(badResponses, 'failed requests').toEqual([]);
  });

  it('downloads the slide\'s report in every format and the worklist\'s batch exports', async () => {
    // While a slide is running there is no report: the menu is off and says why. The detail is
    // rewritten to "running", and the live updates kept quiet (they would say "done").
    const detailUrl = `**/api/slides/${plantedId}`;
    await page.route(detailUrl, async (route) => {
      const res = await route.fetch();
      await route.fulfill({ response: res, json: { ...((await res.json()) as SlideDetail), status: 'running', progress: { done: 1, total: 4 } } });
    });
    await page.route('**/api/events', (route) => route.fulfill({ status: 200, contentType: 'text/event-stream', body: 'retry: 60000\n\n' }));
    await page.goto(`${base}/slides/${plantedId}`);
    const toggle = page.locator('[data-testid=export-menu]');
    await expect.poll(() => toggle.getAttribute('title')).toBe('No report yet: the analysis is running.');
    expect(await toggle.isDisabled()).toBe(true);
    await page.unrouteAll();

    await page.goto(`${base}/slides/${plantedId}`);
    await bothLayersLoaded();
    await expect.poll(() => toggle.isDisabled()).toBe(false);
    await toggle.click();
    const links = await page.locator('[data-testid=export-menu-panel] a[download]').evaluateAll((as) => as.map((a) => [a.getAttribute('data-testid'), a.getAttribute('href')]));
    expect(links).toEqual([
      ['export-pdf', `/api/slides/${plantedId}/report.pdf?paper=a4`],
      ['export-geojson', `/api/slides/${plantedId}/report.geojson`],
      ['export-csv', `/api/slides/${plantedId}/report.csv`],
      ['export-json', `/api/slides/${plantedId}/report.json`],
    ]);
    await redrawn();
    await page.locator('[data-testid=export-pdf]').hover();
    await page.waitForTimeout(200);
    await page.screenshot({ path: join(shotsDir, 'report-export.png') });
    // Esc closes it.
    await page.keyboard.press('Escape');
    expect(await toggle.getAttribute('aria-expanded')).toBe('false');

    const regionCount = await page.evaluate(() => (globalThis as unknown as Win).flashslide.regions.length);
    const geojson = await downloadVia('export-menu', 'export-geojson');
    expect(geojson.name).toMatch(/\.geojson$/);
    const fc = JSON.parse(geojson.body.toString('utf8')) as { type: string; features: unknown[] };
    expect(fc.type).toBe('FeatureCollection');
    expect(fc.features).toHaveLength(regionCount);

    const csv = await downloadVia('export-menu', 'export-csv');
    expect(csv.name).toMatch(/\.csv$/);
    expect(csv.body.toString('utf8')).toMatch(/^slide,analysis_id,rank,/);
    const regionRows = parseCsv(csv.body, { columns: true }) as Record<string, string>[];
    expect(regionRows).toHaveLength(regionCount);
    // Rendered on request: the verdict recorded earlier in this file is in it.
    expect(regionRows[0]).toMatchObject({ rank: '1', verdict: 'confirmed', analysis_id: plantedId });

    const json = await downloadVia('export-menu', 'export-json');
    expect(json.name).toMatch(/\.json$/);
    expect(JSON.parse(json.body.toString('utf8'))).toMatchObject({ kind: 'flashslide-slide-report' });

    // The paper choice goes into the PDF link and is remembered.
    await toggle.click();
    await page.locator('label', { has: page.locator('[data-testid=paper-letter]') }).click();
    expect(await page.locator('[data-testid=export-pdf]').getAttribute('href')).toBe(`/api/slides/${plantedId}/report.pdf?paper=letter`);
    expect(await page.evaluate(() => (globalThis as unknown as { localStorage: { getItem(k: string): string | null } }).localStorage.getItem('flashslide.settings'))).toContain('"paper":"letter"');
    const pdf = await downloadVia('export-menu', 'export-pdf');
    expect(pdf.name).toMatch(/\.pdf$/);
    expect(pdf.body.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(pdf.body.toString('latin1')).toMatch(/\/MediaBox \[0 0 612 792\]/); // US Letter, in points

    // The worklist: the batch summary of every slide, then only of the filtered ones, and a ZIP.
    await page.goto(`${base}/`);
    await expect.poll(() => page.locator('[data-testid=worklist] tbody tr').count()).toBe(2);
    await expect.poll(() => page.locator('[data-testid=batch-export]').isDisabled()).toBe(false);
    const all = await downloadVia('batch-export', 'batch-csv');
    expect(all.name).toMatch(/^flashslide-batch-.*\.csv$/);
    const allRows = parseCsv(all.body, { columns: true }) as Record<string, string>[];
    expect(allRows.map((r) => r['slide']).sort()).toEqual(['CMU-1-Small-Region.svs', 'planted-CMU-1.tif']);

    await page.locator('#filter').fill('planted');
    expect(await page.locator('[data-testid=batch-scope]').textContent()).toBe('the 1 slide the filter shows');
    const one = await downloadVia('batch-export', 'batch-csv');
    expect((parseCsv(one.body, { columns: true }) as Record<string, string>[]).map((r) => r['analysis_id'])).toEqual([plantedId]);
    const zip = await downloadVia('batch-export', 'batch-zip-geojson');
    expect(zip.name).toMatch(/\.zip$/);
    expect(zip.body.subarray(0, 2).toString('latin1')).toBe('PK');
    const entries = zip.body.toString('latin1'); // entry names are stored as plain text
    expect(entries).toContain('batch.csv');
    expect(entries).toMatch(/\.geojson/);
    await page.locator('#filter').fill('');

    expect(pageErrors, 'uncaught errors in the page').toEqual([]);
    expect(badResponses, 'failed requests').toEqual([]);
    expect(cspViolations, 'Content-Security-Policy violations').toEqual([]);
  });
});

describe('the review app with sign-in', () => {
  let authServer: ReviewServer;
  let authBase: string;
  let authPage: Page;
  const password = 'correct horse battery staple';

  beforeAll(async () => {
    const usersFile = join(dir, 'users.txt');
    writeFileSync(usersFile, `alice:${await hashPassword(password)}\n`);
    authServer = await buildServer({ dataDir, appDir, auth: { mode: 'users', usersFile } }, { audit: () => undefined });
    authBase = await authServer.app.listen({ port: 0, host: '127.0.0.1' });
    authPage = await browser.newPage({ viewport: VIEWPORT });
    authPage.on('pageerror', (e) => pageErrors.push(e.message));
    authPage.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) cspViolations.push(m.text());
    });
  });
  afterAll(async () => {
    await authPage?.close();
    await authServer?.close();
  });

  it('asks for a sign-in, records verdicts under the signed-in name, and signs out', async () => {
    await authPage.goto(`${authBase}/slides/${plantedId}`);
    await authPage.waitForSelector('[data-testid=login-form]');
    await authPage.locator('#login-user').fill('alice');
    await authPage.locator('#login-secret').fill('not the password');
    await authPage.locator('[data-testid=login-form] button[type=submit]').click();
    await expect.poll(() => authPage.locator('[data-testid=login-message]').textContent()).toBe('Wrong user name or password.');
    await authPage.screenshot({ path: join(shotsDir, 'sign-in.png') });
    await authPage.locator('#login-secret').fill(password);
    await authPage.locator('[data-testid=login-form] button[type=submit]').click();
    // The page that was asked for, with the name in the top bar and as the reviewer.
    await authPage.waitForFunction(() => (globalThis as unknown as Win).flashslide?.page === 'slide');
    await expect.poll(() => authPage.locator('[data-testid=account]').textContent()).toContain('alice');
    await authPage.waitForFunction(() => (globalThis as unknown as Win).flashslide.regions.length > 0, undefined, { timeout: 20_000 });
    await authPage.locator('#osd').click();
    await authPage.keyboard.press('n');
    await expect.poll(() => authPage.locator('[data-testid=reviewer-name]').textContent()).toBe('alice');
    await authPage.keyboard.press('u');
    await expect.poll(() => authPage.evaluate(() => {
      const fs = (globalThis as unknown as Win).flashslide;
      const id = fs.regions[fs.currentRegion]?.id ?? '';
      return fs.review?.regions[id]?.reviewer ?? null;
    })).toBe('alice');
    await authPage.locator('[data-testid=sign-out]').click();
    await authPage.waitForSelector('[data-testid=login-form]');
    expect((await fetch(`${authBase}/api/worklist`)).status).toBe(401);
    expect(pageErrors, 'uncaught errors in the page').toEqual([]);
    expect(cspViolations, 'Content-Security-Policy violations').toEqual([]);
  });
});
