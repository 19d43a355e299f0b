/**
 * Names from outside in what the CLI prints and what the queue carries (issue 13): a slide file
 * whose name holds a newline (or other control characters) cannot forge a line of `inspect`'s
 * report, and queue mode takes the slide `analyze` takes (submit, a worker, status), with the
 * name escaped wherever it is printed. The built CLI in real processes, a real Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startRedis, type RedisHandle } from '../redis-server.js';
import { BIN, CMU, TINY, cli, cliEnv, tempDir } from '../helpers.js';

/** A name that would print as two lines, the second one a forged result; then a carriage return and an escape sequence. */
const FORGED = 'case\nDONE    forged.svs: 0.000, 0 anomalous regions\r\u001b[1A.svs';
/** Any control character a terminal acts on, other than the newlines between lines. */
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

describe('inspect: a newline in the slide file name', () => {
  it('is printed escaped: every line of the report is one of its fields, none forged', () => {
    const dir = tempDir();
    const slide = join(dir, FORGED);
    copyFileSync(TINY, slide);
    const out = join(dir, 'masks');
    const r = cli(['inspect', slide, '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    for (const line of lines) expect(line).toMatch(/^(slide|format|size|mpp|levels|associated|tissue|regions|warning) {2,}\S/);
    expect(r.stdout).not.toMatch(/^DONE/m);
    expect(r.stdout).not.toMatch(CONTROL);
    expect(lines[0]).toBe(`slide        ${dir}/case\\x0aDONE    forged.svs: 0.000, 0 anomalous regions\\x0d\\x1b[1A.svs`);
    expect(r.stdout).toMatch(/mask 2x2 -> .*\/masks\/case\\x0aDONE {4}forged\.svs: 0\.000, 0 anomalous regions\\x0d\\x1b\[1A\.tissue\.png$/m);
    // JSON says the name as it is (JSON escapes control characters itself).
    const j = cli(['inspect', slide, '--json', '--out', out]);
    expect(j.code, j.stderr).toBe(0);
    expect((JSON.parse(j.stdout) as { path: string }).path).toBe(slide);
  });

  it('an --out folder that cannot be used is named escaped, on one line', () => {
    const dir = tempDir();
    const file = join(dir, 'x\nflashslide: forged');
    copyFileSync(TINY, file);
    const r = cli(['inspect', TINY, '--out', join(file, 'sub')]);
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/--out .*x\\x0aflashslide: forged\/sub: cannot be used as the folder for the tissue mask/);
  });
});

describe('queue mode: a newline in the slide file name', () => {
  let redis: RedisHandle;
  let worker: ChildProcess | null = null;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    if (worker !== null && worker.exitCode === null && worker.signalCode === null) {
      const w = worker;
      await new Promise((r) => {
        w.once('exit', r);
        w.kill('SIGKILL');
      });
    }
    await redis?.stop();
  });

  it('submit queues it, a worker analyses it like analyze does, and every printed line escapes it', async () => {
    const slides = tempDir();
    const slide = join(slides, FORGED);
    copyFileSync(CMU, slide);
    const flags = ['--region-size', '512', '--batch-size', '8', '--device', 'cpu'];
    const data = join(tempDir(), 'data');
    mkdirSync(data);

    const proc = spawn(process.execPath, [BIN, 'worker', '--redis', redis.url, '--data', data, '--slides', slides, '--device', 'cpu', '--lock-ms', '5000'], { stdio: ['ignore', 'ignore', 'pipe'], env: cliEnv() });
    worker = proc;
    let log = '';
    proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));

    const sub = await new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
      const p = spawn(process.execPath, [BIN, 'submit', slide, '--wait', '--redis', redis.url, '--data', data, ...flags], { stdio: ['ignore', 'pipe', 'pipe'], env: cliEnv() });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => p.kill('SIGKILL'), 150_000);
      p.on('exit', (code) => {
        clearTimeout(timer);
        res({ code, stdout, stderr });
      });
    });
    expect(sub.code, `${sub.stderr}\nworker: ${log}`).toBe(0);
    expect(log).not.toMatch(/refused|not a valid flashslide job|must match pattern/);
    const row = sub.stdout.trimEnd().split('\n')[1] ?? '';
    expect(row).toMatch(/^done +\d+\.\d{3} \(\d+ anomalous\) +\w{12} .*\/case\\x0aDONE {4}forged\.svs: 0\.000, 0 anomalous regions\\x0d\\x1b\[1A\.svs 21\/21 regions analysed \[submitted now\]$/);
    expect(sub.stdout.trimEnd().split('\n')).toHaveLength(2);

    // The same slide through analyze: the same score.
    const embedded = cli(['analyze', slide, '--json', '--data', join(tempDir(), 'data'), ...flags]);
    expect(embedded.code, embedded.stderr).toBe(0);
    const [outcome] = JSON.parse(embedded.stdout) as { slideScore: number }[];
    const status = cli(['status', slide, '--json', '--redis', redis.url, ...flags]);
    expect(status.code, status.stderr).toBe(0);
    const [queued] = JSON.parse(status.stdout) as { state: string; slideScore: number; resultDir: string; slidePath: string }[];
    expect(queued).toMatchObject({ state: 'done', slidePath: slide, slideScore: outcome?.slideScore });
    expect(existsSync(join(queued!.resultDir, 'summary.json'))).toBe(true);
    expect(JSON.parse(readFileSync(join(queued!.resultDir, 'summary.json'), 'utf8'))).toMatchObject({ slidePath: slide });

    // Every line the worker and status printed is one line: the name escaped in each.
    const table = cli(['status', slide, '--redis', redis.url, ...flags]);
    for (const text of [table.stdout, sub.stderr, log]) {
      expect(text).not.toMatch(CONTROL);
      expect(text).not.toMatch(/^DONE/m);
    }
    expect(log).toMatch(/^done .*case\\x0aDONE {4}forged\.svs: 0\.000, 0 anomalous regions\\x0d\\x1b\[1A: score \d+\.\d{3}, \d+ anomalous regions -> /m);
  }, 240_000);
});
