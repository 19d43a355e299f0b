/**
 * Workers trust nothing they read from Redis (issue 13): jobs edited in Redis are refused with
 * the reason and leave no file outside the worker's --data; links planted inside --data are not
 * followed; a stage over its budget fails its job; SIGTERM hands a running job back within the
 * grace period. Real Redis, real worker processes, real slides.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { startRedis, type RedisHandle } from '../redis-server.js';
import { describeAnalysis } from '../../worker/pipeline/analysis-spec.js';
import { jobIds, QUEUES } from '../../worker/queue/queues.js';
import { BIN, CMU, TINY, cli, tempDir } from '../helpers.js';

let redis: RedisHandle;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

interface Running {
  proc: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
}

function startWorker(args: string[]): Running {
  const proc = spawn(process.execPath, [BIN, 'worker', '--redis', redis.url, '--device', 'cpu', '--lock-ms', '2000', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, log: () => log, exited };
}

async function stop(w: Running): Promise<void> {
  if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
  await w.exited;
}

async function until(what: () => boolean | Promise<boolean>, ms: number, why: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${why()}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** Every file under `dir` (recursively). */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

const analysisFlags = ['--region-size', '512', '--batch-size', '4', '--device', 'cpu'];

describe('jobs edited in Redis', () => {
  it('are refused with the reason, and nothing is read or written outside the worker\'s roots', async () => {
    const slides = tempDir();
    const data = tempDir();
    const elsewhere = tempDir(); // where an edited job tries to send results
    const edits: Record<string, (request: Record<string, unknown>) => Record<string, unknown>> = {
      'outside-slide': (r) => ({ ...r, slidePath: '/etc/passwd' }),
      'linked-slide': (r) => ({ ...r, slidePath: join(slides, 'link.svs') }),
      'other-data': (r) => ({ ...r, dataDir: elsewhere }),
      'extra-field': (r) => ({ ...r, resultDir: elsewhere }),
      'forged-id': (r) => ({ ...r, analysisId: 'f'.repeat(24) }),
      'outside-head': (r) => ({ ...r, scoreMethod: 'head:/etc/passwd' }),
    };
    symlinkSync('/etc/passwd', join(slides, 'link.svs'));
    const names = Object.keys(edits);
    for (const name of names) copyFileSync(TINY, join(slides, `${name}.svs`));
    const sub = await cli(['submit', ...names.map((n) => join(slides, `${n}.svs`)), '--redis', redis.url, '--data', data, ...analysisFlags]);
    expect(sub.code, sub.stderr).toBe(0);

    // Edit the queued jobs as someone with access to Redis would.
    const client = new Redis(redis.url);
    const specs = await Promise.all(names.map((n) => describeAnalysis(join(slides, `${n}.svs`), { dataDir: data, regionSize: 512, batchSize: 4, device: 'cpu' })));
    try {
      for (const [k, name] of names.entries()) {
        const key = `bull:${QUEUES.plan}:${jobIds.plan(specs[k]!)}`;
        const job = JSON.parse((await client.hget(key, 'data')) as string) as { request: Record<string, unknown> };
        await client.hset(key, 'data', JSON.stringify({ request: (edits[name] as (r: Record<string, unknown>) => Record<string, unknown>)(job.request) }));
      }
    } finally {
      client.disconnect();
    }

    const w = startWorker(['--data', data, '--slides', slides]);
    const queue = new Queue(QUEUES.plan, { connection: { host: '127.0.0.1', port: redis.port } });
    try {
      const reasons = new Map<string, string>();
      await until(
        async () => {
          for (const [k, name] of names.entries()) {
            // The job as Redis holds it now: its state and its reason read together (a job
            // fetched before it failed and asked for its state after would have no reason yet).
            const job = await queue.getJob(jobIds.plan(specs[k]!));
            if (job?.failedReason) reasons.set(name, job.failedReason);
          }
          return reasons.size === names.length;
        },
        60_000,
        () => `failed so far: ${[...reasons.keys()].join(', ')}; worker log: ${w.log()}`,
      );
      expect(reasons.get('outside-slide')).toMatch(/slide \/etc\/passwd is outside this worker's --slides roots .*start it with --slides covering it/);
      expect(reasons.get('linked-slide')).toMatch(/link\.svs \(really \/etc\/passwd\) is outside this worker's --slides roots/);
      expect(reasons.get('other-data')).toMatch(/submitted to the data folder .* but this worker writes to /);
      expect(reasons.get('extra-field')).toMatch(/its data is not a valid flashslide job: .*must not have additional properties/);
      expect(reasons.get('forged-id')).toMatch(/ids .* do not follow from what it asks for/);
      expect(reasons.get('outside-head')).toMatch(/head file \/etc\/passwd is outside this worker's --models roots/);
      // Nothing of /etc/passwd in any reason, failure file or log.
      for (const text of [...reasons.values(), w.log(), ...filesUnder(data).map((f) => readFileSync(f, 'utf8'))]) expect(text).not.toMatch(/root:/);
      expect(filesUnder(elsewhere)).toEqual([]);
      expect(w.log()).not.toMatch(/^\s+at /m);
    } finally {
      await queue.close();
      await stop(w);
    }
  }, 120_000);

  it('a worker without --slides, or with a folder that does not exist, refuses to start', async () => {
    const none = await cli(['worker', '--redis', redis.url, '--data', tempDir()]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/worker needs --slides ROOT/);
    const missing = await cli(['worker', '--redis', redis.url, '--data', tempDir(), '--slides', '/no/such/folder']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--slides \/no\/such\/folder: no such folder/);
  });
});

describe('links planted inside --data', () => {
  it('are not followed: the analysis fails with the reason and nothing lands where they point', async () => {
    const data = tempDir();
    const outside = tempDir();
    const slides = tempDir();
    const viaResult = join(slides, 'result-link.svs');
    const viaWork = join(slides, 'work-link.svs');
    copyFileSync(CMU, viaResult);
    copyFileSync(CMU, viaWork);
    const opts = { dataDir: data, regionSize: 512, batchSize: 4, device: 'cpu' as const };
    const a = await describeAnalysis(viaResult, opts);
    const b = await describeAnalysis(viaWork, opts);
    symlinkSync(outside, a.resultDir);
    mkdirSync(join(data, 'embeddings'), { recursive: true });
    symlinkSync(outside, b.workDir);

    // Embedded mode: each slide fails on its own, the batch goes on.
    const embedded = await cli(['analyze', viaResult, viaWork, TINY, '--data', data, ...analysisFlags]);
    expect(embedded.code, embedded.stderr).toBe(3);
    expect(embedded.stdout).toMatch(/^FAILED .*result-link\.svs: .*result-link-\w+ is a symbolic link \(to .*\); flashslide writes only inside the data folder/m);
    expect(embedded.stdout).toMatch(/^FAILED .*work-link\.svs: .*embeddings\/work-link-\w+ is a symbolic link/m);
    expect(embedded.stdout).toMatch(/^DONE .*tiny-aperio\.svs/m);

    // Queue mode: the same refusal from a worker.
    const w = startWorker(['--data', data, '--slides', slides]);
    try {
      const sub = await cli(['submit', viaResult, viaWork, '--wait', '--json', '--redis', redis.url, '--data', data, ...analysisFlags]);
      const states = JSON.parse(sub.stdout) as { state: string; reason: string }[];
      expect(states.map((s) => s.state), sub.stderr + w.log()).toEqual(['failed', 'failed']);
      expect(states[0]?.reason).toMatch(/is a symbolic link/);
      expect(states[1]?.reason).toMatch(/embeddings\/work-link-\w+ is a symbolic link/);
    } finally {
      await stop(w);
    }
    expect(filesUnder(outside)).toEqual([]);
  }, 120_000);
});

describe('time limits', () => {
  it('a stage over its budget fails its job with the reason, and the worker goes on', async () => {
    const data = tempDir();
    const w = startWorker(['--data', data, '--slides', join(CMU, '..'), '--stage-timeout', '0.05']);
    try {
      const sub = await cli(['submit', CMU, '--wait', '--json', '--redis', redis.url, '--data', data, ...analysisFlags]);
      const [st] = JSON.parse(sub.stdout) as { state: string; reason: string }[];
      expect(st?.state, sub.stderr + w.log()).toBe('failed');
      expect(st?.reason).toMatch(/planning CMU-1-Small-Region took longer than its budget of 50 ms and was abandoned .*raise --stage-timeout/);
      expect(w.proc.exitCode).toBe(null); // still serving
    } finally {
      await stop(w);
    }
  }, 60_000);

  it('SIGTERM hands a long batch back to the queue within the grace period; another worker finishes the slide', async () => {
    const data = tempDir();
    // One batch of every region of CMU-1 at 1024 px with overlap: seconds of CPU inference.
    const args = ['--redis', redis.url, '--data', data, '--region-size', '1024', '--overlap', '512', '--batch-size', '64', '--device', 'cpu'];
    const roots = ['--data', data, '--slides', join(CMU, '..')];
    const a = startWorker([...roots, '--grace', '0.5', '--concurrency', '1']);
    let b: Running | null = null;
    try {
      expect((await cli(['submit', CMU, ...args])).code).toBe(0);
      await until(() => /planned CMU-1-Small-Region/.test(a.log()), 30_000, a.log);
      await new Promise((r) => setTimeout(r, 500)); // the batch is in the engine now
      const signalled = Date.now();
      a.proc.kill('SIGTERM');
      await a.exited;
      // Ended by the signal's default action once the job was handed back (its forward still ran).
      expect(a.proc.signalCode, a.log()).toBe('SIGTERM');
      expect(Date.now() - signalled).toBeLessThan(6000);
      expect(a.log()).toMatch(/SIGTERM: finishing the running jobs for up to 0\.5 s/);
      expect(a.log()).toMatch(/grace period over: 1 running job handed back to the queue/);
      b = startWorker(roots);
      const waited = await cli(['submit', CMU, '--wait', '--json', ...args]);
      const [done] = JSON.parse(waited.stdout) as { state: string }[];
      expect(done?.state, waited.stderr + b.log()).toBe('done');
    } finally {
      await stop(a);
      if (b !== null) await stop(b);
    }
  }, 120_000);
});
