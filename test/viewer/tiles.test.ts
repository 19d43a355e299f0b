import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSlide } from '../../worker/slide/open-slide.js';
import { CorruptSlideError, SlideNotFoundError } from '../../worker/slide/errors.js';
import type { SlideSource } from '../../worker/slide/slide-source.js';
import type { HeatmapMeta } from '../../worker/store/heatmap-json.js';
import { DeepZoomGeometry, TileRangeError } from '../../viewer/server/tiles/deep-zoom.js';
import { HeatmapTiler, heatmapQuantisation } from '../../viewer/server/tiles/heatmap-tiler.js';
import { AbortError, RenderPool } from '../../viewer/server/tiles/render-pool.js';
import { SlideTileRenderer, renderSlideTile } from '../../viewer/server/tiles/slide-tiler.js';
import { bestLevelForDownsample, renderThumbnail } from '../../worker/slide/thumbnail.js';
import { TileCache } from '../../viewer/server/tiles/tile-cache.js';
import { dziInfo, heatmapInfo, registerTileRoutes, slideThumbnail, type TileService, type TileTarget } from '../../viewer/server/tiles/tile-routes.js';
import { BOXES, CMU, NDPI, diff } from '../helpers.js';

// --- fixtures ---------------------------------------------------------------------------------

const ID = {
  cmu: '0000000000000000000000c1',
  boxes: '0000000000000000000000b2',
  ndpi: '0000000000000000000000d3',
  heat: '0000000000000000000000e4',
  corrupt: '0000000000000000000000f5',
  missing: '0000000000000000000000f6',
  slow: '0000000000000000000000f7',
  badHeat: '0000000000000000000000f8',
  unknown: 'ffffffffffffffffffffffff',
} as const;
const V = 'abcdef0123456789';
const HV = '00112233aabbccdd';

/** A 60 x 90 heatmap of 20 px cells at (10, 6) over a 1850 x 1230 slide: random scores, a NaN block, one hot cell. */
const HEAT = (() => {
  const rows = 60;
  const cols = 90;
  const grid = new Float32Array(rows * cols);
  let seed = 12345;
  const rand = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  for (let i = 0; i < grid.length; i++) grid[i] = 0.2 + 3.5 * rand();
  for (let r = 10; r < 20; r++) for (let c = 30; c < 45; c++) grid[r * cols + c] = Number.NaN;
  grid[40 * cols + 70] = 10; // the hot spot, the max
  grid[50 * cols + 5] = 0.1; // the min
  const meta: HeatmapMeta = {
    formatVersion: 1,
    slideId: 'test',
    slidePath: '/nowhere/test.svs',
    width: 1850,
    height: 1230,
    mpp: 0.5,
    rows,
    cols,
    patchSizeLevel0: 20,
    originX: 10,
    originY: 6,
    regionSize: 224,
    model: 'test',
    scoreMethod: 'self',
    scoreParams: {},
    min: 0.1,
    max: 10,
    threshold: 3,
    createdAt: '2026-01-01T00:00:00Z',
    flashslideVersion: '0.1.0',
  };
  return { grid, meta };
})();

const sources: Record<'cmu' | 'boxes' | 'ndpi', SlideSource> = {} as Record<'cmu' | 'boxes' | 'ndpi', SlideSource>;
/** Slide levels read by the routes' renders, per target. */
const reads: Record<string, number[]> = {};
/** Gate for the slow target: its renders wait until released. */
let releaseSlow: () => void = () => {};
let slowGate: Promise<void> = Promise.resolve();
const slowRendered: string[] = [];

/** The source with readRegion recording the level it reads. */
function recording(s: SlideSource, log: number[]): SlideSource {
  const wrapped = Object.create(s) as SlideSource & { readRegion: SlideSource['readRegion'] };
  wrapped.readRegion = (level, x, y, w, h) => {
    log.push(level);
    return s.readRegion(level, x, y, w, h);
  };
  return wrapped;
}

function slideTarget(id: string, s: () => SlideSource, heatmap = false): TileTarget {
  const log = (reads[id] ??= []);
  return {
    id,
    slideVersion: V,
    heatmapVersion: heatmap ? HV : null,
    withSource: (use) => use(recording(s(), log)),
    heatmap: async () => (heatmap ? HEAT : null),
  };
}

