/**
 * `flashslide serve`: the review server over a results folder (viewer/server). Loaded only when
 * asked for, so the pipeline commands never load the web stack.
 */
import { join, resolve } from 'node:path';
import { repoRoot } from '../native/addon.js';
import { checkRedis, redactUrl, redisUrl as resolveRedisUrl } from '../queue/connection.js';
import { UsageError, choiceFlag, numberFlag, parse, stringFlag } from './args.js';
import { ANALYSIS_FLAGS, ANALYSIS_HELP, checkedAnalysisOptions, helpRequested } from './pipeline-commands.js';

const USAGE = `usage: flashslide serve [--data DIR] [--slides ROOT ...] [--redis URL] [--host 127.0.0.1] [--port 8080]

  --data DIR            results folder to browse (default ./data)
  --slides ROOT         a folder whose slides may be submitted from the browser (repeatable)
  --redis URL           the queue (also FLASHSLIDE_REDIS): live progress, submission, /admin/queues;
                        without it the server browses what \`analyze\` wrote (verdicts still work)
  --host H              interface to listen on (default 127.0.0.1: this machine only)
  --port N              (default 8080; 0 picks a free port)
  --jpeg-quality Q      slide tile quality (default 80; stored JPEG tiles are sent as they are)
  --tile-format F       jpeg (default) or webp
  --upload-limit-mb N   largest slide upload (default 20480)
  --admin-writable      let /admin/queues retry and remove jobs (default read-only)
  --show SLIDE          also print the review page URL of this slide's latest result
  --log                 log every request

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
    'help': { type: 'boolean', short: 'h' },
  });
  if (helpRequested(p, USAGE)) return 0;
  if (p.positionals.length > 0) throw new UsageError(`serve takes no positional arguments (got ${p.positionals.join(' ')}); slide folders go in --slides`);
  const port = numberFlag(p.values, 'port') ?? 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port must be an integer in 0..65535');
  const jpegQuality = numberFlag(p.values, 'jpeg-quality') ?? 80;
  if (!Number.isInteger(jpegQuality) || jpegQuality < 1 || jpegQuality > 100) throw new UsageError('--jpeg-quality must be an integer in 1..100');
  const uploadMb = numberFlag(p.values, 'upload-limit-mb') ?? 20480;
  if (!(uploadMb > 0)) throw new UsageError('--upload-limit-mb must be positive');
  const analysis = await checkedAnalysisOptions(p.values, { device: false });
  const dataDir = resolve(analysis.dataDir ?? 'data');
  const redisFlag = stringFlag(p.values, 'redis') ?? process.env['FLASHSLIDE_REDIS'];
  const redisUrl = redisFlag === undefined ? undefined : resolveRedisUrl(redisFlag);
  if (redisUrl !== undefined) await checkRedis(redisUrl);
  const host = stringFlag(p.values, 'host') ?? '127.0.0.1';
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
  process.stdout.write(`flashslide serve: ${base}/  (${slides} slide(s) in ${dataDir}; queue: ${redisUrl === undefined ? 'none, browsing results only' : redactUrl(redisUrl)})\n`);
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1') {
    process.stdout.write(`flashslide serve: listening on ${host}: anyone who can reach this machine can view these slides and record verdicts\n`);
  }
  const show = stringFlag(p.values, 'show');
  if (show !== undefined) {
    const wanted = resolve(show);
    const entry = (await server.context.catalog.list()).find((e) => e.slidePath === wanted);
    process.stdout.write(entry === undefined ? `flashslide serve: no result for ${show} in ${dataDir} yet\n` : `review ${entry.name}: ${base}/slides/${entry.id}\n`);
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
