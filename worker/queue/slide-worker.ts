/**
 * `flashslide worker`: processes the three queues with the same stage functions as embedded mode.
 * Run one per GPU; any number, on any machines sharing Redis and the data folder, share the work.
 *
 * - Embed jobs run `concurrency` at a time (default 2): while one batch is in the engine, the
 *   next is being decoded, so the GPU does not wait for JPEG decoding. Slides stay open across
 *   their batches (source-cache.ts).
 * - A slide that cannot be read or a corrupt region fails that slide for good (UnrecoverableError,
 *   reason in failure.json); anything else is retried with backoff.
 * - A worker killed mid-batch leaves a stalled job; after its lock expires another worker takes it.
 *   Parts and results are written atomically, so the half-done batch leaves nothing behind.
 * - close() (on SIGTERM) stops taking jobs and waits for the running ones to finish.
 */
import { FlowProducer, Job, UnrecoverableError, Worker, type Job as BullJob } from 'bullmq';
import { Redis, type RedisOptions as IoRedisOptions } from 'ioredis';
import { checkRedis, redactText, redactUrl, workerConnectionOptions } from './connection.js';
import { KEEP, QUEUES, RETRY, jobIds, queueKey } from './queues.js';
import { AnalysisRequestSchema, EmbedJobSchema, JobPayloadError, PlanJobSchema, checkJobData, type AggregateJobData, type AnalysisRequest, type EmbedJobData } from './job-payload.js';
import { JobRefusedError, failureSpecForRequest, specForRequest, type WorkerRoots } from './job-trust.js';
import { StageTimeoutError, WorkerStoppingError, withBudget } from './stage-budget.js';
import { storageFailure } from '../pipeline/errors.js';
import { printable } from '../util/printable.js';
import { Value } from 'typebox/value';
import { planSlide, readPlan } from '../pipeline/plan-stage.js';
import { embedBatch, partExists, readBatch } from '../pipeline/embed-stage.js';
import { readPartTimings, writeFailure } from '../pipeline/aggregate-stage.js';
import { aggregateOffThread } from '../pipeline/aggregate-thread.js';
import { getEngine } from '../pipeline/engine-cache.js';
import { isSlideFailure } from '../pipeline/slide-failure.js';
import { SlideSourceCache } from './source-cache.js';
import { scoreText } from '../store/summary.js';
import type { DeviceRequest } from '../infer/vit-engine.js';
import { slideOpenOptions, type AnalysisSpec } from '../pipeline/analysis-spec.js';

export interface SlideWorkerOptions {
  redisUrl: string;
  /** Where this worker reads and writes (real paths): jobs asking for anything else are refused. */
  roots: WorkerRoots;
  /** Embed jobs in flight in this process. */
  concurrency: number;
  /** Overrides the device recorded in each job (this machine's GPU or CPU). */
  device: DeviceRequest | undefined;
  /** How long a job's lock lasts without renewal; a killed worker's job is retried after this. */
  lockDurationMs: number;
  /** Time budget of one job of each stage; a job over budget fails with the reason. */
  stageBudgetMs: { plan: number; embed: number; aggregate: number };
  log: (line: string) => void;
}

export const DEFAULT_WORKER_OPTIONS: Readonly<Omit<SlideWorkerOptions, 'redisUrl' | 'roots'>> = {
  concurrency: 2,
  device: undefined,
  lockDurationMs: 30_000,
  // Generous: a 100k px slide plans in tens of seconds and a batch of ViT-g regions on a CPU runs
  // minutes. The budgets catch work that will never end, not slow hardware.
  stageBudgetMs: { plan: 10 * 60_000, embed: 10 * 60_000, aggregate: 20 * 60_000 },
  log: (line) => process.stderr.write(`${line}\n`),
};

/** Derived specs kept per worker (an analysis is one plan, many embed jobs and one aggregate). */
const SPEC_CACHE = 64;

const progressKey = (spec: AnalysisSpec): string => `flashslide:progress:${queueKey(spec)}`;

