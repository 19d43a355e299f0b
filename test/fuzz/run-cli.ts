/**
 * Runs the built `flashslide` as a user would (a child process), with a wall-clock limit that
 * kills the whole process group, and sorts what happened into outcomes. Peak memory comes from
 * GNU time when the machine has it.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './seeds.js';

export const BIN = join(ROOT, 'bin', 'flashslide.js');
const GNU_TIME = '/usr/bin/time';

export interface CliRun {
  readonly args: readonly string[];
  readonly code: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly ms: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Peak resident memory of the command in KiB, when measured. */
  readonly maxRssKb: number | null;
}

/** Outcomes, best first; everything from 'node-warning' on fails a fuzz run. */
export const OUTCOMES = ['ok', 'clear-error', 'node-warning', 'internal-error', 'stack-trace', 'crash', 'hang'] as const;
export type Outcome = (typeof OUTCOMES)[number];
export const FAILING: ReadonlySet<Outcome> = new Set(['node-warning', 'internal-error', 'stack-trace', 'crash', 'hang']);

/** Node's own warnings (a FileHandle left to the garbage collector, an unhandled rejection): our bugs, shown to the user. */
const NODE_WARNING = /^\(node:\d+\) (?:\[\w+\] )?\w*Warning: .*/m;

const CAPTURE = 64 * 1024;

/** The environment of a user's shell: no debug traces, never this machine's queue. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['FLASHSLIDE_DEBUG'];
  delete env['FLASHSLIDE_REDIS'];
  return env;
}

export function runCli(args: readonly string[], timeoutMs: number): Promise<CliRun> {
  const measured = existsSync(GNU_TIME);
  const tmp = measured ? mkdtempSync(join(tmpdir(), 'flashslide-fuzz-rss-')) : null;
  const rssFile = tmp === null ? null : join(tmp, 'rss');
  const [cmd, argv] =
    rssFile === null ? [process.execPath, [BIN, ...args]] : [GNU_TIME, ['-f', '%M', '-o', rssFile, process.execPath, BIN, ...args]];
  const t0 = performance.now();
  return new Promise((resolve) => {
    // Its own process group, so a timeout kills node and whatever it started, not just GNU time.
    const child = spawn(cmd, argv, { cwd: ROOT, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      if (stdout.length < CAPTURE) stdout += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < CAPTURE) stderr += d.toString('utf8');
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let maxRssKb: number | null = null;
      let innerSignal: string | null = null;
      if (rssFile !== null && existsSync(rssFile)) {
        const lines = readFileSync(rssFile, 'utf8').trim().split('\n');
        const kb = Number(lines[lines.length - 1]);
        maxRssKb = Number.isFinite(kb) ? kb : null;
        const sig = /terminated by signal (\d+)/.exec(lines.join('\n'))?.[1];
        if (sig !== undefined) innerSignal = signalName(Number(sig));
      }
      if (tmp !== null) rmSync(tmp, { recursive: true, force: true });
      // GNU time exits 128 + n when its command died of signal n: report the signal.
      const killed = innerSignal ?? signal;
      resolve({
        args,
        code: killed === null ? code : null,
        signal: killed,
        timedOut,
        ms: performance.now() - t0,
        stdout,
        stderr,
        maxRssKb,
      });
    });
  });
}

const SIGNALS: Readonly<Record<number, string>> = { 1: 'SIGHUP', 2: 'SIGINT', 4: 'SIGILL', 5: 'SIGTRAP', 6: 'SIGABRT', 7: 'SIGBUS', 8: 'SIGFPE', 9: 'SIGKILL', 11: 'SIGSEGV', 13: 'SIGPIPE', 15: 'SIGTERM' };
function signalName(n: number): string {
  return SIGNALS[n] ?? `signal ${n}`;
}

/** Lines of a JavaScript stack, a Node crash banner, or a native crash. */
const STACK_PATTERNS: readonly RegExp[] = [
  /^\s+at (?:async )?\S.*(?::\d+:\d+\)?|\(native\)|<anonymous>\)?)$/m,
  /^(?:Uncaught )?[A-Z]\w*(?:Error|Exception)(?: \[[A-Z_]+\])?: /m,
  /node:internal\//,
  /FATAL ERROR/,
  /Segmentation fault|core dumped|Aborted|double free|malloc\(\)|munmap_chunk|free\(\): /,
];

/** Progress bars and the CLI's own one-line messages; anything else on stderr is a library talking. */
const EXPECTED_STDERR: readonly RegExp[] = [/^\S.* \[[#.]+\] \d+\/\d+ regions /, /^flashslide: /, /^\s*$/];

export interface Classified {
  readonly outcome: Outcome;
  /** stderr lines that are neither a progress bar nor the CLI's message (libtiff/libvips warnings). */
  readonly noise: readonly string[];
  /** The line that says what happened: the error, the trace, or the signal. */
  readonly summary: string;
}

export function classify(run: CliRun): Classified {
  const noise = run.stderr
    .split(/\r?\n|\r/)
    .filter((l) => !EXPECTED_STDERR.some((p) => p.test(l)))
    .slice(0, 20);
  const firstError = run.stderr.split('\n').find((l) => l.startsWith('flashslide: ')) ?? run.stdout.split('\n').find((l) => l.startsWith('FAILED')) ?? '';
  if (run.timedOut) return { outcome: 'hang', noise, summary: `no exit within the limit (${Math.round(run.ms / 1000)} s)` };
  if (run.signal !== null) return { outcome: 'crash', noise, summary: `killed by ${run.signal}` };
  const trace = STACK_PATTERNS.map((p) => p.exec(`${run.stderr}\n${run.stdout}`)?.[0]).find((m) => m !== undefined);
  if (trace !== undefined) return { outcome: 'stack-trace', noise, summary: trace.trim() };
  const warning = NODE_WARNING.exec(run.stderr)?.[0];
  if (warning !== undefined) return { outcome: 'node-warning', noise, summary: warning };
  if (run.code === 0) return { outcome: 'ok', noise, summary: '' };
  if (run.code === 1 || /internal error/.test(run.stderr)) return { outcome: 'internal-error', noise, summary: firstError };
  if ((run.code === 2 || run.code === 3 || run.code === 4) && firstError !== '') return { outcome: 'clear-error', noise, summary: firstError };
  return { outcome: 'crash', noise, summary: `exit ${run.code} without a message` };
}
