/**
 * The scoring thread's entry (aggregate-thread.ts starts it): runs stage 3 for the slide it is
 * given and replies once, with the summary or the error.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { aggregateSlide } from './aggregate-stage.js';
import type { AggregateThreadInput, AggregateThreadReply } from './aggregate-thread.js';
import { isSlideFailure } from './slide-failure.js';

const input = workerData as AggregateThreadInput;
let reply: AggregateThreadReply;
try {
  reply = { summary: await aggregateSlide(input.plan, input.timings, input.batchesComputed, undefined, input.fit) };
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  reply = {
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
parentPort?.postMessage(reply);