/** What an embed job returns (its parent reads them all): whether it ran the model or found its part on disk. */
interface EmbedJobResult {
  batch: number;
  regions: number;
  computed: boolean;
}

/** Connection errors as state changes (lost, restored); other errors as they come. */
class RedisLinkReporter {
  private connected = true;

  constructor(
    private readonly url: string,
    private readonly log: (line: string) => void,
  ) {}

  error(err: Error): void {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const isLink = /^E(CONN|HOST|NET|PIPE|TIMEDOUT|NOTFOUND|AI_AGAIN)/.test(code) || /Connection is closed|connect E|ECONNREFUSED|ECONNRESET|Socket closed/i.test(err.message);
    if (!isLink) {
      this.log(`flashslide worker: error: ${printable(redactText(err.message, this.url))}`);
      return;
    }
    if (!this.connected) return;
    this.connected = false;
    this.log(`flashslide worker: lost the connection to Redis at ${redactUrl(this.url)} (${code || redactText(err.message, this.url)}); retrying, running jobs continue`);
  }

  ready(): void {
    if (this.connected) return;
    this.connected = true;
    this.log(`flashslide worker: connection to Redis at ${redactUrl(this.url)} restored`);
  }
}

export class SlideWorker {
  private readonly workers: Worker[] = [];
  private readonly flow: FlowProducer;
  private readonly redis: Redis;
  private readonly o: SlideWorkerOptions;
  /** Slides stay open across their embed jobs. */
  private readonly sources = new SlideSourceCache();
  private readonly specs = new Map<string, Promise<AnalysisSpec>>();
  /** Aborted when the grace period after SIGTERM is over: running jobs go back to the queue. */
  private readonly stopping = new AbortController();
  /** Jobs of any queue running now. */
  private running = 0;

  private constructor(o: SlideWorkerOptions) {
    this.o = o;
    const connection = workerConnectionOptions(o.redisUrl);
    this.flow = new FlowProducer({ connection });
    this.redis = new Redis(connection as IoRedisOptions);
    const common = { connection, lockDuration: o.lockDurationMs, stalledInterval: Math.max(1000, Math.floor(o.lockDurationMs / 2)) };
    this.workers.push(
      new Worker(QUEUES.plan, (job) => this.guard(job, () => this.plan(job)), { ...common, concurrency: 1 }),
      new Worker(QUEUES.embed, (job) => this.guard(job, () => this.embed(job)), { ...common, concurrency: o.concurrency }),
      new Worker(QUEUES.aggregate, (job) => this.guard(job, () => this.aggregate(job)), { ...common, concurrency: 1 }),
    );
    // Every connection's errors go through one reporter: an outage is one line when it starts
    // and one when Redis is back, not a stack trace per retry from each connection.
    const link = new RedisLinkReporter(o.redisUrl, o.log);
    this.redis.on('error', (err) => link.error(err));
    this.redis.on('ready', () => link.ready());
    this.flow.on('error', (err) => link.error(err));
    for (const w of this.workers) {
      w.on('failed', (job, err) => void this.onFailed(job, err));
      w.on('error', (err) => link.error(err));
    }
  }

  static async start(options: Partial<Omit<SlideWorkerOptions, 'stageBudgetMs'>> & { redisUrl: string; roots: WorkerRoots; stageBudgetMs?: Partial<SlideWorkerOptions['stageBudgetMs']> }): Promise<SlideWorker> {
    const o: SlideWorkerOptions = { ...DEFAULT_WORKER_OPTIONS, ...options, stageBudgetMs: { ...DEFAULT_WORKER_OPTIONS.stageBudgetMs, ...options.stageBudgetMs } };
    await checkRedis(o.redisUrl);
    const w = new SlideWorker(o);
    await Promise.all(w.workers.map((x) => x.waitUntilReady()));
    o.log(`flashslide worker: listening on ${redactUrl(o.redisUrl)} (embed concurrency ${o.concurrency}; data ${printable(o.roots.dataDir)}; slides from ${printable(o.roots.slideRoots.join(', '))})`);
    return w;
  }

