/**
 * Report downloads, the same files `flashslide report` writes (worker/report/):
 *
 *   GET /api/slides/:id/report.(pdf|geojson|csv|json)[?paper=a4|letter&top=N]
 *   GET /api/reports/batch.zip?format=pdf|geojson|csv|json[&ids=<id>,<id>...]
 *   GET /api/reports/batch.(csv|json)[?ids=...]        the batch summary alone
 *
 * Without ids a batch is every slide of the worklist. Files are rendered on request (the review
 * changes as the pathologist works), streamed, and never cached.
 */
import { Type } from 'typebox';
import { PassThrough, type Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { CONTENT_TYPE, DEFAULT_REPORT_OPTIONS, MAX_TOP_REGIONS, type ReportFormat } from '../../../worker/report/report-options.js';
import { batchCsv, batchRows, batchZip, loadSubject, reportFileName, reportOptions, writeSlideReport, type ReportSubject } from '../../../worker/report/export-report.js';
import { jsonBatchReport, jsonText } from '../../../worker/report/json-report.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { ServerContext } from '../server-context.js';
import { allSubjects, subjectOf } from '../report-subjects.js';
import { entryOr404 } from './slide-routes.js';

const FORMAT = Type.Union([Type.Literal('pdf'), Type.Literal('geojson'), Type.Literal('csv'), Type.Literal('json')]);
const PAPER = Type.Union([Type.Literal('a4'), Type.Literal('letter')]);

const SlideReportParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{24}$' }), format: FORMAT });
const SlideReportQuery = Type.Object({ paper: Type.Optional(PAPER), top: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_TOP_REGIONS })) }, { additionalProperties: false });
const IDS = '^[0-9a-f]{24}(,[0-9a-f]{24}){0,999}$';
const BatchZipQuery = Type.Object(
  { format: FORMAT, ids: Type.Optional(Type.String({ pattern: IDS })), paper: Type.Optional(PAPER), top: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_TOP_REGIONS })) },
  { additionalProperties: false },
);
const BatchSummaryParams = Type.Object({ format: Type.Union([Type.Literal('csv'), Type.Literal('json')]) });
const BatchSummaryQuery = Type.Object({ ids: Type.Optional(Type.String({ pattern: IDS })) }, { additionalProperties: false });

/** attachment; filename="ascii" plus RFC 5987 filename* for names outside ASCII. */
export function attachment(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

function download(reply: FastifyReply, name: string, contentType: string, body: Readable | string): FastifyReply {
  return reply.header('Content-Type', contentType).header('Content-Disposition', attachment(name)).header('Cache-Control', 'no-store').send(body);
}

async function batchSubjects(ctx: ServerContext, ids: string | undefined): Promise<ReportSubject[]> {
  if (ids === undefined) return allSubjects(ctx.catalog);
  const out: ReportSubject[] = [];
  for (const id of new Set(ids.split(','))) out.push(subjectOf(await entryOr404(ctx, id)));
  return out;
}

const today = (): string => new Date().toISOString().slice(0, 10);

export function registerReportRoutes(fastify: FastifyInstance, ctx: ServerContext): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/api/slides/:id/report.:format', { schema: { params: SlideReportParams, querystring: SlideReportQuery } }, async (req, reply) => {
    const entry = await entryOr404(ctx, req.params.id);
    const subject = subjectOf(entry);
    if (subject.kind === 'pending') throw new ConflictError(`${entry.name} is ${subject.status}: it has no result to report yet`);
    const format: ReportFormat = req.params.format;
    const options = reportOptions({ format, paper: req.query.paper ?? DEFAULT_REPORT_OPTIONS.paper, topRegions: req.query.top ?? DEFAULT_REPORT_OPTIONS.topRegions });
    const report = await loadSubject(subject);
    const body = new PassThrough();
    writeSlideReport(report, options, body).then(
      () => body.end(),
      (err: unknown) => {
        req.log.error({ err }, 'report failed while streaming');
        body.destroy(err as Error);
      },
    );
    return download(reply, reportFileName(subject.resultDir, format), CONTENT_TYPE[format], body);
  });

  app.get('/api/reports/batch.zip', { schema: { querystring: BatchZipQuery } }, async (req, reply) => {
    const subjects = await batchSubjects(ctx, req.query.ids);
    if (subjects.length === 0) throw new NotFoundError(`no slides in ${ctx.catalog.dataDir} to report`);
    const q = req.query;
    const options = reportOptions({ format: q.format, paper: q.paper ?? DEFAULT_REPORT_OPTIONS.paper, topRegions: q.top ?? DEFAULT_REPORT_OPTIONS.topRegions });
    const folder = `flashslide-reports-${today()}-${q.format}`;
    return download(reply, `${folder}.zip`, 'application/zip', batchZip(subjects, options, folder));
  });

  app.get('/api/reports/batch.:format', { schema: { params: BatchSummaryParams, querystring: BatchSummaryQuery } }, async (req, reply) => {
    const rows = await batchRows(await batchSubjects(ctx, req.query.ids));
    const name = `flashslide-batch-${today()}.${req.params.format}`;
    return req.params.format === 'csv'
      ? download(reply, name, CONTENT_TYPE.csv, batchCsv(rows))
      : download(reply, name, CONTENT_TYPE.json, jsonText(jsonBatchReport(rows)));
  });
}
