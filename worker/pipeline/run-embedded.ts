/**
 * Embedded mode: the same three stages the queue workers run (plan -> embed batches -> aggregate),
 * in this process, one slide after another, without Redis. Reading the next batch overlaps
 * inference of the current one. A slide that fails is recorded (failure.json) and the rest go on.
 */
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { openSlide } from '../slide/open-slide.js';
import type { SlideSource } from '../slide/slide-source.js';
import { DEFAULT_ANALYSIS_OPTIONS, checkDataFolders, describeAnalysis, slideOpenOptions, type AnalysisOptions, type AnalysisSpec } from './analysis-spec.js';
import { storageFailure } from './errors.js';
import { isSlideFailure } from './slide-failure.js';
import { aggregateOffThread, ScoringStream } from './aggregate-thread.js';
import { planSlide, type SlidePlan } from './plan-stage.js';
import { forwardBatch, partExists, readBatch, writePart, type ForwardedBatch, type RegionBatch } from './embed-stage.js';
import { readResultSummary, writeFailure, type AggregateTimings } from './aggregate-stage.js';
import { getEngine } from './engine-cache.js';
import { fitBatchesOf } from './fit-batches.js';
import type { ProgressListener } from './progress.js';
import type { EngineIdle } from '../store/summary.js';

export interface SlideOutcome {
  slidePath: string;
  analysisId: string | null;
  resultDir: string | null;
  status: 'done' | 'cached' | 'failed';
  reason?: string;
  /** null: the slide has no tissue, nothing was scored. */
  slideScore?: number | null;
  regions?: number;
  anomalousRegions?: number;
}

export interface EmbeddedRunOptions extends Partial<AnalysisOptions> {
  /** Recompute even when a finished result exists. */
  force?: boolean;
  onProgress?: ProgressListener;
  /**
   * Bytes of embedded batches a slide's scoring thread may have waiting (default 512 MiB). When
   * the scoring lags behind the engine, later batches are not handed over but read back from
   * their part files at the end, so memory stays bounded.
   */
  scoringBacklogBytes?: number;
}

/** Batches decoded ahead of the engine in embedded mode (each is batch x regionSize^2 x 3 bytes). */
const READ_AHEAD = 3;
/** Part files being written at once (each holds its batch's embeddings in memory until written). */
const WRITES_IN_FLIGHT = 4;

/**
 * The engine's idle time in an embed phase, from when each batch's read finished and its
 * forward ended and how long the forward ran: before the first forward (the first read), and
 * between forwards, split into waiting for the next batch's read and the rest (the event loop,
 * the thread pool's queue). After the last forward until the phase ended: the last writes.
 */
export function engineIdle(readDone: readonly number[], forwardEnd: readonly number[], forwardMs: readonly number[], phaseMs: number): EngineIdle {
  const idle: EngineIdle = { phaseMs, busyMs: 0, firstMs: 0, readMs: 0, otherMs: 0, tailMs: 0 };
  for (let k = 0; k < forwardEnd.length; k++) {
    const end = forwardEnd[k] as number;
    const start = end - (forwardMs[k] as number);
    idle.busyMs += forwardMs[k] as number;
    if (k === 0) {
      idle.firstMs = Math.max(0, start);
      continue;
    }
    const gap = start - (forwardEnd[k - 1] as number);
    if (gap <= 0) continue;
    const forRead = Math.min(gap, Math.max(0, (readDone[k] as number) - (forwardEnd[k - 1] as number)));
    idle.readMs += forRead;
    idle.otherMs += gap - forRead;
  }
  idle.tailMs = Math.max(0, phaseMs - (forwardEnd[forwardEnd.length - 1] ?? 0));
  return idle;
}

/** What the embed stages of one slide leave for its aggregate stage. */
interface EmbeddedSlide {
  plan: SlidePlan;
  timings: AggregateTimings;
  batchesComputed: number;
  /** The scoring fed the batches as they were embedded (analyzeEmbedded), or null. */
  scoring: ScoringStream | null;
}

