/**
 * Submission from the browser, into the same BullMQ queue `flashslide submit` uses:
 *
 * - POST /api/submit {path}: a slide already on the server's disks. The path must resolve (after
 *   symlinks: realpath) to a file inside one of the --slides roots; anything else is refused, so
 *   the page cannot be used to read arbitrary files.
 * - PUT /api/upload?name=F: the slide's bytes (Content-Type: application/octet-stream), streamed
 *   to <data>/uploads/ under a fresh name with a size limit, renamed into place only when
 *   complete, then queued. An interrupted upload leaves no file behind.
 *
 * Both answer 503 without a queue (no --redis): the server then only browses results.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, isAbsolute, join, relative, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Type } from 'typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { submitSlides, type SlideStatus } from '../../../worker/queue/submit.js';
import type { SubmitResponse } from '../api-types.js';
import { UPLOADS_FOLDER, statusName } from '../catalog.js';
import { BadRequestError, HttpError, NoQueueError, NotFoundError, TooLargeError, TooManyRequestsError } from '../errors.js';
import type { ServerContext } from '../server-context.js';

const UPLOAD_NAME = /^[A-Za-z0-9][\w.-]{0,119}$/;

export class ForbiddenPathError extends HttpError {
  constructor(message: string) {
    super(403, 'forbidden', message);
  }
}

/** The real path of `requested` if it is a file inside one of `roots`, else a 4xx error. */
export async function resolveInsideRoots(requested: string, roots: readonly string[]): Promise<string> {
  if (roots.length === 0) throw new ForbiddenPathError('this server accepts no slide paths: start it with --slides ROOT to allow submitting slides under ROOT');
  if (requested.includes('\0')) throw new BadRequestError('the path contains a NUL character');
  const first = roots[0] as string;
  const candidate = isAbsolute(requested) ? requested : resolve(first, requested);
  let real: string;
  try {
    real = await realpath(candidate);
  } catch {
    throw new NotFoundError(`no slide file at ${requested}`);
  }
  for (const root of roots) {
    const rootReal = await realpath(root).catch(() => null);
    if (rootReal === null) continue;
    const rel = relative(rootReal, real);
    if (rel !== '' && !rel.startsWith('..') && !isAbsolute(rel)) {
      if (!(await stat(real)).isFile()) throw new BadRequestError(`${requested} is not a file`);
      return real;
    }
  }
  throw new ForbiddenPathError(`${requested} is outside the slide folders this server may read (${roots.join(', ')})`);
}

function response(s: SlideStatus): SubmitResponse {
  return { id: s.analysisId, name: basename(s.slidePath), status: statusName(s.state), submitted: s.submitted ?? 'queued' };
}

export function registerSubmitRoutes(fastify: FastifyInstance, ctx: ServerContext): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { options } = ctx;

  const submit = async (path: string): Promise<SubmitResponse> => {
    const redisUrl = options.redisUrl;
    if (redisUrl === undefined) throw new NoQueueError();
    const [status] = await submitSlides([path], { ...options.analysis, dataDir: options.dataDir, redisUrl });
    if (status === undefined) throw new Error('the queue returned no status for the submitted slide');
    ctx.catalog.invalidate();
    ctx.live.trigger();
    return response(status);
  };

  app.post('/api/submit', { schema: { body: Type.Object({ path: Type.String({ minLength: 1, maxLength: 4096 }) }, { additionalProperties: false }) } }, async (req, reply) => {
    if (options.redisUrl === undefined) throw new NoQueueError();
    const real = await resolveInsideRoots(req.body.path, options.slideRoots);
    return reply.code(202).send(await submit(real));
  });

  // Slide bytes arrive as a stream; the route writes them to disk as they come.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  // Each upload may be gigabytes of disk writes: a few at once, the rest asked to come back.
  let uploading = 0;

  app.put('/api/upload', { schema: { querystring: Type.Object({ name: Type.String({ minLength: 1, maxLength: 120 }) }) } }, async (req, reply) => {
    if (options.redisUrl === undefined) throw new NoQueueError();
    if (uploading >= options.maxConcurrentUploads) throw new TooManyRequestsError(`${uploading} uploads are in progress, this server's limit: try again when one has finished`, 30);
    uploading++;
    try {
      return await receiveUpload(req.query.name, req, reply);
    } finally {
      uploading--;
    }
  });

  async function receiveUpload(name: string, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    if (!UPLOAD_NAME.test(name)) throw new BadRequestError(`upload name ${JSON.stringify(name)} must be a plain file name (letters, digits, '.', '_', '-'; no folders)`);
    if (!(req.headers['content-type'] ?? '').startsWith('application/octet-stream')) throw new BadRequestError('send the slide bytes with Content-Type: application/octet-stream');
    const limit = options.uploadLimitBytes;
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (Number.isFinite(declared) && declared > limit) throw new TooLargeError(`the upload is ${declared} bytes; this server accepts at most ${limit} (--upload-limit-mb)`);
    const dir = join(options.dataDir, UPLOADS_FOLDER);
    await mkdir(dir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const final = join(dir, `${stamp}-${randomBytes(3).toString('hex')}-${name}`);
    const partial = join(dir, `.${basename(final)}.part`);
    let received = 0;
    const body = req.body as Readable;
    body.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > limit) body.destroy(new TooLargeError(`the upload passed ${limit} bytes, this server's limit (--upload-limit-mb)`));
    });
    try {
      await pipeline(body, createWriteStream(partial, { flags: 'wx' }));
      if (received === 0) throw new BadRequestError('the upload is empty');
      await rename(partial, final);
    } catch (err) {
      await rm(partial, { force: true });
      if (err instanceof HttpError) throw err;
      throw new BadRequestError(`the upload did not complete: ${(err as Error).message}`);
    }
    try {
      return reply.code(202).send(await submit(final));
    } catch (err) {
      // A file the pipeline cannot describe (not a slide) is not kept.
      await rm(final, { force: true });
      throw err;
    }
  }
}
