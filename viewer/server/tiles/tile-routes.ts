/**
 * The Deep Zoom routes of the review server: the slide and its heatmap as two aligned tile
 * pyramids that OpenSeadragon reads directly.
 *
 *   GET /tiles/:id/:version/slide.dzi                          GET /tiles/:id/:version/heatmap.dzi
 *   GET /tiles/:id/:version/slide_files/:level/:col_:row.jpeg  GET /tiles/:id/:version/heatmap_files/:level/:col_:row.png
 *
 * URLs carry a version (the slide's content fingerprint, the heatmap's result version), so a tile
 * never changes under its URL: it is sent with an ETag and cached by browsers for a year. Nothing
 * from the URL reaches the filesystem: the id is looked up through `lookup`, every parameter is
 * checked against a strict pattern (400 otherwise), and unknown ids, stale versions and tiles
 * outside the pyramid are 404; an unreadable slide or heatmap is 422 with the reason. Renders go
 * through a bounded pool with a byte-bounded cache in front.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { SlideError, firstLine } from '../../../worker/slide/errors.js';
import type { SlideSource } from '../../../worker/slide/slide-source.js';
import { StoreError } from '../../../worker/store/errors.js';
import type { HeatmapMeta } from '../../../worker/store/heatmap-json.js';
import type { DziInfo, HeatmapInfo } from '../api-types.js';
import { DEEP_ZOOM_DEFAULTS, DeepZoomGeometry, type DeepZoomTile } from './deep-zoom.js';
import { HeatmapDataError, HeatmapTiler } from './heatmap-tiler.js';
import { AbortError, RenderPool } from './render-pool.js';
import { SLIDE_TILER_DEFAULTS, SlideTileRenderer, type SlideTileFormat } from './slide-tiler.js';
import { renderThumbnail } from '../../../worker/slide/thumbnail.js';
import { TILE_CACHE_DEFAULTS, TileCache } from './tile-cache.js';

export interface TileTarget {
  /** Analysis id, /^[0-9a-f]{24}$/. */
  id: string;
  /** Version of the slide tiles' URLs, e.g. the first 16 hex characters of the slide's content fingerprint. */
  slideVersion: string;
  /** Changes when the result is recomputed; null: no heatmap yet. */
  heatmapVersion: string | null;
  /** Opens (or reuses) the slide; throws (a SlideError) when it is unreadable. */
  withSource<T>(use: (s: SlideSource) => Promise<T>): Promise<T>;
  heatmap(): Promise<{ grid: Float32Array; meta: HeatmapMeta } | null>;
}

/** What the descriptors and thumbnails depend on; the routes take the same. */
export interface TileInfoOptions {
  tileSize?: number;
  overlap?: number;
  jpegQuality?: number;
  slideFormat?: SlideTileFormat;
  /** Prefix of the descriptor URLs in DziInfo (e.g. 'https://host'); '' gives absolute paths. */
  baseUrl?: string;
  /** Cut slide tiles in the size the file stores its JPEG tiles in (overlap 0 only), so they are sent as stored. */
  followStoredTiles?: boolean;
}

export interface TileRouteOptions extends TileInfoOptions {
  lookup(id: string): Promise<TileTarget | null>;
  /** Bytes of encoded tiles kept in memory. */
  cacheBytes?: number;
  /**
   * Tile renders at once. Default 4 per core: a render spends much of its time handing work
   * between the main thread, libuv's pool and libvips, so with one render per core the cores
   * idle (bench/tiles.mjs, 2 cores, cold tiles/s: 523 at 2 renders, 654 at 4, 754-865 at 8,
   * 837 at 16); decoding itself stays bounded by libuv's pool.
   */
  concurrency?: number;
  /** Slide tiles are read in blocks of blockTiles x blockTiles tiles (1: each alone); see SlideTileRenderer. */
  blockTiles?: number;
  /** Bytes of decoded blocks kept. */
  blockCacheBytes?: number;
}

