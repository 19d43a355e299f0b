/**
 * `node bench/fuzz-slides.mjs [--seed N] [--count N] [--jobs N] [--out DIR] [--analyze-every N]
 * [--timeout S] [--backends auto,sharp,openslide] [--only i,j]`: the long fuzz run (see fuzz-run.ts).
 * Exit 0 when no mutant crashed, hung, printed a stack trace or an internal error; 1 otherwise;
 * 2 on bad flags.
 */
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { runFuzz } from './fuzz-run.js';
import { ROOT } from './seeds.js';

const USAGE = 'usage: node bench/fuzz-slides.mjs [--seed 1] [--count 1000] [--jobs CORES] [--out data/fuzz/seed-N] [--analyze-every 10] [--timeout 60] [--backends auto,sharp,openslide] [--only i,j,...]';

function int(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} ${v} is not a non-negative integer`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        seed: { type: 'string' },
        count: { type: 'string' },
        jobs: { type: 'string' },
        out: { type: 'string' },
        'analyze-every': { type: 'string' },
        timeout: { type: 'string' },
        backends: { type: 'string' },
        only: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values['help']) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  let seed: number;
  let count: number;
  let jobs: number;
  let analyzeEvery: number;
  let timeoutS: number;
  let only: number[] | undefined;
  const backends = (str('backends') ?? 'auto,sharp,openslide').split(',');
  try {
    seed = int('seed', str('seed'), 1);
    count = int('count', str('count'), 1000);
    jobs = Math.max(1, int('jobs', str('jobs'), cpus().length));
    analyzeEvery = int('analyze-every', str('analyze-every'), 10);
    timeoutS = Math.max(1, int('timeout', str('timeout'), 60));
    only = str('only')?.split(',').map((v) => int('only', v, 0));
    for (const b of backends) if (b !== 'auto' && b !== 'sharp' && b !== 'openslide') throw new Error(`--backends: unknown backend "${b}"`);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const outDir = str('out') ?? join(ROOT, 'data', 'fuzz', `seed-${seed}`);
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  process.stdout.write(`fuzz: seed ${seed}, ${only === undefined ? `${count} mutants` : `mutants ${only.join(',')}`}, ${jobs} at a time on ${cpus().length} x ${cpu}; inspect (${backends.join(', ')}) each, analyze every ${analyzeEvery || 'none'}; limit ${timeoutS} s per command -> ${outDir}\n`);
  const report = await runFuzz({
    seed,
    count,
    jobs,
    outDir,
    backends: backends as ('auto' | 'sharp' | 'openslide')[],
    analyzeEvery,
    timeoutMs: timeoutS * 1000,
    only,
    log: (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(`\n${report.table}\n\n${report.mutants} mutants in ${(report.wallMs / 1000).toFixed(0)} s; ${report.failures.length} failing commands; details in ${join(outDir, 'summary.md')}\n`);
  return report.failures.length === 0 ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
