/**
 * Authentication and hardening of the review server (viewer/server/auth/), against real servers
 * over HTTP: a planted slide analysed into a temp folder, a real Redis (so submission, upload and
 * bull-board are all registered), a users file with scrypt hashes, and the built CLI.
 *
 * The route walk takes every route the server registered (server.routes(), plugins included), so
 * a route added later without thought is covered: it must answer 401 without credentials, or be
 * one of the few public ones listed here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { analyzeEmbedded } from '../../worker/pipeline/run-embedded.js';
import { buildServer, type ReviewServer, type RouteSummary } from '../../viewer/server/server.js';
import type { RegionList, Review, SessionInfo } from '../../viewer/server/api-types.js';
import { DEFAULT_SERVE_OPTIONS } from '../../viewer/server/options.js';
import { checkBind, InsecureBindError, isLoopbackHost } from '../../viewer/server/auth/host.js';
import { hashPassword, parsePasswordHash, verifyPassword } from '../../viewer/server/auth/passwords.js';
import { parseUsers, withoutUser, writeUsersText } from '../../viewer/server/auth/users-file.js';
import { startRedis, type RedisHandle } from '../redis-server.js';
import { BIN, cliEnv, ROOT, TINY, cli, tempDir } from '../helpers.js';
import { writePlantedSlide } from '../planted-slide.js';

const APP_DIR = join(ROOT, 'dist', 'app');
const PASSWORDS = { alice: 'correct horse battery staple', bob: 'tr0ub4dor&3 but longer' } as const;
const TOKEN = 'k3V9wq0Zb7sQy1xP4mT8nR2fL6hJ5dC0aE9uW3iO7gY';

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request with the path exactly as given (fetch would resolve `..` and `%2e%2e` before sending). */
function raw(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Raw> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers: body === undefined ? headers : { 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

interface Signed {
  cookie: string;
  csrf: string;
}

async function login(base: string, body: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

async function signIn(base: string, user: keyof typeof PASSWORDS): Promise<Signed> {
  const res = await login(base, { user, password: PASSWORDS[user] });
  expect(res.status).toBe(200);
  const setCookie = res.headers.get('set-cookie') ?? '';
  expect(setCookie).toMatch(/HttpOnly/);
  expect(setCookie).toMatch(/SameSite=Strict/);
  const info = (await res.json()) as SessionInfo;
  expect(info).toMatchObject({ auth: 'users', user });
  return { cookie: setCookie.split(';')[0] as string, csrf: info.csrf as string };
}

/** A concrete URL for a route pattern (every parameter filled with something well-formed). */
function concrete(url: string, ids: { slide: string; region: string }): string {
  return url
    .replace(':id', ids.slide)
    .replace(':version', '0123456789abcdef')
    .replace(':level', '0')
    .replace(':tile', '0_0.jpeg')
    .replace(':regionId', ids.region)
    .replace(':format', 'json')
    .replace(':queueName', 'flashslide-embed')
    .replace(':queueStatus', 'failed')
    .replace(':jobId', '1')
    .replace(':schedulerId', 'x')
    .replace(/\*$/, 'x');
}

let dir: string;
let dataDir: string;
let slideRoot: string;
let usersFile: string;
let redis: RedisHandle;
let server: ReviewServer;
let base: string;
let slideId: string;
let regionId: string;
const auditLines: string[] = [];

beforeAll(async () => {
  dir = tempDir('flashslide-auth-');
  dataDir = join(dir, 'data');
  const planted = await writePlantedSlide(dir);
  const [outcome] = await analyzeEmbedded([planted], { dataDir, regionSize: 512, device: 'cpu' });
  expect(outcome?.status).toBe('done');
  slideId = (outcome as { analysisId: string }).analysisId;

  // A slide root with a slide, a symlink to a file outside it and a symlinked folder outside it.
  slideRoot = join(dir, 'slides');
  mkdirSync(join(dir, 'outside'), { recursive: true });
  mkdirSync(slideRoot, { recursive: true });
  copyFileSync(TINY, join(slideRoot, 'inside.svs'));
  copyFileSync(TINY, join(dir, 'outside', 'secret.svs'));
  symlinkSync(join(dir, 'outside', 'secret.svs'), join(slideRoot, 'escape.svs'));
  symlinkSync(join(dir, 'outside'), join(slideRoot, 'linkdir'));

  usersFile = join(dir, 'users.txt');
  writeFileSync(usersFile, `# test accounts\nalice:${await hashPassword(PASSWORDS.alice)}\nbob:${await hashPassword(PASSWORDS.bob)}\n`);
  redis = await startRedis();
  server = await buildServer(
    {
      dataDir,
      appDir: APP_DIR,
      slideRoots: [slideRoot],
      redisUrl: redis.url,
      uploadLimitBytes: 1 << 20,
      pollSeconds: 1,
      auth: { mode: 'users', usersFile },
      // The tests sign in more often than a person would; the limit has its own server below.
      rateLimit: { ...DEFAULT_SERVE_OPTIONS.rateLimit, loginsPerMinute: 1000, loginsPerUserPerMinute: 1000 },
    },
    { audit: (_req, event, message) => auditLines.push(`${event}: ${message}`) },
  );
  base = await server.app.listen({ host: '127.0.0.1', port: 0 });
  const alice = await signIn(base, 'alice');
  const regions = (await (await fetch(`${base}/api/slides/${slideId}/regions`, { headers: { cookie: alice.cookie } })).json()) as RegionList;
  regionId = regions.regions[0]?.id ?? '';
  expect(regionId).not.toBe('');
}, 240_000);

afterAll(async () => {
  await server?.close();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('without credentials', () => {
  /** Public on purpose: the app's files and pages (they hold no data), whether one is signed in, signing in. */
  const PUBLIC = ['GET /', 'HEAD /', 'GET /slides/*', 'HEAD /slides/*', 'GET /api/session', 'HEAD /api/session', 'POST /api/login'];
  /** The app's files, when it is built (npm test builds it). */
  const STATIC = ['GET /*', 'HEAD /*'];

  it('every registered route but the public few answers 401, bull-board and the live updates included', async () => {
    const routes: RouteSummary[] = server.routes();
    const key = (r: RouteSummary): string => `${r.method} ${r.url}`;
    const expectedPublic = existsSync(join(APP_DIR, 'index.html')) ? [...PUBLIC, ...STATIC] : PUBLIC;
    expect(routes.filter((r) => r.access !== undefined).map(key).sort()).toEqual([...expectedPublic].sort());
    const urls = new Set(routes.map((r) => r.url));
    for (const u of ['/api/events', '/api/upload', '/api/submit', '/api/logout', '/admin/queues', '/tiles/:id/:version/slide_files/:level/:tile', '/api/slides/:id/review/regions/:regionId']) expect(urls, u).toContain(u);
    const protectedRoutes = routes.filter((r) => r.access === undefined);
    expect(protectedRoutes.length).toBeGreaterThan(40);
    for (const r of protectedRoutes) {
      const path = concrete(r.url, { slide: slideId, region: regionId });
      const write = !['GET', 'HEAD'].includes(r.method);
      const res = await raw(base, r.method, path, write ? { 'content-type': 'application/json' } : {}, write ? '{}' : undefined);
      expect(res.status, `${r.method} ${path}`).toBe(401);
      if (r.method !== 'HEAD') expect(JSON.parse(res.body), `${r.method} ${path}`).toMatchObject({ error: 'unauthorized' });
    }
  });

  it('answers 401 for unknown paths under /api, /tiles and /admin too (no probing past the catch-all)', async () => {
    for (const [method, path] of [['GET', '/api/nothing'], ['POST', '/api/nothing'], ['GET', '/tiles/x'], ['GET', '/admin/queues/static/x.js'], ['DELETE', '/api/slides/x']] as const) {
      expect((await raw(base, method, path)).status, `${method} ${path}`).toBe(401);
    }
    // Dot segments under the app's files: the static files refuse them before anything is read.
    const dots = await raw(base, 'GET', '/assets/../api/worklist');
    expect(dots.status).toBe(403);
    expect(dots.body).not.toContain('slides');
  });

  it('refuses an upload before reading its body, and closes the connection instead of draining it', async () => {
    const size = 64 << 20;
    const url = new URL(base);
    const status = await new Promise<{ status: number; connection: string | undefined }>((resolve, reject) => {
      let answered = false;
      const req = httpRequest({ host: url.hostname, port: url.port, method: 'PUT', path: '/api/upload?name=big.svs', headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) } }, (res) => {
        answered = true;
        res.resume();
        resolve({ status: res.statusCode ?? 0, connection: res.headers.connection });
      });
      // The server hangs up mid-body: expected once the answer is in.
      req.on('error', (err) => (answered ? undefined : reject(err)));
      const chunk = Buffer.alloc(1 << 20);
      let sent = 0;
      const pump = (): void => {
        while (sent < size && !req.destroyed) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    expect(status).toEqual({ status: 401, connection: 'close' });
  });

  it('refuses a forged, unknown or malformed cookie, and a bearer token in users mode', async () => {
    for (const cookie of ['flashslide_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'flashslide_session=../../etc/passwd', 'flashslide_session=', '__Host-flashslide_session=x; flashslide_session=y']) {
      expect((await raw(base, 'GET', '/api/worklist', { cookie })).status, cookie).toBe(401);
    }
    const res = await raw(base, 'GET', '/api/worklist', { authorization: `Bearer ${TOKEN}` });
    expect(res.status).toBe(401);
  });

  it('serves the app and says it is not signed in; /api/session gives no CSRF token', async () => {
    const session = (await (await fetch(`${base}/api/session`)).json()) as SessionInfo;
    expect(session).toEqual({ auth: 'users', user: null, csrf: null });
    if (existsSync(join(APP_DIR, 'index.html'))) {
      const page = await fetch(`${base}/slides/${slideId}`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<div id="app">');
    }
  });

  it('a wrong password is 401 and logged with the name, never the password', async () => {
    const res = await login(base, { user: 'alice', password: 'not the password at all' });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: string }).error).toBe('bad-credentials');
    const unknown = await login(base, { user: 'mallory', password: 'guessing-guessing' });
    expect(unknown.status).toBe(401);
    const failed = auditLines.filter((l) => l.startsWith('login-failed'));
    expect(failed.some((l) => l.includes('"alice"') && l.includes('wrong password'))).toBe(true);
    expect(failed.some((l) => l.includes('"mallory"') && l.includes('no such user'))).toBe(true);
    expect(auditLines.join('\n')).not.toMatch(/not the password|guessing-guessing|correct horse/);
  });
});

describe('signed in', () => {
  let alice: Signed;
  beforeAll(async () => {
    alice = await signIn(base, 'alice');
  });

  const as = (s: Signed, extra: Record<string, string> = {}): Record<string, string> => ({ cookie: s.cookie, ...extra });

  it('reads the worklist, a slide, tiles and the live updates with the session cookie', async () => {
    expect((await raw(base, 'GET', '/api/worklist', as(alice))).status).toBe(200);
    const detail = JSON.parse((await raw(base, 'GET', `/api/slides/${slideId}`, as(alice))).body) as { tiles: { url: string } };
    expect((await raw(base, 'GET', detail.tiles.url, as(alice))).status).toBe(200);
    const ac = new AbortController();
    const sse = await fetch(`${base}/api/events`, { headers: as(alice), signal: ac.signal });
    expect(sse.status).toBe(200);
    expect(sse.headers.get('content-type')).toMatch(/text\/event-stream/);
    ac.abort();
    const session = JSON.parse((await raw(base, 'GET', '/api/session', as(alice))).body) as SessionInfo;
    expect(session).toEqual({ auth: 'users', user: 'alice', csrf: alice.csrf });
  });

  it('path traversal in URLs is 4xx and never serves a file outside the roots', async () => {
    const files = `/tiles/${slideId}/0123456789abcdef/slide_files`;
    const attempts = [
      `/api/slides/..%2F..%2Fetc%2Fpasswd`,
      `/api/slides/%2e%2e%2f%2e%2e%2fetc%2fpasswd/regions`,
      `/api/slides/../../../../etc/passwd`,
      `/tiles/..%2F${slideId}/x/slide.dzi`,
      `/tiles/%2e%2e/%2e%2e/etc/passwd`,
      `${files}/..%2F..%2F0/0_0.jpeg`,
      `${files}/0/..%2F..%2F..%2Fetc%2Fpasswd`,
      `/assets/..%2F..%2F..%2F..%2Fetc%2Fpasswd`,
      `/assets/%2e%2e/%2e%2e/package.json`,
      `/%2e%2e/%2e%2e/%2e%2e/etc/passwd`,
      `/..%2F..%2Fpackage.json`,
      `/index.html/..%2F..%2F..%2Fpackage.json`,
      `/assets/../../../../etc/passwd`,
      `/assets/../api/worklist`,
      `/api/reports/batch.json?ids=..%2F..%2Fetc`,
      `/api/slides/${slideId}/report.json?top=../../x`,
    ];
    for (const path of attempts) {
      const res = await raw(base, 'GET', path, as(alice));
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
      expect(res.body, path).not.toMatch(/root:.*:0:0|"name": "flashslide"|"devDependencies"/);
    }
  });

  it('submitted paths outside the slide roots are 4xx: ../, encoded, absolute, symlinks out', async () => {
    const submit = (path: string): Promise<Raw> => raw(base, 'POST', '/api/submit', as(alice, { 'content-type': 'application/json', 'x-flashslide-csrf': alice.csrf }), JSON.stringify({ path }));
    const cases: [string, number][] = [
      ['../outside/secret.svs', 403],
      ['inside.svs/../../outside/secret.svs', 403],
      [join(dir, 'outside', 'secret.svs'), 403],
      ['/etc/passwd', 403],
      ['escape.svs', 403],
      ['linkdir/secret.svs', 403],
      [slideRoot, 403],
      ['%2E%2E/outside/secret.svs', 404],
      ['no-such.svs', 404],
      ['a\u0000b', 400],
    ];
    for (const [path, status] of cases) {
      const res = await submit(path);
      expect(res.status, JSON.stringify(path)).toBe(status);
    }
  });

  it('oversized and malformed requests are 4xx, never 500', async () => {
    const csrf = { 'x-flashslide-csrf': alice.csrf };
    const verdictUrl = `/api/slides/${slideId}/review/regions/${regionId}`;
    const put = (body: string | Buffer, headers: Record<string, string> = {}): Promise<Raw> =>
      raw(base, 'PUT', verdictUrl, as(alice, { 'content-type': 'application/json', 'if-match': '"0"', ...csrf, ...headers }), body);
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    // One at a time, in order: each is a thunk.
    const cases: [string, () => Promise<Raw>][] = [
      ['truncated JSON', () => put('{"verdict":')],
      ['not JSON', () => put('verdict=confirmed')],
      ['JSON of the wrong shape', () => put('{"verdict": 7}')],
      ['prototype pollution', () => put('{"verdict": "confirmed", "__proto__": {"x": 1}}')],
      ['deep nesting', () => put(deep)],
      ['2 MiB of JSON', () => put(JSON.stringify({ verdict: 'confirmed', note: 'x'.repeat(2 << 20) }))],
      ['a form body', () => put('verdict=confirmed', { 'content-type': 'application/x-www-form-urlencoded' })],
      ['a malformed If-Match', () => put('{"verdict": "confirmed"}', { 'if-match': 'x'.repeat(5000) })],
      ['a bad region id', () => raw(base, 'PUT', `/api/slides/${slideId}/review/regions/..%2F..%2Fx`, as(alice, { 'content-type': 'application/json', ...csrf }), '{"verdict": "confirmed"}')],
      ['a submit without a body', () => raw(base, 'POST', '/api/submit', as(alice, { 'content-type': 'application/json', ...csrf }), '')],
      ['a submit with 5000-character path', () => raw(base, 'POST', '/api/submit', as(alice, { 'content-type': 'application/json', ...csrf }), JSON.stringify({ path: 'a'.repeat(5000) }))],
      ['an upload above the limit', () => raw(base, 'PUT', '/api/upload?name=big.svs', as(alice, { 'content-type': 'application/octet-stream', ...csrf }), Buffer.alloc((1 << 20) + 1))],
      ['an upload named with a folder', () => raw(base, 'PUT', '/api/upload?name=..%2Fevil.svs', as(alice, { 'content-type': 'application/octet-stream', ...csrf }), Buffer.from('x'))],
      ['an upload of the wrong type', () => raw(base, 'PUT', '/api/upload?name=a.svs', as(alice, { 'content-type': 'text/plain', ...csrf }), 'x')],
      ['an upload without a name', () => raw(base, 'PUT', '/api/upload', as(alice, { 'content-type': 'application/octet-stream', ...csrf }), 'x')],
      ['an empty upload', () => raw(base, 'PUT', '/api/upload?name=empty.svs', as(alice, { 'content-type': 'application/octet-stream', ...csrf }), '')],
      ['a bad report query', () => raw(base, 'GET', `/api/slides/${slideId}/report.pdf?top=-1&paper=legal`, as(alice))],
      ['a bad batch format', () => raw(base, 'GET', '/api/reports/batch.zip?format=exe', as(alice))],
      ['a thumbnail size out of range', () => raw(base, 'GET', `/api/slides/${slideId}/thumbnail.jpg?size=999999`, as(alice))],
      ['a malformed login', () => raw(base, 'POST', '/api/login', { 'content-type': 'application/json' }, '{"user": ["alice"]}')],
      ['a login with a huge password', () => raw(base, 'POST', '/api/login', { 'content-type': 'application/json' }, JSON.stringify({ user: 'alice', password: 'x'.repeat(5000) }))],
    ];
    for (const [what, send] of cases) {
      const res = await send();
      expect(res.status, `${what}: ${res.body.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
      expect(res.status, `${what}: ${res.body.slice(0, 200)}`).toBeLessThan(500);
      if (res.body !== '') expect(JSON.parse(res.body), what).toHaveProperty('message');
    }
    // The refused uploads left nothing behind.
    const uploads = join(dataDir, 'uploads');
    const left = existsSync(uploads) ? readdirSync(uploads) : [];
    expect(left.filter((f) => /big|evil|empty/.test(f) || f.endsWith('.part'))).toEqual([]);
  });

  it('a cookie-authenticated write needs the CSRF header (403 without, with a wrong one, or from another origin)', async () => {
    const verdictUrl = `/api/slides/${slideId}/review/regions/${regionId}`;
    const version = (JSON.parse((await raw(base, 'GET', `/api/slides/${slideId}/review`, as(alice))).body) as Review).version;
    const body = JSON.stringify({ verdict: 'unsure' });
    const put = (headers: Record<string, string>): Promise<Raw> => raw(base, 'PUT', verdictUrl, as(alice, { 'content-type': 'application/json', 'if-match': `"${version}"`, ...headers }), body);
    for (const [what, headers] of [
      ['no header', {}],
      ['a wrong token', { 'x-flashslide-csrf': 'A'.repeat(43) }],
      ['another origin', { 'x-flashslide-csrf': alice.csrf, origin: 'http://evil.example' }],
      ['another site', { 'x-flashslide-csrf': alice.csrf, 'sec-fetch-site': 'cross-site' }],
    ] as const) {
      const res = await put(headers);
      expect(res.status, what).toBe(403);
      expect(JSON.parse(res.body), what).toMatchObject({ error: 'csrf' });
    }
    expect((await raw(base, 'POST', '/api/logout', as(alice))).status).toBe(403);
    // bull-board cannot send the header: its writes need this server's Origin instead.
    expect((await raw(base, 'PUT', '/admin/queues/api/queues/pause', as(alice))).status).toBe(403);
    const own = new URL(base).host;
    const board = await raw(base, 'PUT', '/admin/queues/api/queues/pause', as(alice, { origin: `http://${own}` }));
    expect(board.body).not.toContain('"csrf"');
    expect(auditLines.some((l) => l.startsWith('csrf-refused'))).toBe(true);
    // The real thing passes.
    const ok = await put({ 'x-flashslide-csrf': alice.csrf, origin: `http://${own}`, 'sec-fetch-site': 'same-origin' });
    expect(ok.status, ok.body).toBe(200);
  });

  it('records the verdict under the signed-in name and refuses another reviewer name', async () => {
    const verdictUrl = `/api/slides/${slideId}/review/regions/${regionId}`;
    const read = async (): Promise<Review> => JSON.parse((await raw(base, 'GET', `/api/slides/${slideId}/review`, as(alice))).body) as Review;
    const put = (body: object, version: number): Promise<Raw> =>
      raw(base, 'PUT', verdictUrl, as(alice, { 'content-type': 'application/json', 'if-match': `"${version}"`, 'x-flashslide-csrf': alice.csrf }), JSON.stringify(body));
    const v0 = (await read()).version;
    const ok = await put({ verdict: 'confirmed', note: 'mitoses' }, v0);
    expect(ok.status, ok.body).toBe(200);
    expect((JSON.parse(ok.body) as Review).regions[regionId]).toMatchObject({ verdict: 'confirmed', reviewer: 'alice' });
    const impersonate = await put({ verdict: 'rejected', reviewer: 'bob' }, v0 + 1);
    expect(impersonate.status).toBe(403);
    expect(JSON.parse(impersonate.body)).toMatchObject({ error: 'reviewer-mismatch' });
    expect((await put({ verdict: 'rejected', reviewer: 'alice' }, v0 + 1)).status).toBe(200);
    const onDisk = readdirSync(dataDir).map((d) => join(dataDir, d, 'review.json')).find((f) => existsSync(f)) as string;
    const file = JSON.parse(readFileSync(onDisk, 'utf8')) as { regions: Record<string, { reviewer: string; history: { reviewer: string }[] }> };
    expect(file.regions[regionId]?.reviewer).toBe('alice');
    expect(file.regions[regionId]?.history.map((h) => h.reviewer)).toContain('alice');
  });

  it('sign-out ends the session; a new sign-in gets a new session id', async () => {
    const s = await signIn(base, 'alice');
    const again = await signIn(base, 'alice');
    expect(again.cookie).not.toBe(s.cookie);
    const out = await raw(base, 'POST', '/api/logout', as(s, { 'x-flashslide-csrf': s.csrf }));
    expect(out.status).toBe(200);
    expect(String(out.headers['set-cookie'])).toMatch(/Max-Age=0/);
    expect((await raw(base, 'GET', '/api/worklist', as(s))).status).toBe(401);
    expect((await raw(base, 'GET', '/api/worklist', as(again))).status).toBe(200);
  });

  it('removing an account from the users file signs it out within seconds; a new one can sign in at once', async () => {
    const bob = await signIn(base, 'bob');
    expect((await raw(base, 'GET', '/api/worklist', as(bob))).status).toBe(200);
    const text = readFileSync(usersFile, 'utf8');
    await writeUsersText(usersFile, withoutUser(text, 'bob') as string);
    await new Promise((r) => setTimeout(r, 2200));
    await raw(base, 'GET', '/api/worklist', as(bob)); // the first request after the interval re-reads the file
    await new Promise((r) => setTimeout(r, 200));
    expect((await raw(base, 'GET', '/api/worklist', as(bob))).status).toBe(401);
    expect((await login(base, { user: 'bob', password: PASSWORDS.bob })).status).toBe(401);
    await writeUsersText(usersFile, text);
    await new Promise((r) => setTimeout(r, 2200));
    expect((await login(base, { user: 'bob', password: PASSWORDS.bob })).status).toBe(200);
  });

  it('sends the security headers: CSP, frame, sniffing, referrer; no HSTS over plain http', async () => {
    for (const path of ['/', '/api/session']) {
      const res = await fetch(`${base}${path}`);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp, path).toContain("default-src 'self'");
      expect(csp, path).toContain("script-src 'self'");
      expect(csp, path).toContain("object-src 'none'");
      expect(csp, path).not.toContain('upgrade-insecure-requests');
      expect(res.headers.get('x-frame-options'), path).toBe('SAMEORIGIN');
      expect(res.headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(res.headers.get('referrer-policy'), path).toBe('no-referrer');
      expect(res.headers.get('strict-transport-security'), path).toBeNull();
      expect(res.headers.get('x-powered-by'), path).toBeNull();
    }
  });
});

describe('token mode', () => {
  let tokenServer: ReviewServer;
  let tokenBase: string;
  beforeAll(async () => {
    tokenServer = await buildServer({ dataDir, appDir: APP_DIR, auth: { mode: 'token', token: TOKEN, tokenUser: 'lab-script' }, behindTls: true }, { audit: () => undefined });
    tokenBase = await tokenServer.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await tokenServer?.close();
  });

  it('takes the bearer token (no CSRF header: not an ambient credential) and records verdicts as the token user', async () => {
    expect((await raw(tokenBase, 'GET', '/api/worklist')).status).toBe(401);
    expect((await raw(tokenBase, 'GET', '/api/worklist', { authorization: `Bearer ${TOKEN}x` })).status).toBe(401);
    expect((await raw(tokenBase, 'GET', '/api/worklist', { authorization: `Basic ${Buffer.from(`a:${TOKEN}`).toString('base64')}` })).status).toBe(401);
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await raw(tokenBase, 'GET', '/api/worklist', auth)).status).toBe(200);
    const review = JSON.parse((await raw(tokenBase, 'GET', `/api/slides/${slideId}/review`, auth)).body) as Review;
    const res = await raw(tokenBase, 'PUT', `/api/slides/${slideId}/review/regions/${regionId}`, { ...auth, 'content-type': 'application/json', 'if-match': `"${review.version}"` }, JSON.stringify({ verdict: 'unsure' }));
    expect(res.status, res.body).toBe(200);
    expect((JSON.parse(res.body) as Review).regions[regionId]?.reviewer).toBe('lab-script');
  });

  it('lets the browser exchange the token for a Secure __Host- session cookie behind TLS, with HSTS', async () => {
    expect((await login(tokenBase, { token: 'wrong' })).status).toBe(401);
    const res = await login(tokenBase, { token: TOKEN });
    expect(res.status).toBe(200);
    const setCookie = res.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^__Host-flashslide_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Secure$/);
    expect(res.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
    expect(res.headers.get('content-security-policy')).toContain('upgrade-insecure-requests');
    const info = (await res.json()) as SessionInfo;
    expect(info).toMatchObject({ auth: 'token', user: 'lab-script' });
    expect((await raw(tokenBase, 'GET', '/api/worklist', { cookie: setCookie.split(';')[0] as string })).status).toBe(200);
  });
});

describe('rate limits', () => {
  let limited: ReviewServer;
  let limitedBase: string;
  beforeAll(async () => {
    // trustProxy: the test plays several client addresses through X-Forwarded-For.
    limited = await buildServer(
      { dataDir, appDir: APP_DIR, auth: { mode: 'users', usersFile }, trustProxy: true, rateLimit: { ...DEFAULT_SERVE_OPTIONS.rateLimit, requestsPerMinute: 60, burst: 30 } },
      { audit: () => undefined },
    );
    limitedBase = await limited.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await limited?.close();
  });

  const from = (ip: string): Record<string, string> => ({ 'x-forwarded-for': ip });

  it('allows 10 sign-in attempts a minute per address, then 429 with Retry-After', async () => {
    for (let i = 0; i < 10; i++) expect((await login(limitedBase, { user: 'mallory', password: `guess number ${i}` }, from('10.0.0.1'))).status).toBe(401);
    const res = await login(limitedBase, { user: 'mallory', password: 'guess number 10' }, from('10.0.0.1'));
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    // Another address is not affected.
    expect((await login(limitedBase, { user: 'trudy', password: 'guess number 11' }, from('10.0.0.2'))).status).toBe(401);
  });

  it('allows 10 sign-in attempts a minute per account from any address, then 429 even with the right password', async () => {
    for (let i = 0; i < 10; i++) expect((await login(limitedBase, { user: 'alice', password: `guess number ${i}` }, from(`10.1.0.${i}`))).status).toBe(401);
    const res = await login(limitedBase, { user: 'ALICE', password: PASSWORDS.alice }, from('10.1.1.1'));
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('limits requests per address with a burst, 429 with Retry-After', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) statuses.push((await raw(limitedBase, 'GET', '/api/session', from('10.2.0.1'))).status);
    expect(statuses.slice(0, 25).every((s) => s === 200)).toBe(true);
    expect(statuses.at(-1)).toBe(429);
    const res = await raw(limitedBase, 'GET', '/api/session', from('10.2.0.1'));
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect((await raw(limitedBase, 'GET', '/api/session', from('10.2.0.2'))).status).toBe(200);
  });
});

describe('without authentication (loopback)', () => {
  let open: ReviewServer;
  let openBase: string;
  beforeAll(async () => {
    open = await buildServer({ dataDir, appDir: APP_DIR });
    openBase = await open.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await open?.close();
  });

  it('works as before, says so in /api/session, and has no sign-in routes', async () => {
    expect((await raw(openBase, 'GET', '/api/worklist')).status).toBe(200);
    expect(JSON.parse((await raw(openBase, 'GET', '/api/session')).body)).toEqual({ auth: 'none', user: null, csrf: null });
    expect((await raw(openBase, 'POST', '/api/login', { 'content-type': 'application/json' }, '{}')).status).toBe(404);
  });

  it('answers only to loopback Host names (DNS rebinding) and refuses writes from other origins', async () => {
    const res = await raw(openBase, 'GET', '/api/worklist', { host: 'evil.example:8080' });
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'host' });
    for (const host of ['localhost:1', '127.0.0.1', '[::1]:8080']) expect((await raw(openBase, 'GET', '/api/session', { host })).status, host).toBe(200);
    const put = await raw(openBase, 'PUT', `/api/slides/${slideId}/review/regions/${regionId}`, { origin: 'http://evil.example', 'content-type': 'application/json', 'if-match': '"1"' }, '{"verdict":"confirmed"}');
    expect(put.status).toBe(403);
  });

  it('refuses to be built for a non-loopback address', async () => {
    await expect(buildServer({ dataDir, appDir: APP_DIR, host: '0.0.0.0' })).rejects.toThrow(InsecureBindError);
  });
});

describe('loopback and password helpers', () => {
  it('tells loopback addresses from the network', () => {
    for (const h of ['127.0.0.1', '127.3.2.1', 'localhost', 'LOCALHOST', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) expect(isLoopbackHost(h), h).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.2', 'example.org', '::ffff:10.0.0.1', '1::1', '::11', '128.0.0.1', 'localhost.evil.example']) expect(isLoopbackHost(h), h).toBe(false);
    expect(() => checkBind('0.0.0.0', { mode: 'none' })).toThrow(/--users FILE/);
    expect(() => checkBind('0.0.0.0', { mode: 'users', usersFile: 'x' })).not.toThrow();
    expect(() => checkBind('127.0.0.1', { mode: 'none' })).not.toThrow();
  });

  it('hashes with a fresh salt and its parameters, and verifies', async () => {
    const a = await hashPassword('a long enough password');
    const b = await hashPassword('a long enough password');
    expect(a).not.toBe(b);
    expect(a).toMatch(/^\$scrypt\$ln=15,r=8,p=3\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    expect(await verifyPassword('a long enough password', parsePasswordHash(a))).toBe(true);
    expect(await verifyPassword('a long enough passwore', parsePasswordHash(a))).toBe(false);
    expect(() => parseUsers('alice:$scrypt$ln=30,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'u')).toThrow(/u:1: .*ln=30/);
    expect(() => parseUsers(`alice:${a}\nAlice:${b}`, 'u')).toThrow(/u:2: user Alice appears twice/);
    expect(() => parseUsers('bob', 'u')).toThrow(/u:1: expected NAME:HASH/);
  });
});

// bin/flashslide.js runs dist/: `npm test` rebuilds it first (scripts/ensure-ready.mjs), by hand `npx tsc -p tsconfig.json`.
describe('the CLI', () => {
  it('serve --host 0.0.0.0 without sign-in refuses to start (exit 2) and says how to configure it', () => {
    const r = cli(['serve', '--data', dataDir, '--host', '0.0.0.0', '--port', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refusing to listen on 0\.0\.0\.0 without authentication/);
    expect(r.stderr).toMatch(/--users FILE/);
    expect(r.stderr).toMatch(/--auth-token-file FILE/);
    const missing = cli(['serve', '--data', dataDir, '--host', '0.0.0.0', '--port', '0', '--users', join(dir, 'nobody.txt')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no users file at .*nobody\.txt: add the first reviewer with `flashslide serve-user add NAME/);
    const weak = join(dir, 'weak-token');
    writeFileSync(weak, 'short\n', { mode: 0o600 });
    const short = cli(['serve', '--data', dataDir, '--host', '0.0.0.0', '--port', '0', '--auth-token-file', weak]);
    expect(short.code).toBe(2);
    expect(short.stderr).toMatch(/at least 32 characters/);
    expect(cli(['serve', '--help']).stdout).toMatch(/--users FILE[\s\S]*--auth-token-file/);
  });

  it('serve-user add/list/remove keeps an owner-only users file of scrypt hashes; the password comes from stdin', async () => {
    const file = join(dir, 'cli-users.txt');
    const run = (args: string[], input?: string): { code: number | null; stdout: string; stderr: string } => {
      const r = spawnSync(process.execPath, [BIN, 'serve-user', ...args], { encoding: 'utf8', env: cliEnv(), input: input ?? '' });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    expect(run(['add', 'carol', '--users', file], 'short\n').code).toBe(2);
    expect(existsSync(file)).toBe(false);
    expect(run(['add', 'bad:name', '--users', file], 'a good long password\n').code).toBe(2);
    const added = run(['add', 'carol', '--users', file], 'a good long password\n');
    expect(added.code, added.stderr).toBe(0);
    expect(run(['add', 'dave', '--users', file], 'another long password\n').code).toBe(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(run(['list', '--users', file]).stdout).toBe('carol\ndave\n');
    const users = parseUsers(readFileSync(file, 'utf8'), file);
    expect(await verifyPassword('a good long password', users.get('carol')!)).toBe(true);
    expect(readFileSync(file, 'utf8')).not.toContain('a good long password');
    expect(run(['remove', 'carol', '--users', file]).code).toBe(0);
    expect(run(['list', '--users', file]).stdout).toBe('dave\n');
    expect(run(['remove', 'carol', '--users', file]).code).toBe(2);
    expect(run(['hash', 'erin'], 'a third long password\n').stdout).toMatch(/^erin:\$scrypt\$ln=15,r=8,p=3\$/);
  });
});