const INFO_DEFAULTS: Readonly<Required<TileInfoOptions>> = {
  tileSize: DEEP_ZOOM_DEFAULTS.tileSize,
  overlap: DEEP_ZOOM_DEFAULTS.overlap,
  jpegQuality: SLIDE_TILER_DEFAULTS.quality,
  slideFormat: SLIDE_TILER_DEFAULTS.format,
  baseUrl: '',
  followStoredTiles: true,
};

export const TILE_ROUTE_DEFAULTS = { ...INFO_DEFAULTS, cacheBytes: TILE_CACHE_DEFAULTS.maxBytes, rendersPerCore: 4 } as const;

/** Slides whose size is remembered, and heatmaps kept decoded for tiling (each holds a few arrays of its grid's size). */
const GEOMETRY_ENTRIES = 1024;
const HEATMAP_ENTRIES = 4;

function infoOptions(options: TileInfoOptions): Required<TileInfoOptions> {
  const o: Required<TileInfoOptions> = { ...INFO_DEFAULTS };
  for (const k of Object.keys(INFO_DEFAULTS) as (keyof TileInfoOptions)[]) {
    if (options[k] !== undefined) Object.assign(o, { [k]: options[k] });
  }
  return o;
}

/** A Map used as a small LRU of promises; a rejected promise is forgotten so the next call retries. */
class PromiseLru<V> {
  private readonly map = new Map<string, Promise<V>>();
  constructor(private readonly max: number) {}

  get(key: string, make: () => Promise<V>): Promise<V> {
    const hit = this.map.get(key);
    if (hit !== undefined) {
      this.map.delete(key);
      this.map.set(key, hit);
      return hit;
    }
    const p = make();
    this.map.set(key, p);
    p.catch(() => {
      if (this.map.get(key) === p) this.map.delete(key);
    });
    for (const k of this.map.keys()) {
      if (this.map.size <= this.max) break;
      this.map.delete(k);
    }
    return p;
  }
}

// Shared by every route instance and the info functions: keyed by id and version, whose contents never change.
const slideSizes = new PromiseLru<{ width: number; height: number; stored: { width: number; height: number } | null }>(GEOMETRY_ENTRIES);

/** Stored tile sizes the Deep Zoom grid may adopt: square, and neither tiny (many requests) nor huge. */
const ADOPTABLE_TILE = { min: 128, max: 1024 } as const;

/**
 * The slide's Deep Zoom tile size: the size the file stores its level-0 JPEG tiles in when it is
 * square and sensible (240 for Aperio, 256 for libvips), so most tiles are the stored bytes (see
 * storedTile); else the configured one. OpenSeadragon takes any tile size from the descriptor.
 */
function slideTileSize(stored: { width: number; height: number } | null, o: Required<TileInfoOptions>): number {
  // Stored tiles are reused only as JPEG: for WebP the configured size is as good as any.
  if (!o.followStoredTiles || o.slideFormat !== 'jpeg' || stored === null || stored.width !== stored.height) return o.tileSize;
  return stored.width >= ADOPTABLE_TILE.min && stored.width <= ADOPTABLE_TILE.max ? stored.width : o.tileSize;
}
const heatmapTilers = new PromiseLru<HeatmapTiler | null>(HEATMAP_ENTRIES);

async function slideGeometry(target: TileTarget, o: Required<TileInfoOptions>): Promise<DeepZoomGeometry> {
  const size = await slideSizes.get(`${target.id}/${target.slideVersion}`, () =>
    target.withSource(async (s) => ({ width: s.width, height: s.height, stored: s.storedTileSize?.(0) ?? null })),
  );
  return new DeepZoomGeometry(size.width, size.height, { tileSize: slideTileSize(size.stored, o), overlap: o.overlap });
}

