/**
 * Submitting slides to the queue, and reading back where they stand. A submission is one plan
 * job per slide whose id is the analysis id: submitting the same slide again (same model and
 * parameters) finds the existing job or the finished result instead of queueing it twice.
 */
import { Queue, QueueEvents, type Job, type RedisOptions } from 'bullmq';
import { QueueConfigError, checkRedis, producerConnectionOptions, workerConnectionOptions } from './connection.js';
import { KEEP, QUEUES, RETRY, jobIds } from './queues.js';
import { AnalysisRequestSchema, requestOf, type PlanJobData } from './job-payload.js';
import { describedSpec } from './job-trust.js';
import { Value } from 'typebox/value';
import { describeAnalysis, type AnalysisOptions, type AnalysisSpec } from '../pipeline/analysis-spec.js';
import { readFailure, readResultSummary } from '../pipeline/aggregate-stage.js';
import { readdir, rm } from 'node:fs/promises';
import { REVIEW_FILE } from '../store/review-file.js';
import { RESULT_FILES } from '../store/result-store.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * 'missing': the queue finished the analysis but its result folder has no summary.json (deleted,
 * say, to reclaim disk); submitting again recomputes it.
 */
export type SlideState = 'queued' | 'planning' | 'embedding' | 'aggregating' | 'done' | 'failed' | 'missing' | 'unknown';

export interface SlideStatus {
  slidePath: string;
  analysisId: string;
  resultDir: string;
  state: SlideState;
  regionsDone: number | null;
  regionsTotal: number | null;
  reason: string | null;
  /** For a finished slide: its score (null: no tissue) and how many anomalous regions it has. */
  slideScore?: number | null;
  anomalousRegions?: number;
  /** For submit: whether this call queued it, found it queued, or found it finished. */
  submitted?: 'queued' | 'already-queued' | 'already-done' | 'requeued';
}

export interface SubmitOptions extends Partial<AnalysisOptions> {
  redisUrl: string;
  priority?: number | undefined;
  force?: boolean | undefined;
  /** How long a resubmission waits for old jobs still held by a worker before it reports them (default SUBMIT_DEFAULTS). */
  oldJobsWaitMs?: number | undefined;
}

/** The defaults of SubmitOptions' optional settings, in one place. */
export const SUBMIT_DEFAULTS = { oldJobsWaitMs: 30_000 } as const;

/** The two queues a slide's state is read from; open once and reuse for many lookups (the review server does). */
export interface Queues {
  plan: Queue;
  embed: Queue;
  aggregate: Queue;
  close(): Promise<void>;
}

export function openQueues(redisUrl: string, connection: RedisOptions = producerConnectionOptions(redisUrl)): Queues {
  const plan = new Queue(QUEUES.plan, { connection });
  const embed = new Queue(QUEUES.embed, { connection });
  const aggregate = new Queue(QUEUES.aggregate, { connection });
  return { plan, embed, aggregate, close: async () => void (await Promise.all([plan.close(), embed.close(), aggregate.close()])) };
}

/**
 * Why a job failed, in the terms of what went wrong: a flow's parent fails with BullMQ's "child
 * bull:flashslide-embed:<id> failed", which says nothing; the child's own reason (say, "no
 * space left on the device (ENOSPC)") does.
 */
async function rootCause(q: Queues, reason: string | undefined): Promise<string | undefined> {
  const child = reason === undefined ? null : /^child bull:([\w-]+):(\S+) failed$/.exec(reason);
  if (child === null) return reason;
  const queue = child[1] === QUEUES.embed ? q.embed : child[1] === QUEUES.plan ? q.plan : null;
  const job = queue === null ? undefined : await queue.getJob(child[2] as string).catch(() => undefined);
  return job?.failedReason ? `${job.failedReason} (region batch ${String((job.data as { batch?: unknown }).batch ?? '?')})` : reason;
}

