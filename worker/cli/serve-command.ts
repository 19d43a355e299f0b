/**
 * `flashslide serve`: the review server over a results folder (viewer/server). Loaded only when
 * asked for, so the pipeline commands never load the web stack.
 */
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { repoRoot } from '../native/addon.js';
import { checkRedis, redactUrl, redisUrl as resolveRedisUrl } from '../queue/connection.js';
import { UsageError, choiceFlag, numberFlag, parse, stringFlag } from './args.js';
import { ANALYSIS_FLAGS, ANALYSIS_HELP, checkedAnalysisOptions, helpRequested } from './pipeline-commands.js';
import { DEFAULT_SERVE_OPTIONS, DEFAULT_TOKEN_USER, type AuthMode } from '../../viewer/server/options.js';
import { InsecureBindError, checkBind, isLoopbackHost } from '../../viewer/server/auth/host.js';
import { UsersFileError, userNameProblem } from '../../viewer/server/auth/users-file.js';
import { printable } from '../util/printable.js';

/** Shorter shared tokens could be guessed; 32 characters of base64 are 192 bits. */
const MIN_TOKEN_LENGTH = 32;

/** --users, --auth-token-file or FLASHSLIDE_SERVE_TOKEN (at most one of the flags), else none. */
async function authFromFlags(values: Record<string, unknown>): Promise<AuthMode> {
  const usersFile = stringFlag(values, 'users');
  const tokenFile = stringFlag(values, 'auth-token-file');
  const tokenUser = stringFlag(values, 'token-user') ?? DEFAULT_TOKEN_USER;
  if (usersFile !== undefined && tokenFile !== undefined) throw new UsageError('pass --users or --auth-token-file, not both: named accounts or one shared token');
  if (usersFile !== undefined) {
    if (values['token-user'] !== undefined) throw new UsageError('--token-user applies to --auth-token-file only: with --users verdicts carry the account names');
    return { mode: 'users', usersFile: resolve(usersFile) };
  }
  const tokenUserProblem = userNameProblem(tokenUser);
  if (tokenUserProblem !== null) throw new UsageError(`--token-user: ${tokenUserProblem}`);
  let token: string | undefined;
  if (tokenFile !== undefined) {
    let info;
    try {
      info = await stat(tokenFile);
      token = (await readFile(tokenFile, 'utf8')).trim();
    } catch (err) {
      throw new UsageError(`cannot read --auth-token-file ${printable(tokenFile)}: ${printable((err as Error).message)}`);
    }
    if ((info.mode & 0o077) !== 0) process.stderr.write(`flashslide serve: warning: ${printable(tokenFile)} is readable by other users of this machine (chmod 600 ${printable(tokenFile)})\n`);
  } else {
    const env = process.env['FLASHSLIDE_SERVE_TOKEN'];
    if (env !== undefined && env !== '') token = env.trim();
  }
  if (token === undefined) {
    if (values['token-user'] !== undefined) throw new UsageError('--token-user needs --auth-token-file (or FLASHSLIDE_SERVE_TOKEN)');
    return { mode: 'none' };
  }
  const from = tokenFile ?? 'FLASHSLIDE_SERVE_TOKEN';
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new UsageError(`the access token in ${printable(from)} must be at least ${MIN_TOKEN_LENGTH} characters without spaces: make one with openssl rand -base64 32`);
  }
  return { mode: 'token', token, tokenUser };
}

function describeAuth(auth: AuthMode): string {
  if (auth.mode === 'users') return `accounts from ${printable(auth.usersFile)}`;
  if (auth.mode === 'token') return `access token (verdicts recorded as "${auth.tokenUser}")`;
  return 'none (this machine only)';
}