/** The heatmap's tiler, or null when the target has no heatmap. */
async function heatmapTiler(target: TileTarget, o: Required<TileInfoOptions>): Promise<HeatmapTiler | null> {
  const version = target.heatmapVersion;
  if (version === null) return null;
  return heatmapTilers.get(`${target.id}/${version}/${o.tileSize}/${o.overlap}`, async () => {
    const h = await target.heatmap();
    return h === null ? null : new HeatmapTiler(h.grid, h.meta, { tileSize: o.tileSize, overlap: o.overlap });
  });
}

function tilesUrl(o: Required<TileInfoOptions>, id: string, version: string, name: string): string {
  return `${o.baseUrl}/tiles/${id}/${version}/${name}`;
}

/** The slide's Deep Zoom descriptor for the API (opens the slide once to learn its size). */
export async function dziInfo(target: TileTarget, options: TileInfoOptions = {}): Promise<DziInfo> {
  const o = infoOptions(options);
  const g = await slideGeometry(target, o);
  return { url: tilesUrl(o, target.id, target.slideVersion, 'slide.dzi'), width: g.width, height: g.height, tileSize: g.tileSize, overlap: g.overlap, format: o.slideFormat };
}

/** The heatmap's descriptor, quantisation and histogram for the API; null when there is no heatmap. */
export async function heatmapInfo(target: TileTarget, options: TileInfoOptions = {}): Promise<HeatmapInfo | null> {
  const o = infoOptions(options);
  const tiler = await heatmapTiler(target, o);
  if (tiler === null || target.heatmapVersion === null) return null;
  const { meta, geometry: g } = tiler;
  return {
    dzi: { url: tilesUrl(o, target.id, target.heatmapVersion, 'heatmap.dzi'), width: g.width, height: g.height, tileSize: g.tileSize, overlap: g.overlap, format: 'png' },
    offset: tiler.quantisation.offset,
    scale: tiler.quantisation.scale,
    min: tiler.min ?? 0,
    max: tiler.max ?? 0,
    threshold: Number.isFinite(meta.threshold) ? meta.threshold : null,
    histogram: [...tiler.histogram()],
    rows: meta.rows,
    cols: meta.cols,
    cellSize: meta.patchSizeLevel0,
    originX: meta.originX,
    originY: meta.originY,
  };
}

/** A JPEG of the whole slide, longer side maxSide (never enlarged). */
export async function slideThumbnail(target: TileTarget, maxSide: number, options: TileInfoOptions = {}): Promise<Buffer> {
  const o = infoOptions(options);
  return target.withSource((s) => renderThumbnail(s, maxSide, { quality: o.jpegQuality }));
}

// --- routes ----------------------------------------------------------------------------------

const ID = '^[0-9a-f]{24}$';
const VERSION = '^[0-9a-f]{1,64}$';
const INDEX = '[0-9]{1,9}';

const DziParams = Type.Object({ id: Type.String({ pattern: ID }), version: Type.String({ pattern: VERSION }) });
const tileParams = (ext: string) =>
  Type.Object({
    id: Type.String({ pattern: ID }),
    version: Type.String({ pattern: VERSION }),
    level: Type.String({ pattern: `^${INDEX}$` }),
    tile: Type.String({ pattern: `^${INDEX}_${INDEX}\\.${ext}$` }),
  });

const IMMUTABLE = 'public, max-age=31536000, immutable';
const CONTENT_TYPES: Record<SlideTileFormat | 'png', string> = { jpeg: 'image/jpeg', webp: 'image/webp', png: 'image/png' };

/** A reply the routes send on purpose: 4xx with { error, message }. */
class TileHttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

const notFound = (message: string): TileHttpError => new TileHttpError(404, 'not-found', message);

export interface TileService {
  readonly cache: TileCache;
  readonly pool: RenderPool<Buffer>;
  readonly renderer: SlideTileRenderer;
}

