/**
 * Which slides a report is about: command-line names (slide files, analysis ids or their prefixes,
 * result folders) or everything, turned into report subjects through the catalog (result folders
 * on disk plus what the queue knows). Used by `flashslide report` and the server's download routes,
 * so both see the same slides the same way.
 *
 * A slide named explicitly must have a report to give: unknown, queued or running is an error
 * that names it (ReportTargetError). With "all", unfinished slides become batch rows that say so.
 * Without Redis, analyses that were planned but have no result (an `analyze` still running in
 * another terminal, or interrupted) are found through their work folders' plan.json.
 */
import { existsSync, statSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { EMBEDDINGS_FOLDER } from '../../worker/pipeline/analysis-spec.js';
import type { SlidePlan } from '../../worker/pipeline/plan-stage.js';
import { RESULT_FILES } from '../../worker/store/result-store.js';
import type { ReportSubject } from '../../worker/report/export-report.js';
import { ReportTargetError } from '../../worker/report/errors.js';
import type { CatalogEntry, SlideCatalog } from './catalog.js';

const HEX_PREFIX = /^[0-9a-f]{6,24}$/;

/** A catalog entry as a report subject: results are reported, the rest are pending rows. */
export function subjectOf(entry: CatalogEntry): ReportSubject {
  if (entry.status === 'done' || entry.status === 'failed') {
    return { kind: 'result', resultDir: entry.resultDir, analysisId: entry.id, slidePath: entry.slidePath };
  }
  const progress = entry.progress === null ? '' : ` (${entry.progress.done} of ${entry.progress.total} regions)`;
  return { kind: 'pending', analysisId: entry.id, slidePath: entry.slidePath, status: entry.status, reason: `still ${entry.status}${progress}: no result yet` };
}

/** Analyses with a plan but neither a result nor a failure: running elsewhere, or interrupted. */
export async function unfinishedAnalyses(dataDir: string, known: ReadonlySet<string>): Promise<ReportSubject[]> {
  const root = join(dataDir, EMBEDDINGS_FOLDER);
  let dirs: string[];
  try {
    dirs = (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch {
    return [];
  }
  const out: ReportSubject[] = [];
  for (const d of dirs) {
    let plan: Pick<SlidePlan, 'spec'>;
    try {
      plan = JSON.parse(await readFile(join(root, d, 'plan.json'), 'utf8')) as Pick<SlidePlan, 'spec'>;
    } catch {
      continue; // no plan yet, or not ours
    }
    const { spec } = plan;
    if (typeof spec?.analysisId !== 'string' || known.has(spec.analysisId)) continue;
    if (existsSync(join(spec.resultDir, RESULT_FILES.summary)) || existsSync(join(spec.resultDir, RESULT_FILES.failure))) continue;
    out.push({ kind: 'pending', analysisId: spec.analysisId, slidePath: spec.slidePath, status: 'running', reason: 'analysis started but not finished (still running, or interrupted: run it again to resume)' });
  }
  return out;
}

/** Every slide the catalog knows, newest first, plus unfinished analyses found on disk. */
export async function allSubjects(catalog: SlideCatalog): Promise<ReportSubject[]> {
  const entries = await catalog.list();
  const subjects = entries.map(subjectOf);
  return [...subjects, ...(await unfinishedAnalyses(catalog.dataDir, new Set(entries.map((e) => e.id))))];
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The subjects a list of names means, in the order given (a slide with several analyses gives
 * all of them). Throws one ReportTargetError for the first name without a report.
 */
export async function resolveSubjects(catalog: SlideCatalog, names: readonly string[]): Promise<ReportSubject[]> {
  const entries = await catalog.list();
  const out: ReportSubject[] = [];
  const seen = new Set<string>();
  for (const name of names) {
    for (const entry of await matchName(catalog, entries, name)) {
      if (entry.status === 'queued' || entry.status === 'running') {
        throw new ReportTargetError(name, entry.status, `${name}: slide ${entry.name} is still ${entry.status}${entry.progress === null ? '' : ` (${entry.progress.done} of ${entry.progress.total} regions)`}; report it once its analysis has finished`);
      }
      if (seen.has(entry.id)) continue;
      seen.add(entry.id);
      out.push(subjectOf(entry));
    }
  }
  return out;
}

async function matchName(catalog: SlideCatalog, entries: readonly CatalogEntry[], name: string): Promise<CatalogEntry[]> {
  const where = catalog.dataDir;
  if (HEX_PREFIX.test(name)) {
    const hits = entries.filter((e) => e.id.startsWith(name));
    if (hits.length === 1) return hits;
    if (hits.length > 1) throw new ReportTargetError(name, 'ambiguous', `${name}: ${hits.length} analyses in ${where} start with it (${hits.map((e) => e.name).join(', ')}); give more of the id`);
  }
  const path = resolve(name);
  if (isDir(path) || (!isFile(path) && isDir(join(where, name)))) {
    const dir = isDir(path) ? path : join(where, name);
    const hits = entries.filter((e) => resolve(e.resultDir) === dir);
    if (hits.length > 0) return hits;
    throw new ReportTargetError(name, 'unknown', `${name}: ${dir} is not a finished or failed result folder in ${where} (no summary.json or failure.json: still running, interrupted, or not a result; is --data right?)`);
  }
  if (isFile(path)) {
    const hits = entries.filter((e) => resolve(e.slidePath) === path);
    if (hits.length > 0) return hits;
    const unfinished = (await unfinishedAnalyses(where, new Set())).find((s) => resolve(s.slidePath) === path);
    if (unfinished !== undefined) {
      throw new ReportTargetError(name, 'running', `${name}: its analysis started but has not finished (still running, or interrupted: run it again to resume); report it once it has`);
    }
    throw new ReportTargetError(name, 'unknown', `${name}: this slide has not been analysed into ${where} (run \`flashslide analyze ${name} --data ${where}\`, or pass the --data folder it was analysed into)`);
  }
  throw new ReportTargetError(name, 'unknown', `${name}: no slide file, result folder or analysis id of that name in ${where}`);
}

/** A short label for logs: the slide's file name. */
export const subjectName = (s: ReportSubject): string => basename(s.slidePath);