  /**
   * The analysis a job asks for, derived by this worker (job-trust.ts) and cached per request.
   * A request that fails the checks is not cached: the file may be fixed before the next job.
   */
  private specFor(request: AnalysisRequest): Promise<AnalysisSpec> {
    const key = JSON.stringify(request);
    let spec = this.specs.get(key);
    if (spec === undefined) {
      spec = specForRequest(request, this.o.roots);
      this.specs.set(key, spec);
      spec.catch(() => this.specs.delete(key));
      while (this.specs.size > SPEC_CACHE) this.specs.delete(this.specs.keys().next().value as string);
    }
    return spec;
  }

  /**
   * Every job's outcome in one place: what cannot succeed on another attempt (an unreadable or
   * changed slide, a refused or malformed job, a stage over budget) fails for good with its
   * reason recorded; storage errors are named by their cause and retried (space may be freed);
   * a job abandoned at shutdown goes back to the queue.
   */
  private async guard<T>(job: BullJob, run: () => Promise<T>): Promise<T> {
    this.running++;
    try {
      return await run();
    } catch (err) {
      if (err instanceof WorkerStoppingError) throw err;
      const storage = storageFailure(err, `the data folder ${this.o.roots.dataDir}`);
      if (storage !== null) throw storage;
      if (err instanceof JobPayloadError) throw new UnrecoverableError(err.message);
      const final = isSlideFailure(err) || err instanceof JobRefusedError || err instanceof StageTimeoutError;
      if (!final) throw err;
      const request = (job.data as { request?: AnalysisRequest }).request as AnalysisRequest;
      const spec = await this.specFor(request).catch(() => failureSpecForRequest(request, this.o.roots));
      if (spec !== null) await writeFailure(spec, err.message).catch(() => undefined);
      throw new UnrecoverableError(err.message);
    } finally {
      this.running--;
    }
  }

  private budget<T>(stage: keyof SlideWorkerOptions['stageBudgetMs'], what: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return withBudget(what, this.o.stageBudgetMs[stage], this.stopping.signal, work);
  }

  private async plan(job: BullJob): Promise<{ batches: number }> {
    const { request } = checkJobData(PlanJobSchema, job.data, job.id);
    const spec = await this.specFor(request);
    return this.budget('plan', `planning ${spec.slideName}`, async (signal) => {
      // The tissue is found while the model loads (a worker's first job).
      const plan = await planSlide(spec, getEngine(spec.modelWeights, spec.modelConfig, this.o.device ?? spec.device).then((e) => e.arch), signal);
      signal.throwIfAborted();
      const regionsTotal = plan.regionPlan.regions.length;
      await this.redis.hset(progressKey(spec), 'total', regionsTotal);
      // One flow per slide: the parent `slide` job (aggregate queue) runs once its children, the
      // region batches, are done. Children fail the parent on failure: without that a failed
      // batch would leave the parent waiting for its children forever.
      await this.flow.add({
        name: 'slide',
        queueName: QUEUES.aggregate,
        data: { request } satisfies AggregateJobData,
        opts: { jobId: jobIds.aggregate(spec), ...KEEP },
        children: plan.batches.map((_, batch) => ({
          name: 'embed',
          queueName: QUEUES.embed,
          data: { request, batch, regionsTotal } satisfies EmbedJobData,
          opts: { jobId: jobIds.embed(spec, batch), failParentOnFailure: true, ...RETRY, ...KEEP },
        })),
      });
      this.o.log(`planned ${printable(spec.slideName)}: ${regionsTotal} regions in ${plan.batches.length} batches`);
      return { batches: plan.batches.length };
    });
  }

