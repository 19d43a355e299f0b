/**
 * A fuzz run: mutant i of seed s is mutate(pick(seeds), Rng.forMutant(s, i)), run through what a
 * user runs: `flashslide inspect` on every backend asked for, and `flashslide analyze` (demo
 * model, a fresh --data) on every analyzeEvery-th. Each command is a child process with a
 * wall-clock limit. Mutants that fail (internal error, stack trace, crash, hang) are kept with
 * the commands that reproduce them; the rest are deleted as they finish.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { extname, join, relative } from 'node:path';
import { mutate } from './mutate.js';
import { Rng } from './rng.js';
import { FAILING, OUTCOMES, classify, runCli, type Classified, type CliRun, type Outcome } from './run-cli.js';
import { ROOT, prepareSeeds, type SeedFile } from './seeds.js';

export type CommandKind = 'inspect auto' | 'inspect sharp' | 'inspect openslide' | 'analyze';

export interface FuzzOptions {
  seed: number;
  count: number;
  /** Mutants run at once (default: the machine's cores). */
  jobs?: number;
  /** Where the summary, the per-run log and the failing mutants go. */
  outDir: string;
  /** Backends `inspect` runs each mutant with (default all three: auto, what users get, and each forced). */
  backends?: readonly ('auto' | 'sharp' | 'openslide')[];
  /** Analyze every n-th mutant (0: never; default 10). */
  analyzeEvery?: number;
  /** Per command (default 60 s). */
  timeoutMs?: number;
  /** Only these mutant indices (to reproduce one). */
  only?: readonly number[];
  log?: (line: string) => void;
}

export interface RunRecord {
  readonly index: number;
  readonly mutant: string;
  readonly seedFile: string;
  readonly ops: readonly string[];
  readonly command: CommandKind;
  readonly args: readonly string[];
  readonly outcome: Outcome;
  readonly code: number | null;
  readonly signal: string | null;
  readonly ms: number;
  readonly maxRssKb: number | null;
  readonly summary: string;
  readonly noise: readonly string[];
}

export interface FuzzReport {
  readonly seed: number;
  readonly mutants: number;
  readonly records: readonly RunRecord[];
  readonly failures: readonly RunRecord[];
  readonly wallMs: number;
  readonly table: string;
}

function commandsFor(index: number, file: string, scratch: string, o: Required<Omit<FuzzOptions, 'only' | 'log'>>): { kind: CommandKind; args: string[] }[] {
  const out: { kind: CommandKind; args: string[] }[] = o.backends.map((b) => ({
    kind: `inspect ${b}` as CommandKind,
    args: ['inspect', file, '--backend', b, '--out', join(scratch, 'inspect')],
  }));
  if (o.analyzeEvery > 0 && index % o.analyzeEvery === 0) {
    // --fallback-mpp: seeds without a scan resolution still reach tissue, regions and the model.
    out.push({ kind: 'analyze', args: ['analyze', file, '--data', join(scratch, 'data'), '--device', 'cpu', '--fallback-mpp', '0.5'] });
  }
  return out;
}

/** Runs `worker` over 0..n-1 with at most `jobs` at a time. */
async function pool(n: number, jobs: number, worker: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.max(1, Math.min(jobs, n)) }, async () => {
    while (next < n) {
      const i = next++;
      await worker(i);
    }
  });
  await Promise.all(lanes);
}

