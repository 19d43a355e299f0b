import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startRedis, type RedisHandle } from '../redis-server.js';
import { analyzeEmbedded } from '../../worker/pipeline/run-embedded.js';
import { describeAnalysis } from '../../worker/pipeline/analysis-spec.js';
import { decodeNpyFloat32 } from '../../worker/store/npy.js';
import { writeSafetensors } from '../../worker/infer/safetensors.js';
import { writeSlideWithDamagedTiles } from '../damaged-slide.js';
import { DEMO_MODEL_SPEC } from '../../worker/infer/demo-model.js';
import { BOXES, BROKEN, CMU, KIDNEY, NDPI, ROOT, SLIDES, TINY, tempDir } from '../helpers.js';

const BIN = join(ROOT, 'bin', 'flashslide.js');
let redis: RedisHandle;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

interface Worker {
  proc: ChildProcess;
  log: () => string;
}

/** Slides come from the fixtures and from temporary folders; probes and banks from temporary folders. */
const roots = (data: string): string[] => ['--data', data, '--slides', SLIDES, '--slides', tmpdir(), '--models', tmpdir()];

function startWorker(data: string, extra: string[] = []): Worker {
  const proc = spawn(process.execPath, [BIN, 'worker', '--redis', redis.url, '--device', 'cpu', '--lock-ms', '2000', ...roots(data), ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  return { proc, log: () => log };
}

async function stopWorker(w: Worker, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  // A process that already exited (normally or by a signal) will not emit 'exit' again.
  if (w.proc.exitCode !== null || w.proc.signalCode !== null) return w.proc.exitCode;
  return new Promise((res) => {
    w.proc.once('exit', (code) => res(code));
    w.proc.kill(signal);
  });
}

interface Status {
  slidePath: string;
  analysisId: string;
  resultDir: string;
  state: string;
  reason: string | null;
  regionsDone: number | null;
  regionsTotal: number | null;
  submitted?: string;
  slideScore?: number | null;
  anomalousRegions?: number;
}

async function cli(args: string[], timeoutMs = 120_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      res({ code, stdout, stderr });
    });
  });
}

const opts = (data: string): string[] => ['--redis', '', '--data', data, '--region-size', '512', '--batch-size', '2', '--device', 'cpu'];
const withRedis = (args: string[]): string[] => args.map((a, i) => (a === '' && args[i - 1] === '--redis' ? redis.url : a));

