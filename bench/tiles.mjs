#!/usr/bin/env node
// Tile server benchmark: the Deep Zoom routes (viewer/server/tiles) under a reviewer's session,
// against OpenSlide's own Deep Zoom generator on the same tiles.
//
//   npx tsc -p tsconfig.json     # the compiled JS in dist/ is what runs
//   node bench/tiles.mjs [--size 40000] [--slide PATH] [--tiles 1500] [--in-flight 32]
//                        [--quality 80] [--render-concurrency N] [--sharp-concurrency N] [--block-tiles N]
//                        [--peer-workers 2] [--no-peer] [--seed 1]
//
// The slide (default) is a synthetic gigapixel mosaic of real tissue, CMU-1-Small-Region.svs with
// flips and glass gaps, written by libvips as a 256 px tiled JPEG pyramidal BigTIFF (the slide
// bench/e2e-analyze.mjs makes; kept in the temp folder and reused across runs). The session is a
// deterministic random walk of 1600 x 900 viewports that pans and zooms; it yields the list of
// tiles a viewer asks for, each once, in order. The server runs in a child process (its own
// event loop), the client keeps --in-flight requests open (browsers open 6 connections per host
// over HTTP/1.1, OpenSeadragon queues more; 32 is a busy HTTP/2 client). Each list is replayed
// cold (a fresh server: empty tile cache) and warm (every tile cached), for slide JPEGs and for
// heatmap PNGs (a synthetic 16 px-cell score grid over the slide, like the pipeline's). The peer,
// OpenSlide's DeepZoomGenerator (python3-openslide), renders the same slide tiles, JPEG at the
// same quality, in --peer-workers processes. Latency is per request as the client sees it
// (queueing included); the peer's is per tile in its worker (no queueing, no HTTP).
// Record results with machine and date in bench/NOTES.md.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { synthesiseMosaic } from './mosaic.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '40000' },
    slide: { type: 'string' },
    tiles: { type: 'string', default: '1500' },
    'in-flight': { type: 'string', default: '32' },
    quality: { type: 'string', default: '80' },
    'render-concurrency': { type: 'string' },
    'sharp-concurrency': { type: 'string' },
    'block-tiles': { type: 'string' },
    'peer-workers': { type: 'string', default: '2' },
    'no-peer': { type: 'boolean', default: false },
    seed: { type: 'string', default: '1' },
    // Internal: run as the server child.
    serve: { type: 'boolean', default: false },
  },
});
const ID = '0123456789abcdef01234567';
const VERSION = 'b0b0b0b0b0b0b0b0';
const HEAT_VERSION = 'beefbeefbeefbeef';
const CELL = 16;
const quality = Number(values.quality);

// --- the server child -----------------------------------------------------------------------------

/** A smooth score field with hot spots, NaN (no tissue) on about a third of the cells. */
function syntheticGrid(width, height) {
  const cols = Math.ceil(width / CELL);
  const rows = Math.ceil(height / CELL);
  const grid = new Float32Array(rows * cols);
  let min = Infinity;
  let max = -Infinity;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const u = c / cols;
      const v = r / rows;
      const tissue = Math.sin(u * 37) + Math.cos(v * 29) + Math.sin((u + v) * 11) > -0.6;
      const s = tissue ? 0.5 + 0.3 * Math.sin(u * 120) * Math.cos(v * 90) + 2 * Math.exp(-(((c % 400) - 200) ** 2 + ((r % 300) - 150) ** 2) / 200) : Number.NaN;
      grid[r * cols + c] = s;
      if (tissue) {
        if (s < min) min = s;
        if (s > max) max = s;
      }
    }
  }
  const meta = {
    formatVersion: 1, slideId: ID, slidePath: 'bench', width, height, mpp: 0.5, rows, cols, patchSizeLevel0: CELL, originX: 0, originY: 0,
    regionSize: 1024, model: 'bench', scoreMethod: 'bench', scoreParams: {}, min, max, threshold: 1.5, createdAt: new Date(0).toISOString(), flashslideVersion: '0',
  };
  return { grid, meta };
}