function quote(s: string): string {
  return /^[\w./:=-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}

export function outcomeTable(records: readonly RunRecord[]): string {
  const kinds = [...new Set(records.map((r) => r.command))];
  const head = `| command | runs | ${OUTCOMES.join(' | ')} | stderr noise | max s | max RSS MiB |`;
  const rule = `|${'---|'.repeat(OUTCOMES.length + 6)}`;
  const rows = kinds.map((k) => {
    const rs = records.filter((r) => r.command === k);
    const n = (o: Outcome): number => rs.filter((r) => r.outcome === o).length;
    const rss = Math.max(0, ...rs.map((r) => r.maxRssKb ?? 0));
    const noisy = rs.filter((r) => r.noise.length > 0).length;
    return `| ${k} | ${rs.length} | ${OUTCOMES.map(n).join(' | ')} | ${noisy} | ${(Math.max(0, ...rs.map((r) => r.ms)) / 1000).toFixed(1)} | ${rss === 0 ? '-' : (rss / 1024).toFixed(0)} |`;
  });
  return [head, rule, ...rows].join('\n');
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const o = {
    seed: options.seed,
    count: options.count,
    jobs: options.jobs ?? cpus().length,
    outDir: options.outDir,
    backends: options.backends ?? (['auto', 'sharp', 'openslide'] as const),
    analyzeEvery: options.analyzeEvery ?? 10,
    timeoutMs: options.timeoutMs ?? 60_000,
  };
  const log = options.log ?? (() => undefined);
  const t0 = performance.now();
  mkdirSync(o.outDir, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'flashslide-fuzz-'));
  const failDir = join(o.outDir, 'failures');
  const records: RunRecord[] = [];
  try {
    const seeds: SeedFile[] = await prepareSeeds(work);
    const indices = options.only ?? Array.from({ length: o.count }, (_, i) => i);
    let done = 0;
    await pool(indices.length, o.jobs, async (k) => {
      const index = indices[k] as number;
      const rng = Rng.forMutant(o.seed, index);
      const seedFile = rng.pick(seeds);
      const m = mutate(seedFile.bytes, rng);
      const name = `m${String(index).padStart(5, '0')}-${seedFile.name.replace(/\.[^.]*$/, '').replace(/[^\w.-]/g, '_')}${extname(seedFile.name)}`;
      const scratch = join(work, `m${index}`);
      mkdirSync(scratch, { recursive: true });
      const file = join(scratch, name);
      writeFileSync(file, m.bytes);
      const mine: RunRecord[] = [];
      for (const c of commandsFor(index, file, scratch, o)) {
        const run: CliRun = await runCli(c.args, o.timeoutMs);
        const cls: Classified = classify(run);
        mine.push({
          index,
          mutant: name,
          seedFile: seedFile.name,
          ops: m.ops,
          command: c.kind,
          args: c.args,
          outcome: cls.outcome,
          code: run.code,
          signal: run.signal,
          ms: run.ms,
          maxRssKb: run.maxRssKb,
          summary: cls.summary.slice(0, 400),
          noise: cls.noise,
        });
      }
      records.push(...mine);
      const failed = mine.filter((r) => FAILING.has(r.outcome));
      if (failed.length > 0) {
        mkdirSync(failDir, { recursive: true });
        copyFileSync(file, join(failDir, name));
        for (const r of failed) log(`FAIL ${r.outcome} ${r.command} ${name} [${r.ops.join('; ')}]: ${r.summary}`);
      }
      rmSync(scratch, { recursive: true, force: true });
      done++;
      if (done % 50 === 0 || done === indices.length) log(`${done}/${indices.length} mutants, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  records.sort((a, b) => a.index - b.index || a.command.localeCompare(b.command));
  const failures = records.filter((r) => FAILING.has(r.outcome));
  const wallMs = performance.now() - t0;
  const table = outcomeTable(records);
  writeReport(o.outDir, failDir, o.seed, records, failures, table, wallMs);
  return { seed: o.seed, mutants: new Set(records.map((r) => r.index)).size, records, failures, wallMs, table };
}

function writeReport(outDir: string, failDir: string, seed: number, records: readonly RunRecord[], failures: readonly RunRecord[], table: string, wallMs: number): void {
  writeFileSync(join(outDir, 'runs.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const noise = new Map<string, number>();
  for (const r of records) for (const l of r.noise) noise.set(l.replace(/\/\S+/g, 'FILE').replace(/\d+/g, 'N').slice(0, 160), (noise.get(l) ?? 0) + 1);
  const lines = [
    `# Fuzz run, seed ${seed}`,
    '',
    `${new Set(records.map((r) => r.index)).size} mutants, ${records.length} commands, ${(wallMs / 1000).toFixed(0)} s wall.`,
    '',
    table,
    '',
    `## Failures (${failures.length})`,
    '',
  ];
  for (const f of failures) {
    const kept = join(failDir, f.mutant);
    const cmd = ['node', 'bin/flashslide.js', ...f.args.map((a) => (a.endsWith(f.mutant) ? relative(ROOT, kept) : a.includes('flashslide-fuzz-') ? `/tmp/fuzz-${a.split('/').pop() ?? ''}` : a))];
    lines.push(`- ${f.outcome}, ${f.command}, ${f.mutant} (from ${f.seedFile}: ${f.ops.join('; ')}): ${f.summary}`);
    lines.push(`  reproduce: \`${cmd.map(quote).join(' ')}\` or \`node bench/fuzz-slides.mjs --seed ${seed} --only ${f.index}\``);
  }
  lines.push('', '## stderr lines other than the CLI\'s own (libraries talking), by pattern', '');
  for (const [l, n] of [...noise.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30)) lines.push(`- ${n} x \`${l}\``);
  writeFileSync(join(outDir, 'summary.md'), lines.join('\n') + '\n');
}
