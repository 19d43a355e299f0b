/**
 * `flashslide report`: export what was found and what the pathologist decided, as a PDF to file,
 * GeoJSON for QuPath, or CSV/JSON for scripts, per slide and per batch (worker/report/).
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { limitMallocArenas } from '../native/addon.js';
import { checkRedis, redisUrl as resolveRedisUrl } from '../queue/connection.js';
import { writeStreamAtomic } from '../util/atomic-write.js';
import { DEFAULT_REPORT_OPTIONS, MAX_TOP_REGIONS, PAPER_SIZES, REPORT_FORMATS } from '../report/report-options.js';
import { loadSubject, reportFileName, reportOptions, writeBatchFolder, writeSlideReport, type ReportSubject } from '../report/export-report.js';
import { ReportTargetError } from '../report/errors.js';
import { UsageError, choiceFlag, numberFlag, parse, stringFlag } from './args.js';
import { helpRequested } from './pipeline-commands.js';
import { printable } from '../util/printable.js';

const USAGE = `usage: flashslide report <slides | analysis ids | result folders ... | --all> --format pdf|geojson|csv|json
                        [--out FILE|DIR] [--data DIR] [--paper a4|letter] [--top N] [--redis URL]

  --format F      pdf: a report to file (identity, overview with heatmap, region table, crops)
                  geojson: the regions with verdicts as QuPath annotations (File > Import objects)
                  csv: one row per region; json: everything, with a formatVersion
  --all           every slide in --data (and, with --redis, the queue): one file per slide plus
                  batch.csv and batch.json, one row per slide (failed and unfinished ones too)
  --out P         one slide: the file to write (default ./<result folder>.<ext>; - for stdout,
                  text formats only); several: the folder (default ./flashslide-reports)
  --data DIR      the results folder (default ./data)
  --paper P       a4 (default) or letter
  --top N         PDF: high-resolution crops of the N highest-ranked regions (default ${DEFAULT_REPORT_OPTIONS.topRegions})
  --redis URL     also ask the queue which slides are still queued or running (or FLASHSLIDE_REDIS)

A slide is named by its file, its analysis id (or the first 6+ characters of it), or its result
folder. A slide still queued or running, or not analysed into --data, is an error that names it;
a failed slide's report says why it failed.`;

export async function reportCommand(args: string[]): Promise<number> {
  const p = parse(args, {
    format: { type: 'string' },
    all: { type: 'boolean' },
    out: { type: 'string', short: 'o' },
    data: { type: 'string' },
    paper: { type: 'string' },
    top: { type: 'string' },
    redis: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (helpRequested(p, USAGE)) return 0;
  const all = Boolean(p.values['all']);
  if (stringFlag(p.values, 'format') === undefined) throw new UsageError(`report needs --format ${REPORT_FORMATS.join('|')}\n${USAGE}`);
  if (!all && p.positionals.length === 0) throw new UsageError(`name the slides to report (files, analysis ids or result folders), or pass --all\n${USAGE}`);
  if (all && p.positionals.length > 0) throw new UsageError(`--all reports every slide; it takes no names (got ${printable(p.positionals.join(' '))})`);
  const top = numberFlag(p.values, 'top') ?? DEFAULT_REPORT_OPTIONS.topRegions;
  if (!Number.isInteger(top) || top < 0 || top > MAX_TOP_REGIONS) throw new UsageError(`--top must be an integer from 0 to ${MAX_TOP_REGIONS}`);
  const options = reportOptions({
    format: choiceFlag(p.values, 'format', REPORT_FORMATS, 'pdf'),
    paper: choiceFlag(p.values, 'paper', PAPER_SIZES, DEFAULT_REPORT_OPTIONS.paper),
    topRegions: top,
  });
  const dataDir = resolve(stringFlag(p.values, 'data') ?? 'data');
  if (!existsSync(dataDir)) throw new UsageError(`--data ${printable(dataDir)} does not exist (pass the folder the slides were analysed into)`);
  const redisFlag = stringFlag(p.values, 'redis') ?? process.env['FLASHSLIDE_REDIS'];
  const redisUrl = redisFlag === undefined ? undefined : resolveRedisUrl(redisFlag);
  if (redisUrl !== undefined) await checkRedis(redisUrl);
  const out = stringFlag(p.values, 'out');
  // Before any image work: keeps a batch of PDFs at the memory of one (worker/native/addon.ts).
  limitMallocArenas(2);

  // The catalog lives with the review server; loading it here keeps the two views identical.
  const { SlideCatalog } = await import('../../viewer/server/catalog.js');
  const { allSubjects, resolveSubjects } = await import('../../viewer/server/report-subjects.js');
  const catalog = new SlideCatalog({ dataDir, redisUrl });
  try {
    const subjects = all ? await allSubjects(catalog) : await resolveSubjects(catalog, p.positionals);
    if (subjects.length === 0) throw new ReportTargetError('--all', 'unknown', `no analysed slides in ${dataDir}`);
    const single = !all && subjects.length === 1 && subjects[0]?.kind === 'result';
    if (single) return await reportOne(subjects[0] as Extract<ReportSubject, { kind: 'result' }>, options, out);
    if (out === '-') throw new UsageError('--out - (stdout) takes one slide; a batch needs a folder');
    const outDir = resolve(out ?? 'flashslide-reports');
    if (existsSync(outDir) && !statSync(outDir).isDirectory()) throw new UsageError(`--out ${printable(outDir)} is a file; a batch of ${subjects.length} slides needs a folder`);
    const { rows, summaryFiles } = await writeBatchFolder(subjects, options, outDir, (row, file) => {
      const what = row.status === 'done' ? `${row.anomalous_regions ?? 0} region(s), review ${row.review_state}` : row.status === 'failed' ? `FAILED: ${firstLine(row.reason)}` : `${row.status.toUpperCase()}: no report yet`;
      process.stdout.write(`${file === null ? 'SKIPPED' : 'WROTE  '} ${printable(row.slide)}: ${printable(what)}${file === null ? '' : ` -> ${printable(file)}`}\n`);
    });
    const counts = { done: 0, failed: 0, pending: 0 };
    for (const r of rows) counts[r.status === 'done' ? 'done' : r.status === 'failed' ? 'failed' : 'pending']++;
    process.stdout.write(`batch: ${counts.done} done, ${counts.failed} failed, ${counts.pending} not finished -> ${summaryFiles.join(', ')}\n`);
    return 0;
  } finally {
    await catalog.close();
  }
}

const firstLine = (s: string | null): string => (s ?? '').split('\n')[0] ?? '';

async function reportOne(subject: Extract<ReportSubject, { kind: 'result' }>, options: ReturnType<typeof reportOptions>, out: string | undefined): Promise<number> {
  const report = await loadSubject(subject);
  if (out === '-') {
    if (options.format === 'pdf' && process.stdout.isTTY) throw new UsageError('a PDF is binary: redirect stdout to a file, or pass --out FILE');
    await writeSlideReport(report, options, process.stdout);
    return 0;
  }
  let file = resolve(out ?? reportFileName(subject.resultDir, options.format));
  if (existsSync(file) && statSync(file).isDirectory()) file = join(file, reportFileName(subject.resultDir, options.format));
  if (!existsSync(dirname(file))) throw new UsageError(`--out: folder ${printable(dirname(file))} does not exist`);
  await writeStreamAtomic(file, (stream) => writeSlideReport(report, options, stream));
  const what = report.status === 'failed' ? `failed slide: ${firstLine(report.failure?.reason ?? '')}` : `${report.regions.length} region(s), review ${report.review.state}`;
  process.stdout.write(`WROTE   ${printable(basename(report.slidePath))} (${printable(what)}) -> ${printable(file)}\n`);
  return 0;
}