async function serve() {
  if (values['sharp-concurrency'] !== undefined) sharp.concurrency(Number(values['sharp-concurrency']));
  const { default: Fastify } = await import('fastify');
  const { openSlide } = await import(join(dist, 'worker/slide/open-slide.js'));
  const { registerTileRoutes } = await import(join(dist, 'viewer/server/tiles/tile-routes.js'));
  const source = await openSlide(values.slide);
  const heat = syntheticGrid(source.width, source.height);
  const target = {
    id: ID,
    slideVersion: VERSION,
    heatmapVersion: HEAT_VERSION,
    withSource: (use) => use(source),
    heatmap: async () => heat,
  };
  const app = Fastify();
  const service = registerTileRoutes(app, {
    lookup: async (id) => (id === ID ? target : null),
    jpegQuality: quality,
    ...(values['render-concurrency'] === undefined ? {} : { concurrency: Number(values['render-concurrency']) }),
    ...(values['block-tiles'] === undefined ? {} : { blockTiles: Number(values['block-tiles']) }),
  });
  app.get('/stats', async () => ({ cache: service.cache.stats(), pool: service.pool.stats(), blocks: service.renderer.stats(), rssMiB: process.memoryUsage().rss / 2 ** 20 }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  process.stdout.write(`${JSON.stringify({ port: app.server.address().port, width: source.width, height: source.height, levels: source.levels })}\n`);
}

// --- the benchmark ---------------------------------------------------------------------------------

function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/**
 * The tiles a viewer fetches in a session: viewports of 1600 x 900 screen pixels that pan by up
 * to half a screen and zoom in or out a level now and then, at levels from the whole slide on
 * screen down to full resolution. Each tile once (a browser caches what it saw), in request order.
 */
function session(width, height, count, seed) {
  const rand = rng(seed);
  let maxLevel = 0;
  while (2 ** maxLevel < Math.max(width, height)) maxLevel++;
  // The level where the whole slide fits the screen.
  let fit = maxLevel;
  while (fit > 0 && (Math.ceil(width / 2 ** (maxLevel - fit)) > 1600 || Math.ceil(height / 2 ** (maxLevel - fit)) > 900)) fit--;
  let level = fit + 2;
  let cx = width / 2;
  let cy = height / 2;
  const seen = new Set();
  const list = [];
  while (list.length < count) {
    const ds = 2 ** (maxLevel - level);
    const lw = Math.ceil(width / ds);
    const lh = Math.ceil(height / ds);
    const x0 = Math.max(0, Math.min(lw - 1600, Math.round(cx / ds - 800)));
    const y0 = Math.max(0, Math.min(lh - 900, Math.round(cy / ds - 450)));
    for (let row = Math.floor(Math.max(0, y0) / 256); row <= Math.floor(Math.min(lh - 1, y0 + 899) / 256); row++) {
      for (let col = Math.floor(Math.max(0, x0) / 256); col <= Math.floor(Math.min(lw - 1, x0 + 1599) / 256); col++) {
        const key = `${level}/${col}_${row}`;
        if (seen.has(key)) continue;
        seen.add(key);
        list.push([level, col, row]);
      }
    }
    const step = rand();
    if (step < 0.2 && level < maxLevel) level++;
    else if (step < 0.3 && level > fit) level--;
    else {
      cx = Math.max(0, Math.min(width, cx + (rand() - 0.5) * 1600 * ds));
      cy = Math.max(0, Math.min(height, cy + (rand() - 0.5) * 900 * ds));
    }
  }
  return list.slice(0, count);
}

async function startServer(slide) {
  const args = [fileURLToPath(import.meta.url), '--serve', '--slide', slide, '--quality', String(quality)];
  for (const k of ['render-concurrency', 'sharp-concurrency', 'block-tiles']) if (values[k] !== undefined) args.push(`--${k}`, values[k]);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  const info = JSON.parse(line);
  return {
    ...info,
    base: `http://127.0.0.1:${info.port}`,
    kill: () => child.kill('SIGTERM'),
    stop: () => new Promise((r) => (child.once('exit', r), child.kill('SIGTERM'))),
  };
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** GET with node:http over keep-alive connections (lighter than fetch: the client shares the cores with the server). */
function get(agent, base, path) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}${path}`, { agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function replay(base, urls, inFlight) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: inFlight });
  const lat = [];
  let bytes = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < urls.length) {
        const url = urls[next++];
        const t = performance.now();
        const res = await get(agent, base, url);
        if (res.status !== 200) throw new Error(`${url}: ${res.status} ${res.body.toString()}`);
        lat.push(performance.now() - t);
        bytes += res.body.byteLength;
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  agent.destroy();
  lat.sort((a, b) => a - b);
  return { n: urls.length, wall, tps: urls.length / wall, p50: pct(lat, 50), p95: pct(lat, 95), p99: pct(lat, 99), kb: bytes / urls.length / 1024 };
}

const PEER = String.raw`
import io, json, sys, time
from multiprocessing import Pool
import openslide
from openslide.deepzoom import DeepZoomGenerator

_dz = None
def init(path):
    global _dz
    _dz = DeepZoomGenerator(openslide.OpenSlide(path), tile_size=256, overlap=0, limit_bounds=False)

def render(t):
    level, col, row, q = t
    t0 = time.perf_counter()
    tile = _dz.get_tile(level, (col, row))
    buf = io.BytesIO()
    tile.save(buf, 'JPEG', quality=q)
    return (time.perf_counter() - t0) * 1000, buf.tell()

if __name__ == '__main__':
    path, workers, q = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    tiles = [tuple(t) + (q,) for t in json.load(sys.stdin)]
    with Pool(workers, initializer=init, initargs=(path,)) as pool:
        pool.map(render, tiles[:4])  # open the slide in each worker before timing
        t0 = time.perf_counter()
        out = pool.map(render, tiles, chunksize=4)
        wall = time.perf_counter() - t0
    lat = sorted(o[0] for o in out)
    pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))]
    print(json.dumps({'n': len(tiles), 'wall': wall, 'tps': len(tiles) / wall, 'p50': pct(50), 'p95': pct(95), 'p99': pct(99), 'kb': sum(o[1] for o in out) / len(out) / 1024}))
