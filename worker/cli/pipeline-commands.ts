/**
 * The pipeline's commands: `analyze` (embedded, no Redis), `worker`, `submit` and `status` (queue).
 * They share the analysis flags, parsed once here.
 */
import { printable } from '../util/printable.js';
import { readAnalysisRecord } from '../store/analysis-record.js';
import { implausibleMppWarning } from '../slide/mpp-plausibility.js';
import { choiceFlag, numberFlag, parse, stringFlag, UsageError, type Parsed } from './args.js';
import { DEFAULT_ANALYSIS_OPTIONS, describeAnalysis, type AnalysisOptions, type EmbeddingsPolicy, type TokenMode } from '../pipeline/analysis-spec.js';
import { analyzeEmbedded, type SlideOutcome } from '../pipeline/run-embedded.js';
import { AnalysisOptionError, checkAnalysisOptions } from '../pipeline/check-analysis.js';
import { progressBar } from '../pipeline/progress.js';
import { buildReferenceFromSlides } from '../pipeline/reference-build.js';
import { findSlides } from '../submit/find-slides.js';
import { scoreText } from '../store/summary.js';
import { checkRedis, redisUrl } from '../queue/connection.js';
import { SlideWorker } from '../queue/slide-worker.js';
import { knownAnalyses, queuedSpecs, slideStatuses, submitSlides, waitForSlides, type SlideStatus } from '../queue/submit.js';
import { availableDevices, resolveDevice, resolveModelFiles, type DeviceRequest } from '../infer/vit-engine.js';
import { getEngine } from '../pipeline/engine-cache.js';
import { loadNativeAddon } from '../native/addon.js';
import { access, constants, mkdir, stat } from 'node:fs/promises';
import { resolveRoots } from '../queue/job-trust.js';

/** A worker's --data must exist (or be creatable) and be writable, or every job would fail. */
async function checkDataFolder(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (err) {
    throw new UsageError(`--data ${printable(dir)}: not a writable folder (${printable((err as NodeJS.ErrnoException).code ?? (err as Error).message)}); mount the shared results folder here`);
  }
}

export const ANALYSIS_FLAGS = {
  'model': { type: 'string' },
  'config': { type: 'string' },
  'device': { type: 'string' },
  'target-mpp': { type: 'string' },
  'region-size': { type: 'string' },
  'overlap': { type: 'string' },
  'batch-size': { type: 'string' },
  'score': { type: 'string' },
  'mpp': { type: 'string' },
  'fallback-mpp': { type: 'string' },
  'tokens': { type: 'string' },
  'token-margin': { type: 'string' },
  'embeddings': { type: 'string' },
  'data': { type: 'string' },
} as const;

export const ANALYSIS_HELP = `analysis options:
  --model demo|W.safetensors   model (default demo: seeded random weights, NOT diagnostic)
  --config C.json              model config (default: beside the weights)
  --device auto|cpu|cuda       (default auto: CUDA when built in, else CPU)
  --target-mpp X               model resolution, µm/px (default 0.5)
  --region-size N              region side in pixels (default: largest multiple of the patch <= 1024)
  --overlap N                  pixels shared by neighbouring regions (default 0)
  --batch-size N               regions per inference batch / queue job (default 4)
  --score self|reference:B|head:H   anomaly score (default self)
  --mpp X                      microns per level-0 pixel for every slide, replacing the file's (wrong or missing) value
  --fallback-mpp X             microns per level-0 pixel for the slides whose files carry none
  --tokens all|tissue          patches through the ViT: every one of each region (default), or
                               only tissue and --token-margin patches around it (glass dropped)
  --token-margin N             patches kept around tissue with --tokens tissue (default 2)
  --embeddings keep|drop       keep the patch embeddings after scoring (default; re-scoring with
                               another --score reuses them) or delete them (GiBs per slide)
  --data DIR                   result store (default ./data)`;

