/**
 * The `flashslide` command line. Each subcommand parses its own flags; every failure a user can
 * cause ends as one line on stderr and a non-zero exit, never a stack trace (FLASHSLIDE_DEBUG=1
 * shows it). Exit codes: 0 ok, 1 internal error, 2 usage, 3 bad input (slide, model, file),
 * 4 a check that ran and failed.
 */
import { SlideError } from '../slide/errors.js';
import { EngineError } from '../infer/vit-engine.js';
import { SafetensorsError } from '../infer/safetensors.js';
import { UsageError } from './args.js';
import { AnalysisOptionError } from '../pipeline/check-analysis.js';
import { printable } from '../util/printable.js';
import { FLASHSLIDE_VERSION } from '../util/version.js';
import { inspectCommand } from './inspect-command.js';
import { modelCommand } from './model-command.js';
import { analyzeCommand, referenceCommand, statusCommand, submitCommand, workerCommand } from './pipeline-commands.js';
import { QueueConfigError } from '../queue/connection.js';
import { ScoreError } from '../score/errors.js';
import { ReportError } from '../report/errors.js';
import { StoreError } from '../store/errors.js';

const USAGE = `usage: flashslide <command> [options]

commands:
  analyze <slides or folders...> [--data DIR] [--model demo|W] [--device auto|cpu|cuda] [--score self]
      run the whole pipeline in this process (no Redis): tissue, regions, ViT, anomaly heatmap
  submit <slides or folders...> [--wait] [--priority N] [--redis URL]
      queue slides for workers (BullMQ on Redis); status [slides...] shows where they are
  worker [--concurrency N] [--device auto|cpu|cuda] [--redis URL]
      process queued slides; run one per GPU, on any number of machines sharing Redis and --data
  reference build <normal slides...> -o bank.safetensors
      a bank of normal tissue patches for --score reference:bank.safetensors
  inspect <slide> [--json] [--mpp X] [--out DIR] [--target-mpp 0.5] [--region-size 1024]
                  [--overlap 0] [--patch-size 16] [--backend auto|sharp|openslide]
      print the slide's metadata, tissue fraction and region count; write <DIR>/<slide>.tissue.png
  report <slides | ids | --all> --format pdf|geojson|csv|json [--out FILE|DIR] [--data DIR]
      export results with the pathologist's verdicts: PDF, QuPath GeoJSON, CSV, JSON
  prune [--data DIR] [--older-than DAYS] [--dry-run]
      delete the patch embeddings of work folders unused for DAYS (default 30); results stay
  serve [--data DIR] [--slides ROOT ...] [--redis URL] [--host 127.0.0.1] [--port 8080]
      the review server: worklist, slides with heatmap overlays, verdicts, submission
  model info <weights|demo> | model check <weights> <io> | model demo
      the inference engine: inferred architecture, parity check against reference outputs,
      the demo model

run 'flashslide <command> --help' for details; flashslide --version prints the version.`;

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  analyze: analyzeCommand,
  inspect: inspectCommand,
  model: modelCommand,
  reference: referenceCommand,
  report: (args) => import('./report-command.js').then((m) => m.reportCommand(args)),
  prune: (args) => import('./prune-command.js').then((m) => m.pruneCommand(args)),
  serve: (args) => import('./serve-command.js').then((m) => m.serveCommand(args)),
  'serve-user': (args) => import('./user-command.js').then((m) => m.userCommand(args)),
  status: statusCommand,
  submit: submitCommand,
  worker: workerCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-V' || command === 'version') {
    process.stdout.write(`flashslide ${FLASHSLIDE_VERSION}\n`);
    return 0;
  }
  const run = COMMANDS[command];
  try {
    if (run === undefined) throw new UsageError(`unknown command "${printable(command)}"\n${USAGE}`);
    return await run(rest);
  } catch (err) {
    if (process.env['FLASHSLIDE_DEBUG']) console.error(err);
    // A run-wide option (a score file included) that cannot work: exit 2, before any work.
    if (err instanceof UsageError || err instanceof AnalysisOptionError) {
      process.stderr.write(`flashslide: ${printable(err.message, { newlines: true })}\n`);
      return 2;
    }
    if (err instanceof SlideError || err instanceof EngineError || err instanceof SafetensorsError || err instanceof QueueConfigError || err instanceof ScoreError || err instanceof ReportError || err instanceof StoreError) {
      process.stderr.write(`flashslide: error: ${printable(err.message)}\n`);
      return 3;
    }
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`flashslide: internal error: ${printable(msg.split('\n')[0] ?? '')} (set FLASHSLIDE_DEBUG=1 for details)\n`);
    return 1;
  }
}
