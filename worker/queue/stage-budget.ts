/**
 * Time budgets for job stages. A crafted or pathological slide can keep a decoder busy for
 * minutes; a worker must not be held hostage by it. Each stage runs with an AbortSignal that the
 * stages check between units of work (regions, parts), and the job's promise settles at the
 * deadline even while native code (libvips, OpenSlide, the engine) still runs: the worker moves on
 * and what is left finishes, unused, in the background. Writes are atomic, so nothing it leaves
 * is half-written.
 */

/** A stage that ran past its budget: fails the job for good, with the budget and the stage named. */
export class StageTimeoutError extends Error {
  override readonly name = 'StageTimeoutError';
}

/** The worker is shutting down past its grace period: the job is handed back to the queue. */
export class WorkerStoppingError extends Error {
  override readonly name = 'WorkerStoppingError';
}

/**
 * Runs `work` with a signal that aborts after `budgetMs` or when `outer` aborts (shutdown), and
 * settles at that moment with the abort reason, whether or not `work` has noticed.
 */
export async function withBudget<T>(what: string, budgetMs: number, outer: AbortSignal, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new StageTimeoutError(`${what} took longer than its budget of ${formatSeconds(budgetMs)} and was abandoned (a slide this slow is likely damaged or crafted; raise --stage-timeout if it is genuine)`)),
    budgetMs,
  );
  const onOuter = (): void => controller.abort(outer.reason);
  if (outer.aborted) onOuter();
  else outer.addEventListener('abort', onOuter, { once: true });
  const aborted = new Promise<never>((_, reject) => {
    const fail = (): void => reject(controller.signal.reason);
    if (controller.signal.aborted) fail();
    else controller.signal.addEventListener('abort', fail, { once: true });
  });
  aborted.catch(() => undefined); // an abort after the race settled concerns no one
  const running = work(controller.signal);
  // Whatever `work` does after the deadline is no one's concern: never an unhandled rejection.
  running.catch(() => undefined);
  try {
    return await Promise.race([running, aborted]);
  } finally {
    clearTimeout(timer);
    outer.removeEventListener('abort', onOuter);
  }
}

export function formatSeconds(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}