/**
 * A slide planned and open, its first batches being decoded: what the engine needs to start on
 * it at once. analyzeEmbedded prepares slide k+1 while slide k is in the engine, so the engine
 * does not wait for a plan or a first read between slides.
 */
interface PreparedSlide {
  spec: AnalysisSpec;
  plan: SlidePlan;
  source: SlideSource;
  /** Batches without a part file yet: the fit batches first (fit-batches.ts), then in plan order. */
  todo: number[];
  /** Reads started ahead, indexed like todo. */
  reads: (Promise<RegionBatch> | undefined)[];
  startedAt: number;
}

type StageProgress = (stage: 'plan' | 'embed' | 'aggregate' | 'done', done: number, total: number) => void;

const progressOf = (spec: AnalysisSpec, options: EmbeddedRunOptions): StageProgress => (stage, done, total) =>
  options.onProgress?.({ analysisId: spec.analysisId, slideName: spec.slideName, stage, regionsDone: done, regionsTotal: total });

/** Stage 1, then the slide opened and its first READ_AHEAD batches handed to the thread pool. */
async function prepareSlide(spec: AnalysisSpec, options: EmbeddedRunOptions): Promise<PreparedSlide> {
  const startedAt = performance.now();
  progressOf(spec, options)('plan', 0, 0);
  // The first slide's tissue is found while the model loads.
  const plan = await planSlide(spec, getEngine(spec.modelWeights, spec.modelConfig, spec.device).then((e) => e.arch));
  // The fit batches first: the scoring can fit while the rest is in the engine.
  const fitFirst = fitBatchesOf(plan);
  const inFit = new Set(fitFirst);
  const todo = [...fitFirst, ...plan.batches.map((_, i) => i).filter((i) => !inFit.has(i))].filter((i) => !partExists(plan, i));
  const source = await openSlide(spec.slidePath, slideOpenOptions(spec));
  const reads: (Promise<RegionBatch> | undefined)[] = [];
  for (let j = 0; j < Math.min(todo.length, READ_AHEAD); j++) {
    const p = readBatch(plan, source, todo[j] as number);
    p.catch(() => undefined); // its error surfaces where it is awaited
    reads[j] = p;
  }
  return { spec, plan, source, todo, reads, startedAt };
}

/** Closes a prepared slide that will not be embedded (an earlier slide's failure ended the run). */
async function discardPrepared(p: PreparedSlide): Promise<void> {
  await Promise.allSettled(p.reads.filter((r) => r !== undefined));
  await p.source.close();
}

/**
 * Stage 2 of a prepared slide: embed every batch not yet on disk, handing each to `scoring` once
 * its part file is written. Closes the slide. `signal` stops it between batches (what is in
 * flight settles first) and rejects with the signal's reason.
 */
