/**
 * The review server: the browser app, its JSON API, Deep Zoom tiles of slides and heatmaps,
 * live worklist updates, submission and (with a queue) bull-board. It reads what `analyze` and
 * the workers write and adds one file of its own per result, review.json.
 *
 * Security headers and authentication (auth/) are installed before any route, so every route,
 * bull-board's included, sits behind them; without sign-in the server refuses to be built for a
 * non-loopback host.
 *
 * buildServer() returns a ready-to-listen Fastify instance and a close() that also closes the
 * open slides and the queue listeners; the CLI (`flashslide serve`) and the tests both use it.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import { Queue } from 'bullmq';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { SlideError } from '../../worker/slide/errors.js';
import { readerConnectionOptions } from '../../worker/queue/connection.js';
import { QUEUES } from '../../worker/queue/queues.js';
import type { ApiError } from './api-types.js';
import { defaultAuditLog, installAuth, type AuditLog, type RouteAccess } from './auth/auth-plugin.js';
import { checkBind } from './auth/host.js';
import { installSecurityHeaders } from './auth/security-headers.js';
import { SlideCatalog } from './catalog.js';
import { closeSoon } from './close-soon.js';
import { HttpError, TooManyRequestsError } from './errors.js';
import { LiveUpdates } from './live-updates.js';
import { DEFAULT_SERVE_OPTIONS, type ServeOptions } from './options.js';
import { RegionCache } from './regions.js';
import { ReviewStore } from './review-store.js';
import { registerReportRoutes } from './routes/report-routes.js';
import { registerReviewRoutes } from './routes/review-routes.js';
import { registerSlideRoutes } from './routes/slide-routes.js';
import { registerSubmitRoutes } from './routes/submit-routes.js';
import { registerWorklistRoutes } from './routes/worklist-routes.js';
import type { ServerContext } from './server-context.js';
import { SlideAccess } from './slide-access.js';
import { registerTileRoutes, type TileRouteOptions } from './tiles/tile-routes.js';
import { buildWorklist } from './worklist.js';

export interface ReviewServer {
  app: FastifyInstance;
  context: ServerContext;
  /** Every route the server registered (plugins' too), with its access marking: what the auth tests walk. */
  routes(): RouteSummary[];
  close(): Promise<void>;
}

export interface RouteSummary {
  method: string;
  url: string;
  /** undefined: credentials required when authentication is on. */
  access: RouteAccess | undefined;
}

function errorBody(error: string, message: string): ApiError {
  return { error, message };
}

/** Paths the browser app owns (client-side routing): they all load index.html. */
const APP_PAGES = ['/', '/slides/*'];

export interface BuildExtras {
  /** Where sign-ins, sign-outs and refused requests are reported (default: the request log, or stderr without one). */
  audit?: AuditLog;
}