export async function statusOf(q: Queues, spec: AnalysisSpec): Promise<SlideStatus> {
  const base = { slidePath: spec.slidePath, analysisId: spec.analysisId, resultDir: spec.resultDir, regionsDone: null, regionsTotal: null, reason: null };
  // The jobs' states are read before the result folder: a job completes only after its files are
  // written, so a job seen completed with no summary after it really lost its result. Read the
  // other way round, a job finishing between the two reads looked like a deleted result.
  const planJob = await q.plan.getJob(jobIds.plan(spec));
  const aggJob = await q.aggregate.getJob(jobIds.aggregate(spec));
  const state = async (job: Job | undefined): Promise<string> => (job === undefined ? 'missing' : job.getState());
  const [ps, as] = await Promise.all([state(planJob), state(aggJob)]);
  const summary = await readResultSummary(spec);
  if (summary !== null) {
    const regions = summary.regionsAnalysed ?? null;
    return { ...base, state: 'done', regionsDone: regions, regionsTotal: regions, slideScore: summary.slideScore, anomalousRegions: summary.regionsCount };
  }
  const failure = await readFailure(spec);
  const progress = aggJob?.progress as { regionsDone?: number; regionsTotal?: number } | undefined;
  const counts = { regionsDone: progress?.regionsDone ?? null, regionsTotal: progress?.regionsTotal ?? null };
  if (ps === 'failed' || as === 'failed' || failure !== null) {
    const reason = failure?.reason ?? planJob?.failedReason ?? (await rootCause(q, aggJob?.failedReason));
    return { ...base, ...counts, state: 'failed', reason: reason ?? 'unknown' };
  }
  if (as === 'completed' || (ps === 'completed' && as === 'missing')) {
    return { ...base, ...counts, state: 'missing', reason: `the queue finished this analysis, but ${spec.resultDir} holds no summary.json (deleted?); submit it again to recompute` };
  }
  if (as === 'active') return { ...base, ...counts, state: 'aggregating' };
  if (as === 'waiting-children' || as === 'waiting' || as === 'prioritized') return { ...base, ...counts, state: 'embedding' };
  if (ps === 'active' || ps === 'completed') return { ...base, state: 'planning' };
  if (ps === 'waiting' || ps === 'prioritized' || ps === 'delayed') return { ...base, state: 'queued' };
  return { ...base, state: 'unknown' };
}

/**
 * The previous jobs of an analysis, removed before it is queued again. A job still held by a
 * worker (a sibling batch retrying) cannot be removed yet: wait for it, up to `waitMs`, and say
 * so if it does not let go; never report a resubmission that did not happen.
 */