const USAGE = `usage: flashslide serve [--data DIR] [--slides ROOT ...] [--redis URL] [--host 127.0.0.1] [--port 8080]
                       [--users FILE | --auth-token-file FILE] [--behind-tls] [--trust-proxy]

  --data DIR            results folder to browse (default ./data)
  --slides ROOT         a folder whose slides may be submitted from the browser (repeatable)
  --redis URL           the queue (also FLASHSLIDE_REDIS): live progress, submission, /admin/queues;
                        without it the server browses what \`analyze\` wrote (verdicts still work)
  --host H              interface to listen on (default 127.0.0.1: this machine only); any other
                        address needs --users or --auth-token-file, else serve refuses to start
  --port N              (default 8080; 0 picks a free port)
  --jpeg-quality Q      slide tile quality (default 80; stored JPEG tiles are sent as they are)
  --tile-format F       jpeg (default) or webp
  --upload-limit-mb N   largest slide upload (default 20480)
  --admin-writable      let /admin/queues retry and remove jobs (default read-only)
  --show SLIDE          also print the review page URL of this slide's latest result
  --log                 log every request

Sign-in (see README "Server security"):
  --users FILE          named accounts (NAME:scrypt hash per line); verdicts are recorded under the
                        signed-in name. Add or change one: flashslide serve-user add NAME --users FILE
                        (password from stdin); the file is re-read when it changes
  --auth-token-file F   one shared access token instead (also FLASHSLIDE_SERVE_TOKEN), at least 32
                        characters: openssl rand -base64 32 > F. Scripts send Authorization: Bearer;
                        the browser signs in with it. Verdicts are recorded as --token-user (default token)
  --behind-tls          browsers reach this server over https through a reverse proxy: Secure
                        cookies, HSTS (requests arriving over https get Secure cookies anyway)
  --trust-proxy         take the client address and protocol from X-Forwarded-For/-Proto (only
                        behind a proxy you run: clients could otherwise forge them)
  --rate-limit N        requests per minute per client address (default 18000, 0: off); sign-in
                        allows 10 attempts a minute per address and 10 per account
  --session-idle-minutes N  a browser session unused this long ends (default 120; at most 12 h in all)
  Without sign-in (the default, loopback only) anyone on this machine can use the server, and
  it answers only requests addressed to localhost/127.0.0.1/[::1].

Slides submitted from the browser are analysed with these options:
${ANALYSIS_HELP}`;

