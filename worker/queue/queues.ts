/**
 * Queue names and job ids. Ids derive from the analysis id (slide content + model + parameters)
 * and the result folder, so BullMQ itself deduplicates: adding a job whose id exists returns the
 * existing job. The folder is part of the id because two --data folders on one Redis are two
 * results: a submission for the second must not find the first's finished jobs and wait forever.
 *
 *   flashslide-plan       one job per analysis: open, find tissue, plan; then adds the flow below
 *   flashslide-aggregate  the parent `slide` job of each flow: score and store, once every batch is embedded
 *   flashslide-embed      children, one per region batch: read regions, run the ViT, store embeddings
 */
import type { AnalysisSpec } from '../pipeline/analysis-spec.js';
import { stableHash } from '../pipeline/fingerprint.js';

export const QUEUES = {
  plan: 'flashslide-plan',
  embed: 'flashslide-embed',
  aggregate: 'flashslide-aggregate',
} as const;

/** The part of every job id that names one analysis written to one result folder. */
export const queueKey = (spec: Pick<AnalysisSpec, 'analysisId' | 'resultDir'>): string => `${spec.analysisId}-${stableHash(spec.resultDir).slice(0, 8)}`;

export const jobIds = {
  plan: (spec: AnalysisSpec): string => `plan-${queueKey(spec)}`,
  aggregate: (spec: AnalysisSpec): string => `aggregate-${queueKey(spec)}`,
  embed: (spec: AnalysisSpec, batch: number): string => `embed-${queueKey(spec)}-${batch}`,
};

/** What jobs carry, and the schema they are checked against: job-payload.ts. */

/** Retry policy for transient failures (a Redis blip, a worker OOM-killed mid-batch, ...). */
export const RETRY = { attempts: 3, backoff: { type: 'exponential' as const, delay: 2000 } };

/** Finished jobs are kept a while for `status` and dedup, then trimmed. */
export const KEEP = { removeOnComplete: { age: 7 * 24 * 3600, count: 10000 }, removeOnFail: { age: 30 * 24 * 3600 } };