async function embedPrepared(prepared: PreparedSlide, options: EmbeddedRunOptions, scoring: ScoringStream | null = null, signal?: AbortSignal): Promise<EmbeddedSlide> {
  const { spec, plan, source, todo, reads } = prepared;
  const engine = await getEngine(spec.modelWeights, spec.modelConfig, spec.device);
  const progress = progressOf(spec, options);
  const total = plan.regionPlan.regions.length;
  let done = total - todo.reduce((acc, i) => acc + (plan.batches[i]?.length ?? 0), 0);
  progress('embed', done, total);

  const timings: AggregateTimings = { planMs: plan.planMs, readMs: 0, inferenceMs: 0, partsWritten: 0 };
  // A pipeline over the batches still to embed: decoding runs READ_AHEAD batches ahead (thread
  // pool), two forwards are queued on the engine so that it starts the next the moment one ends,
  // and each finished batch's part file is written (this thread) while the engine works.
  const forwards: (Promise<ForwardedBatch> | undefined)[] = [];
  // When each batch's read finished and its forward ended (ms since the embed phase began): the
  // engine's idle time between forwards, and what it waited for (summary.timings.engineIdle).
  const embedStart = performance.now();
  const readDone: number[] = [];
  const forwardEnd: number[] = [];
  const launch = (k: number): void => {
    for (let j = k; j < Math.min(todo.length, k + READ_AHEAD); j++) {
      if (reads[j] !== undefined) continue;
      const p = readBatch(plan, source, todo[j] as number);
      p.catch(() => undefined); // its error surfaces where it is awaited
      reads[j] = p;
    }
    if (k >= todo.length || forwards[k] !== undefined) return;
    const f = (reads[k] as Promise<RegionBatch>).then(async (batch) => {
      readDone[k] = performance.now() - embedStart;
      timings.readMs += batch.readMs;
      const forwarded = await forwardBatch(plan, engine, batch);
      forwardEnd[k] = performance.now() - embedStart;
      return forwarded;
    });
    f.catch(() => undefined);
    forwards[k] = f;
  };
  // Part files are written WRITES_IN_FLIGHT at a time, so that a slow write never holds back
  // the next forward (a ViT-L batch of 8 regions is ~50-70 ms on an H200).
  const writes: Promise<void>[] = [];
  const forwardMs: number[] = [];
  const finishWrite = async (): Promise<void> => {
    await writes.shift();
  };
  try {
    signal?.throwIfAborted();
    launch(0);
    launch(1);
    for (let k = 0; k < todo.length; k++) {
      const forwarded = await (forwards[k] as Promise<ForwardedBatch>);
      // Stopped (the run ended, or this slide's scoring failed): no further batch is started.
      signal?.throwIfAborted();
      forwards[k] = undefined;
      reads[k] = undefined;
      launch(k + 2);
      timings.inferenceMs += forwarded.inferMs;
      forwardMs[k] = forwarded.inferMs;
      timings.modelTokens = (timings.modelTokens ?? 0) + forwarded.modelTokens;
      // With --embeddings drop, a batch the fitted scoring takes as it comes needs no part file:
      // nothing would read it (a crash recomputes it). Before the fit, and with keep, it is
      // written first, so that the scoring may read it back.
      // A scoring that lags behind is sent nothing more: it reads those parts back at the end.
      const handOver = scoring !== null && scoring.hasRoom(forwarded.embeddings.byteLength);
      const skipPart = spec.embeddings === 'drop' && handOver && scoring.fitted;
      const write = (skipPart ? Promise.resolve(0) : writePart(plan, forwarded)).then((ms) => {
        timings.writeMs = (timings.writeMs ?? 0) + ms;
        if (!skipPart) timings.partsWritten = (timings.partsWritten ?? 0) + 1;
        done += forwarded.batch.regions.length;
        progress('embed', done, total);
        if (handOver) scoring.add(forwarded.batch.index, forwarded.cells, forwarded.embeddings, forwarded.sums);
      });
      write.catch(() => undefined); // surfaces where it is awaited
      writes.push(write);
      if (writes.length >= WRITES_IN_FLIGHT) await finishWrite();
    }
    while (writes.length > 0) await finishWrite();
    signal?.throwIfAborted();
    timings.engineIdle = engineIdle(readDone, forwardEnd, forwardMs, performance.now() - embedStart);
  } finally {
    // After a failure, let what is still running settle before the slide is closed under it.
    await Promise.allSettled([...reads, ...forwards, ...writes].filter((p) => p !== undefined));
    await source.close();
  }
  progress('aggregate', total, total);
  return { plan, timings: { ...timings, startedAt: performance.timeOrigin + prepared.startedAt }, batchesComputed: todo.length, scoring };
}

/** Stages 1 and 2 in this process: plan the slide and embed every batch not yet on disk. */
export async function embedSlide(spec: AnalysisSpec, options: EmbeddedRunOptions): Promise<EmbeddedSlide> {
  return embedPrepared(await prepareSlide(spec, options), options);
}

