/** Reading a slide's recorded failure (failure.json), for status and submit. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AnalysisSpec } from './analysis-spec.js';

export interface FailureRecord {
  reason: string;
  slidePath: string;
  at: string;
}

export async function readFailure(spec: AnalysisSpec): Promise<FailureRecord | null> {
  try {
    return JSON.parse(await readFile(join(spec.resultDir, 'failure.json'), 'utf8')) as FailureRecord;
  } catch {
    return null;
  }
}
