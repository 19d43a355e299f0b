/**
 * Stage 3 (aggregate-stage.ts) on a worker thread of its own. Scoring a slide holds the event
 * loop for seconds in pieces of up to a few hundred milliseconds (robust statistics over a
 * million scores, contours, the overlay's pixels); on the main thread those pieces starved the
 * engine of the next slide's batches, which only has two forwards queued (~100 ms on an H200).
 * On its own thread the scoring can take what it needs while the main thread keeps the engine
 * fed. The thread loads the same modules (the addon, sharp, OpenSlide) and writes the same files;
 * its errors come back as the classes the callers sort failures by.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { AggregateTimings } from './aggregate-stage.js';
import { PartFileError, StorageError } from './errors.js';
import { ModelMismatchError, ScoreConfigError, ScoreError, ScoreFileError, ScoreInputError } from '../score/errors.js';
import type { SlidePlan } from './plan-stage.js';
import type { SlideSummary } from '../store/summary.js';

/** What the thread receives: a slide to score from its part files, or one to be fed batch by batch. */
export type AggregateThreadInput =
  | { mode: 'parts'; plan: SlidePlan; timings: AggregateTimings; batchesComputed: number }
  | { mode: 'stream'; plan: SlidePlan };

/** Messages of a streamed scoring: each batch once its part file is written, then the end. */
export type ScoringStreamMessage =
  | { type: 'batch'; batch: number; cells: Int32Array; embeddings: Uint16Array; sums: Float64Array }
  | { type: 'end'; timings: AggregateTimings; batchesComputed: number };

/** An error as it crosses the thread boundary: its class name and what the callers look at. */
export interface ThreadError {
  name: string;
  message: string;
  stack?: string | undefined;
  /** Node's errno fields (a full disk, a read-only folder): storageFailure reads them. */
  code?: string | undefined;
  syscall?: string | undefined;
  path?: string | undefined;
  /** True when the scoring thread classed it as this slide's failure (isSlideFailure there). */
  slideFailure: boolean;
}

export type AggregateThreadReply = { summary: SlideSummary } | { error: ThreadError };

/**
 * Told by a streamed scoring before its reply: the scorer is fitted (later batches are scored as
 * they come), or it is done with a batch of `took` bytes (it may be sent more).
 */
export type ScoringNotice = { fitted: true } | { took: number };

/**
 * A failure of the slide raised in the scoring thread (a stale part file, an unreadable slide,
 * a bank that does not fit), with the thread's message. isSlideFailure counts it as one.
 */
export class ScoringThreadFailure extends Error {
  constructor(
    override readonly name: string,
    message: string,
  ) {
    super(message);
  }
}

const SCORE_ERRORS: Readonly<Record<string, { prototype: ScoreError }>> = { ScoreError, ScoreConfigError, ScoreInputError, ScoreFileError, ModelMismatchError };

/** Rebuilds the error the scoring thread reported, as the class the main thread expects. */
export function errorFromThread(e: ThreadError): Error {
  if (e.name === 'StorageError' && e.code !== undefined) return new StorageError(e.code, e.message);
  // The message already carries PartFileError's advice: rebuilt without its constructor.
  if (e.name === 'PartFileError') return Object.assign(Object.create(PartFileError.prototype) as PartFileError, { name: e.name, message: e.message });
  if (e.slideFailure) return new ScoringThreadFailure(e.name, e.message);
  // A score file that became unusable during the run (checked before it; replaced since): the
  // class the CLI reports as one line, not as an internal error.
  const scoreClass = Object.hasOwn(SCORE_ERRORS, e.name) ? SCORE_ERRORS[e.name] : undefined;
  if (scoreClass !== undefined) {
    return Object.assign(Object.create(scoreClass.prototype) as ScoreError, { name: e.name, message: e.message, stack: e.stack, code: e.code, path: e.path });
  }
  const err = new Error(e.message);
  err.name = e.name;
  if (e.stack !== undefined) err.stack = e.stack;
  // errno fields as Node sets them, so that storageFailure words a full disk the same way.
  return Object.assign(err, e.code === undefined ? {} : { code: e.code }, e.syscall === undefined ? {} : { syscall: e.syscall }, e.path === undefined ? {} : { path: e.path });
}

/**
 * The thread's compiled entry. Beside this module in dist/; when this module runs from its
 * TypeScript source (the tests), the compiled one in dist/, which the test command builds
 * first: a thread cannot load TypeScript.
 */