/** Stage 3 for a slide embedded in this process, and its outcome. */
async function aggregateEmbedded(spec: AnalysisSpec, embedded: EmbeddedSlide, options: EmbeddedRunOptions): Promise<SlideOutcome> {
  const { plan, timings, batchesComputed, scoring } = embedded;
  const total = plan.regionPlan.regions.length;
  const summary = scoring === null ? await aggregateOffThread(plan, timings, batchesComputed) : await scoring.finish(timings, batchesComputed);
  options.onProgress?.({ analysisId: spec.analysisId, slideName: spec.slideName, stage: 'done', regionsDone: total, regionsTotal: total });
  return {
    slidePath: spec.slidePath,
    analysisId: spec.analysisId,
    resultDir: spec.resultDir,
    status: 'done',
    slideScore: summary.slideScore,
    regions: total,
    anomalousRegions: summary.regionsCount,
  };
}

export async function analyzeOne(spec: AnalysisSpec, options: EmbeddedRunOptions): Promise<SlideOutcome> {
  return aggregateEmbedded(spec, await embedSlide(spec, options), options);
}

/**
 * Analyses slides one after another in this process, three deep: while slide k is in the engine
 * (and scored on its thread as its batches come out), slide k+1 is planned and its first batches
 * decoded, and what is left of slide k-1's scoring finishes. So the engine waits neither for a
 * plan nor for a scoring between slides. Memory: one embed stage, one prepared slide and two
 * scoring threads. A slide listed twice is analysed once. Outcomes come back in the order of
 * `slides`.
 *
 * An error that is not one slide's failure (a score file that became unusable, a bug) ends the
 * run: the slide in the engine stops at its next batch, its scoring thread is ended, the previous
 * slide's scoring and the next slide's preparation settle, and only then does the error come
 * back, so that nothing of the run is left running (a scoring thread left waiting for batches
 * kept the process alive after the error was reported).
 */