export function analysisOptions(values: Record<string, unknown>): Partial<AnalysisOptions> {
  const o: Partial<AnalysisOptions> = {};
  const model = stringFlag(values, 'model');
  if (model !== undefined) o.model = model;
  o.modelConfig = stringFlag(values, 'config');
  o.device = choiceFlag<DeviceRequest>(values, 'device', ['auto', 'cpu', 'cuda'], DEFAULT_ANALYSIS_OPTIONS.device);
  const nums: [string, 'targetMpp' | 'regionSize' | 'overlap' | 'batchSize' | 'mpp' | 'fallbackMpp'][] = [
    ['target-mpp', 'targetMpp'],
    ['region-size', 'regionSize'],
    ['overlap', 'overlap'],
    ['batch-size', 'batchSize'],
    ['mpp', 'mpp'],
    ['fallback-mpp', 'fallbackMpp'],
  ];
  for (const [flag, key] of nums) {
    const v = numberFlag(values, flag);
    if (v !== undefined) o[key] = v;
  }
  if (o.batchSize !== undefined && (!Number.isInteger(o.batchSize) || o.batchSize < 1 || o.batchSize > 256)) {
    throw new UsageError('--batch-size must be an integer in 1..256');
  }
  if (values['embeddings'] !== undefined) o.embeddings = choiceFlag<EmbeddingsPolicy>(values, 'embeddings', ['keep', 'drop'], 'keep');
  if (values['tokens'] !== undefined) o.tokens = choiceFlag<TokenMode>(values, 'tokens', ['all', 'tissue'], 'all');
  const margin = numberFlag(values, 'token-margin');
  if (margin !== undefined) {
    if (!Number.isInteger(margin) || margin < 0 || margin > 64) throw new UsageError('--token-margin must be an integer in 0..64 (patches)');
    o.tokenMargin = margin;
  }
  const score = stringFlag(values, 'score');
  if (score !== undefined) o.scoreMethod = score;
  const data = stringFlag(values, 'data');
  if (data !== undefined) o.dataDir = data;
  return o;
}

/**
 * The analysis flags, checked for the whole run before any slide is read (exit 2 on a problem):
 * see worker/pipeline/check-analysis.ts. `device: false` for commands that run no model.
 */
export async function checkedAnalysisOptions(values: Record<string, unknown>, check: { device: boolean }): Promise<Partial<AnalysisOptions>> {
  const options = analysisOptions(values);
  try {
    await checkAnalysisOptions(options, check);
  } catch (err) {
    if (err instanceof AnalysisOptionError) throw new UsageError(err.message);
    throw err;
  }
  return options;
}

export function helpRequested(p: Parsed, text: string): boolean {
  if (!p.values['help']) return false;
  process.stdout.write(`${text}\n`);
  return true;
}

async function outcomeLine(o: SlideOutcome, options: Partial<AnalysisOptions>): Promise<string> {
  if (o.status === 'failed') return `FAILED  ${printable(o.slidePath)}: ${printable(o.reason ?? '')}`;
  const score = o.slideScore === undefined ? '' : ` ${scoreText(o.slideScore)},`;
  const given = options.mpp ?? options.fallbackMpp;
  const flag = options.mpp !== undefined ? '--mpp' : '--fallback-mpp';
  let suspicious = '';
  if (given !== undefined && o.resultDir !== null) {
    // A wrong mpp does not fail: the tissue overview and the regions are scaled by it, so it
    // shows as no tissue, or as a slide of implausible physical size (see mpp-plausibility.ts).
    const slide = (await readAnalysisRecord(o.resultDir).catch(() => null))?.slide;
    const warning = slide !== undefined && slide.mppSource === 'override' && slide.width !== null && slide.height !== null && slide.mpp !== null ? implausibleMppWarning(slide.width, slide.height, slide.mpp, flag) : null;
    if (warning !== null) suspicious = ` (${warning})`;
    else if (o.slideScore === null) suspicious = ` (no tissue found with ${flag} ${given}: if the slide has tissue, that mpp is probably wrong; check the scanner's magnification)`;
  }
  return `${o.status === 'cached' ? 'CACHED' : 'DONE  '}  ${printable(o.slidePath)}:${score} ${o.anomalousRegions ?? 0} anomalous regions -> ${printable(o.resultDir ?? '')}${suspicious}`;
}