describe('queue mode: BullMQ on a real Redis', () => {
  it('the fixtures folder as one batch: broken.svs and the slides without mpp fail with a reason, the others get heatmaps; resubmission is deduplicated; a deleted result is recomputed; another score method reuses the embeddings', async () => {
    const data = tempDir();
    const w = startWorker(data);
    try {
      const r = await cli(withRedis(['submit', SLIDES, '--wait', '--json', ...opts(data)]));
      expect(r.code, r.stderr + w.log()).toBe(3); // some slides failed
      const statuses = JSON.parse(r.stdout) as Status[];
      const state = new Map(statuses.map((s) => [s.slidePath, s]));
      expect(statuses.map((s) => s.slidePath)).toEqual([BOXES, BROKEN, CMU, NDPI, KIDNEY, TINY]);
      expect(statuses.map((s) => s.state)).toEqual(['failed', 'failed', 'done', 'done', 'failed', 'done']);
      expect(state.get(BROKEN)?.reason).toMatch(/broken\.svs: not a slide format/);
      expect(state.get(KIDNEY)?.reason).toMatch(/no microns-per-pixel.*pass --mpp/);
      for (const s of [CMU, NDPI].map((p) => state.get(p)!)) {
        const meta = JSON.parse(readFileSync(join(s.resultDir, 'heatmap.json'), 'utf8')) as { rows: number; cols: number };
        expect(decodeNpyFloat32(readFileSync(join(s.resultDir, 'heatmap.npy'))).shape).toEqual([meta.rows, meta.cols]);
      }
      const statusesOk = [CMU, NDPI].map((p) => state.get(p)!);
      // A worklist: finished slides carry their score (null: no tissue) and anomalous regions.
      for (const s of statusesOk) expect(Number.isFinite(s.slideScore)).toBe(true);
      expect(state.get(TINY)).toMatchObject({ slideScore: null, anomalousRegions: 0 });
      const table = (await cli(withRedis(['status', TINY, CMU, ...opts(data)]))).stdout;
      expect(table).toMatch(/^state +score \(regions\) +analysis +slide$/m);
      expect(table).toMatch(/^done +no tissue \(0 anomalous\) +\w{12} .*tiny-aperio\.svs/m);
      expect(table).toMatch(/^done +\d+\.\d{3} \(\d+ anomalous\) +\w{12} .*CMU-1-Small-Region\.svs 21\/21 regions analysed/m);

      const again = await cli(withRedis(['submit', CMU, NDPI, '--json', ...opts(data)]));
      const second = JSON.parse(again.stdout) as Status[];
      expect(second.map((s) => s.submitted)).toEqual(['already-done', 'already-done']);
      expect(second.map((s) => s.analysisId)).toEqual(statusesOk.map((s) => s.analysisId));

      // A finished result deleted from disk (to reclaim space, say): status says so, and
      // submitting again recomputes it instead of trusting the queue's finished jobs.
      rmSync(statusesOk[1]!.resultDir, { recursive: true });
      const [gone] = JSON.parse((await cli(withRedis(['status', NDPI, '--json', ...opts(data)]))).stdout) as Status[];
      expect(gone?.state).toBe('missing');
      expect(gone?.reason).toMatch(/holds no summary\.json/);
      const redo = await cli(withRedis(['submit', NDPI, '--wait', '--json', ...opts(data)]));
      const [back] = JSON.parse(redo.stdout) as Status[];
      expect([back?.state, back?.submitted], redo.stderr + w.log()).toEqual(['done', 'requeued']);
      expect(existsSync(join(statusesOk[1]!.resultDir, 'summary.json'))).toBe(true);

      // Another score method: a new analysis that the flow's parent scores from the embeddings
      // already on disk; every embed child finds its part file and runs no model.
      const probe = join(tempDir(), 'probe.safetensors');
      const dim = DEMO_MODEL_SPEC.embedDim;
      const weight = Float32Array.from({ length: 2 * dim }, (_, i) => Math.cos(i * 7.77) * 0.05);
      await writeSafetensors(probe, { weight: { dtype: 'F32', shape: [2, dim], data: weight }, bias: { dtype: 'F32', shape: [2], data: Float32Array.from([0, 0]) } }, { classes: '["normal","tumor"]' });
      const probed = await cli(withRedis(['submit', CMU, '--wait', '--json', '--score', `head:${probe}`, ...opts(data)]));
      const [p] = JSON.parse(probed.stdout) as Status[];
      expect(p?.state, probed.stderr + w.log()).toBe('done');
      expect(p?.analysisId).not.toBe(state.get(CMU)?.analysisId);
      const ps = JSON.parse(readFileSync(join(p!.resultDir, 'summary.json'), 'utf8')) as { embeddings: { batches: number; batchesComputed: number }; timings: { inferenceMs: number } };
      expect(ps.embeddings.batches).toBeGreaterThan(1);
      expect(ps.embeddings.batchesComputed).toBe(0);
      expect(ps.timings.inferenceMs).toBe(0);

      const st = await cli(['status', '--json', '--redis', redis.url]);
      const known = JSON.parse(st.stdout) as Status[];
      expect(known.length).toBeGreaterThanOrEqual(7);
    } finally {
      await stopWorker(w);
    }
  });

  it('a slide whose tissue tiles are damaged fails in its embed batch, for good (no retries), with the reason; the other slide completes', async () => {
    const data = tempDir();
    const damaged = join(data, 'damaged.tif');
    await writeSlideWithDamagedTiles(CMU, damaged, 0.499, [[1100, 2600]]);
    const w = startWorker(data);
    try {
      const r = await cli(withRedis(['submit', damaged, CMU, '--wait', '--json', ...opts(data)]));
      const [bad, good] = JSON.parse(r.stdout) as Status[];
      expect([bad?.state, good?.state], r.stderr + w.log()).toEqual(['failed', 'done']);
      expect(bad?.reason).toMatch(/damaged\.tif: cannot decode level 0 at \(1024, 2560\) 512x407: the image data there is damaged/);
      expect(w.log()).toMatch(/job embed-[\w-]+ failed: .*damaged\.tif: cannot decode/);
      expect(w.log(), 'a damaged file is not retried').not.toMatch(/damaged\.tif.*\(will retry\)|will retry.*damaged/);
    } finally {
      await stopWorker(w);
    }
  });

  it('kill -9 of a worker mid-slide: a second worker finishes it, and the heatmap matches embedded mode', async () => {
    const data = tempDir();
    const args = ['--redis', redis.url, '--data', data, '--region-size', '1024', '--batch-size', '1', '--device', 'cpu'];
    const a = startWorker(data, ['--concurrency', '1']);
    let b: Worker | null = null;
    try {
      const sub = await cli(['submit', CMU, '--json', ...args]);
      expect(sub.code, sub.stderr).toBe(0);
      const [submitted] = JSON.parse(sub.stdout) as Status[];
      // Wait until the first worker has embedded at least one region, then kill it hard.
      const deadline = Date.now() + 60_000;
      let atKill: Status | undefined;
      for (;;) {
        const st = JSON.parse((await cli(['status', CMU, '--json', ...args])).stdout || '[]') as Status[];
        atKill = st[0];
        if ((atKill?.regionsDone ?? 0) >= 1) break;
        if (Date.now() > deadline) throw new Error(`no progress: ${a.log()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      await stopWorker(a, 'SIGKILL');
      expect(atKill?.state, 'the worker died mid-slide, not after it').toBe('embedding');
      b = startWorker(data);
      const waited = await cli(['submit', CMU, '--wait', '--json', ...args]);
      const [done] = JSON.parse(waited.stdout) as Status[];
      expect(done?.state, waited.stderr + b.log()).toBe('done');
      expect(done?.analysisId).toBe(submitted?.analysisId);

      const [embedded] = await analyzeEmbedded([CMU], { dataDir: tempDir(), regionSize: 1024, batchSize: 1, device: 'cpu' });
      const q = decodeNpyFloat32(readFileSync(join(done!.resultDir, 'heatmap.npy'))).data;
      const e = decodeNpyFloat32(readFileSync(join(embedded!.resultDir!, 'heatmap.npy'))).data;
      expect(q.length).toBe(e.length);
      let maxDiff = 0;
      for (let i = 0; i < q.length; i++) {
        expect(Number.isNaN(q[i] as number)).toBe(Number.isNaN(e[i] as number));
        if (!Number.isNaN(q[i] as number)) maxDiff = Math.max(maxDiff, Math.abs((q[i] as number) - (e[i] as number)));
      }
      expect(maxDiff).toBeLessThan(1e-3);
    } finally {
      await stopWorker(a, 'SIGKILL');
      if (b !== null) await stopWorker(b);
    }
  }, 120_000);

  it('SIGTERM mid-slide: the worker finishes its running batch, exits cleanly, and the slide completes later', async () => {
    const data = tempDir();
    const args = ['--redis', redis.url, '--data', data, '--region-size', '1024', '--batch-size', '1', '--device', 'cpu', '--overlap', '256'];
    const a = startWorker(data, ['--concurrency', '1']);
    let b: Worker | null = null;
    try {
      const sub = await cli(['submit', CMU, '--json', ...args]);
      expect(sub.code, sub.stderr).toBe(0);
      for (let deadline = Date.now() + 60_000; ; ) {
        const [st] = JSON.parse((await cli(['status', CMU, '--json', ...args])).stdout || '[]') as Status[];
        if ((st?.regionsDone ?? 0) >= 1) break;
        if (Date.now() > deadline) throw new Error(`no progress: ${a.log()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      const code = await stopWorker(a, 'SIGTERM');
      expect(code, a.log()).toBe(0);
      expect(a.log()).toMatch(/SIGTERM: finishing the running jobs/);
      const [between] = JSON.parse((await cli(['status', CMU, '--json', ...args])).stdout) as Status[];
      expect(between?.state).toBe('embedding');
      b = startWorker(data);
      const [done] = JSON.parse((await cli(['submit', CMU, '--wait', '--json', ...args])).stdout) as Status[];
      expect(done?.state, b.log()).toBe('done');
    } finally {
      await stopWorker(a, 'SIGKILL');
      if (b !== null) await stopWorker(b);
    }
  }, 120_000);

  it('a Redis that may evict keys is refused with a clear reason', async () => {
    const lru = await startRedis('allkeys-lru');
    try {
      const r = spawnSync(process.execPath, [BIN, 'worker', '--redis', lru.url, ...roots(tempDir())], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/maxmemory-policy allkeys-lru; flashslide needs noeviction/);
    } finally {
      await lru.stop();
    }
  });

  it('a slide rewritten between submit and processing fails as changed; its original bytes are later analysed, not served the other content\'s result', async () => {
    const data = tempDir();
    const slide = join(tempDir(), 'case.svs');
    copyFileSync(CMU, slide);
    const spec = await describeAnalysis(slide, { dataDir: data, regionSize: 512, batchSize: 2, device: 'cpu' });
    const sub = await cli(withRedis(['submit', slide, ...opts(data)]));
    expect(sub.code, sub.stderr).toBe(0);
    copyFileSync(TINY, slide); // other content under the submitted name
    const w = startWorker(data);
    try {
      const deadline = Date.now() + 90_000;
      while (!existsSync(join(spec.resultDir, 'failure.json')) && !existsSync(join(spec.resultDir, 'summary.json')) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
      }
    } finally {
      await stopWorker(w);
    }
    expect(existsSync(join(spec.resultDir, 'summary.json')), w.log()).toBe(false);
    const failure = JSON.parse(readFileSync(join(spec.resultDir, 'failure.json'), 'utf8')) as { reason: string };
    expect(failure.reason).toMatch(/case\.svs: the slide changed since it was submitted/);
    copyFileSync(CMU, slide); // the original bytes are back
    const again = await cli(['analyze', slide, '--data', data, '--region-size', '512', '--batch-size', '2', '--device', 'cpu']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^DONE +.*case\.svs: score 10\.\d{3}/m);
    const summary = JSON.parse(readFileSync(join(spec.resultDir, 'summary.json'), 'utf8')) as { tissueCells: number };
    expect(summary.tissueCells).toBe(9585); // CMU-1's own tissue, not the tiny slide's
    const cached = await cli(['analyze', slide, '--data', data, '--region-size', '512', '--batch-size', '2', '--device', 'cpu']);
    expect(cached.stdout).toMatch(/^CACHED +.*case\.svs/m);
    // A result whose provenance names other content is never served as this slide's.
    const recordPath = join(spec.resultDir, 'analysis.json');
    const record = JSON.parse(readFileSync(recordPath, 'utf8')) as { slide: { fingerprint: string } };
    record.slide.fingerprint = '0'.repeat(64);
    writeFileSync(recordPath, JSON.stringify(record));
    const recomputed = await cli(['analyze', slide, '--data', data, '--region-size', '512', '--batch-size', '2', '--device', 'cpu']);
    expect(recomputed.stdout).toMatch(/^DONE +.*case\.svs/m);
  }, 180_000);

  it('a Redis outage is one line when it starts and one when Redis is back, no stack traces', async () => {
    const own = await startRedis();
    const proc = spawn(process.execPath, [BIN, 'worker', '--redis', own.url, '--device', 'cpu', ...roots(tempDir())], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    const until = async (what: RegExp, ms: number): Promise<void> => {
      const deadline = Date.now() + ms;
      while (!what.test(log) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    };
    let restarted: RedisHandle | null = null;
    try {
      await until(/listening on/, 20_000);
      expect(log).toMatch(/listening on/);
      await own.stop();
      await new Promise((r) => setTimeout(r, 3000));
      restarted = await startRedis('noeviction', own.port);
      await until(/restored/, 40_000);
    } finally {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(killer);
      await restarted?.stop();
    }
    expect(log.match(/lost the connection to Redis/g)?.length, log).toBe(1);
    expect(log.match(/connection to Redis at redis:\/\/127\.0\.0\.1:\d+ restored/g)?.length, log).toBe(1);
    expect(log).not.toMatch(/Unhandled error event|^\s+at /m);
  }, 90_000);

  it('resubmitting (--force) recomputes the result but keeps the pathologist\'s verdicts', async () => {
    const data = tempDir();
    const slide = join(tempDir(), 'again.svs');
    copyFileSync(TINY, slide);
    const w = startWorker(data);
    try {
      const first = await cli(withRedis(['submit', slide, '--wait', '--json', ...opts(data)]));
      expect(first.code, first.stderr + w.log()).toBe(0);
      const [done] = JSON.parse(first.stdout) as Status[];
      expect(done?.state).toBe('done');
      const review = JSON.stringify({ formatVersion: 1, version: 3, regions: {} });
      writeFileSync(join(done!.resultDir, 'review.json'), review);
      const again = await cli(withRedis(['submit', slide, '--force', '--wait', '--json', ...opts(data)]));
      expect(again.code, again.stderr + w.log()).toBe(0);
      const [redone] = JSON.parse(again.stdout) as Status[];
      expect(redone).toMatchObject({ state: 'done', submitted: 'requeued' });
      expect(readFileSync(join(done!.resultDir, 'review.json'), 'utf8')).toBe(review);
    } finally {
      await stopWorker(w);
    }
  }, 120_000);
});