export async function serveCommand(args: string[]): Promise<number> {
  const p = parse(args, {
    ...ANALYSIS_FLAGS,
    'slides': { type: 'string', multiple: true },
    'redis': { type: 'string' },
    'host': { type: 'string' },
    'port': { type: 'string' },
    'jpeg-quality': { type: 'string' },
    'tile-format': { type: 'string' },
    'upload-limit-mb': { type: 'string' },
    'admin-writable': { type: 'boolean' },
    'show': { type: 'string' },
    'log': { type: 'boolean' },
    'users': { type: 'string' },
    'auth-token-file': { type: 'string' },
    'token-user': { type: 'string' },
    'behind-tls': { type: 'boolean' },
    'trust-proxy': { type: 'boolean' },
    'rate-limit': { type: 'string' },
    'session-idle-minutes': { type: 'string' },
    'help': { type: 'boolean', short: 'h' },
  });
  if (helpRequested(p, USAGE)) return 0;
  if (p.positionals.length > 0) throw new UsageError(`serve takes no positional arguments (got ${printable(p.positionals.join(' '))}); slide folders go in --slides`);
  const port = numberFlag(p.values, 'port') ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port must be an integer in 0..65535');
  const jpegQuality = numberFlag(p.values, 'jpeg-quality') ?? 80;
  if (!Number.isInteger(jpegQuality) || jpegQuality < 1 || jpegQuality > 100) throw new UsageError('--jpeg-quality must be an integer in 1..100');
  const uploadMb = numberFlag(p.values, 'upload-limit-mb') ?? 20480;
  if (!(uploadMb > 0)) throw new UsageError('--upload-limit-mb must be positive');
  // Who may connect is settled first: a wide bind without sign-in is refused before anything else runs.
  const host = stringFlag(p.values, 'host') ?? '127.0.0.1';
  const auth = await authFromFlags(p.values);
  try {
    checkBind(host, auth);
  } catch (err) {
    if (err instanceof InsecureBindError) throw new UsageError(err.message);
    throw err;
  }
  const requestsPerMinute = numberFlag(p.values, 'rate-limit') ?? DEFAULT_SERVE_OPTIONS.rateLimit.requestsPerMinute;
  if (!Number.isInteger(requestsPerMinute) || requestsPerMinute < 0) throw new UsageError('--rate-limit must be a whole number of requests per minute (0: no limit)');
  const idleMinutes = numberFlag(p.values, 'session-idle-minutes') ?? DEFAULT_SERVE_OPTIONS.session.idleMinutes;
  if (!(idleMinutes >= 1 && idleMinutes <= 24 * 60)) throw new UsageError('--session-idle-minutes must be between 1 and 1440');
  const analysis = await checkedAnalysisOptions(p.values, { device: false });
  const dataDir = resolve(analysis.dataDir ?? 'data');
  const redisFlag = stringFlag(p.values, 'redis') ?? process.env['FLASHSLIDE_REDIS'];
  const redisUrl = redisFlag === undefined ? undefined : resolveRedisUrl(redisFlag);
  if (redisUrl !== undefined) await checkRedis(redisUrl);
  const slideRoots = ((p.values['slides'] as string[] | undefined) ?? []).map((r) => resolve(r));

  const { buildServer } = await import('../../viewer/server/server.js');
  const server = await buildServer({
    dataDir,
    appDir: join(repoRoot(), 'dist', 'app'),
    slideRoots,
    redisUrl,
    host,
    port,
    analysis: { ...analysis, dataDir },
    jpegQuality,
    tileFormat: choiceFlag(p.values, 'tile-format', ['jpeg', 'webp'] as const, 'jpeg'),
    uploadLimitBytes: Math.round(uploadMb * 1024 * 1024),
    adminWritable: Boolean(p.values['admin-writable']),
    logRequests: Boolean(p.values['log']),
    auth,
    behindTls: Boolean(p.values['behind-tls']),
    trustProxy: Boolean(p.values['trust-proxy']),
    rateLimit: { ...DEFAULT_SERVE_OPTIONS.rateLimit, requestsPerMinute },
    session: { ...DEFAULT_SERVE_OPTIONS.session, idleMinutes },
  }).catch((err: unknown) => {
    // A missing, empty or malformed users file is a configuration mistake: say which line.
    if (err instanceof UsersFileError) throw new UsageError(err.message);
    throw err;
  });
  let address: string;
  try {
    address = await server.app.listen({ host, port });
  } catch (err) {
    await server.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new UsageError(`port ${port} on ${host} is in use (another flashslide serve?): pass --port N, or --port 0 for a free one`);
    if (code === 'EADDRNOTAVAIL') throw new UsageError(`--host ${host} is not an address of this machine`);
    throw err;
  }
  const base = address.replace('://[::1]', '://localhost');
  const slides = (await server.context.catalog.list()).length;
  process.stdout.write(`flashslide serve: ${base}/  (${slides} slide(s) in ${printable(dataDir)}; queue: ${redisUrl === undefined ? 'none, browsing results only' : redactUrl(redisUrl)})\n`);
  process.stdout.write(`flashslide serve: sign-in: ${describeAuth(auth)}\n`);
  if (!isLoopbackHost(host) && !p.values['behind-tls']) {
    process.stdout.write(`flashslide serve: listening on ${host} over plain http: passwords and session cookies cross the network unencrypted; put a TLS-terminating reverse proxy in front and pass --behind-tls\n`);
  }
  const show = stringFlag(p.values, 'show');
  if (show !== undefined) {
    const wanted = resolve(show);
    const entry = (await server.context.catalog.list()).find((e) => e.slidePath === wanted);
    process.stdout.write(entry === undefined ? `flashslide serve: no result for ${printable(show)} in ${printable(dataDir)} yet\n` : `review ${printable(entry.name)}: ${base}/slides/${entry.id}\n`);
  }
  process.stdout.write('Ctrl-C stops the server.\n');
  await new Promise<void>((done) => {
    const stop = (): void => {
      void server.close().then(done);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