async function removeOldJobs(q: Queues, spec: AnalysisSpec, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await (await q.aggregate.getJob(jobIds.aggregate(spec)))?.remove({ removeChildren: true });
      await (await q.plan.getJob(jobIds.plan(spec)))?.remove();
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        throw new QueueConfigError(`cannot resubmit ${spec.slideName}: its previous jobs are still held by a worker (${(err as Error).message}); wait until \`flashslide status\` shows it settled, then submit again`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/**
 * Empties a result folder before its analysis runs again, keeping the pathologist's verdicts
 * (review.json): they are work no recomputation can redo, and verdicts of regions that come back
 * with the same outline stay attached to them.
 */
async function clearResult(resultDir: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(resultDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await Promise.all(names.filter((n) => n !== REVIEW_FILE).map((n) => rm(join(resultDir, n), { recursive: true, force: true })));
}

export async function submitSlides(slides: readonly string[], options: SubmitOptions): Promise<SlideStatus[]> {
  await checkRedis(options.redisUrl);
  const q = openQueues(options.redisUrl);
  try {
    const out: SlideStatus[] = [];
    for (const slide of slides) {
      const spec = await describeAnalysis(slide, options);
      const id = jobIds.plan(spec);
      const current = await statusOf(q, spec);
      if (!options.force && current.state === 'done') {
        out.push({ ...current, submitted: 'already-done' });
        continue;
      }
      if (!options.force && current.state !== 'failed' && current.state !== 'missing' && current.state !== 'unknown') {
        out.push({ ...current, submitted: 'already-queued' });
        continue;
      }
      // A forced or failed analysis starts clean: old jobs and files would otherwise short-circuit it.
      const requeue = current.state !== 'unknown';
      if (requeue) {
        await removeOldJobs(q, spec, options.oldJobsWaitMs ?? SUBMIT_DEFAULTS.oldJobsWaitMs);
        await clearResult(spec.resultDir);
      }
      await q.plan.add('plan', { request: requestOf(spec) } satisfies PlanJobData, {
        jobId: id,
        ...RETRY,
        ...KEEP,
        ...(options.priority === undefined ? {} : { priority: options.priority }),
      });
      out.push({ ...(await statusOf(q, spec)), submitted: requeue ? 'requeued' : 'queued' });
    }
    return out;
  } finally {
    await q.close();
  }
}

export async function slideStatuses(specs: readonly AnalysisSpec[], redisUrl: string): Promise<SlideStatus[]> {
  const q = openQueues(redisUrl);
  try {
    return await Promise.all(specs.map((s) => statusOf(q, s)));
  } finally {
    await q.close();
  }
}

/**
 * The queue's own spec for each analysis it knows (same analysis id), else the one given: a job
 * records where it was submitted to (--data), so `status <slide>` need not be told again.
 */
export async function queuedSpecs(specs: readonly AnalysisSpec[], redisUrl: string): Promise<AnalysisSpec[]> {
  const q = openQueues(redisUrl);
  try {
    // Job ids include the result folder, so look the analysis up by its id among the jobs.
    const known = new Map<string, AnalysisSpec>();
    for (const spec of await knownSpecs(q, 1000)) if (!known.has(spec.analysisId)) known.set(spec.analysisId, spec); // newest first
    return specs.map((spec) => (known.has(spec.analysisId) && !existsSync(join(spec.resultDir, RESULT_FILES.summary)) ? (known.get(spec.analysisId) as AnalysisSpec) : spec));
  } finally {
    await q.close();
  }
}

/** Every analysis the queue knows (newest first), for `status` without arguments. */
export async function knownAnalyses(redisUrl: string, limit = 200): Promise<AnalysisSpec[]> {
  const q = openQueues(redisUrl);
  try {
    return await knownSpecs(q, limit);
  } finally {
    await q.close();
  }
}

export async function knownSpecs(q: Queues, limit = 200): Promise<AnalysisSpec[]> {
  const jobs = await q.plan.getJobs(['active', 'waiting', 'prioritized', 'delayed', 'completed', 'failed'], 0, limit - 1, false);
  // Jobs that are not well-formed requests (edited, or from another version) are not listed.
  const requests = jobs.map((j) => (j?.data as { request?: unknown } | undefined)?.request).filter((r) => Value.Check(AnalysisRequestSchema, r));
  return requests.map((r) => describedSpec(r));
}

/** Resolves when every slide is done or failed, calling `onUpdate` as they progress. */
export async function waitForSlides(specs: readonly AnalysisSpec[], redisUrl: string, onUpdate: (s: SlideStatus[]) => void, pollMs = 1000): Promise<SlideStatus[]> {
  // QueueEvents blocks on a stream read: it needs the never-give-up connection settings.
  const events = new QueueEvents(QUEUES.aggregate, { connection: workerConnectionOptions(redisUrl) });
  let wake: (() => void) | null = null;
  const poke = (): void => wake?.();
  events.on('progress', poke);
  events.on('completed', poke);
  events.on('failed', poke);
  try {
    for (;;) {
      const statuses = await slideStatuses(specs, redisUrl);
      onUpdate(statuses);
      if (statuses.every((s) => s.state === 'done' || s.state === 'failed' || s.state === 'missing')) return statuses;
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, pollMs);
      });
    }
  } finally {
    await events.close();
  }
}
