/**
 * What a queue job carries, and the schema every job is checked against before a worker acts on
 * it. Anyone who can write to Redis can edit a job, so a job is a request, not an order: it names
 * the analysis (ids, the slide path, the model and the parameters that make the ids) and nothing
 * a worker would use unchecked. Folders are never taken from a job: a worker derives them from
 * its own --data (worker/queue/job-trust.ts), and recomputes the ids from what it reads.
 */
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { dirname } from 'node:path';
import { DEFAULT_ANALYSIS_OPTIONS, type AnalysisSpec } from '../pipeline/analysis-spec.js';

/** Bumped when the payload changes shape; a worker refuses jobs of another version. */
export const PAYLOAD_VERSION = 1;

const Hex = (n: number): ReturnType<typeof Type.String> => Type.String({ pattern: `^[0-9a-f]{${n}}$` });
/**
 * An absolute path without NUL (no file can have one in its name, and Node refuses it). Any other
 * character is allowed, line breaks included: `analyze` reads such a slide, and a lab cannot
 * always rename what a scanner wrote. A path in a job is only a request: the worker opens it
 * after resolving it and checking it lies under its own roots (job-trust.ts), and every line that
 * prints a path escapes its control characters (util/printable.ts).
 */
const AbsolutePath = Type.String({ minLength: 2, maxLength: 4096, pattern: '^/[^\\u0000]*$' });
const Positive = Type.Number({ exclusiveMinimum: 0, maximum: 1000 });

export const AnalysisRequestSchema = Type.Object(
  {
    version: Type.Literal(PAYLOAD_VERSION),
    analysisId: Hex(24),
    embeddingId: Hex(24),
    slidePath: AbsolutePath,
    slideFingerprint: Hex(64),
    modelWeights: AbsolutePath,
    modelConfig: AbsolutePath,
    modelFingerprint: Hex(64),
    /** The --data folder it was submitted to: a worker serves only jobs of its own (same real path). */
    dataDir: AbsolutePath,
    device: Type.Union([Type.Literal('auto'), Type.Literal('cpu'), Type.Literal('cuda')]),
    targetMpp: Positive,
    regionSize: Type.Union([Type.Integer({ minimum: 16, maximum: 65536 }), Type.Null()]),
    overlap: Type.Integer({ minimum: 0, maximum: 65536 }),
    batchSize: Type.Integer({ minimum: 1, maximum: 4096 }),
    scoreMethod: Type.String({ minLength: 1, maxLength: 4200, pattern: '^(self|(reference|head):/[^\\u0000]*)$' }),
    mpp: Type.Union([Positive, Type.Null()]),
    fallbackMpp: Type.Union([Positive, Type.Null()]),
    tokens: Type.Union([Type.Literal('all'), Type.Literal('tissue')]),
    tokenMargin: Type.Integer({ minimum: 0, maximum: 64 }),
    embeddings: Type.Union([Type.Literal('keep'), Type.Literal('drop')]),
  },
  { additionalProperties: false },
);
export type AnalysisRequest = Static<typeof AnalysisRequestSchema>;

export const PlanJobSchema = Type.Object({ request: AnalysisRequestSchema }, { additionalProperties: false });
export const AggregateJobSchema = PlanJobSchema;
export const EmbedJobSchema = Type.Object(
  { request: AnalysisRequestSchema, batch: Type.Integer({ minimum: 0, maximum: 1 << 24 }), regionsTotal: Type.Integer({ minimum: 1, maximum: 1 << 28 }) },
  { additionalProperties: false },
);
export type PlanJobData = Static<typeof PlanJobSchema>;
export type AggregateJobData = PlanJobData;
export type EmbedJobData = Static<typeof EmbedJobSchema>;

/** A job whose data does not match its schema: edited in Redis, or queued by another version. */
export class JobPayloadError extends Error {
  override readonly name = 'JobPayloadError';
}

/** The job data if it matches `schema`, else JobPayloadError naming the first few problems. */
export function checkJobData<S extends typeof PlanJobSchema | typeof EmbedJobSchema>(schema: S, data: unknown, jobId: string | undefined): Static<S> {
  if (Value.Check(schema, data)) return data as Static<S>;
  const problems = [...Value.Errors(schema, data)]
    .filter((e) => e.keyword !== 'boolean')
    .slice(0, 3)
    .map((e) => `${e.instancePath || '(data)'} ${e.message}`);
  const version = (data as { request?: { version?: unknown } } | null)?.request?.version;
  const hint = version !== undefined && version !== PAYLOAD_VERSION ? ` (payload version ${String(version)}; this worker reads ${PAYLOAD_VERSION}: run the same flashslide version everywhere)` : '';
  throw new JobPayloadError(`job ${jobId ?? '?'} was refused: its data is not a valid flashslide job${hint}: ${problems.join('; ')}`);
}

/** The request for an analysis described at submission. */
export function requestOf(spec: AnalysisSpec): AnalysisRequest {
  return {
    version: PAYLOAD_VERSION,
    analysisId: spec.analysisId,
    embeddingId: spec.embeddingId,
    slidePath: spec.slidePath,
    slideFingerprint: spec.slideFingerprint,
    modelWeights: spec.modelWeights,
    modelConfig: spec.modelConfig,
    modelFingerprint: spec.modelFingerprint,
    dataDir: dirname(spec.resultDir),
    device: spec.device,
    targetMpp: spec.targetMpp,
    regionSize: spec.regionSize,
    overlap: spec.overlap,
    batchSize: spec.batchSize,
    scoreMethod: spec.scoreMethod,
    mpp: spec.mpp,
    fallbackMpp: spec.fallbackMpp,
    tokens: spec.tokens ?? 'all',
    tokenMargin: spec.tokenMargin ?? DEFAULT_ANALYSIS_OPTIONS.tokenMargin,
    embeddings: spec.embeddings ?? 'keep',
  };
}
