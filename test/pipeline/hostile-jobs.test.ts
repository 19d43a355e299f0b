/**
 * Workers trust nothing they read from Redis (issue 13): jobs edited in Redis are refused with
 * the reason and leave no file outside the worker's --data; links planted inside --data are not
 * followed; a stage over its budget fails its job; SIGTERM hands a running job back within the
 * grace period. Real Redis, real worker processes, real slides.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { headerOnlyPng } from '../header-only-png.js';
import { Redis } from 'ioredis';
import { Queue } from 'bullmq';
import { startRedis, type RedisHandle } from '../redis-server.js';
import { describeAnalysis } from '../../worker/pipeline/analysis-spec.js';
import { jobIds, QUEUES } from '../../worker/queue/queues.js';
import { slideStatuses, type SlideStatus } from '../../worker/queue/submit.js';
import { craftTiff } from '../fuzz/crafted-tiff.js';
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

describe('input that cannot hold a worker hostage (the original queue-mode repro)', () => {
  /*
   * Before the fixes, the first of these files a worker planned kept its plan stage busy for
   * minutes (`inspect` ran over 300 s on them; the default stage budget is 600 s), plan jobs run one
   * at a time, so the normal slide queued behind them waited (120 s in the report) and SIGTERM
   * was not honoured for 30 s+. Here every crafted file must fail in seconds with its reason, the
   * normal slide submitted with them (last, so behind all of them) must finish well within 60 s,
   * and the worker must then end within --grace. No --stage-timeout is given: the decode bounds,
   * not a budget, must be what ends them.
   */
  it('crafted files fail in seconds with the reason, the normal slide behind them finishes, SIGTERM ends the worker within --grace', async () => {
    const slides = tempDir();
    const data = tempDir();
    const PINK = [230, 160, 200] as const;
    const tile1k = { kind: 'tile', tileWidth: 1024, tileHeight: 1024 } as const;
    // name -> [file, what its failure must say]
    const crafted: Record<string, [Buffer, RegExp]> = {
      // 1e6^2 px whose tiles all alias one stored tile (a few MB).
      'terapixel.tif': [craftTiff([{ width: 1_000_000, height: 1_000_000, layout: { kind: 'tile', tileWidth: 2048, tileHeight: 2048 }, alias: true, fill: PINK, mpp: 0.5 }]), /claims 1000000 x 1000000 px at full resolution, more than any scanner writes/],
      // 2e5^2 px in one level, aliased tiles.
      'flat.tif': [craftTiff([{ width: 200_000, height: 200_000, layout: tile1k, alias: true, fill: PINK, mpp: 0.5 }]), /single level \(no pyramid\).*convert it to a tiled pyramidal TIFF/],
      // A plausible pyramid whose tiles alias one stored tile: 48 GiB from 3 KiB.
      'aliased-pyramid.tif': [
        craftTiff([
          { width: 131072, height: 131072, layout: tile1k, mpp: 0.5, alias: true, fill: PINK },
          { width: 8192, height: 8192, layout: tile1k, alias: true, fill: PINK, reduced: true },
          { width: 2048, height: 2048, layout: tile1k, alias: true, fill: PINK, reduced: true },
        ]),
        /would decode to 48 GiB from 3\.0 KiB of distinct stored data/,
      ],
      // A Deflate strip bomb: 24576^2 px of black in 1.8 MB, a thumbnail-sized second page.
      'strip-bomb.tif': [
        craftTiff([
          { width: 24576, height: 24576, layout: { kind: 'strip', rowsPerStrip: 64 }, mpp: 0.5 },
          { width: 512, height: 512, layout: { kind: 'strip', rowsPerStrip: 64 } },
        ]),
        /its pyramid stops too early: level 0 \(24576 x 24576 px\)/,
      ],
      // 40000^2 px PNG of a few hundred bytes.
      'huge.png': [headerOnlyPng(40_000, 40_000), /40000 x 40000 px in a single level \(no pyramid\)/],
    };
    const names = Object.keys(crafted);
    for (const name of names) writeFileSync(join(slides, name), (crafted[name] as [Buffer, RegExp])[0]);
    const normal = join(slides, 'normal.svs');
    copyFileSync(CMU, normal);
    const paths = [...names.map((n) => join(slides, n)), normal];
    const opts = { dataDir: data, regionSize: 512, batchSize: 4, device: 'cpu' as const };
    const specs = await Promise.all(paths.map((p) => describeAnalysis(p, opts)));

    const grace = 3;
    const w = startWorker(['--data', data, '--slides', slides, '--grace', String(grace)]);
    const queue = new Queue(QUEUES.plan, { connection: { host: '127.0.0.1', port: redis.port } });
    try {
      await until(() => /listening on/.test(w.log()), 30_000, w.log);
      const submitted = Date.now();
      const sub = await cli(['submit', ...paths, '--redis', redis.url, ...analysisFlags, '--data', data]);
      expect(sub.code, sub.stderr).toBe(0);
      // When each slide settled (done or failed), in ms after submit.
      const settled = new Map<string, number>();
      let last: SlideStatus[] = [];
      await until(
        async () => {
          last = await slideStatuses(specs, redis.url);
          for (const s of last) if ((s.state === 'done' || s.state === 'failed') && !settled.has(s.slidePath)) settled.set(s.slidePath, Date.now() - submitted);
          return settled.size === paths.length;
        },
        75_000,
        () => `${JSON.stringify(last.map((s) => [s.slidePath, s.state, s.reason]))}; worker log: ${w.log()}`,
      );
      const timings: Record<string, number> = {};
      for (const [k, name] of names.entries()) {
        const st = last[k] as SlideStatus;
        expect(st.state, `${name}: ${st.reason ?? ''}`).toBe('failed');
        const pattern = (crafted[name] as [Buffer, RegExp])[1];
        expect(st.reason).toMatch(pattern);
        // The reason is on disk too, where `status` and the viewer read it.
        const failure = JSON.parse(readFileSync(join((specs[k] as { resultDir: string }).resultDir, 'failure.json'), 'utf8')) as { reason: string };
        expect(failure.reason).toMatch(pattern);
        // Each one's plan job, as the worker ran it: seconds at most (the first also loads the model).
        const job = await queue.getJob(jobIds.plan(specs[k]!));
        const ran = (job?.finishedOn ?? Infinity) - (job?.processedOn ?? 0);
        timings[name] = ran;
        expect(ran, name).toBeLessThan(5000);
        expect(job?.attemptsMade, `${name} is not retried`).toBe(1);
      }
      const done = last[names.length] as SlideStatus;
      expect(done.state, `${done.reason ?? ''} ${w.log()}`).toBe('done');
      timings['normal (from submit)'] = settled.get(normal) as number;
      expect(settled.get(normal)).toBeLessThan(60_000);
      console.log('hostile queue timings (ms):', JSON.stringify(timings));

      // SIGTERM: the worker ends within its grace period, cleanly (nothing was left running).
      const signalled = Date.now();
      w.proc.kill('SIGTERM');
      const code = await w.exited;
      const took = Date.now() - signalled;
      console.log(`hostile queue: worker exited ${took} ms after SIGTERM`);
      expect(took, w.log()).toBeLessThan(grace * 1000 + 2000);
      expect(code, w.log()).toBe(0);
      expect(w.log()).toMatch(/SIGTERM: finishing the running jobs for up to 3 s/);
      expect(w.log()).not.toMatch(/^\s+at /m);
    } finally {
      await queue.close();
      await stop(w);
    }
  }, 90_000);
});