  private async embed(job: BullJob): Promise<EmbedJobResult> {
    const { request, batch, regionsTotal } = checkJobData(EmbedJobSchema, job.data, job.id);
    const spec = await this.specFor(request);
    const plan = await readPlan(spec);
    if (plan === null) throw new UnrecoverableError(`plan of ${spec.slideName} is missing from ${spec.workDir} (is the data folder shared by all workers?)`);
    if (batch >= plan.batches.length) throw new JobRefusedError(`job ${job.id ?? '?'} asks for batch ${batch}, but the plan of ${spec.slideName} has ${plan.batches.length}`);
    const n = plan.batches[batch]?.length ?? 0;
    const computed = !partExists(plan, batch);
    if (computed) {
      await this.budget('embed', `batch ${batch} of ${spec.slideName}`, async (signal) => {
        const engine = await getEngine(spec.modelWeights, spec.modelConfig, this.o.device ?? spec.device);
        const pixels = await this.sources.with(spec.slidePath, spec.slideFingerprint, slideOpenOptions(spec), (source) => readBatch(plan, source, batch, signal));
        await embedBatch(plan, engine, pixels, signal);
      });
    }
    const done = await this.redis.hincrby(progressKey(spec), 'done', n);
    const parentId = job.parent?.id;
    if (parentId !== undefined) {
      const parent = await Job.fromId(this.workers[2] as Worker, parentId).catch(() => undefined);
      await parent?.updateProgress({ regionsDone: Math.min(done, regionsTotal), regionsTotal });
    }
    return { batch, regions: n, computed };
  }

  private async aggregate(job: BullJob): Promise<{ slideScore: number | null; regionsCount: number }> {
    const { request } = checkJobData(PlanJobSchema, job.data, job.id);
    const spec = await this.specFor(request);
    const plan = await readPlan(spec);
    if (plan === null) throw new UnrecoverableError(`plan of ${spec.slideName} is missing from ${spec.workDir}`);
    // Read and inference times of the batches this analysis ran, recorded in their part files.
    const children = Object.values(await job.getChildrenValues<EmbedJobResult>());
    const computed = children.filter((c) => c.computed).map((c) => c.batch);
    const timings = await readPartTimings(plan, computed);
    const summary = await this.budget('aggregate', `scoring ${spec.slideName}`, (signal) => aggregateOffThread(plan, { planMs: plan.planMs, ...timings, startedAt: job.timestamp }, computed.length, signal));
    await this.redis.del(progressKey(spec));
    this.o.log(`done ${printable(spec.slideName)}: ${scoreText(summary.slideScore)}, ${summary.regionsCount} anomalous regions -> ${printable(spec.resultDir)}`);
    return { slideScore: summary.slideScore, regionsCount: summary.regionsCount };
  }

  private async onFailed(job: BullJob | undefined, err: Error): Promise<void> {
    if (job === undefined) return;
    const final = err instanceof UnrecoverableError || err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    this.o.log(`job ${printable(job.id ?? '?')} failed${final ? '' : ' (will retry)'}: ${printable(err.message)}`);
    // A job out of attempts (an error retried in vain): record its reason where status finds it.
    const request = (job.data as { request?: unknown } | undefined)?.request;
    if (!final || err.name === 'UnrecoverableError' || !Value.Check(AnalysisRequestSchema, request)) return;
    const spec = await this.specFor(request).catch(() => null);
    if (spec !== null) await writeFailure(spec, err.message).catch(() => undefined);
  }

  /**
   * Stops taking new jobs and lets the running ones finish for up to `graceMs`; then hands them
   * back to the queue (another worker, or this one restarted, takes them) and stops. Resolves
   * with how many jobs were handed back.
   */
  async close(graceMs = Infinity): Promise<number> {
    const closing = Promise.all(this.workers.map((w) => w.close()));
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'grace-over'>((r) => {
      if (Number.isFinite(graceMs)) timer = setTimeout(() => r('grace-over'), graceMs);
    });
    let handedBack = 0;
    if ((await Promise.race([closing.then(() => 'closed' as const), graceOver])) === 'grace-over') {
      handedBack = this.running;
      this.stopping.abort(new WorkerStoppingError('the worker stopped before this job finished (grace period over); the job is retried'));
      // The running jobs now settle at once (their budgets race the abort); wait for BullMQ to
      // record them, but not forever.
      await Promise.race([closing, new Promise((r) => setTimeout(r, 5000))]);
    }
    clearTimeout(timer);
    await this.sources.close();
    await this.flow.close();
    this.redis.disconnect();
    return handedBack;
  }
}
