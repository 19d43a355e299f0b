/**
 * Read-only routes of one slide: its detail (metadata, tile and heatmap descriptors, result
 * summary), a thumbnail for the worklist and its ranked anomalous regions.
 */
import { Type } from 'typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { RegionList, SlideDetail } from '../api-types.js';
import type { CatalogEntry } from '../catalog.js';
import { NotFoundError } from '../errors.js';
import type { ServerContext } from '../server-context.js';
import { dziInfo, heatmapInfo, slideThumbnail } from '../tiles/tile-routes.js';
import { IdParams } from './schemas.js';
import { firstLine } from '../../../worker/slide/errors.js';
import { reviewOf } from '../worklist.js';

export async function entryOr404(ctx: ServerContext, id: string): Promise<CatalogEntry> {
  const entry = await ctx.catalog.get(id);
  if (entry === null) throw new NotFoundError(`no slide with analysis id ${id} in ${ctx.catalog.dataDir}`);
  return entry;
}

function finite(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

export function registerSlideRoutes(fastify: FastifyInstance, ctx: ServerContext): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/api/slides/:id', { schema: { params: IdParams } }, async (req): Promise<SlideDetail> => {
    const entry = await entryOr404(ctx, req.params.id);
    let slide: SlideDetail['slide'] = null;
    let tiles: SlideDetail['tiles'] = null;
    let heatmap: SlideDetail['heatmap'] = null;
    let slideError: string | null = null;
    try {
      const target = await ctx.access.target(entry.id);
      if (target !== null) {
        const fingerprint = await ctx.access.fingerprint(entry.slidePath);
        slide = await target.withSource(async (s) => ({
          vendor: s.vendor,
          backend: s.backend,
          width: s.width,
          height: s.height,
          levels: s.levels.length,
          mpp: s.mpp?.x ?? null,
          objectivePower: s.objectivePower,
          fingerprint,
        }));
        tiles = await dziInfo(target, ctx.tileOptions);
        heatmap = await heatmapInfo(target, ctx.tileOptions);
      }
    } catch (err) {
      slideError = `the slide file ${entry.slidePath} cannot be read by this server: ${firstLine(err)}`;
    }
    const sum = entry.summary;
    const meta = (await ctx.catalog.heatmap(entry).catch(() => null))?.meta;
    // A slide whose file has no scale was analysed with --mpp/--fallback-mpp: show the heatmap's.
    if (slide !== null && slide.mpp === null && meta !== undefined) slide = { ...slide, mpp: meta.mpp };
    const review = await reviewOf(entry, ctx);
    return {
      id: entry.id,
      name: entry.name,
      status: entry.status,
      progress: entry.progress,
      reason: entry.reason,
      slide,
      tiles,
      slideError,
      heatmap,
      result:
        sum === null
          ? null
          : {
              score: sum.slideScore,
              threshold: finite(sum.threshold),
              tissueCells: sum.tissueCells,
              anomalousCells: sum.anomalousCells,
              regions: sum.regionsCount,
              model: sum.model,
              scoreMethod: sum.scoreMethod,
              scoreParams: { ...(meta?.scoreParams ?? {}) },
              createdAt: sum.createdAt ?? entry.updatedAt,
              timings: Object.fromEntries(Object.entries(sum.timings).filter((e): e is [string, number] => typeof e[1] === 'number')),
            },
      reviewState: review?.state ?? 'not-started',
    };
  });

  app.get('/api/slides/:id/thumbnail.jpg', { schema: { params: IdParams, querystring: Type.Object({ size: Type.Optional(Type.Integer({ minimum: 32, maximum: 1024 })) }) } }, async (req, reply) => {
    const entry = await entryOr404(ctx, req.params.id);
    const unreadable = (err: unknown): NotFoundError =>
      new NotFoundError(`no thumbnail: the slide file ${entry.slidePath} cannot be read (${firstLine(err)})`);
    const target = await ctx.access.target(entry.id).catch((err: unknown) => {
      throw unreadable(err);
    });
    if (target === null) throw new NotFoundError(`no slide with analysis id ${entry.id}`);
    const size = req.query.size ?? 256;
    const etag = `"thumb-${target.slideVersion}-${size}"`;
    if (req.headers['if-none-match'] === etag) return reply.code(304).header('ETag', etag).send();
    const jpeg = await slideThumbnail(target, size, ctx.tileOptions).catch((err: unknown) => {
      throw unreadable(err);
    });
    return reply.type('image/jpeg').header('ETag', etag).header('Cache-Control', 'private, max-age=3600').send(jpeg);
  });

  app.get('/api/slides/:id/regions', { schema: { params: IdParams } }, async (req): Promise<RegionList> => {
    const entry = await entryOr404(ctx, req.params.id);
    return { regions: await ctx.regions.regions(entry) };
  });
}