export async function analyzeCommand(args: string[]): Promise<number> {
  const p = parse(args, { ...ANALYSIS_FLAGS, force: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (helpRequested(p, `usage: flashslide analyze <slides or folders...> [--force] [--json]\n\n${ANALYSIS_HELP}`)) return 0;
  if (p.positionals.length === 0) throw new UsageError('analyze needs at least one slide or folder');
  const slides = await findSlides(p.positionals);
  if (slides.length === 0) throw new UsageError(`no slide files found in ${printable(p.positionals.join(', '))}`);
  const options = await checkedAnalysisOptions(p.values, { device: true });
  // The model once, before any slide: damaged weights (NaN, Inf) fail here with one line.
  const files = await resolveModelFiles(options.model ?? DEFAULT_ANALYSIS_OPTIONS.model, options.modelConfig);
  await getEngine(files.weights, files.config, options.device ?? DEFAULT_ANALYSIS_OPTIONS.device);
  const bar = progressBar();
  // Ctrl-C: what is on disk stays (finished batches, plans, results), and a re-run picks it up.
  const interrupted = (): void => {
    bar.end();
    process.stderr.write('flashslide analyze: interrupted. Finished batches are kept: run the same command again to resume where it stopped.\n');
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  let outcomes: SlideOutcome[];
  try {
    outcomes = await analyzeEmbedded(slides, { ...options, force: Boolean(p.values['force']), onProgress: bar });
  } finally {
    bar.end();
    process.removeListener('SIGINT', interrupted);
  }
  process.stdout.write(p.values['json'] ? `${JSON.stringify(outcomes, null, 2)}\n` : `${(await Promise.all(outcomes.map((o) => outcomeLine(o, options)))).join('\n')}\n`);
  return outcomes.some((o) => o.status === 'failed') ? 3 : 0;
}

export async function workerCommand(args: string[]): Promise<number> {
  const p = parse(args, {
    'redis': { type: 'string' },
    'concurrency': { type: 'string' },
    'device': { type: 'string' },
    'lock-ms': { type: 'string' },
    'data': { type: 'string' },
    'slides': { type: 'string', multiple: true },
    'models': { type: 'string', multiple: true },
    'stage-timeout': { type: 'string' },
    'grace': { type: 'string' },
    'help': { type: 'boolean', short: 'h' },
  });
  const usage = `usage: flashslide worker --slides ROOT [--slides ROOT ...] [--data DIR] [--models ROOT ...]
                         [--redis URL] [--concurrency N] [--device auto|cpu|cuda] [--lock-ms 30000]
                         [--stage-timeout S] [--grace S]

  --slides ROOT   a folder whose slides this worker may read (required, repeatable); a job for a
                  slide anywhere else is refused (links are resolved first)
  --data DIR      the results folder shared with submit and serve, mounted at the same path
                  (default ./data); results and embeddings are written only inside it, and a job
                  submitted to another folder is refused
  --models ROOT   a folder whose models, reference banks and heads jobs may use (repeatable; the
                  bundled demo model is always allowed)
  --stage-timeout S  the longest one plan, batch or scoring job may run (default 600 s for plan
                  and batch, twice that for scoring); a job over it fails with the reason
  --grace S       after SIGTERM/SIGINT, how long running jobs may finish (default 25 s); what is
                  still running then goes back to the queue for another worker`;
  if (helpRequested(p, usage)) return 0;
  const concurrency = numberFlag(p.values, 'concurrency') ?? 2;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new UsageError('--concurrency must be a positive integer');
  const device = p.values['device'] === undefined ? undefined : choiceFlag<DeviceRequest>(p.values, 'device', ['auto', 'cpu', 'cuda'], 'auto');
  const stageSeconds = numberFlag(p.values, 'stage-timeout');
  if (stageSeconds !== undefined && !(stageSeconds > 0)) throw new UsageError('--stage-timeout must be a positive number of seconds');
  const graceSeconds = numberFlag(p.values, 'grace') ?? 25;
  if (!(graceSeconds >= 0)) throw new UsageError('--grace must be a number of seconds >= 0');
  const slideRoots = (p.values['slides'] as string[] | undefined) ?? [];
  if (slideRoots.length === 0) throw new UsageError('worker needs --slides ROOT: the folder(s) holding the slides it may read (jobs for slides elsewhere are refused)');
  // Refuse to start rather than take jobs from a shared queue and fail every one of them.
  if (availableDevices().length === 0) throw new UsageError(`this worker cannot run models: ${String((loadNativeAddon() as Error).message)}`);
  try {
    resolveDevice(device ?? 'auto');
  } catch (err) {
    throw new UsageError(`--device ${device ?? 'auto'}: ${(err as Error).message}`);
  }
  const data = stringFlag(p.values, 'data') ?? 'data';
  await checkDataFolder(data);
  const modelRoots = (p.values['models'] as string[] | undefined) ?? [];
  for (const [flag, dirs] of [['--slides', slideRoots], ['--models', modelRoots]] as const) {
    for (const dir of dirs) if (!(await isFolder(dir))) throw new UsageError(`${flag} ${printable(dir)}: no such folder`);
  }
  await resolveModelFiles('demo'); // the bundled demo model exists before any job asks for it
  const roots = await resolveRoots({ dataDir: data, slideRoots, modelRoots });
  const worker = await SlideWorker.start({
    redisUrl: redisUrl(stringFlag(p.values, 'redis')),
    roots,
    concurrency,
    device,
    lockDurationMs: numberFlag(p.values, 'lock-ms') ?? 30_000,
    ...(stageSeconds === undefined ? {} : { stageBudgetMs: { plan: stageSeconds * 1000, embed: stageSeconds * 1000, aggregate: stageSeconds * 2000 } }),
  });
  await new Promise<void>((resolveStop) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`flashslide worker: ${signal}: finishing the running jobs for up to ${graceSeconds} s, taking no new ones\n`);
      void worker.close(graceSeconds * 1000).then((handedBack) => {
        if (handedBack > 0) {
          process.stderr.write(`flashslide worker: grace period over: ${handedBack} running job${handedBack === 1 ? '' : 's'} handed back to the queue\n`);
          // Native work of the abandoned jobs (a forward on the thread pool) would hold even
          // process.exit() until it ends. The queue has the jobs back and nothing of that work is
          // wanted: end as the signal asked, by its default action (the Unix convention).
          process.removeAllListeners(signal);
          process.kill(process.pid, signal);
        }
        resolveStop();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

async function isFolder(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory(), () => false);
}

/** What submission did, said so that it never reads as the slide's state ("done [queued]"). */
const SUBMITTED_NOTE: Record<NonNullable<SlideStatus['submitted']>, string> = {
  'queued': 'submitted now',
  'already-queued': 'was already in the queue',
  'already-done': 'already done: not run again (--force reruns)',
  'requeued': 'submitted again',
};

/** One line per slide: state, score (finished slides), analysis id, slide, progress, reason. */
function statusTable(rows: SlideStatus[]): string {
  const lines = rows.map((s) => {
    const score = s.slideScore === undefined ? '' : `${s.slideScore === null ? 'no tissue' : s.slideScore.toFixed(3)} (${s.anomalousRegions ?? 0} anomalous)`;
    const progress = s.regionsTotal === null ? '' : ` ${s.regionsDone ?? 0}/${s.regionsTotal} regions analysed`;
    const note = s.submitted === undefined ? '' : ` [${SUBMITTED_NOTE[s.submitted]}]`;
    const reason = s.reason === null ? '' : `: ${printable(s.reason)}`;
    return `${s.state.padEnd(11)} ${score.padEnd(24)} ${s.analysisId.slice(0, 12)} ${printable(s.slidePath)}${progress}${note}${reason}`;
  });
  return [`${'state'.padEnd(11)} ${'score (regions)'.padEnd(24)} analysis     slide`, ...lines].join('\n');
}

export async function submitCommand(args: string[]): Promise<number> {
  const p = parse(args, {
    ...ANALYSIS_FLAGS,
    redis: { type: 'string' },
    wait: { type: 'boolean' },
    priority: { type: 'string' },
    force: { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (helpRequested(p, `usage: flashslide submit <slides or folders...> [--wait] [--priority N] [--force] [--redis URL] [--json]\n\n${ANALYSIS_HELP}`)) return 0;
  if (p.positionals.length === 0) throw new UsageError('submit needs at least one slide or folder');
  const slides = await findSlides(p.positionals);
  if (slides.length === 0) throw new UsageError(`no slide files found in ${printable(p.positionals.join(', '))}`);
  const url = redisUrl(stringFlag(p.values, 'redis'));
  const options = await checkedAnalysisOptions(p.values, { device: false });
  const submitted = await submitSlides(slides, { ...options, redisUrl: url, priority: numberFlag(p.values, 'priority'), force: Boolean(p.values['force']) });
  let final = submitted;
  if (p.values['wait']) {
    const specs = await Promise.all(slides.map((s) => describeAnalysis(s, options)));
    let last = '';
    final = await waitForSlides(specs, url, (statuses) => {
      const line = statuses.map((s) => `${s.state}${s.regionsTotal === null ? '' : ` ${s.regionsDone ?? 0}/${s.regionsTotal}`}`).join(', ');
      if (line !== last && !p.values['json']) process.stderr.write(`${line}\n`);
      last = line;
    });
    final = final.map((s, i) => ({ ...s, ...(submitted[i]?.submitted === undefined ? {} : { submitted: submitted[i]?.submitted }) }));
  }
  process.stdout.write(p.values['json'] ? `${JSON.stringify(final, null, 2)}\n` : `${statusTable(final)}\n`);
  return p.values['wait'] && final.some((s) => s.state === 'failed' || s.state === 'missing') ? 3 : 0;
}

export async function statusCommand(args: string[]): Promise<number> {
  const p = parse(args, { ...ANALYSIS_FLAGS, redis: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } });
  if (helpRequested(p, `usage: flashslide status [slides...] [--redis URL] [--json] (with the analysis options used at submit)`)) return 0;
  const url = redisUrl(stringFlag(p.values, 'redis'));
  await checkRedis(url);
  const options = p.positionals.length > 0 ? await checkedAnalysisOptions(p.values, { device: false }) : {};
  const specs =
    p.positionals.length > 0
      ? // The queue's own record of a slide's analysis knows its --data folder: no need to repeat it.
        await queuedSpecs(await Promise.all((await findSlides(p.positionals)).map((s) => describeAnalysis(s, options))), url)
      : await knownAnalyses(url);
  const rows = await slideStatuses(specs, url);
  process.stdout.write(p.values['json'] ? `${JSON.stringify(rows, null, 2)}\n` : `${statusTable(rows)}\n`);
  return 0;
}

export async function referenceCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const usage = `usage: flashslide reference build <normal slides or folders...> -o bank.safetensors [--max-size 20000]\n\n${ANALYSIS_HELP}`;
  if (sub !== 'build') {
    if (sub === '--help' || sub === '-h') {
      process.stdout.write(`${usage}\n`);
      return 0;
    }
    throw new UsageError(`reference: expected "build"\n${usage}`);
  }
  const p = parse(rest, { ...ANALYSIS_FLAGS, 'out': { type: 'string', short: 'o' }, 'max-size': { type: 'string' }, 'help': { type: 'boolean', short: 'h' } });
  if (helpRequested(p, usage)) return 0;
  const out = stringFlag(p.values, 'out');
  if (out === undefined) throw new UsageError('reference build needs -o <bank.safetensors>');
  if (p.positionals.length === 0) throw new UsageError('reference build needs at least one normal slide or folder');
  const slides = await findSlides(p.positionals);
  if (slides.length === 0) throw new UsageError(`no slide files found in ${printable(p.positionals.join(', '))}`);
  const maxSize = numberFlag(p.values, 'max-size');
  const options = await checkedAnalysisOptions(p.values, { device: true });
  const bar = progressBar();
  let bank: Awaited<ReturnType<typeof buildReferenceFromSlides>>;
  try {
    bank = await buildReferenceFromSlides(slides, out, { ...options, maxSize, onProgress: bar });
  } finally {
    bar.end();
  }
  process.stdout.write(`${printable(out)}: ${bank.size} of ${bank.sourcePatches} tissue patches from ${slides.length} slide(s), model ${bank.model}, dim ${bank.dim}\n`);
  return 0;
}
