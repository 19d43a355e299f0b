/**
 * Response headers that make the browser itself refuse what the review page never does: run
 * scripts from elsewhere or inline (the app is one bundled module; nothing comes from a CDN),
 * load images from other sites, be framed by another site, send the Referer with slide URLs,
 * be sniffed into another type. Helmet's well-known set, with a Content-Security-Policy that
 * OpenSeadragon works under: tiles are drawn into canvases (same-origin images, so they stay
 * readable), data: and blob: images for the app's icons and OSD's own, and inline style
 * attributes, which the app and OSD set on their elements (styles cannot run code).
 *
 * The headers do not depend on the request, so helmet computes them once at start and a hook
 * sets the same list on every response: @fastify/helmet builds helmet anew per request, which
 * roughly doubled the cost of a cached tile.
 *
 * HSTS and upgrade-insecure-requests only when the browser reaches the server over TLS: on a
 * plain-http loopback or LAN address they would break the page.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import helmet, { type HelmetOptions } from 'helmet';
import type { FastifyInstance } from 'fastify';

/** A year: the browser then never tries plain http to this host again. */
const HSTS = 'max-age=31536000';

export function contentSecurityPolicy(upgradeInsecure: boolean): Record<string, string[]> {
  return {
    'default-src': ["'self'"],
    'base-uri': ["'self'"],
    'script-src': ["'self'"],
    'script-src-attr': ["'none'"],
    'style-src': ["'self'", "'unsafe-inline'"],
    'img-src': ["'self'", 'data:', 'blob:'],
    'font-src': ["'self'", 'data:'],
    'connect-src': ["'self'"],
    'worker-src': ["'self'", 'blob:'],
    'object-src': ["'none'"],
    'frame-ancestors': ["'self'"],
    'form-action': ["'self'"],
    ...(upgradeInsecure ? { 'upgrade-insecure-requests': [] } : {}),
  };
}

/** The headers helmet sets with `options`, found by running it once against a response that goes nowhere. */
export function helmetHeaders(options: HelmetOptions): [string, string][] {
  const req = new IncomingMessage(new Socket());
  const res = new ServerResponse(req);
  helmet(options)(req, res, () => undefined);
  return Object.entries(res.getHeaders()).map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : String(value)]);
}

export function installSecurityHeaders(app: FastifyInstance, behindTls: boolean): void {
  const headers = helmetHeaders({
    contentSecurityPolicy: { useDefaults: false, directives: contentSecurityPolicy(behindTls) },
    strictTransportSecurity: false,
  });
  app.addHook('onRequest', (req, reply, done) => {
    // On the raw response: the live-updates stream writes its own head, and keeps these.
    for (const [name, value] of headers) reply.raw.setHeader(name, value);
    if (behindTls || req.protocol === 'https') reply.raw.setHeader('Strict-Transport-Security', HSTS);
    done();
  });
}