export async function buildServer(input: Partial<ServeOptions> & Pick<ServeOptions, 'dataDir' | 'appDir'>, extras: BuildExtras = {}): Promise<ReviewServer> {
  const options: ServeOptions = { ...DEFAULT_SERVE_OPTIONS, ...input, dataDir: resolve(input.dataDir), slideRoots: (input.slideRoots ?? []).map((r) => resolve(r)) };
  // The CLI says the same as a usage error; this guards every other caller.
  checkBind(options.host, options.auth);
  // forceCloseConnections: close() must not wait on idle keep-alive sockets (browsers, SSE).
  const app = Fastify({ logger: options.logRequests, bodyLimit: 1 << 20, forceCloseConnections: true, trustProxy: options.trustProxy });
  // Kept by reference: a plugin's own onRoute hook may still mark the route's access after this one ran.
  const registered: { method: string | string[]; url: string; config?: { access?: RouteAccess } }[] = [];
  app.addHook('onRoute', (route) => {
    registered.push(route);
  });
  // Before any route: the headers and the authentication hook then cover every route and plugin.
  installSecurityHeaders(app, options.behindTls);
  const auth = await installAuth(app, options, extras.audit ?? defaultAuditLog(options.logRequests));

  const catalog = new SlideCatalog({ dataDir: options.dataDir, redisUrl: options.redisUrl });
  const access = new SlideAccess(catalog);
  const regions = new RegionCache();
  const reviews = new ReviewStore();
  const queue = options.redisUrl !== undefined;
  const live = new LiveUpdates({
    dataDir: options.dataDir,
    redisUrl: options.redisUrl,
    pollSeconds: options.pollSeconds,
    rebuild: () => {
      catalog.invalidate();
      return buildWorklist({ catalog, regions, reviews, queue });
    },
  });
  const tileOptions: TileRouteOptions = {
    lookup: (id) => access.target(id),
    tileSize: options.tileSize,
    overlap: 0,
    jpegQuality: options.jpegQuality,
    slideFormat: options.tileFormat,
    cacheBytes: options.tileCacheBytes,
    ...(options.renderConcurrency === undefined ? {} : { concurrency: options.renderConcurrency }),
  };
  const context: ServerContext = { options, catalog, access, regions, reviews, live, tileOptions, auth };

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof TooManyRequestsError) void reply.header('Retry-After', String(err.retryAfterSeconds));
    if (err instanceof HttpError) return reply.code(err.statusCode).send(errorBody(err.code, err.message));
    if (err.validation !== undefined) return reply.code(400).send(errorBody('bad-request', `${err.validationContext ?? 'request'} ${err.message}`));
    if (err instanceof SlideError) return reply.code(422).send(errorBody('unreadable', err.message));
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) return reply.code(status).send(errorBody(err.code === undefined ? 'bad-request' : err.code.toLowerCase(), err.message));
    req.log.error(err);
    if (!options.logRequests) process.stderr.write(`flashslide serve: ${req.method} ${req.url}: ${err.stack ?? err.message}\n`);
    return reply.code(500).send(errorBody('internal', 'the server failed on this request; its log says why'));
  });

  app.addHook('onSend', async (_req, reply) => {
    // Slide pages carry patient data: never sniffed into another type, framed by other sites or
    // leaked through the Referer of a link.
    void reply.header('X-Content-Type-Options', 'nosniff').header('X-Frame-Options', 'SAMEORIGIN').header('Referrer-Policy', 'no-referrer');
  });

  registerWorklistRoutes(app, context);
  registerSlideRoutes(app, context);
  registerReviewRoutes(app, context);
  registerReportRoutes(app, context);
  registerSubmitRoutes(app, context);
  await registerTileRoutes(app, tileOptions);

  const boardQueues: Queue[] = [];
  if (options.redisUrl !== undefined) {
    const connection = readerConnectionOptions(options.redisUrl);
    for (const name of Object.values(QUEUES)) {
      const q = new Queue(name, { connection });
      q.on('error', () => undefined); // Redis away: the worklist says so (catalog.queueError)
      boardQueues.push(q);
    }
    const board = new FastifyAdapter();
    createBullBoard({ queues: boardQueues.map((q) => new BullMQAdapter(q, { readOnlyMode: !options.adminWritable })), serverAdapter: board });
    board.setBasePath('/admin/queues');
    await app.register(board.registerPlugin(), { prefix: '/admin/queues' });
  }

  const appDir = resolve(options.appDir);
  const haveApp = existsSync(join(appDir, 'index.html'));
  await app.register(async (scope) => {
    // The app's pages and files are public (they hold no data; the app asks /api/session and
    // shows its sign-in form); the auth hook still protects /api, /tiles and /admin under the catch-all.
    scope.addHook('onRoute', (route) => {
      route.config = { ...route.config, access: 'app' };
    });
    if (haveApp) {
      // Vite names assets by content hash: they never change under a URL.
      await scope.register(fastifyStatic, {
        root: appDir,
        prefix: '/',
        // Looked up per request (not a list made at start), so a rebuilt app is served at once.
        wildcard: true,
        index: false,
        setHeaders: (res, path) => res.header('Cache-Control', path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache'),
      });
    }
    for (const page of APP_PAGES) {
      scope.get(page, async (_req, reply) => {
        if (!haveApp) return reply.code(503).send(errorBody('no-app', `the browser app is not built (${join(appDir, 'index.html')} is missing): run \`npm run build\``));
        return reply.header('Cache-Control', 'no-cache').sendFile('index.html');
      });
    }
  });

  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody('not-found', `no route ${req.method} ${req.url.split('?')[0] ?? ''}`)));

  return {
    app,
    context,
    routes: () => registered.flatMap((r) => [r.method].flat().map((method) => ({ method, url: r.url, access: r.config?.access }))),
    close: async () => {
      await live.close();
      await app.close();
      await access.close();
      await catalog.close();
      await Promise.all(boardQueues.map((q) => closeSoon(q)));
    },
  };
}
