/** The worklist, and its live updates as Server-Sent Events. */
import type { FastifyInstance } from 'fastify';
import type { Worklist, WorklistEvent } from '../api-types.js';
import type { ServerContext } from '../server-context.js';
import { buildWorklist } from '../worklist.js';

/** A comment line every 20 s keeps proxies from closing an idle stream. */
const KEEPALIVE_MS = 20_000;

export function registerWorklistRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/api/worklist', async (_req, reply): Promise<Worklist> => {
    void reply.header('Cache-Control', 'no-store');
    return buildWorklist({ catalog: ctx.catalog, regions: ctx.regions, reviews: ctx.reviews, queue: ctx.options.redisUrl !== undefined });
  });

  app.get('/api/events', async (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write('retry: 3000\n\n');
    const send = (event: WorklistEvent): void => {
      res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
    };
    let unsubscribe: (() => void) | null = null;
    let closed = false;
    const stop = (): void => {
      closed = true;
      clearInterval(keepalive);
      unsubscribe?.();
      unsubscribe = null;
    };
    const keepalive = setInterval(() => {
      // A session that ended (idle, signed out, account removed) ends its stream too; the
      // browser's reconnect then gets 401 and the app asks for a sign-in.
      if (ctx.auth.stillValid(req)) return void res.write(': keepalive\n\n');
      stop();
      res.end();
    }, KEEPALIVE_MS);
    req.raw.on('close', stop);
    try {
      const off = await ctx.live.subscribe(send);
      if (closed) off();
      else unsubscribe = off;
    } catch (err) {
      res.write(`event: error\ndata: ${JSON.stringify({ error: 'internal', message: (err as Error).message })}\n\n`);
    }
  });
}
