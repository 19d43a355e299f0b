/**
 * analysis.json: where a result came from, beside it in the result folder, so a report filed
 * years later can still name the slide's bytes, the model's weights and every parameter, without
 * the work folder (embeddings are a cache and may be deleted) or the slide file.
 */
import { join } from 'node:path';
import { CorruptResultError } from './errors.js';
import { readJsonFile } from './json-file.js';

export const ANALYSIS_FILE = 'analysis.json';

/**
 * A model's validation record: the config JSON beside the weights may carry one as
 * `"validation": { "by": ..., "date": ..., "reference": ..., "intendedUse": ... }`. Without one,
 * reports say the output is not diagnostic. flashslide does not judge the record; it reports it.
 */
export interface ModelValidation {
  /** Who validated the model for this use (lab, study, regulator). */
  by: string;
  /** ISO date of the validation. */
  date: string;
  /** Where the evidence is: a study, a document number, a URL. */
  reference: string;
  /** What the validation covers, e.g. "H&E breast lymph node, 40x". */
  intendedUse?: string;
}

export interface AnalysisRecord {
  formatVersion: 1;
  analysisId: string;
  embeddingId: string;
  slide: {
    path: string;
    name: string;
    /** Content fingerprint (worker/pipeline/fingerprint.ts). */
    fingerprint: string;
    vendor: string;
    backend: string;
    width: number;
    height: number;
    /** µm per level-0 pixel used, and where it came from. */
    mpp: number;
    mppSource: string | null;
    objectivePower: number | null;
    levels: number;
  };
  model: {
    name: string;
    weights: string;
    weightsFingerprint: string;
    config: string;
    description: string;
    patchSize: number;
    embedDim: number;
    /** True for flashslide's random-weight demo model. */
    demo: boolean;
    validation: ModelValidation | null;
  };
  parameters: {
    targetMpp: number;
    effectiveMpp: number;
    regionSize: number;
    overlap: number;
    scoreMethod: string;
    mppOverride: number | null;
    fallbackMpp: number | null;
  };
  tissue: { mode: string; fraction: number };
  createdAt: string;
  flashslideVersion: string;
}

/** The validation record in a model config JSON, or null (none, or not the documented shape). */
export function validationOf(config: unknown): ModelValidation | null {
  if (typeof config !== 'object' || config === null) return null;
  const v = (config as { validation?: unknown }).validation;
  if (typeof v !== 'object' || v === null) return null;
  const { by, date, reference, intendedUse } = v as Record<string, unknown>;
  if (typeof by !== 'string' || typeof date !== 'string' || typeof reference !== 'string' || by.trim() === '' || reference.trim() === '') return null;
  return { by, date, reference, ...(typeof intendedUse === 'string' ? { intendedUse } : {}) };
}

export async function readAnalysisRecord(resultDir: string): Promise<AnalysisRecord | null> {
  const path = join(resultDir, ANALYSIS_FILE);
  const record = await readJsonFile<AnalysisRecord>(path);
  if (record !== null && record.formatVersion !== 1) throw new CorruptResultError(path, `formatVersion ${String(record.formatVersion)} is not 1`);
  return record;
}