function threadEntry(): URL {
  const here = fileURLToPath(import.meta.url);
  const entry = here.endsWith('.ts')
    ? join(dirname(here), '..', '..', 'dist', 'worker', 'pipeline', 'aggregate-thread-main.js')
    : join(dirname(here), 'aggregate-thread-main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: build flashslide (npm run build) before analysing`);
  return pathToFileURL(entry);
}

/** A scoring thread and its one reply. */
function spawn(input: AggregateThreadInput, signal?: AbortSignal, onNotice: (n: ScoringNotice) => void = () => undefined): { thread: Worker; reply: Promise<SlideSummary> } {
  signal?.throwIfAborted();
  const thread = new Worker(threadEntry(), { workerData: input });
  const reply = new Promise<SlideSummary>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = (): void => {
      settle(() => reject(signal?.reason));
      void thread.terminate();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    thread.on('message', (r: AggregateThreadReply | ScoringNotice) => {
      if ('fitted' in r || 'took' in r) onNotice(r);
      else settle(() => ('summary' in r ? resolve(r.summary) : reject(errorFromThread(r.error))));
    });
    thread.once('error', (err) => settle(() => reject(err)));
    thread.once('exit', (code) => settle(() => reject(new Error(`the scoring thread of ${input.plan.spec.slideName} exited (code ${code}) without a result`))));
  });
  reply.catch(() => undefined); // surfaces where it is awaited
  return { thread, reply };
}

/**
 * aggregateSlide on a new worker thread, reading every part file (the queue's aggregate job).
 * `signal` ends the thread (its files are written atomically, summary.json last, so an
 * abandoned scoring leaves no result) and rejects with the signal's reason.
 */
export function aggregateOffThread(plan: SlidePlan, timings: AggregateTimings, batchesComputed: number, signal?: AbortSignal): Promise<SlideSummary> {
  try {
    return spawn({ mode: 'parts', plan, timings, batchesComputed }, signal).reply;
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Embedded mode's scoring, on its thread while the slide is embedded: each batch is handed over
 * once its part file is written; the scorer fits as soon as the fit batches are in, and scores
 * every later batch as it comes. After the last batch only the rest (and the store) remains.
 */
export class ScoringStream {
  private fittedNow = false;
  /** Bytes handed over and not yet taken: the thread's backlog. */
  private inFlight = 0;
  private readonly thread: Worker;
  private readonly reply: Promise<SlideSummary>;

  private constructor(
    plan: SlidePlan,
    private readonly maxInFlight: number,
  ) {
    const { thread, reply } = spawn({ mode: 'stream', plan }, undefined, (n) => {
      if ('fitted' in n) this.fittedNow = true;
      else this.inFlight -= n.took;
    });
    this.thread = thread;
    this.reply = reply;
  }

  /**
   * `maxInFlight`: bytes of batches the thread may have waiting. A scoring slower than the engine
   * (a large reference bank on the CPU, say) is sent no more beyond it: those batches are read
   * back from their part files at the end, and memory stays bounded.
   */
  static open(plan: SlidePlan, maxInFlight = 512 * 2 ** 20): ScoringStream {
    return new ScoringStream(plan, maxInFlight);
  }

  /**
   * Whether the scorer is fitted: every batch handed over from now on is scored as it arrives,
   * never read back from its part file. (With `--embeddings drop` those parts are not written.)
   */
  get fitted(): boolean {
    return this.fittedNow;
  }

  /** Whether the thread has room for `bytes` more: if not, write the batch's part and do not add it. */
  hasRoom(bytes: number): boolean {
    return this.inFlight + bytes <= this.maxInFlight;
  }

  /**
   * A batch whose part file is written (or, once fitted with --embeddings drop, not needed). Its
   * embeddings move to the thread when they own their buffer (unusable here afterwards).
   */
  add(batch: number, cells: Int32Array, embeddings: Uint16Array, sums: Float64Array): void {
    this.inFlight += embeddings.byteLength;
    const whole = embeddings.byteOffset === 0 && embeddings.byteLength === embeddings.buffer.byteLength;
    const message: ScoringStreamMessage = { type: 'batch', batch, cells, embeddings, sums };
    this.thread.postMessage(message, whole ? [embeddings.buffer as ArrayBuffer] : []);
  }

  /** Every batch is in: the scoring finishes, stores the result and resolves with its summary. */
  finish(timings: AggregateTimings, batchesComputed: number): Promise<SlideSummary> {
    const message: ScoringStreamMessage = { type: 'end', timings, batchesComputed };
    this.thread.postMessage(message);
    return this.reply;
  }

  /**
   * Calls `listener` with the scoring's error if it fails, which it reports as soon as it knows
   * (a score file it cannot use: before the first batch), not only when finish() is awaited.
   */
  onFailure(listener: (err: unknown) => void): void {
    this.reply.catch(listener);
  }

  /** The slide failed before its end: the thread is stopped, nothing is filed. */
  async abandon(): Promise<void> {
    await this.thread.terminate();
  }
}
