/**
 * Issue 13: resubmitting a failed slide whose flow still has a sibling batch held by a worker.
 * The old code swallowed BullMQ's "locked by another worker" (`.catch(() => undefined)`) and
 * reported `requeued` while the failed parent stayed in Redis, so the slide stayed failed. Here a
 * real BullMQ Worker on the project's embed queue holds one batch (its processor awaits a gate
 * the test opens) while the other batch fails the parent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { FlowProducer, Queue, Worker, type Job } from 'bullmq';
import { startRedis, type RedisHandle } from '../redis-server.js';
import { TINY, tempDir } from '../helpers.js';
import { describeAnalysis, type AnalysisSpec } from '../../worker/pipeline/analysis-spec.js';
import { KEEP, QUEUES, jobIds } from '../../worker/queue/queues.js';
import { requestOf } from '../../worker/queue/job-payload.js';
import { QueueConfigError, producerConnectionOptions, workerConnectionOptions } from '../../worker/queue/connection.js';
import { submitSlides, type SlideStatus } from '../../worker/queue/submit.js';

let redis: RedisHandle;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

interface LockedFlow {
  spec: AnalysisSpec;
  dataDir: string;
  /** Lets the held batch finish (and its lock go). */
  release(): void;
  close(): Promise<void>;
}

/**
 * A slide's flow as a worker leaves it when one batch fails for good while its sibling is still
 * being processed: the parent `slide` job failed, batch 1 active and locked by a running Worker.
 */
async function failedFlowWithLockedSibling(): Promise<LockedFlow> {
  const dataDir = tempDir('flashslide-resubmit-');
  const spec = await describeAnalysis(TINY, { dataDir, batchSize: 2 });
  const request = requestOf(spec);
  const connection = workerConnectionOptions(redis.url);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let siblingActive!: () => void;
  const active = new Promise<void>((r) => (siblingActive = r));
  const worker = new Worker(
    QUEUES.embed,
    async (job: Job) => {
      if ((job.data as { batch: number }).batch === 1) {
        siblingActive();
        await gate;
        return { batch: 1, computed: true };
      }
      await active; // batch 0 fails only once its sibling is held
      throw new Error('no space left on the device (ENOSPC)');
    },
    { connection, concurrency: 2 },
  );
  worker.on('error', () => undefined);
  // A failed batch moves the parent to wait with a deferred failure; the aggregate worker that
  // picks it up fails it ("child … failed") without running its processor.
  const parentWorker = new Worker(QUEUES.aggregate, async () => ({ unexpected: true }), { connection });
  parentWorker.on('error', () => undefined);
  const flow = new FlowProducer({ connection });
  await flow.add({
    name: 'slide',
    queueName: QUEUES.aggregate,
    data: { request },
    opts: { jobId: jobIds.aggregate(spec), ...KEEP },
    children: [0, 1].map((batch) => ({
      name: 'embed',
      queueName: QUEUES.embed,
      data: { request, batch, regionsTotal: 4 },
      opts: { jobId: jobIds.embed(spec, batch), failParentOnFailure: true, attempts: 1, ...KEEP },
    })),
  });
  await flow.close();
  // Wait until Redis shows the situation: parent failed, sibling active (locked).
  const aggregate = new Queue(QUEUES.aggregate, { connection: producerConnectionOptions(redis.url) });
  const embed = new Queue(QUEUES.embed, { connection: producerConnectionOptions(redis.url) });
  try {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const parent = await (await aggregate.getJob(jobIds.aggregate(spec)))?.getState();
      const sibling = await (await embed.getJob(jobIds.embed(spec, 1)))?.getState();
      if (parent === 'failed' && sibling === 'active') break;
      if (Date.now() > deadline) throw new Error(`flow never reached failed/active: parent ${parent}, sibling ${sibling}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await aggregate.close();
    await embed.close();
  }
  return {
    spec,
    dataDir,
    release,
    close: async () => {
      release();
      await Promise.all([worker.close(), parentWorker.close()]);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function jobState(queue: string, id: string): Promise<string> {
  const q = new Queue(queue, { connection: producerConnectionOptions(redis.url) });
  try {
    const job = await q.getJob(id);
    return job === undefined ? 'missing' : await job.getState();
  } finally {
    await q.close();
  }
}

describe('resubmitting a failed slide while a sibling batch is still held by a worker', () => {
  it('waits for the sibling to let go, then really queues the slide again', async () => {
    const f = await failedFlowWithLockedSibling();
    try {
      const { spec, dataDir } = f;
      let releasedAt = Infinity;
      const timer = setTimeout(() => {
        releasedAt = Date.now();
        f.release();
      }, 1500);
      let out: SlideStatus[];
      try {
        out = await submitSlides([spec.slidePath], { dataDir, batchSize: 2, redisUrl: redis.url, oldJobsWaitMs: 10_000 });
      } finally {
        clearTimeout(timer);
      }
      const resolvedAt = Date.now();
      expect(out).toHaveLength(1);
      expect(out[0]).toMatchObject({ submitted: 'requeued', state: 'queued' });
      // In Redis: the new plan job is queued and the old failed flow is gone, so the plan worker's
      // flow will not be deduplicated into the failed parent.
      expect(['waiting', 'prioritized', 'waiting-children']).toContain(await jobState(QUEUES.plan, jobIds.plan(spec)));
      expect(await jobState(QUEUES.aggregate, jobIds.aggregate(spec))).toBe('missing');
      expect(await jobState(QUEUES.embed, jobIds.embed(spec, 0))).toBe('missing');
      expect(await jobState(QUEUES.embed, jobIds.embed(spec, 1))).toBe('missing');
      // It waited for the sibling to let go (the old code returned at once, the failed flow still there).
      expect(resolvedAt, 'submit returned before the held batch was released').toBeGreaterThanOrEqual(releasedAt);
    } finally {
      await f.close();
    }
  }, 20_000);

  it('reports a clear error naming the slide and job when the sibling stays locked past the wait, and queues nothing', async () => {
    const f = await failedFlowWithLockedSibling();
    try {
      const { spec, dataDir } = f;
      const started = Date.now();
      const err = await submitSlides([spec.slidePath], { dataDir, batchSize: 2, redisUrl: redis.url, oldJobsWaitMs: 1000 }).then(
        (out) => out,
        (e: unknown) => e,
      );
      // Not a status list (least of all one saying "requeued"): an error.
      expect(err, `submit resolved: ${JSON.stringify(err)}`).toBeInstanceOf(QueueConfigError);
      expect(Date.now() - started, 'it waited for the lock before giving up').toBeGreaterThanOrEqual(1000);
      const message = (err as Error).message;
      expect(message).toContain(`cannot resubmit ${spec.slideName}`);
      expect(message).toContain(jobIds.aggregate(spec));
      expect(message).toMatch(/locked by another worker/);
      expect(message).not.toMatch(/requeued/);
      // Nothing was queued and the old flow is untouched.
      expect(await jobState(QUEUES.plan, jobIds.plan(spec))).toBe('missing');
      expect(await jobState(QUEUES.aggregate, jobIds.aggregate(spec))).toBe('failed');
      expect(await jobState(QUEUES.embed, jobIds.embed(spec, 1))).toBe('active');
    } finally {
      await f.close();
    }
  }, 20_000);
});