export async function analyzeEmbedded(slides: string[], options: EmbeddedRunOptions = {}): Promise<SlideOutcome[]> {
  const outcomes: SlideOutcome[] = [];
  let scoring: Promise<void> = Promise.resolve();
  // Aborted, with the error, when the run ends early: the embedding of the slide in the engine stops.
  const run = new AbortController();
  // The scoring thread of the slide being embedded, until its scoring is finished or abandoned.
  let unfinished: ScoringStream | null = null;
  // A slide that cannot be analysed is recorded and the batch goes on; anything else is a bug.
  // A full or read-only data folder fails the slide with its cause too: the next slide is still
  // tried (space may have been freed), and the failure is recorded where it can be.
  const recordFailure = async (slidePath: string, spec: AnalysisSpec | null, err: unknown): Promise<SlideOutcome> => {
    const failure = isSlideFailure(err) ? err : storageFailure(err, `the data folder ${resolve(options.dataDir ?? DEFAULT_ANALYSIS_OPTIONS.dataDir)}`);
    if (failure === null) throw err;
    if (spec !== null) await writeFailure(spec, failure.message).catch(() => undefined);
    return { slidePath, analysisId: spec?.analysisId ?? null, resultDir: spec?.resultDir ?? null, status: 'failed', reason: failure.message };
  };
  type Prepared = { ready: PreparedSlide } | { outcome: SlideOutcome } | { duplicateOf: number };
  // The first index of each analysis in this run: a slide listed twice (the same content under
  // the same name, with the run's one set of options) is the same analysis, analysed once.
  const firstOf = new Map<string, number>();
  /**
   * Slide `index` described, checked and prepared, or its outcome when there is nothing to embed
   * (a finished result, a failure, an analysis already in this run). Called in index order.
   */
  const prepare = async (index: number): Promise<Prepared> => {
    const slidePath = slides[index] as string;
    let spec: AnalysisSpec | null = null;
    try {
      spec = await describeAnalysis(slidePath, options);
      const first = firstOf.get(spec.resultDir);
      if (first !== undefined) return { duplicateOf: first };
      firstOf.set(spec.resultDir, index);
      await checkDataFolders(spec, options.dataDir ?? DEFAULT_ANALYSIS_OPTIONS.dataDir);
      const existing = options.force ? null : await readResultSummary(spec);
      if (existing !== null) {
        return { outcome: { slidePath: spec.slidePath, analysisId: spec.analysisId, resultDir: spec.resultDir, status: 'cached', slideScore: existing.slideScore, anomalousRegions: existing.regionsCount } };
      }
      // A failure recorded by an earlier attempt is not this attempt's.
      await rm(join(spec.resultDir, 'failure.json'), { force: true });
      return { ready: await prepareSlide(spec, options) };
    } catch (err) {
      return { outcome: await recordFailure(slidePath, spec, err) };
    }
  };
  const duplicates: [number, number][] = [];
  let next: Promise<Prepared> | null = slides.length > 0 ? prepare(0) : null;
  try {
    for (let index = 0; index < slides.length; index++) {
      const current: Prepared = await (next as Promise<Prepared>);
      next = null;
      if ('outcome' in current || 'duplicateOf' in current) {
        if ('outcome' in current) outcomes[index] = current.outcome;
        else duplicates.push([index, current.duplicateOf]);
        if (index + 1 < slides.length) next = prepare(index + 1);
        continue;
      }
      const { spec } = current.ready;
      const slidePath = slides[index] as string;
      // Scored on its own thread while it is embedded.
      let stream: ScoringStream;
      try {
        stream = ScoringStream.open(current.ready.plan, options.scoringBacklogBytes);
      } catch (err) {
        await discardPrepared(current.ready);
        throw err;
      }
      unfinished = stream;
      // A scoring that fails while its slide is embedded (its score file cannot be used, say)
      // stops the embedding: the slide cannot be finished, and its error is known now.
      const scoringFailed = new AbortController();
      stream.onFailure((err) => scoringFailed.abort(err));
      const embedding = embedPrepared(current.ready, options, stream, AbortSignal.any([run.signal, scoringFailed.signal]));
      embedding.catch(() => {
        if (unfinished === stream) unfinished = null;
        void stream.abandon();
      }); // the failure itself is awaited below
      if (index + 1 < slides.length) next = prepare(index + 1);
      try {
        const embedded = await embedding;
        await scoring; // the previous slide's scoring: one at a time
        unfinished = null;
        scoring = aggregateEmbedded(spec, embedded, options).then(
          (o) => void (outcomes[index] = o),
          async (err: unknown) => {
            try {
              outcomes[index] = await recordFailure(slidePath, spec, err);
            } catch (fatal) {
              run.abort(fatal); // not this slide's failure: the run ends, the slide in the engine stops
              throw fatal;
            }
          },
        );
        // Marked handled now; a non-slide error still surfaces where `scoring` is awaited next.
        scoring.catch(() => undefined);
      } catch (err) {
        outcomes[index] = await recordFailure(slidePath, spec, err);
      }
    }
    await scoring;
    // A slide listed again gets the outcome of its first listing (a result is then 'cached').
    for (const [index, first] of duplicates) {
      const o = outcomes[first] as SlideOutcome;
      outcomes[index] = { ...o, slidePath: resolve(slides[index] as string), status: o.status === 'failed' ? 'failed' : 'cached' };
    }
  } catch (err) {
    run.abort(err);
    throw err;
  } finally {
    // The run ended early: nothing of it may keep running (or keep the process alive) after
    // the error is reported. The scoring thread of a slide embedded but not yet handed to its
    // scoring ends; the previous slide's scoring finishes or fails; the slide prepared ahead is closed.
    const stream = unfinished as ScoringStream | null;
    if (stream !== null) await stream.abandon();
    await scoring.catch(() => undefined);
    const pending = await (next as Promise<Prepared> | null)?.catch(() => null);
    if (pending !== null && pending !== undefined && 'ready' in pending) await discardPrepared(pending.ready);
  }
  return outcomes;
}
