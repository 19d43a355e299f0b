/**
 * The scoring thread's entry (aggregate-thread.ts starts it): scores one slide, from its part
 * files or fed batch by batch, and replies once, with the summary or the error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { aggregateSlide } from './aggregate-stage.js';
import type { AggregateThreadInput, AggregateThreadReply, ScoringStreamMessage } from './aggregate-thread.js';
import { ScoringRun } from './scoring-run.js';
import { isSlideFailure } from './slide-failure.js';
import type { SlideSummary } from '../store/summary.js';

const input = workerData as AggregateThreadInput;
const port = parentPort;

function errorReply(err: unknown): AggregateThreadReply {
  const e = err as NodeJS.ErrnoException;
  return {
    error: {
      name: e?.name ?? 'Error',
      message: e?.message ?? String(err),
      stack: e?.stack,
      code: typeof e?.code === 'string' ? e.code : undefined,
      syscall: typeof e?.syscall === 'string' ? e.syscall : undefined,
      path: typeof e?.path === 'string' ? e.path : undefined,
      slideFailure: isSlideFailure(err),
    },
  };
}

/** Replies once and lets the thread end. */
function reply(r: AggregateThreadReply): void {
  port?.postMessage(r);
  port?.close();
}

if (input.mode === 'parts') {
  aggregateSlide(input.plan, input.timings, input.batchesComputed).then(
    (summary: SlideSummary) => reply({ summary }),
    (err: unknown) => reply(errorReply(err)),
  );
} else {
  const { plan } = input;
  const run = ScoringRun.start(plan, { onFitted: () => port?.postMessage({ fitted: true }) });
  // Messages are handled one after another; the first error ends the scoring.
  let chain: Promise<unknown> = run;
  let failed = false;
  // A scoring that cannot start (a score file it cannot use) says so at once, not when the first
  // batch arrives: the embedding stops, and a slide that sends no batch is not waited on forever.
  run.catch((err: unknown) => {
    if (failed) return;
    failed = true;
    reply(errorReply(err));
  });
  port?.on('message', (m: ScoringStreamMessage) => {
    chain = chain
      .then(async () => {
        if (failed) return;
        const r = await run;
        if (m.type === 'batch') {
          await r.addBatch(m.batch, m.cells, m.embeddings, m.sums);
          port?.postMessage({ took: m.embeddings.byteLength });
        }
        else reply({ summary: await aggregateSlide(plan, m.timings, m.batchesComputed, undefined, r) });
      })
      .catch((err: unknown) => {
        if (failed) return;
        failed = true;
        void run.then((r) => r.close(), () => undefined);
        reply(errorReply(err));
      });
  });
}
