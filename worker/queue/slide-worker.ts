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
import { KEEP, QUEUES, RETRY, jobIds, queueKey, type AggregateJobData, type EmbedJobData, type PlanJobData } from './queues.js';
import { planSlide, readPlan } from '../pipeline/plan-stage.js';
import { embedBatch, partExists, readBatch } from '../pipeline/embed-stage.js';
import { aggregateSlide, readPartTimings, writeFailure } from '../pipeline/aggregate-stage.js';
import { getEngine } from '../pipeline/engine-cache.js';
import { isSlideFailure } from '../pipeline/run-embedded.js';
import { SlideSourceCache } from './source-cache.js';
import { scoreText } from '../store/summary.js';
import type { DeviceRequest } from '../infer/vit-engine.js';
import { slideOpenOptions, type AnalysisSpec } from '../pipeline/analysis-spec.js';

export interface SlideWorkerOptions {
  redisUrl: string;
  /** Embed jobs in flight in this process. */
  concurrency: number;
  /** Overrides the device recorded in each job (this machine's GPU or CPU). */
  device: DeviceRequest | undefined;
  /** How long a job's lock lasts without renewal; a killed worker's job is retried after this. */
  lockDurationMs: number;
  log: (line: string) => void;
}

export const DEFAULT_WORKER_OPTIONS: Readonly<Omit<SlideWorkerOptions, 'redisUrl'>> = {
  concurrency: 2,
  device: undefined,
  lockDurationMs: 30_000,
  log: (line) => process.stderr.write(`${line}\n`),
};

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
      this.log(`flashslide worker: error: ${redactText(err.message, this.url)}`);
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

  private constructor(o: SlideWorkerOptions) {
    this.o = o;
    const connection = workerConnectionOptions(o.redisUrl);
    this.flow = new FlowProducer({ connection });
    this.redis = new Redis(connection as IoRedisOptions);
    const common = { connection, lockDuration: o.lockDurationMs, stalledInterval: Math.max(1000, Math.floor(o.lockDurationMs / 2)) };
    this.workers.push(
      new Worker<PlanJobData>(QUEUES.plan, (job) => this.plan(job), { ...common, concurrency: 1 }),
      new Worker<EmbedJobData>(QUEUES.embed, (job) => this.embed(job), { ...common, concurrency: o.concurrency }),
      new Worker<AggregateJobData>(QUEUES.aggregate, (job) => this.aggregate(job), { ...common, concurrency: 1 }),
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

  static async start(options: Partial<SlideWorkerOptions> & { redisUrl: string }): Promise<SlideWorker> {
    const o = { ...DEFAULT_WORKER_OPTIONS, ...options };
    await checkRedis(o.redisUrl);
    const w = new SlideWorker(o);
    await Promise.all(w.workers.map((x) => x.waitUntilReady()));
    o.log(`flashslide worker: listening on ${redactUrl(o.redisUrl)} (embed concurrency ${o.concurrency})`);
    return w;
  }

  private device(data: { spec: { device: DeviceRequest } }): DeviceRequest {
    return this.o.device ?? data.spec.device;
  }

  private async plan(job: BullJob<PlanJobData>): Promise<{ batches: number }> {
    const { spec } = job.data;
    try {
      const engine = await getEngine(spec.modelWeights, spec.modelConfig, this.device(job.data));
      const plan = await planSlide(spec, engine.arch);
      const regionsTotal = plan.regionPlan.regions.length;
      await this.redis.hset(progressKey(spec), 'total', regionsTotal);
      // One flow per slide: the parent `slide` job (aggregate queue) runs once its children, the
      // region batches, are done. Children fail the parent on failure: without that a failed
      // batch would leave the parent waiting for its children forever.
      await this.flow.add({
        name: 'slide',
        queueName: QUEUES.aggregate,
        data: { spec } satisfies AggregateJobData,
        opts: { jobId: jobIds.aggregate(spec), ...KEEP },
        children: plan.batches.map((_, batch) => ({
          name: 'embed',
          queueName: QUEUES.embed,
          data: { spec, batch, regionsTotal } satisfies EmbedJobData,
          opts: { jobId: jobIds.embed(spec, batch), failParentOnFailure: true, ...RETRY, ...KEEP },
        })),
      });
      this.o.log(`planned ${spec.slideName}: ${regionsTotal} regions in ${plan.batches.length} batches`);
      return { batches: plan.batches.length };
    } catch (err) {
      if (isSlideFailure(err)) {
        await writeFailure(spec, err.message);
        throw new UnrecoverableError(err.message);
      }
      throw err;
    }
  }

  private async embed(job: BullJob<EmbedJobData>): Promise<EmbedJobResult> {
    const { spec, batch, regionsTotal } = job.data;
    const plan = await readPlan(spec);
    if (plan === null) throw new UnrecoverableError(`plan of ${spec.slideName} is missing from ${spec.resultDir} (is the data folder shared by all workers?)`);
    const n = plan.batches[batch]?.length ?? 0;
    const computed = !partExists(plan, batch);
    if (computed) {
      try {
        const engine = await getEngine(spec.modelWeights, spec.modelConfig, this.device(job.data));
        const pixels = await this.sources.with(spec.slidePath, spec.slideFingerprint, slideOpenOptions(spec), (source) => readBatch(plan, source, batch));
        await embedBatch(plan, engine, pixels);
      } catch (err) {
        if (isSlideFailure(err)) {
          await writeFailure(spec, err.message);
          throw new UnrecoverableError(err.message);
        }
        throw err;
      }
    }
    const done = await this.redis.hincrby(progressKey(spec), 'done', n);
    const parentId = job.parent?.id;
    if (parentId !== undefined) {
      const parent = await Job.fromId(this.workers[2] as Worker, parentId).catch(() => undefined);
      await parent?.updateProgress({ regionsDone: Math.min(done, regionsTotal), regionsTotal });
    }
    return { batch, regions: n, computed };
  }

  private async aggregate(job: BullJob<AggregateJobData>): Promise<{ slideScore: number | null; regionsCount: number }> {
    const { spec } = job.data;
    const plan = await readPlan(spec);
    if (plan === null) throw new UnrecoverableError(`plan of ${spec.slideName} is missing from ${spec.resultDir}`);
    // Read and inference times of the batches this analysis ran, recorded in their part files.
    const children = Object.values(await job.getChildrenValues<EmbedJobResult>());
    const computed = children.filter((c) => c.computed).map((c) => c.batch);
    const timings = await readPartTimings(plan, computed);
    const summary = await aggregateSlide(plan, { planMs: plan.planMs, ...timings, startedAt: job.timestamp }, computed.length);
    await this.redis.del(progressKey(spec));
    this.o.log(`done ${spec.slideName}: ${scoreText(summary.slideScore)}, ${summary.regionsCount} anomalous regions -> ${spec.resultDir}`);
    return { slideScore: summary.slideScore, regionsCount: summary.regionsCount };
  }

  private async onFailed(job: BullJob | undefined, err: Error): Promise<void> {
    if (job === undefined) return;
    const data = job.data as Partial<EmbedJobData>;
    const final = err instanceof UnrecoverableError || err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    this.o.log(`job ${job.id} failed${final ? '' : ' (will retry)'}: ${err.message}`);
    if (final && data.spec !== undefined) await writeFailure(data.spec, err.message).catch(() => undefined);
  }

  /** Stops taking new jobs and waits for the running ones. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
    await this.sources.close();
    await this.flow.close();
    this.redis.disconnect();
  }
}