let slowTarget: TileTarget;
function targets(): Map<string, TileTarget> {
  const m = new Map<string, TileTarget>();
  m.set(ID.cmu, slideTarget(ID.cmu, () => sources.cmu));
  m.set(ID.boxes, slideTarget(ID.boxes, () => sources.boxes));
  m.set(ID.ndpi, slideTarget(ID.ndpi, () => sources.ndpi));
  m.set(ID.heat, slideTarget(ID.heat, () => sources.cmu, true));
  // Opens (its size is known), then fails to decode: the error comes from the render.
  let corruptOpened = false;
  m.set(ID.corrupt, {
    ...slideTarget(ID.corrupt, () => sources.cmu),
    withSource: async (use) => {
      if (corruptOpened) throw new CorruptSlideError('/data/x.svs', 'damaged TIFF: bad offset');
      corruptOpened = true;
      return use(sources.cmu);
    },
  });
  m.set(ID.missing, { ...slideTarget(ID.missing, () => sources.cmu), withSource: () => Promise.reject(new SlideNotFoundError('/data/y.svs', 'no such file')) });
  let warm = false;
  slowTarget = {
    ...slideTarget(ID.slow, () => sources.cmu),
    withSource: async (use) => {
      if (warm) await slowGate;
      warm = true;
      return use(sources.cmu);
    },
  };
  m.set(ID.slow, slowTarget);
  m.set(ID.badHeat, { ...slideTarget(ID.badHeat, () => sources.cmu, true), heatmap: async () => ({ grid: new Float32Array(5), meta: HEAT.meta }) });
  return m;
}

let app: FastifyInstance;
let base: string;
let service: TileService;

