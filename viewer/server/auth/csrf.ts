/**
 * Cross-site request forgery: a page on another site making the reviewer's browser write (record
 * a verdict, submit or upload a slide, sign out) with the reviewer's cookie. Three layers, each
 * enough against today's browsers, together robust to one of them failing (an old browser, a
 * proxy that strips a header):
 *
 * 1. the cookie is SameSite=Strict, so other sites' requests do not carry it at all;
 * 2. Sec-Fetch-Site, when the browser sends it, must be same-origin, and Origin, when sent, must
 *    be this server's own (browsers send Origin on every cross-origin and every non-GET request);
 * 3. writes must carry X-Flashslide-CSRF with the session's token, which only a page that could
 *    read GET /api/session (this origin) knows. A custom header also cannot be sent cross-origin
 *    without a CORS preflight, which this server never grants.
 *
 * bull-board (/admin/queues) is a third-party page that cannot add the header: its writes rely on
 * layers 1 and 2, with Origin required. Requests with a bearer token carry no ambient credential
 * a forged page could use, so none of this applies to them.
 */
import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ForbiddenError } from '../errors.js';

export const CSRF_HEADER = 'x-flashslide-csrf';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function isSafeMethod(method: string): boolean {
  return SAFE_METHODS.has(method.toUpperCase());
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Whether the browser says the request comes from a page of this server (or says nothing). */
export function sameOriginProblem(req: FastifyRequest, requireOrigin: boolean): string | null {
  const site = single(req.headers['sec-fetch-site']);
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `the request came from another site (Sec-Fetch-Site: ${site.slice(0, 20)})`;
  const origin = single(req.headers.origin);
  if (origin === undefined) return requireOrigin ? 'the request has no Origin header' : null;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return 'the request has a malformed Origin header';
  }
  // The Host the browser addressed (as forwarded by a trusted proxy when there is one).
  const own = req.host;
  if (host.toLowerCase() !== own.toLowerCase()) return `the request came from ${origin.slice(0, 100)}, not from this server (${own.slice(0, 100)})`;
  return null;
}

function tokensEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * A ForbiddenError when a cookie-authenticated write fails the checks above, else null.
 * `headerless`: the route belongs to a page that cannot send the header (bull-board).
 */
export function csrfProblem(req: FastifyRequest, sessionToken: string, headerless: boolean): ForbiddenError | null {
  if (isSafeMethod(req.method)) return null;
  const origin = sameOriginProblem(req, headerless);
  if (origin !== null) return new ForbiddenError('csrf', `refused as a possible cross-site request: ${origin}`);
  if (headerless) return null;
  const sent = single(req.headers[CSRF_HEADER]);
  if (sent === undefined || !tokensEqual(sent, sessionToken)) {
    return new ForbiddenError('csrf', `writes need the ${CSRF_HEADER} header with the token of GET /api/session (reload the page if this persists)`);
  }
  return null;
}
