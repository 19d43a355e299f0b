/**
 * Authentication for the review server, one onRequest hook in front of every route:
 *
 * 1. rate limit per client address (429 + Retry-After);
 * 2. who is asking: `Authorization: Bearer <token>` (token mode, for scripts) or the session
 *    cookie (the browser, after POST /api/login);
 * 3. default deny: every route answers 401 without credentials unless it is marked public
 *    (config.access 'public': /api/session, /api/login; 'app': the browser app's own files, whose
 *    catch-all never covers /api, /tiles or /admin). A route added later is protected without
 *    doing anything;
 * 4. cookie-authenticated writes pass the CSRF checks (auth/csrf.ts).
 *
 * Without authentication (loopback only, auth/host.ts) the hook still rate-limits, refuses writes
 * from other sites' pages, and refuses Host names that are not this machine's, so a web page
 * cannot reach the server through DNS rebinding.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Type } from 'typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { printable } from '../../../worker/util/printable.js';
import type { LoginRequest, SessionInfo } from '../api-types.js';
import { BadCredentialsError, BadRequestError, ForbiddenError, HttpError, TooManyRequestsError, UnauthorizedError } from '../errors.js';
import type { ServeOptions } from '../options.js';
import { clearSessionCookies, sessionCookie, sessionSetCookie } from './cookies.js';
import { csrfProblem, sameOriginProblem } from './csrf.js';
import { isLoopbackHost } from './host.js';
import { dummyVerify, verifyPassword } from './passwords.js';
import { RateLimiter } from './rate-limit.js';
import { SessionStore, type Session } from './sessions.js';
import { UsersFile, userNameProblem } from './users-file.js';

/** Who made a request, once authenticated. */
export interface Principal {
  user: string;
  via: 'session' | 'bearer';
  session: Session | null;
}

/** Routes that answer without credentials: 'public' always, 'app' for the browser app's files. */
export type RouteAccess = 'public' | 'app';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
}

/** Where the app's catch-all route must not make anything public. */
const PROTECTED_PREFIXES = ['/api/', '/tiles/', '/admin/'];
/** bull-board's page cannot send the CSRF header; its writes are checked by origin alone. */
const HEADERLESS_PREFIX = '/admin/queues';

/** Security events (sign-ins, refusals): always written, with or without request logging. */
export type AuditLog = (req: FastifyRequest, event: string, message: string) => void;

export function defaultAuditLog(logRequests: boolean): AuditLog {
  return (req, event, message) => {
    if (logRequests) req.log.warn({ event, ip: req.ip }, message);
    else process.stderr.write(`flashslide serve: ${new Date().toISOString()} ${event} from ${req.ip}: ${message}\n`);
  };
}

/** A user name as it may appear in a log line: quoted, control characters escaped, bounded. */
const quoted = (name: string): string => printable(JSON.stringify(name.slice(0, 80)));

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Whether two secrets are equal, in time independent of where they differ (and of their lengths). */
function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

function refuse(reply: FastifyReply, err: HttpError): FastifyReply {
  if (err instanceof TooManyRequestsError) void reply.header('Retry-After', String(err.retryAfterSeconds));
  // A refused request's body (an upload may be gigabytes) is not read: close the connection
  // rather than let the server drain it to keep the connection alive.
  const req = reply.request;
  if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0) void reply.header('Connection', 'close');
  return reply.code(err.statusCode).header('Cache-Control', 'no-store').send({ error: err.code, message: err.message });
}

function pathOf(req: FastifyRequest): string {
  return req.url.split('?')[0] ?? req.url;
}

export interface Auth {
  mode: ServeOptions['auth']['mode'];
  sessions: SessionStore;
  /** The name a verdict is recorded under for this request: the principal's, or null without authentication. */
  reviewerOf(req: FastifyRequest): string | null;
  /**
   * Whether the credentials the request came with are still good (a long-lived stream asks now
   * and then): its session has not ended or been signed out. Without authentication, always.
   */
  stillValid(req: FastifyRequest): boolean;
}

/**
 * Installs the hook and the session routes on `app`. Call before any other route is registered:
 * a hook added to the root instance applies to every route and plugin registered after it.
 */
