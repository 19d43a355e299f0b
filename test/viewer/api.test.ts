/**
 * The review server's API over real results: real slides analysed by the pipeline, a real
 * server on an ephemeral port spoken to over HTTP, and for the queue parts a real Redis with a
 * real worker process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { analyzeEmbedded } from '../../worker/pipeline/run-embedded.js';
import { decodeNpyFloat32 } from '../../worker/store/npy.js';
import { openSlide } from '../../worker/slide/open-slide.js';
import { buildServer, type ReviewServer } from '../../viewer/server/server.js';
import type { HeatmapInfo, Review, SlideDetail, Worklist, WorklistEvent } from '../../viewer/server/api-types.js';
import { startRedis, type RedisHandle } from '../redis-server.js';
import { CMU, ROOT, TINY, tempDir } from '../helpers.js';
import { writePlantedSlide } from '../planted-slide.js';

const APP_DIR = join(ROOT, 'dist', 'app');

async function listen(server: ReviewServer): Promise<string> {
  return server.app.listen({ host: '127.0.0.1', port: 0 });
}

async function json<T>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

describe('review server over analysed slides (no queue)', () => {
  let dir: string;
  let server: ReviewServer;
  let base: string;
  let planted: string;
  let ids: { cmu: string; planted: string };

  beforeAll(async () => {
    dir = tempDir();
    planted = await writePlantedSlide(dir);
    const outcomes = await analyzeEmbedded([CMU, planted], { dataDir: join(dir, 'data'), regionSize: 512, device: 'cpu' });
    expect(outcomes.map((o) => o.status)).toEqual(['done', 'done']);
    ids = { cmu: (outcomes[0] as { analysisId: string }).analysisId, planted: (outcomes[1] as { analysisId: string }).analysisId };
    server = await buildServer({ dataDir: join(dir, 'data'), appDir: APP_DIR, slideRoots: [dir] });
    base = await listen(server);
  }, 180_000);
  afterAll(async () => {
    await server?.close();
  });

  it('lists both results in the worklist with their scores, region counts and review state', async () => {
    const list = await json<Worklist>(await fetch(`${base}/api/worklist`));
    expect(list.queue).toBe(false);
    const byId = new Map(list.slides.map((s) => [s.id, s]));
    const p = byId.get(ids.planted);
    expect(p?.status).toBe('done');
    expect(p?.name).toBe('planted-CMU-1.tif');
    expect(p?.regions).toBeGreaterThan(0);
    expect(p?.reviewState).toBe('not-started');
    expect(p?.viewable).toBe(true);
    expect(byId.get(ids.cmu)?.name).toBe('CMU-1-Small-Region.svs');
    expect(typeof byId.get(ids.cmu)?.score).toBe('number');
  });

  it('describes a slide: its real geometry, a DZI of the same size, the heatmap mapping', async () => {
    const res = await fetch(`${base}/api/slides/${ids.cmu}`);
    expect(res.status).toBe(200);
    const d = await json<SlideDetail>(res);
    const src = await openSlide(CMU);
    try {
      expect(d.slide).toMatchObject({ width: src.width, height: src.height, vendor: src.vendor, levels: src.levels.length });
      expect(d.slide?.mpp).toBeCloseTo(0.499, 6);
    } finally {
      await src.close();
    }
    expect(d.slideError).toBeNull();
    expect(d.tiles).not.toBeNull();
    const dzi = await (await fetch(`${base}${d.tiles?.url ?? ''}`)).text();
    expect(dzi).toContain(`Width="${d.slide?.width}"`);
    expect(dzi).toContain(`Height="${d.slide?.height}"`);
    expect(d.heatmap?.dzi.width).toBe(d.slide?.width);
    expect(d.result?.model).toBe('flashslide-demo-vit-4x192-p16');
    expect(d.heatmap?.histogram).toHaveLength(64);
    expect(d.heatmap?.histogram.reduce((a, b) => a + b, 0)).toBe(d.result?.tissueCells);
  });

  it('serves heatmap tiles that decode back to the stored scores within one quantisation step', async () => {
    const d = await json<SlideDetail>(await fetch(`${base}/api/slides/${ids.planted}`));
    const h = d.heatmap as HeatmapInfo;
    const stored = decodeNpyFloat32(readFileSync(join(dir, 'data', readdirSync(join(dir, 'data')).find((f) => f.endsWith(ids.planted.slice(0, 12))) ?? '', 'heatmap.npy'))).data;
    const maxLevel = Math.ceil(Math.log2(Math.max(h.dzi.width, h.dzi.height)));
    const tile = h.dzi.tileSize;
    // Full-resolution level: level-0 pixel (x, y) lies in tile (x / tile, y / tile).
    let checked = 0;
    for (const [col, row] of [[3, 8], [4, 9], [1, 2]] as const) {
      const res = await fetch(`${base}${h.dzi.url.replace(/\.dzi$/, '_files')}/${maxLevel}/${col}_${row}.png`);
      expect(res.status).toBe(200);
      const png = Buffer.from(await res.arrayBuffer());
      expect(png[25], 'PNG colour type 4: grey + alpha').toBe(4);
      // Decoded the way a browser does: RGBA, grey in every colour channel.
      const { data, info } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      expect(info.channels).toBe(4);
      for (let py = 4; py < info.height; py += 16) {
        for (let px = 4; px < info.width; px += 16) {
          const x = col * tile + px;
          const y = row * tile + py;
          const c = Math.floor((x - h.originX) / h.cellSize);
          const r = Math.floor((y - h.originY) / h.cellSize);
          const v = stored[r * h.cols + c] as number;
          const alpha = data[(py * info.width + px) * 4 + 3];
          if (Number.isNaN(v)) {
            expect(alpha).toBe(0);
            continue;
          }
          expect(alpha).toBe(255);
          const q = data[(py * info.width + px) * 4] as number;
          expect(Math.abs(h.offset + q * h.scale - v)).toBeLessThanOrEqual(h.scale / 2 + 1e-6);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('ranks the anomalous regions, the planted box first', async () => {
    const { regions } = await json<{ regions: { id: string; rank: number; scoreMax: number; bbox: number[]; centroid: number[] }[] }>(await fetch(`${base}/api/slides/${ids.planted}/regions`));
    expect(regions.length).toBeGreaterThan(0);
    expect(regions.map((r) => r.rank)).toEqual(regions.map((_, i) => i + 1));
    for (let i = 1; i < regions.length; i++) expect((regions[i - 1] as { scoreMax: number }).scoreMax).toBeGreaterThanOrEqual((regions[i] as { scoreMax: number }).scoreMax);
    const [x, y] = (regions[0] as { centroid: number[] }).centroid as [number, number];
    expect(x).toBeGreaterThan(960 - 64);
    expect(x).toBeLessThan(960 + 256 + 64);
    expect(y).toBeGreaterThan(2240 - 64);
    expect(y).toBeLessThan(2240 + 256 + 64);
  });

  it('round-trips verdicts with versions: 428 without If-Match, 409 on a stale one, history kept', async () => {
    const url = `${base}/api/slides/${ids.planted}/review`;
    const first = await fetch(url);
    expect(first.headers.get('etag')).toBe('"0"');
    const { regions } = await json<{ regions: { id: string }[] }>(await fetch(`${base}/api/slides/${ids.planted}/regions`));
    const region = (regions[0] as { id: string }).id;
    const put = (body: object, ifMatch?: string): Promise<Response> =>
      fetch(`${url}/regions/${region}`, { method: 'PUT', headers: { 'content-type': 'application/json', ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }) }, body: JSON.stringify(body) });

    expect((await put({ verdict: 'confirmed' })).status).toBe(428);
    const ok = await put({ verdict: 'confirmed', note: 'stripes, not tissue', reviewer: 'dr. a' }, '"0"');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('etag')).toBe('"1"');
    const stale = await put({ verdict: 'rejected', reviewer: 'dr. b' }, '"0"');
    expect(stale.status).toBe(409);
    expect(await json<{ error: string }>(stale)).toMatchObject({ error: 'conflict' });
    expect((await put({ verdict: 'maybe' }, '"1"')).status).toBe(400);
    expect((await put({ verdict: 'rejected', reviewer: 'dr. b' }, '"1"')).status).toBe(200);

    const review = await json<Review>(await fetch(url));
    expect(review.version).toBe(2);
    expect(review.regions[region]).toMatchObject({ verdict: 'rejected', reviewer: 'dr. b', history: [{ verdict: 'confirmed', note: 'stripes, not tissue', reviewer: 'dr. a' }] });
    expect(review.state).toBe(regions.length === 1 ? 'done' : 'in-progress');
    const list = await json<Worklist>(await fetch(`${base}/api/worklist`));
    expect(list.slides.find((s) => s.id === ids.planted)?.reviewed).toBe(1);
    // Stored beside the result, as plain JSON a script can read.
    const folder = readdirSync(join(dir, 'data')).find((f) => f.endsWith(ids.planted.slice(0, 12))) ?? '';
    expect(JSON.parse(readFileSync(join(dir, 'data', folder, 'review.json'), 'utf8')).version).toBe(2);
  });

  it('answers unknown ids, levels and tiles with 404 and malformed ones with 400, always as JSON', async () => {
    const unknown = 'ffffffffffffffffffffffff';
    for (const path of [`/api/slides/${unknown}`, `/api/slides/${unknown}/regions`, `/api/slides/${unknown}/review`, `/tiles/${unknown}/0123456789abcdef/slide.dzi`]) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(404);
      expect((await json<{ error: string }>(res)).error, path).toBe('not-found');
    }
    const d = await json<SlideDetail>(await fetch(`${base}/api/slides/${ids.cmu}`));
    const files = (d.tiles?.url ?? '').replace(/\.dzi$/, '_files');
    expect((await fetch(`${base}${files}/99/0_0.jpeg`)).status).toBe(404);
    expect((await fetch(`${base}${files}/8/999_0.jpeg`)).status).toBe(404);
    expect((await fetch(`${base}${(d.tiles?.url ?? '').replace(/\/[0-9a-f]+\/slide\.dzi$/, '/0000000000000000/slide.dzi')}`)).status).toBe(404);
    for (const path of [`/api/slides/..%2F..%2Fetc%2Fpasswd`, `/api/slides/%2Fetc%2Fpasswd/regions`, `/tiles/..%2F${ids.cmu}/x/slide.dzi`, `${files}/..%2F..%2F0/0_0.jpeg`, `${files}/0/..%2F0_0.jpeg`]) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
      expect(res.headers.get('content-type') ?? '', path).toContain('application/json');
    }
  });

  it('refuses submission without a queue with a 503 that says how to get one', async () => {
    const res = await fetch(`${base}/api/submit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: CMU }) });
    expect(res.status).toBe(503);
    expect((await json<{ message: string }>(res)).message).toMatch(/--redis/);
  });

  it('serves the browser app for its pages', async () => {
    if (!existsSync(join(APP_DIR, 'index.html'))) throw new Error('dist/app is not built: npm test runs ensure-ready, which builds it');
    for (const page of ['/', `/slides/${ids.cmu}`]) {
      const res = await fetch(`${base}${page}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/html');
    }
  });
});

describe('review server with a queue and a worker', () => {
  let redis: RedisHandle;
  let dir: string;
  let server: ReviewServer;
  let base: string;
  let worker: ChildProcess | null = null;

  beforeAll(async () => {
    redis = await startRedis();
    dir = tempDir();
    mkdirSync(join(dir, 'slides', 'inner'), { recursive: true });
    copyFileSync(CMU, join(dir, 'slides', 'inner', 'cmu.svs'));
    writeFileSync(join(dir, 'secret.txt'), 'not a slide');
    symlinkSync(join(dir, 'secret.txt'), join(dir, 'slides', 'escape.svs'));
    server = await buildServer({ dataDir: join(dir, 'data'), appDir: APP_DIR, slideRoots: [join(dir, 'slides')], redisUrl: redis.url, uploadLimitBytes: 1 << 20, pollSeconds: 1 });
    base = await listen(server);
  });
  /** SIGTERM, and SIGKILL if the worker is still finishing a job 10 s later (the test is done with it). */
  async function stopWorker(): Promise<void> {
    const w = worker;
    if (w === null || w.exitCode !== null || w.signalCode !== null) return;
    await new Promise((r) => {
      const kill = setTimeout(() => w.kill('SIGKILL'), 10_000);
      w.once('exit', () => {
        clearTimeout(kill);
        r(undefined);
      });
      w.kill('SIGTERM');
    });
  }

  afterAll(async () => {
    await stopWorker();
    await server?.close();
    await redis?.stop();
  });

  const submit = (path: string): Promise<Response> => fetch(`${base}/api/submit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path }) });

  it('refuses paths outside the slide roots: ../, encoded, absolute, symlinks out', async () => {
    for (const path of ['../secret.txt', 'inner/../../secret.txt', join(dir, 'secret.txt'), '/etc/passwd', 'escape.svs', '%2E%2E/secret.txt', 'inner/missing.svs', '']) {
      const res = await submit(path);
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
    }
    expect(readdirSync(dir)).not.toContain('data');
  });

  it('streams live progress over SSE while a real worker processes a submitted slide', async () => {
    const events: WorklistEvent[] = [];
    const ac = new AbortController();
    const sse = await fetch(`${base}/api/events`, { signal: ac.signal });
    expect(sse.headers.get('content-type')).toContain('text/event-stream');
    const reader = (sse.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    const readEvents = (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buffer += decoder.decode(value, { stream: true });
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = block.split('\n').find((l) => l.startsWith('data: '));
            if (data !== undefined) events.push(JSON.parse(data.slice(6)) as WorklistEvent);
          }
        }
      } catch {
        // aborted at the end of the test
      }
    })();

    const res = await submit('inner/cmu.svs');
    expect(res.status).toBe(202);
    const { id, submitted } = await json<{ id: string; submitted: string }>(res);
    expect(submitted).toBe('queued');
    worker = spawn(process.execPath, [join(ROOT, 'bin', 'flashslide.js'), 'worker', '--redis', redis.url, '--device', 'cpu', '--data', join(dir, 'data'), '--slides', join(dir, 'slides')], { stdio: 'ignore' });

    const deadline = Date.now() + 120_000;
    const item = (e: WorklistEvent) => (e.type === 'slide' ? e.item : e.worklist.slides.find((s) => s.id === id));
    while (Date.now() < deadline && !events.some((e) => item(e)?.id === id && item(e)?.status === 'done')) await new Promise((r) => setTimeout(r, 200));
    ac.abort();
    await readEvents;
    const mine = events.map(item).filter((s) => s?.id === id);
    expect(mine.map((s) => s?.status)).toContain('done');
    expect(mine.some((s) => s?.status === 'queued' || s?.status === 'running')).toBe(true);
    const progressed = mine.find((s) => s?.progress !== null && s?.progress !== undefined && s.progress.total > 0 && s.status !== 'done');
    expect(progressed, `progress events: ${JSON.stringify(mine)}`).toBeDefined();
    expect(events.some((e) => e.type === 'slide' && e.item.id === id)).toBe(true);
  }, 150_000);

  it('takes an upload within the limit, refuses one above it and a name with a folder', async () => {
    const up = (name: string, body: Uint8Array): Promise<Response> => fetch(`${base}/api/upload?name=${encodeURIComponent(name)}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body });
    const small = await up('tiny.svs', readFileSync(TINY));
    expect(small.status).toBe(202);
    expect((await json<{ name: string }>(small)).name).toMatch(/tiny\.svs$/);
    const big = await up('big.svs', readFileSync(CMU));
    expect(big.status).toBe(413);
    for (const name of ['../x.svs', '.hidden', 'a/b.svs']) expect((await up(name, readFileSync(TINY))).status, name).toBe(400);
    const uploads = readdirSync(join(dir, 'data', 'uploads'));
    expect(uploads.filter((f) => f.endsWith('tiny.svs'))).toHaveLength(1);
    expect(uploads.filter((f) => f.includes('big') || f.startsWith('.'))).toEqual([]);
  });

  it('mounts bull-board read-only under /admin/queues', async () => {
    const res = await fetch(`${base}/admin/queues`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<html');
  });

  it('keeps showing the results on disk, and says why, while Redis is down', async () => {
    await stopWorker();
    await redis.stop();
    await new Promise((r) => setTimeout(r, 1100)); // past the catalog's one-second cache
    const res = await fetch(`${base}/api/worklist`);
    expect(res.status).toBe(200);
    const list = await json<Worklist>(res);
    expect(list.queueError).toMatch(/cannot read the queue/);
    expect(list.slides.some((s) => s.name === 'cmu.svs' && s.status === 'done')).toBe(true);
  });
});