/** Registers the tile routes on `app` (no encapsulation: they share the app's hooks and logger). */
export function registerTileRoutes(fastify: FastifyInstance, options: TileRouteOptions): TileService {
  const o = infoOptions(options);
  const cache = new TileCache({ maxBytes: options.cacheBytes ?? TILE_ROUTE_DEFAULTS.cacheBytes });
  const pool = new RenderPool<Buffer>({ concurrency: options.concurrency ?? TILE_ROUTE_DEFAULTS.rendersPerCore * availableParallelism() });
  const renderer = new SlideTileRenderer({
    format: o.slideFormat,
    quality: o.jpegQuality,
    ...(options.blockTiles === undefined ? {} : { blockTiles: options.blockTiles }),
    ...(options.blockCacheBytes === undefined ? {} : { blockCacheBytes: options.blockCacheBytes }),
  });
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const slideExt = o.slideFormat;

  async function target(id: string): Promise<TileTarget> {
    const t = await options.lookup(id);
    if (t === null) throw notFound(`no slide with analysis id ${id}`);
    return t;
  }

  function checkVersion(version: string, current: string | null, what: string): void {
    if (current === null) throw notFound(`this slide has no ${what} yet`);
    if (version !== current) throw notFound(`${what} version ${version} is not the current one (${current}); reload the slide`);
  }

  function parseTile(tile: string): [number, number] {
    const m = /^(\d+)_(\d+)\./.exec(tile);
    return [Number(m?.[1]), Number(m?.[2])];
  }

  function requireTile(g: DeepZoomGeometry, level: number, col: number, row: number): DeepZoomTile {
    const t = g.tile(level, col, row);
    if (t !== null) return t;
    if (!g.hasLevel(level)) throw notFound(`level ${level} does not exist (levels 0..${g.maxLevel})`);
    const { cols, rows } = g.tileGrid(level);
    throw notFound(`tile ${col}_${row} does not exist at level ${level} (columns 0..${cols - 1}, rows 0..${rows - 1})`);
  }

  /** Sends the tile with its caching headers, or 304; renders through the cache and pool. */
  async function sendTile(req: FastifyRequest, reply: FastifyReply, key: string, type: string, render: () => Promise<Buffer>): Promise<FastifyReply> {
    const etag = `"${createHash('sha1').update(key).digest('hex').slice(0, 24)}"`;
    if (etagMatches(req.headers['if-none-match'], etag)) return reply.code(304).header('ETag', etag).header('Cache-Control', IMMUTABLE).send();
    let body = cache.get(key);
    if (body === undefined) {
      body = await pool.run(
        key,
        async () => {
          const b = await render();
          cache.set(key, b);
          return b;
        },
        closeSignal(req, reply),
      );
    }
    // Caching headers only now: a failed render must not be cached for a year.
    return reply.header('ETag', etag).header('Cache-Control', IMMUTABLE).type(type).send(body);
  }

  const handle =
    <P>(fn: (params: P, req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>) =>
    async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      if (req.validationError !== undefined) {
        return reply.code(400).send({ error: 'bad-request', message: `malformed tile URL: ${req.validationError.message}` });
      }
      try {
        return await fn(req.params as P, req, reply);
      } catch (err) {
        if (err instanceof TileHttpError) return reply.code(err.statusCode).send({ error: err.code, message: err.message });
        if (err instanceof SlideError) {
          const status = err.code === 'not_found' ? 404 : 422;
          return reply.code(status).send({ error: status === 404 ? 'not-found' : 'unreadable', message: firstLine(err) });
        }
        if (err instanceof HeatmapDataError || err instanceof StoreError) {
          return reply.code(422).send({ error: 'unreadable', message: `the heatmap of this slide cannot be read: ${firstLine(err)}` });
        }
        if (err instanceof AbortError) return reply.code(499).send();
        throw err;
      }
    };

  type DziP = { id: string; version: string };
  type TileP = DziP & { level: string; tile: string };

  app.get(
    '/tiles/:id/:version/slide.dzi',
    { schema: { params: DziParams }, attachValidation: true },
    handle<DziP>(async ({ id, version }, req, reply) => {
      const t = await target(id);
      checkVersion(version, t.slideVersion, 'slide');
      const g = await slideGeometry(t, o);
      return sendDzi(req, reply, `slide.dzi/${id}/${version}/${g.tileSize}/${o.overlap}/${slideExt}`, g.dziXml(slideExt));
    }),
  );

  app.get(
    `/tiles/:id/:version/slide_files/:level/:tile`,
    { schema: { params: tileParams(slideExt) }, attachValidation: true },
    handle<TileP>(async ({ id, version, level, tile }, req, reply) => {
      const [col, row] = parseTile(tile);
      const t = await target(id);
      checkVersion(version, t.slideVersion, 'slide');
      const g = await slideGeometry(t, o);
      const dz = requireTile(g, Number(level), col, row);
      const key = `slide/${id}/${version}/${g.tileSize}/${o.overlap}/${o.jpegQuality}/${dz.level}/${col}_${row}.${slideExt}`;
      return sendTile(req, reply, key, CONTENT_TYPES[slideExt], () =>
        t.withSource((s) => renderer.render(`${id}/${version}`, s, g, dz)),
      );
    }),
  );

  app.get(
    '/tiles/:id/:version/heatmap.dzi',
    { schema: { params: DziParams }, attachValidation: true },
    handle<DziP>(async ({ id, version }, req, reply) => {
      const t = await target(id);
      checkVersion(version, t.heatmapVersion, 'heatmap');
      const tiler = await heatmapTiler(t, o);
      if (tiler === null) throw notFound('this slide has no heatmap');
      return sendDzi(req, reply, `heatmap.dzi/${id}/${version}/${o.tileSize}/${o.overlap}`, tiler.geometry.dziXml('png'));
    }),
  );

  app.get(
    '/tiles/:id/:version/heatmap_files/:level/:tile',
    { schema: { params: tileParams('png') }, attachValidation: true },
    handle<TileP>(async ({ id, version, level, tile }, req, reply) => {
      const [col, row] = parseTile(tile);
      const t = await target(id);
      checkVersion(version, t.heatmapVersion, 'heatmap');
      const tiler = await heatmapTiler(t, o);
      if (tiler === null) throw notFound('this slide has no heatmap');
      const dz = requireTile(tiler.geometry, Number(level), col, row);
      const key = `heatmap/${id}/${version}/${o.tileSize}/${o.overlap}/${dz.level}/${col}_${row}.png`;
      return sendTile(req, reply, key, CONTENT_TYPES.png, async () => {
        const png = await tiler.renderTile(dz.level, col, row);
        if (png === null) throw notFound(`tile ${col}_${row} does not exist at level ${dz.level}`);
        return png;
      });
    }),
  );

  return { cache, pool, renderer };
}

function sendDzi(req: FastifyRequest, reply: FastifyReply, key: string, xml: string): FastifyReply {
  const etag = `"${createHash('sha1').update(key).digest('hex').slice(0, 24)}"`;
  void reply.header('ETag', etag).header('Cache-Control', IMMUTABLE);
  if (etagMatches(req.headers['if-none-match'], etag)) return reply.code(304).send();
  return reply.type('application/xml; charset=utf-8').send(xml);
}

/** If-None-Match: a list of (possibly weak) entity tags, or '*'. */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((t) => {
    const tag = t.trim();
    return tag === '*' || tag === etag || tag === `W/${etag}`;
  });
}

/** Fires when the client goes away before the response is complete (the viewer panned on). */
function closeSignal(req: FastifyRequest, reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  if (req.raw.socket.destroyed || reply.raw.destroyed) {
    ac.abort();
    return ac.signal;
  }
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  return ac.signal;
}