export async function installAuth(app: FastifyInstance, options: ServeOptions, audit: AuditLog): Promise<Auth> {
  const { auth, rateLimit } = options;
  const sessions = new SessionStore(options.session);
  const users = auth.mode === 'users' ? new UsersFile(auth.usersFile, (m) => process.stderr.write(`flashslide serve: ${m}\n`)) : null;
  await users?.load();
  const requests = rateLimit.requestsPerMinute > 0 ? new RateLimiter({ perMinute: rateLimit.requestsPerMinute, burst: rateLimit.burst }) : null;
  const loginsByAddress = new RateLimiter({ perMinute: rateLimit.loginsPerMinute, burst: rateLimit.loginsPerMinute });
  const loginsByUser = new RateLimiter({ perMinute: rateLimit.loginsPerUserPerMinute, burst: rateLimit.loginsPerUserPerMinute });
  const secure = (req: FastifyRequest): boolean => options.behindTls || req.protocol === 'https';

  app.decorateRequest('principal', null);

  /** The principal of a valid bearer token or session cookie; null for none, a 401 for a bad one. */
  function authenticate(req: FastifyRequest): Principal | UnauthorizedError | null {
    // Only a Bearer token in token mode counts; other schemes (a proxy's own Basic sign-in) are not ours to judge.
    const bearer = auth.mode === 'token' ? /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '') : null;
    if (auth.mode === 'token' && bearer !== null) {
      if (!secretsEqual(bearer[1] as string, auth.token)) return new UnauthorizedError('the bearer token is not this server\'s token');
      return { user: auth.tokenUser, via: 'bearer', session: null };
    }
    const id = sessionCookie(req.headers.cookie);
    if (id === undefined) return null;
    const session = sessions.get(id);
    if (session === null) return null; // expired or from before a restart: as if signed out
    if (users !== null && !users.has(session.user)) {
      sessions.deleteUser(session.user);
      return null;
    }
    return { user: session.user, via: 'session', session };
  }

  function challenge(reply: FastifyReply): FastifyReply {
    return reply.header('WWW-Authenticate', auth.mode === 'token' ? 'Bearer realm="flashslide"' : 'Cookie realm="flashslide", form-action="/api/login"');
  }

  const signInHint =
    auth.mode === 'token'
      ? 'send Authorization: Bearer <token>, or sign in on the review page (POST /api/login {token})'
      : 'sign in on the review page (POST /api/login {user, password}) and send the session cookie';

  app.addHook('onRequest', async (req, reply) => {
    if (requests !== null) {
      const t = requests.take(req.ip);
      if (!t.ok) return refuse(reply, new TooManyRequestsError(`too many requests from ${req.ip}: wait ${t.retryAfterSeconds} s (--rate-limit)`, t.retryAfterSeconds));
    }
    if (auth.mode === 'none') {
      // DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 is "same origin" to
      // the browser, but its requests name evil.example as Host. A proxy in front (--trust-proxy) sets Host itself.
      if (!options.trustProxy && !isLoopbackHost(req.hostname)) {
        return refuse(reply, new ForbiddenError('host', `this server answers only to this machine's names (localhost, 127.0.0.1, [::1]), not ${printable(req.hostname.slice(0, 100))}: it has no authentication (see flashslide serve --help)`));
      }
      const problem = req.method === 'GET' || req.method === 'HEAD' ? null : sameOriginProblem(req, false);
      if (problem !== null) return refuse(reply, new ForbiddenError('csrf', `refused as a possible cross-site request: ${problem}`));
      return;
    }
    const who = authenticate(req);
    if (who instanceof UnauthorizedError) return refuse(challenge(reply), who);
    req.principal = who;
    const access = req.routeOptions.config?.access;
    const path = pathOf(req);
    const isPublic = access === 'public' || (access === 'app' && !PROTECTED_PREFIXES.some((p) => path.startsWith(p)));
    if (isPublic) return;
    if (who === null) return refuse(challenge(reply), new UnauthorizedError(`sign-in required: ${signInHint}`));
    if (who.session !== null) {
      const csrf = csrfProblem(req, who.session.csrf, path.startsWith(HEADERLESS_PREFIX));
      if (csrf !== null) {
        audit(req, 'csrf-refused', `${req.method} ${printable(path.slice(0, 200))} by ${quoted(who.user)}: ${csrf.message}`);
        return refuse(reply, csrf);
      }
    }
  });

  const info = (req: FastifyRequest): SessionInfo => ({
    auth: auth.mode,
    user: req.principal?.user ?? null,
    csrf: req.principal?.session?.csrf ?? null,
  });

  const typed = app.withTypeProvider<TypeBoxTypeProvider>();
  typed.get('/api/session', { config: { access: 'public' } }, async (req, reply): Promise<SessionInfo> => {
    void reply.header('Cache-Control', 'no-store');
    return info(req);
  });

  if (auth.mode !== 'none') {
    const LoginBody = Type.Object(
      {
        user: Type.Optional(Type.String({ maxLength: 64 })),
        password: Type.Optional(Type.String({ maxLength: 1024 })),
        token: Type.Optional(Type.String({ maxLength: 1024 })),
      },
      { additionalProperties: false },
    );

    /** The account name `body` signs in as; BadCredentialsError (401) or TooManyRequestsError (429) otherwise. */
    async function checkCredentials(req: FastifyRequest, body: LoginRequest): Promise<string> {
      if (auth.mode === 'token') {
        if (body.token === undefined || body.token === '') throw new BadRequestError('send {"token": "..."}: this server signs in with its access token');
        if (!secretsEqual(body.token, auth.token)) {
          audit(req, 'login-failed', 'wrong token');
          throw new BadCredentialsError('that is not this server\'s access token');
        }
        return auth.tokenUser;
      }
      const name = body.user ?? '';
      const password = body.password ?? '';
      if (name === '' || password === '') throw new BadRequestError('send {"user": "...", "password": "..."}');
      if (userNameProblem(name) !== null) {
        audit(req, 'login-failed', `malformed user name ${quoted(name)}`);
        throw new BadCredentialsError('wrong user name or password');
      }
      // Counted before the check, so parallel guesses from many addresses cannot all slip through.
      const byUser = loginsByUser.take(name.toLowerCase());
      if (!byUser.ok) {
        audit(req, 'login-throttled', `too many sign-in attempts for ${quoted(name)}`);
        throw new TooManyRequestsError(`too many sign-in attempts for this account: wait ${byUser.retryAfterSeconds} s`, byUser.retryAfterSeconds);
      }
      const account = await users?.lookup(name);
      const ok = account === undefined ? await dummyVerify(password) : await verifyPassword(password, account.hash);
      if (!ok || account === undefined) {
        audit(req, 'login-failed', `${quoted(name)}: ${account === undefined ? 'no such user' : 'wrong password'}`);
        throw new BadCredentialsError('wrong user name or password');
      }
      return account.name;
    }

    typed.post('/api/login', { config: { access: 'public' }, schema: { body: LoginBody } }, async (req, reply): Promise<SessionInfo> => {
      // A forged sign-in (another site signing the browser in as the attacker) is refused like any forged write.
      const origin = sameOriginProblem(req, false);
      if (origin !== null) throw new ForbiddenError('csrf', `refused as a possible cross-site sign-in: ${origin}`);
      const byAddress = loginsByAddress.take(req.ip);
      if (!byAddress.ok) {
        audit(req, 'login-throttled', `too many sign-in attempts from this address`);
        throw new TooManyRequestsError(`too many sign-in attempts from ${req.ip}: wait ${byAddress.retryAfterSeconds} s`, byAddress.retryAfterSeconds);
      }
      const user = await checkCredentials(req, req.body);
      // A fresh id on every sign-in: an id planted before (session fixation) never becomes a signed-in one.
      const old = sessionCookie(req.headers.cookie);
      if (old !== undefined) sessions.delete(old);
      const { id, session } = sessions.create(user);
      audit(req, 'login', `${quoted(user)} signed in`);
      req.principal = { user, via: 'session', session };
      void reply.header('Set-Cookie', sessionSetCookie(id, secure(req))).header('Cache-Control', 'no-store');
      return info(req);
    });

    typed.post('/api/logout', async (req, reply): Promise<SessionInfo> => {
      const id = sessionCookie(req.headers.cookie);
      if (id !== undefined) sessions.delete(id);
      if (req.principal !== null) audit(req, 'logout', `${quoted(req.principal.user)} signed out`);
      req.principal = null;
      void reply.header('Set-Cookie', clearSessionCookies(secure(req))).header('Cache-Control', 'no-store');
      return info(req);
    });
  }

  return {
    mode: auth.mode,
    sessions,
    reviewerOf: (req) => (auth.mode === 'none' ? null : (req.principal?.user ?? null)),
    stillValid: (req) => {
      const p = req.principal;
      if (auth.mode === 'none' || p === null || p.via === 'bearer') return true;
      const id = sessionCookie(req.headers.cookie);
      return id !== undefined && sessions.isLive(id) && (users === null || users.has(p.user));
    },
  };
}