beforeAll(async () => {
  sources.cmu = await openSlide(CMU);
  sources.boxes = await openSlide(BOXES);
  sources.ndpi = await openSlide(NDPI);
  const all = targets();
  // fetch opens a spare connection after an abort; closing must not wait for it to time out.
  app = Fastify({ forceCloseConnections: true });
  // The rendering path at the configured 256 px (CMU's stored 240 px tiles would otherwise be
  // adopted and sent as stored: test/viewer/stored-tiles.test.ts covers that).
  service = registerTileRoutes(app, { lookup: async (id) => all.get(id) ?? null, concurrency: 1, followStoredTiles: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await app?.close();
  await Promise.all(Object.values(sources).map((s) => s.close()));
});

const get = (path: string, init?: RequestInit): Promise<Response> => fetch(`${base}${path}`, init);

async function getBody(path: string): Promise<Buffer> {
  const res = await get(path);
  expect(res.status, `${path}: ${res.status}`).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

async function decodeRgb(buf: Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(buf).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

function parseDzi(xml: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of xml.matchAll(/(\w+)="([^"]*)"/g)) out[m[1] as string] = m[2] as string;
  return out;
}

// --- Deep Zoom geometry ------------------------------------------------------------------------

describe('Deep Zoom geometry', () => {
  it('halves to 1x1 with ceil sizes, like repeated ceil(n / 2)', () => {
    for (const [w, h] of [[1, 1], [2, 1], [300, 250], [2220, 2967], [40000, 40000], [65537, 3]]) {
      const g = new DeepZoomGeometry(w as number, h as number);
      const sizes: [number, number][] = [];
      let s: [number, number] = [w as number, h as number];
      sizes.unshift(s);
      while (s[0] > 1 || s[1] > 1) {
        s = [Math.ceil(s[0] / 2), Math.ceil(s[1] / 2)];
        sizes.unshift(s);
      }
      expect(g.levelCount).toBe(sizes.length);
      sizes.forEach(([lw, lh], level) => expect(g.levelSize(level)).toEqual({ width: lw, height: lh }));
    }
    expect(new DeepZoomGeometry(2220, 2967).maxLevel).toBe(12);
  });

  it('crops edge tiles and maps tiles to level-0 pixels', () => {
    const g = new DeepZoomGeometry(2220, 2967);
    expect(g.tileGrid(12)).toEqual({ cols: 9, rows: 12 });
    expect(g.tile(12, 8, 11)?.rect).toEqual({ x: 2048, y: 2816, width: 172, height: 151 });
    // Level 11 is 1110 x 1484; tile (4, 5) covers level pixels 1024..1110, 1280..1484.
    const t = g.tile(11, 4, 5);
    expect(t?.rect).toEqual({ x: 1024, y: 1280, width: 86, height: 204 });
    expect(t?.level0).toEqual({ x: 2048, y: 2560, width: 172, height: 407 });
    expect(g.tile(0, 0, 0)?.rect).toEqual({ x: 0, y: 0, width: 1, height: 1 });
  });

  it('adds the overlap on the sides with a neighbour only', () => {
    const g = new DeepZoomGeometry(1000, 600, { tileSize: 254, overlap: 1 });
    expect(g.tile(10, 0, 0)?.rect).toEqual({ x: 0, y: 0, width: 255, height: 255 });
    expect(g.tile(10, 1, 1)?.rect).toEqual({ x: 253, y: 253, width: 256, height: 256 });
    expect(g.tile(10, 3, 2)?.rect).toEqual({ x: 761, y: 507, width: 239, height: 93 });
  });

  it('returns null or throws a TileRangeError out of range, and writes the descriptor', () => {
    const g = new DeepZoomGeometry(300, 250);
    expect(g.tile(10, 0, 0)).toBeNull();
    expect(g.tile(9, 2, 0)).toBeNull();
    expect(g.tile(9, 0, 1)).toBeNull();
    expect(g.tile(-1, 0, 0)).toBeNull();
    expect(g.tile(9, 0.5, 0)).toBeNull();
    expect(() => g.requireTile(9, 2, 0)).toThrow(TileRangeError);
    expect(() => g.requireTile(10, 0, 0)).toThrow(/level 10 does not exist/);
    expect(g.dziXml('jpeg')).toContain('<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" TileSize="256" Overlap="0" Format="jpeg"><Size Width="300" Height="250"/></Image>');
  });
});

// --- slide tiles ---------------------------------------------------------------------------------

describe('slide tiles over HTTP', () => {
  it('descriptor sizes are the slides\' level-0 sizes', async () => {
    for (const [id, s] of [[ID.cmu, () => sources.cmu], [ID.boxes, () => sources.boxes], [ID.ndpi, () => sources.ndpi]] as const) {
      const res = await get(`/tiles/${id}/${V}/slide.dzi`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/xml/);
      const d = parseDzi(await res.text());
      expect([Number(d.Width), Number(d.Height)]).toEqual([s().width, s().height]);
      expect([d.TileSize, d.Overlap, d.Format]).toEqual(['256', '0', 'jpeg']);
    }
    expect(await dziInfo(slideTarget(ID.ndpi, () => sources.ndpi))).toEqual({
      url: `/tiles/${ID.ndpi}/${V}/slide.dzi`, width: 3968, height: 4864, tileSize: 256, overlap: 0, format: 'jpeg',
    });
  });

  /**
   * The tile cut from the whole of level 0 resized to the Deep Zoom level's size: independent of
   * the pyramid level the server picks and of how it groups its reads.
   */
  const levelImages = new Map<string, Promise<Buffer>>();
  async function reference(s: SlideSource, g: DeepZoomGeometry, level: number, col: number, row: number): Promise<Buffer> {
    const size = g.levelSize(level);
    const key = `${s.path}/${level}`;
    if (!levelImages.has(key)) {
      levelImages.set(key, (async () => {
        const img = await s.readRegion(0, 0, 0, s.width, s.height);
        return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).resize(size.width, size.height, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
      })());
    }
    const whole = (await levelImages.get(key)) as Buffer;
    const { x, y, width, height } = g.requireTile(level, col, row).rect;
    return sharp(whole, { raw: { ...size, channels: 3 } }).extract({ left: x, top: y, width, height }).raw().toBuffer();
  }

  it.each([
    ['ndpi', ID.ndpi, [[13, 3, 5], [13, 15, 18], [12, 7, 9], [11, 0, 0], [10, 1, 2], [7, 0, 0], [0, 0, 0]]],
    ['cmu', ID.cmu, [[12, 2, 3], [12, 8, 11], [11, 4, 5], [9, 0, 0]]],
    ['boxes', ID.boxes, [[9, 0, 0], [9, 1, 0], [8, 0, 0], [7, 0, 0], [6, 0, 0], [3, 0, 0]]],
  ] as const)('%s tiles decode to their size and match the slide resized (JPEG error only)', async (name, id, cases) => {
    const s = sources[name];
    const g = new DeepZoomGeometry(s.width, s.height);
    for (const [level, col, row] of cases) {
      const res = await get(`/tiles/${id}/${V}/slide_files/${level}/${col}_${row}.jpeg`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/jpeg');
      const tile = await decodeRgb(Buffer.from(await res.arrayBuffer()));
      const rect = g.requireTile(level, col, row).rect;
      expect([tile.width, tile.height], `${name} ${level}/${col}_${row}`).toEqual([rect.width, rect.height]);
      const ref = await reference(s, g, level, col, row);
      const d = diff(tile.data, ref);
      // The error JPEG q80 alone makes on this reference: the tile may differ by about that much
      // plus a little for reading a pyramid level the scanner made (the boxes' hard edges, more).
      const jpegOnly = diff(ref, (await decodeRgb(await sharp(ref, { raw: { width: rect.width, height: rect.height, channels: 3 } }).jpeg({ quality: 80 }).toBuffer())).data);
      expect(d.mean, `${name} ${level}/${col}_${row}`).toBeLessThan(jpegOnly.mean * 1.25 + (name === 'boxes' ? 4 : 1));
    }
  });

  it('edge tiles are cropped, not padded', async () => {
    const tile = await decodeRgb(await getBody(`/tiles/${ID.cmu}/${V}/slide_files/12/8_11.jpeg`));
    expect([tile.width, tile.height]).toEqual([2220 - 8 * 256, 2967 - 11 * 256]);
    const small = await decodeRgb(await getBody(`/tiles/${ID.ndpi}/${V}/slide_files/8/0_0.jpeg`));
    expect([small.width, small.height]).toEqual([Math.ceil(3968 / 32), Math.ceil(4864 / 32)]);
  });

  it('reads the coarsest slide level that serves, never level 0 when a coarser one does', async () => {
    const s = sources.ndpi;
    const g = new DeepZoomGeometry(s.width, s.height);
    for (let level = 0; level <= g.maxLevel; level++) {
      const log: number[] = [];
      await renderSlideTile(recording(s, log), g.requireTile(level, 0, 0));
      const ds = g.downsample(level);
      // NDPI levels are exact powers of two down to 64.
      const expected = Math.min(6, Math.log2(ds));
      expect(log, `Deep Zoom level ${level} (downsample ${ds})`).toEqual([expected]);
    }
    // Through the routes too: the NDPI tiles fetched above at downsample >= 2 never read level 0.
    reads[ID.ndpi]!.length = 0;
    await getBody(`/tiles/${ID.ndpi}/${V}/slide_files/12/4_4.jpeg`); // a block no test read before
    await getBody(`/tiles/${ID.ndpi}/${V}/slide_files/9/0_0.jpeg`);
    expect(reads[ID.ndpi]).toEqual([1, 4]);
    // The generic pyramid's downsamples are a hair over 4 and 8 (75 = floor(300 / 4)): level 2 serves 4.
    expect(bestLevelForDownsample(sources.boxes.levels, 4)).toBe(2);
    expect(bestLevelForDownsample(sources.boxes.levels, 2)).toBe(1);
    expect(bestLevelForDownsample(sources.boxes.levels, 1)).toBe(0);
    expect(bestLevelForDownsample(sources.boxes.levels, 16)).toBe(3);
    expect(bestLevelForDownsample(sources.boxes.levels, 3.9)).toBe(1);
  });

  it('block reads: one read serves a block of tiles, with the same pixels as reading each tile alone', async () => {
    const s = sources.ndpi;
    for (const overlap of [0, 1]) {
      const g = new DeepZoomGeometry(s.width, s.height, { overlap, tileSize: overlap === 0 ? 256 : 254 });
      const renderer = new SlideTileRenderer({ blockTiles: 4 });
      const log: number[] = [];
      const src = recording(s, log);
      for (let row = 4; row < 8; row++) {
        for (let col = 0; col < 4; col++) {
          const t = g.requireTile(12, col, row);
          const fromBlock = await renderer.render('ndpi', src, g, t);
          // NDPI level 1 is exactly Deep Zoom level 12: no resampling, so the same JPEG bytes.
          expect(fromBlock.equals(await renderSlideTile(s, t)), `overlap ${overlap} tile ${col}_${row}`).toBe(true);
        }
      }
      expect(log).toEqual([1]);
      expect(renderer.stats()).toMatchObject({ reads: 1, hits: 15 });
    }
  });

  it('thumbnail: the longer side is maxSide, from a coarse level', async () => {
    const log: number[] = [];
    const jpeg = await renderThumbnail(recording(sources.ndpi, log), 200);
    const meta = await sharp(jpeg).metadata();
    expect([meta.width, meta.height]).toEqual([Math.round((200 * 3968) / 4864), 200]);
    expect(Math.min(...log)).toBe(4); // 304 px high: the coarsest level >= 200
    const small = await sharp(await slideThumbnail(slideTarget(ID.cmu, () => sources.cmu), 5000)).metadata();
    expect([small.width, small.height]).toEqual([2220, 2967]); // never enlarged
    // A level larger than one read may be is read in bands: no seams (30 bands = 2 bands), and
    // the same picture as one read up to the filter (a box pre-shrink, then lanczos).
    const banded = await decodeRgb(await renderThumbnail(sources.cmu, 300, { maxReadPixels: 2220 * 100 }));
    const twoBands = await decodeRgb(await renderThumbnail(sources.cmu, 300, { maxReadPixels: 2220 * 1500 }));
    const whole = await decodeRgb(await renderThumbnail(sources.cmu, 300));
    expect([banded.width, banded.height]).toEqual([whole.width, whole.height]);
    expect(diff(banded.data, twoBands.data).mean).toBeLessThan(0.5);
    expect(diff(banded.data, whole.data).mean).toBeLessThan(8);
  });
});

describe('HTTP semantics', () => {
  it('ETag, immutable caching and 304 on If-None-Match', async () => {
    const path = `/tiles/${ID.cmu}/${V}/slide_files/11/1_1.jpeg`;
    const first = await get(path);
    expect(first.status).toBe(200);
    const etag = first.headers.get('etag');
    expect(etag).toMatch(/^"[0-9a-f]+"$/);
    expect(first.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const again = await get(path, { headers: { 'If-None-Match': etag as string } });
    expect(again.status).toBe(304);
    expect((await again.arrayBuffer()).byteLength).toBe(0);
    const weakList = await get(path, { headers: { 'If-None-Match': `"nope", W/${etag as string}` } });
    expect(weakList.status).toBe(304);
    const other = await get(`/tiles/${ID.cmu}/${V}/slide_files/11/2_1.jpeg`, { headers: { 'If-None-Match': etag as string } });
    expect(other.status).toBe(200);
    expect(other.headers.get('etag')).not.toBe(etag);
    const dzi = await get(`/tiles/${ID.cmu}/${V}/slide.dzi`);
    expect((await get(`/tiles/${ID.cmu}/${V}/slide.dzi`, { headers: { 'If-None-Match': dzi.headers.get('etag') as string } })).status).toBe(304);
  });

  it('a second request for a tile is served from the cache', async () => {
    const path = `/tiles/${ID.ndpi}/${V}/slide_files/9/0_1.jpeg`;
    const a = await getBody(path);
    const before = service.cache.stats().hits;
    reads[ID.ndpi]!.length = 0;
    const b = await getBody(path);
    expect(b.equals(a)).toBe(true);
    expect(service.cache.stats().hits).toBe(before + 1);
    expect(reads[ID.ndpi]).toEqual([]);
  });

  it('404 for an unknown id, a stale version, a missing heatmap and tiles outside the pyramid', async () => {
    const cases = [
      `/tiles/${ID.unknown}/${V}/slide.dzi`,
      `/tiles/${ID.unknown}/${V}/slide_files/0/0_0.jpeg`,
      `/tiles/${ID.cmu}/0123/slide.dzi`,
      `/tiles/${ID.cmu}/0123/slide_files/12/0_0.jpeg`,
      `/tiles/${ID.cmu}/${V}/slide_files/13/0_0.jpeg`,
      `/tiles/${ID.cmu}/${V}/slide_files/12/9_0.jpeg`,
      `/tiles/${ID.cmu}/${V}/slide_files/12/0_12.jpeg`,
      `/tiles/${ID.cmu}/${V}/slide_files/999999999/0_0.jpeg`,
      `/tiles/${ID.cmu}/${HV}/heatmap.dzi`, // no heatmap yet
      `/tiles/${ID.cmu}/${HV}/heatmap_files/0/0_0.png`,
      `/tiles/${ID.heat}/${V}/heatmap.dzi`, // the slide's version is not the heatmap's
      `/tiles/${ID.heat}/${HV}/heatmap_files/12/0_0.png`,
      `/tiles/${ID.heat}/${HV}/heatmap_files/11/8_0.png`,
      `/tiles/${ID.heat}/${HV}/heatmap_files/11/0_5.png`,
    ];
    for (const path of cases) {
      const res = await get(path);
      expect(res.status, path).toBe(404);
      const body = (await res.json()) as { error: string; message: string };
      expect(body.error, path).toBe('not-found');
      expect(body.message.length, path).toBeGreaterThan(5);
    }
  });

  it('400 for traversal, absolute paths and non-numeric values in every parameter', async () => {
    const ok = { id: ID.cmu, version: V, level: '12', tile: '0_0.jpeg' };
    const bad: Record<keyof typeof ok, string[]> = {
      id: ['..%2F..%2Fetc%2Fpasswd', '%2Fetc%2Fpasswd', '%2E%2E%2F', `${ID.cmu}x`, ID.cmu.toUpperCase(), 'c1', `..%2F${ID.cmu}`],
      version: ['..%2F..', '%2Ftmp', 'ABCDEF', 'xyz', `${V}%2F..`, '0'.repeat(65)],
      level: ['..%2F12', '%2F12', '-1', '1.5', 'abc', '12a', '0x1', '%2012', '1e3', '1234567890'],
      tile: ['..%2F0_0.jpeg', '%2Fetc%2F0_0.jpeg', '0_0.png', '0_0', 'a_0.jpeg', '0_b.jpeg', '0_-1.jpeg', '0-0.jpeg', '0_0.jpeg%00', '0_0.jpeg.png', '00_0.JPEG'],
    };
    for (const [param, values] of Object.entries(bad) as [keyof typeof ok, string[]][]) {
      for (const v of values) {
        const p = { ...ok, [param]: v };
        for (const path of [`/tiles/${p.id}/${p.version}/slide_files/${p.level}/${p.tile}`, ...(param === 'id' || param === 'version' ? [`/tiles/${p.id}/${p.version}/slide.dzi`, `/tiles/${p.id}/${p.version}/heatmap.dzi`] : [])]) {
          const res = await get(path);
          expect(res.status, path).toBe(400);
          const body = (await res.json()) as { error: string; message: string };
          expect(body.error, path).toBe('bad-request');
          expect(typeof body.message).toBe('string');
        }
      }
    }
    const res = await get(`/tiles/${ID.heat}/${HV}/heatmap_files/11/0_0.jpeg`);
    expect(res.status).toBe(400);
    // The valid request beside them works.
    expect((await get(`/tiles/${ok.id}/${ok.version}/slide_files/${ok.level}/${ok.tile}`)).status).toBe(200);
  });

  it('slide errors are 422 (unreadable) and 404 (file gone) with their message, not 500', async () => {
    expect((await get(`/tiles/${ID.corrupt}/${V}/slide.dzi`)).status).toBe(200);
    const corrupt = await get(`/tiles/${ID.corrupt}/${V}/slide_files/0/0_0.jpeg`);
    expect(corrupt.status).toBe(422);
    expect(corrupt.headers.get('cache-control')).toBeNull();
    expect(((await corrupt.json()) as { message: string }).message).toContain('damaged TIFF');
    const badHeat = await get(`/tiles/${ID.badHeat}/${HV}/heatmap_files/0/0_0.png`);
    expect(badHeat.status).toBe(422);
    expect(((await badHeat.json()) as { message: string }).message).toContain('5 values');
    const missing = await get(`/tiles/${ID.missing}/${V}/slide.dzi`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { message: string }).message).toContain('no such file');
  });

  it('a request aborted while queued is dropped without rendering', async () => {
    // Warm the slow target's size, then hold its renders at the gate (the pool runs 1 at a time).
    await getBody(`/tiles/${ID.slow}/${V}/slide.dzi`);
    slowGate = new Promise((resolve) => (releaseSlow = resolve));
    const original = slowTarget.withSource.bind(slowTarget);
    slowTarget.withSource = (use) => original((s) => {
      slowRendered.push('render');
      return use(s);
    });
    const dropped = service.pool.stats().dropped;
    const first = get(`/tiles/${ID.slow}/${V}/slide_files/12/0_0.jpeg`);
    await until(() => service.pool.stats().running === 1);
    const ac = new AbortController();
    const second = get(`/tiles/${ID.slow}/${V}/slide_files/12/1_0.jpeg`, { signal: ac.signal }).catch((err: unknown) => err);
    await until(() => service.pool.stats().queued === 1);
    ac.abort();
    await until(() => service.pool.stats().dropped === dropped + 1);
    expect(service.pool.stats().queued).toBe(0);
    releaseSlow();
    const firstRes = await first;
    expect(firstRes.status).toBe(200);
    await firstRes.arrayBuffer();
    expect(await second).toBeInstanceOf(Error);
    expect(slowRendered).toEqual(['render']); // only the first tile was rendered
  });
});

async function until(cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 5));
  }
}

// --- heatmap tiles -------------------------------------------------------------------------------

describe('heatmap tiles', () => {
  const { grid, meta } = HEAT;
  const q = heatmapQuantisation(meta.min, meta.max);

  async function heatTile(level: number, col: number, row: number): Promise<{ data: Buffer; width: number; height: number }> {
    const res = await get(`/tiles/${ID.heat}/${HV}/heatmap_files/${level}/${col}_${row}.png`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    const png = Buffer.from(await res.arrayBuffer());
    expect(png[25], 'PNG colour type: grey + alpha').toBe(4);
    // sharp hands grey + alpha back as RGBA with R = G = B = grey (exactly): take grey and alpha.
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect(info.channels).toBe(4);
    const ga = Buffer.alloc(info.width * info.height * 2);
    for (let i = 0; i < info.width * info.height; i++) {
      ga[2 * i] = data[4 * i] as number;
      ga[2 * i + 1] = data[4 * i + 3] as number;
    }
    return { data: ga, width: info.width, height: info.height };
  }

  const cellAt = (x: number, y: number): number | null => {
    const c = Math.floor((x - meta.originX) / meta.patchSizeLevel0);
    const r = Math.floor((y - meta.originY) / meta.patchSizeLevel0);
    return c < 0 || r < 0 || c >= meta.cols || r >= meta.rows ? null : (grid[r * meta.cols + c] as number);
  };

  it('descriptor has the slide\'s size and geometry; info carries quantisation and histogram', async () => {
    const d = parseDzi(await (await get(`/tiles/${ID.heat}/${HV}/heatmap.dzi`)).text());
    expect([d.Width, d.Height, d.TileSize, d.Overlap, d.Format]).toEqual(['1850', '1230', '256', '0', 'png']);
    const info = await heatmapInfo(slideTarget(ID.heat, () => sources.cmu, true));
    expect(info).not.toBeNull();
    expect(info?.dzi).toEqual({ url: `/tiles/${ID.heat}/${HV}/heatmap.dzi`, width: 1850, height: 1230, tileSize: 256, overlap: 0, format: 'png' });
    expect(info?.offset).toBe(0.1);
    expect(info?.scale).toBeCloseTo(9.9 / 255, 12);
    expect([info?.min, info?.max, info?.threshold, info?.rows, info?.cols, info?.cellSize, info?.originX, info?.originY]).toEqual([0.1, 10, 3, 60, 90, 20, 10, 6]);
    const expected = new Array<number>(64).fill(0);
    for (const v of grid) if (Number.isFinite(v)) expected[Math.min(63, Math.floor(((v - 0.1) / 9.9) * 64))]! += 1;
    expect(info?.histogram).toEqual(expected);
    expect(info?.histogram.reduce((a, b) => a + b, 0)).toBe(60 * 90 - 150);
    expect(await heatmapInfo(slideTarget(ID.cmu, () => sources.cmu))).toBeNull();
  });

  it.each([[11, 0, 0], [11, 2, 1], [11, 7, 4], [9, 0, 0], [9, 1, 1], [7, 0, 0]] as const)(
    'level %i tile %i_%i: the cell under each pixel\'s centre within one quantisation step, alpha 0 off tissue',
    async (level, col, row) => {
      const g = new DeepZoomGeometry(meta.width, meta.height);
      const t = g.requireTile(level, col, row);
      const tile = await heatTile(level, col, row);
      expect([tile.width, tile.height]).toEqual([t.rect.width, t.rect.height]);
      let scored = 0;
      let empty = 0;
      for (let j = 0; j < tile.height; j++) {
        for (let i = 0; i < tile.width; i++) {
          const v = cellAt((t.rect.x + i + 0.5) * t.downsample, (t.rect.y + j + 0.5) * t.downsample);
          const grey = tile.data[(j * tile.width + i) * 2] as number;
          const alpha = tile.data[(j * tile.width + i) * 2 + 1] as number;
          if (v === null || Number.isNaN(v)) {
            expect(alpha).toBe(0);
            empty++;
          } else {
            expect(alpha).toBe(255);
            expect(Math.abs(q.offset + grey * q.scale - v)).toBeLessThanOrEqual(q.scale / 2 + 1e-6);
            scored++;
          }
        }
      }
      expect(scored).toBeGreaterThan(0);
      if (level === 11 && col === 0 && row === 0) expect(empty).toBeGreaterThan(0); // the margin before the origin
    },
  );

  it('NaN cells are transparent at the finest level', async () => {
    // Cell (15, 37) is NaN: level-0 x = 10 + 37 * 20 + 10 = 760, y = 6 + 15 * 20 + 10 = 316, tile 2_1.
    const tile = await heatTile(11, 2, 1);
    const i = 760 - 512;
    const j = 316 - 256;
    expect(tile.data[(j * tile.width + i) * 2 + 1]).toBe(0);
  });

  it('coarse levels take the max of the cells under each pixel, so the hot spot survives', async () => {
    const g = new DeepZoomGeometry(meta.width, meta.height);
    for (const level of [5, 4, 3, 1, 0]) {
      const ds = g.downsample(level);
      const tile = await heatTile(level, 0, 0);
      const size = g.levelSize(level);
      expect([tile.width, tile.height]).toEqual([size.width, size.height]);
      for (let py = 0; py < size.height; py++) {
        for (let px = 0; px < size.width; px++) {
          // Brute force: every cell the pixel's level-0 square touches.
          let m = -Infinity;
          const x0 = px * ds;
          const x1 = Math.min((px + 1) * ds, meta.width);
          const y0 = py * ds;
          const y1 = Math.min((py + 1) * ds, meta.height);
          for (let r = 0; r < meta.rows; r++) {
            const cy0 = meta.originY + r * 20;
            if (cy0 >= y1 || cy0 + 20 <= y0) continue;
            for (let c = 0; c < meta.cols; c++) {
              const cx0 = meta.originX + c * 20;
              if (cx0 >= x1 || cx0 + 20 <= x0) continue;
              const v = grid[r * meta.cols + c] as number;
              if (Number.isFinite(v) && v > m) m = v;
            }
          }
          const o = (py * tile.width + px) * 2;
          if (m === -Infinity) {
            expect(tile.data[o + 1], `level ${level} (${px}, ${py})`).toBe(0);
          } else {
            expect(tile.data[o + 1], `level ${level} (${px}, ${py})`).toBe(255);
            expect(tile.data[o], `level ${level} (${px}, ${py})`).toBe(Math.round((m - q.offset) / q.scale));
          }
        }
      }
      // The hot cell (40, 70) at level-0 (1410..1430, 806..826).
      const hx = Math.floor(1415 / ds);
      const hy = Math.floor(816 / ds);
      expect(tile.data[(hy * tile.width + hx) * 2], `level ${level}`).toBe(255);
    }
  });

  it('the tiler alone: nearest where a cell covers a pixel, max coarser; out-of-range tiles are null', () => {
    const tiler = new HeatmapTiler(grid, meta);
    expect(tiler.isNearestLevel(7)).toBe(true); // downsample 16 <= 20
    expect(tiler.isNearestLevel(6)).toBe(false); // 32 > 20
    expect(tiler.tilePixels(12, 0, 0)).toBeNull();
    expect(tiler.tilePixels(11, 8, 0)).toBeNull();
    const top = tiler.tilePixels(0, 0, 0);
    expect(top && [...top.data]).toEqual([255, 255]);
    // No tissue at all: every pixel transparent, quantisation 0 + q * 1.
    const empty = new HeatmapTiler(new Float32Array(6).fill(Number.NaN), { ...meta, rows: 2, cols: 3, min: null, max: null });
    expect(empty.quantisation).toEqual({ offset: 0, scale: 1 });
    expect(empty.histogram().every((n) => n === 0)).toBe(true);
    expect([...(empty.tilePixels(0, 0, 0)?.data ?? [])]).toEqual([0, 0]);
    expect(heatmapQuantisation(2, 2)).toEqual({ offset: 2, scale: 1 });
  });

  it('a 2500 x 2500 grid: coarse tiles are fast after one pyramid build', async () => {
    const rows = 2500;
    const cols = 2500;
    const big = new Float32Array(rows * cols);
    for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) % 1000 / 1000;
    const tiler = new HeatmapTiler(big, { ...meta, rows, cols, patchSizeLevel0: 16, originX: 0, originY: 0, width: 40000, height: 40000, min: 0, max: 1 });
    const t0 = performance.now();
    await tiler.renderTile(8, 0, 0);
    const build = performance.now() - t0;
    const t1 = performance.now();
    for (let level = 0; level <= 11; level++) await tiler.renderTile(level, 0, 0);
    const coarse = (performance.now() - t1) / 12;
    const t2 = performance.now();
    for (let k = 0; k < 20; k++) await tiler.renderTile(16, 60 + k, 70);
    const fine = (performance.now() - t2) / 20;
    expect(build).toBeLessThan(3000);
    expect(coarse).toBeLessThan(50);
    expect(fine).toBeLessThan(50);
  });
});

// --- cache and pool ----------------------------------------------------------------------------

describe('tile cache', () => {
  it('evicts the least recently used tiles by bytes, not count', () => {
    const cache = new TileCache({ maxBytes: 1000 });
    cache.set('a', Buffer.alloc(400));
    cache.set('b', Buffer.alloc(400));
    expect(cache.get('a')?.length).toBe(400); // a is now the most recent
    cache.set('c', Buffer.alloc(300)); // 1100 > 1000: b goes
    expect(cache.has('b')).toBe(false);
    expect(cache.has('a') && cache.has('c')).toBe(true);
    expect(cache.stats()).toMatchObject({ bytes: 700, entries: 2, evictions: 1, hits: 1 });
    for (let i = 0; i < 40; i++) cache.set(`small${i}`, Buffer.alloc(10)); // 400 bytes of small tiles: a goes
    expect(cache.has('a')).toBe(false);
    expect(cache.stats().bytes).toBeLessThanOrEqual(1000);
    expect(cache.get('nope')).toBeUndefined();
    expect(cache.stats().misses).toBe(1);
    cache.set('huge', Buffer.alloc(2000));
    expect(cache.has('huge')).toBe(false);
    cache.set('c', Buffer.alloc(100)); // replacing counts the new size only
    expect(cache.stats().bytes).toBe(100 + 400);
  });
});

describe('render pool', () => {
  it('runs at most `concurrency` tasks, drops aborted queued work, shares identical keys', async () => {
    const pool = new RenderPool<string>({ concurrency: 2 });
    const started: string[] = [];
    let active = 0;
    let peak = 0;
    const gates = new Map<string, () => void>();
    const task = (k: string) => () =>
      new Promise<string>((resolve) => {
        started.push(k);
        active++;
        peak = Math.max(peak, active);
        gates.set(k, () => {
          active--;
          resolve(k);
        });
      });
    const a = pool.run('a', task('a'));
    const b = pool.run('b', task('b'));
    const ac = new AbortController();
    const c = pool.run('c', task('c'), ac.signal);
    const d = pool.run('d', task('d'));
    const d2 = pool.run('d', task('d-again'));
    expect(started).toEqual(['a', 'b']);
    ac.abort();
    await expect(c).rejects.toBeInstanceOf(AbortError);
    gates.get('a')?.();
    expect(await a).toBe('a');
    await until(() => started.length === 3);
    expect(started).toEqual(['a', 'b', 'd']);
    gates.get('b')?.();
    gates.get('d')?.();
    expect(await Promise.all([b, d, d2])).toEqual(['b', 'd', 'd']);
    expect(peak).toBe(2);
    expect(pool.stats()).toMatchObject({ dropped: 1, shared: 1, started: 3, running: 0, queued: 0 });
    // An already aborted signal never queues; a task failure reaches every waiter.
    await expect(pool.run('e', task('e'), AbortSignal.abort())).rejects.toBeInstanceOf(AbortError);
    const boom = () => Promise.reject(new Error('boom'));
    await expect(Promise.all([pool.run('f', boom), pool.run('f', boom)])).rejects.toThrow('boom');
  });

  it('a shared render survives one of its callers aborting', async () => {
    const pool = new RenderPool<number>({ concurrency: 1 });
    let release: () => void = () => {};
    const blocker = pool.run('block', () => new Promise<number>((r) => (release = () => r(0))));
    let runs = 0;
    const ac = new AbortController();
    const x = pool.run('k', async () => ++runs, ac.signal);
    const y = pool.run('k', async () => ++runs);
    ac.abort();
    await expect(x).rejects.toBeInstanceOf(AbortError);
    release();
    await blocker;
    expect(await y).toBe(1);
    expect(runs).toBe(1);
  });
});