`;

function peer(slide, tiles, workers) {
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const r = spawnSync(python, ['-c', PEER, slide, String(workers), String(quality)], { input: JSON.stringify(tiles), encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`OpenSlide peer failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function main() {
  const size = Number(values.size);
  const work = join(tmpdir(), 'flashslide-bench-tiles');
  mkdirSync(work, { recursive: true });
  const slide = values.slide ?? join(work, `mosaic-${size}.tif`);
  let made = 'reused';
  if (!existsSync(slide)) {
    if (values.slide !== undefined) throw new Error(`${slide} does not exist`);
    const t0 = performance.now();
    await synthesiseMosaic(size, slide);
    made = `synthesised in ${((performance.now() - t0) / 1000).toFixed(0)} s`;
  }
  const inFlight = Number(values['in-flight']);
  const count = Number(values.tiles);
  const rows = [];
  const add = (what, r, extra = '') =>
    rows.push([what, r.n, r.tps.toFixed(1), r.p50.toFixed(1), r.p95.toFixed(1), r.p99.toFixed(1), r.kb.toFixed(1), extra]);

  let server = await startServer(slide);
  process.once('exit', () => server.kill());
  const tiles = session(server.width, server.height, count, Number(values.seed));
  const levelsUsed = [...new Set(tiles.map((t) => t[0]))].sort((a, b) => a - b);
  const slideUrls = tiles.map(([l, c, r]) => `/tiles/${ID}/${VERSION}/slide_files/${l}/${c}_${r}.jpeg`);
  const heatUrls = tiles.map(([l, c, r]) => `/tiles/${ID}/${HEAT_VERSION}/heatmap_files/${l}/${c}_${r}.png`);
  const stats = async () => (await fetch(`${server.base}/stats`)).json();

  // Slide tiles: cold (fresh server), then warm (same server, every tile cached).
  await (await fetch(`${server.base}/tiles/${ID}/${VERSION}/slide.dzi`)).text();
  add('slide JPEG, cold', await replay(server.base, slideUrls, inFlight), `${(await stats()).blocks.reads} block reads`);
  add('slide JPEG, warm', await replay(server.base, slideUrls, inFlight), `${(await stats()).cache.hits} cache hits`);
  const slideRss = (await stats()).rssMiB;
  await server.stop();

  // Heatmap tiles: the first request builds nothing up front; coarse levels build their max raster on first use.
  server = await startServer(slide);
  process.once('exit', () => server.kill());
  const th0 = performance.now();
  await (await fetch(`${server.base}/tiles/${ID}/${HEAT_VERSION}/heatmap.dzi`)).text();
  const heatOpen = performance.now() - th0;
  add('heatmap PNG, cold', await replay(server.base, heatUrls, inFlight), `grid load ${heatOpen.toFixed(0)} ms`);
  add('heatmap PNG, warm', await replay(server.base, heatUrls, inFlight));
  const heatRss = (await stats()).rssMiB;
  await server.stop();

  // The same renders in this process without HTTP (what the peer's numbers are: no server, no client).
  {
    const { openSlide } = await import(join(dist, 'worker/slide/open-slide.js'));
    const { DeepZoomGeometry } = await import(join(dist, 'viewer/server/tiles/deep-zoom.js'));
    const { SlideTileRenderer } = await import(join(dist, 'viewer/server/tiles/slide-tiler.js'));
    if (values['sharp-concurrency'] !== undefined) sharp.concurrency(Number(values['sharp-concurrency']));
    const source = await openSlide(slide);
    const g = new DeepZoomGeometry(source.width, source.height);
    const renderer = new SlideTileRenderer({ quality, ...(values['block-tiles'] === undefined ? {} : { blockTiles: Number(values['block-tiles']) }) });
    const renders = Number(values['render-concurrency'] ?? 4 * availableParallelism());
    const lat = [];
    let next = 0;
    let bytes = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: renders }, async () => {
        while (next < tiles.length) {
          const [l, c, r] = tiles[next++];
          const t = performance.now();
          const out = await renderer.render('bench', source, g, g.requireTile(l, c, r));
          bytes += out.byteLength;
          lat.push(performance.now() - t);
        }
      }),
    );
    const wall = (performance.now() - t0) / 1000;
    lat.sort((a, b) => a - b);
    add(`renderer in-process, no HTTP (${renders} at once)`, { n: tiles.length, tps: tiles.length / wall, p50: pct(lat, 50), p95: pct(lat, 95), p99: pct(lat, 99), kb: bytes / tiles.length / 1024 }, 'per-tile time, queueing excluded');
    await source.close();
  }

  let peerResult = null;
  if (!values['no-peer']) {
    peerResult = peer(slide, tiles, Number(values['peer-workers']));
    add(`OpenSlide DeepZoomGenerator, ${values['peer-workers']} processes`, peerResult, 'per-tile time in the worker');
  }

  const commit = spawnSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  const dirty = spawnSync('git', ['-C', root, 'status', '--porcelain', 'viewer', 'bench'], { encoding: 'utf8' }).stdout.trim() !== '' ? ' + uncommitted tile server' : '';
  const lscpu = spawnSync('lscpu', { encoding: 'utf8' }).stdout;
  const model = /Model name:\s*(.+)/.exec(lscpu)?.[1] ?? cpus()[0]?.model ?? '?';
  console.log(`machine: ${model}, nproc ${availableParallelism()}; date ${new Date().toISOString().slice(0, 10)}; commit ${commit}${dirty}; node ${process.version}; sharp ${sharp.versions.sharp} / libvips ${sharp.versions.vips}`);
  console.log(`slide: ${server.width} x ${server.height}, ${server.levels.length} levels, ${(statSync(slide).size / 2 ** 20).toFixed(0)} MiB (${made}); session: ${tiles.length} distinct tiles at Deep Zoom levels ${levelsUsed.join(', ')}; ${inFlight} requests in flight; JPEG quality ${quality}`);
  console.log(`options: render concurrency ${values['render-concurrency'] ?? `default (4 per core: ${4 * availableParallelism()})`}, sharp concurrency ${values['sharp-concurrency'] ?? `default (${sharp.concurrency()})`}, block ${values['block-tiles'] ?? 'default (2)'} x same tiles; server RSS after slide run ${slideRss.toFixed(0)} MiB, after heatmap run ${heatRss.toFixed(0)} MiB`);
  console.log('');
  console.log('| run | tiles | tiles/s | p50 ms | p95 ms | p99 ms | KiB/tile | note |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  if (peerResult !== null) {
    const cold = rows[0];
    console.log('');
    console.log(`cold slide throughput / OpenSlide generator: ${(Number(cold[2]) / peerResult.tps).toFixed(2)}x (target >= 2x); warm p95 ${rows[1][4]} ms (target < 20 ms)`);
  }
  writeFileSync(join(work, 'last-session.json'), JSON.stringify(tiles));
}

if (values.serve) await serve();
else await main();
