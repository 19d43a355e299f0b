/**
 * Runs tile renders a few at a time. A viewer asks for dozens of tiles at once; decoding them all
 * together would oversubscribe a 2-core machine and make every tile late, so at most
 * `concurrency` renders run and the rest wait in order. Waiting work whose request went away
 * (the reviewer panned on) is dropped before it costs anything, and concurrent requests for the
 * same tile share one render.
 */
import { availableParallelism } from 'node:os';

export interface RenderPoolOptions {
  /** Renders running at once. */
  concurrency?: number;
}

export function renderPoolDefaults(): Required<RenderPoolOptions> {
  return { concurrency: availableParallelism() };
}

/** The caller's AbortSignal fired before its render finished. */
export class AbortError extends Error {
  constructor(message = 'the request was aborted') {
    super(message);
    this.name = 'AbortError';
  }
}

export interface RenderPoolStats {
  running: number;
  queued: number;
  /** Renders started. */
  started: number;
  /** Queued renders dropped because every caller aborted. */
  dropped: number;
  /** Calls that joined a render of the same key already queued or running. */
  shared: number;
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(err: unknown): void;
  detach(): void;
}

interface Job<T> {
  readonly key: string;
  readonly task: () => Promise<T>;
  readonly waiters: Set<Waiter<T>>;
  started: boolean;
}

export class RenderPool<T> {
  readonly concurrency: number;
  private readonly jobs = new Map<string, Job<T>>();
  /** Jobs not yet started, in arrival order. */
  private readonly queue = new Set<Job<T>>();
  private running = 0;
  private started = 0;
  private dropped = 0;
  private shared = 0;

  constructor(options: RenderPoolOptions = {}) {
    const { concurrency } = { ...renderPoolDefaults(), ...options };
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) throw new RangeError(`render concurrency ${concurrency} is not a positive integer`);
    this.concurrency = concurrency;
  }

  /**
   * The result of `task`, run when a slot is free; one run per key among the calls waiting at the
   * same time. Rejects with AbortError as soon as `signal` fires; the task is then skipped if no
   * other caller still waits for it and it has not started (a started task runs to completion).
   */
  run(key: string, task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted === true) return Promise.reject(new AbortError());
    let job = this.jobs.get(key);
    if (job === undefined) {
      job = { key, task, waiters: new Set(), started: false };
      this.jobs.set(key, job);
      this.queue.add(job);
    } else {
      this.shared++;
    }
    const j = job;
    const promise = new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        j.waiters.delete(waiter);
        waiter.detach();
        reject(new AbortError());
        if (!j.started && j.waiters.size === 0) {
          this.queue.delete(j);
          this.jobs.delete(j.key);
          this.dropped++;
        }
      };
      const waiter: Waiter<T> = {
        resolve,
        reject,
        detach: () => signal?.removeEventListener('abort', onAbort),
      };
      j.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    this.pump();
    return promise;
  }

  stats(): RenderPoolStats {
    return { running: this.running, queued: this.queue.size, started: this.started, dropped: this.dropped, shared: this.shared };
  }

  private pump(): void {
    while (this.running < this.concurrency) {
      const next = this.queue.values().next();
      if (next.done === true) return;
      const job = next.value;
      this.queue.delete(job);
      job.started = true;
      this.running++;
      this.started++;
      let result: Promise<T>;
      try {
        result = job.task();
      } catch (err) {
        result = Promise.reject(err);
      }
      result.then(
        (value) => this.finish(job, (w) => w.resolve(value)),
        (err: unknown) => this.finish(job, (w) => w.reject(err)),
      );
    }
  }

  private finish(job: Job<T>, settle: (w: Waiter<T>) => void): void {
    this.running--;
    this.jobs.delete(job.key);
    for (const w of job.waiters) {
      w.detach();
      settle(w);
    }
    job.waiters.clear();
    this.pump();
  }
}
