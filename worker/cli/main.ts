/**
 * The `flashslide` command line. Each subcommand parses its own flags; every failure a user can
 * cause ends as one line on stderr and a non-zero exit, never a stack trace (FLASHSLIDE_DEBUG=1
 * shows it).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { SlideError } from '../slide/errors.js';
import { formatInspectReport, inspectSlide } from './inspect.js';
import type { BackendName } from '../slide/slide-source.js';

export class UsageError extends Error {}

const USAGE = `usage: flashslide <command> [options]

commands:
  inspect <slide> [--json] [--mpp X] [--out DIR] [--target-mpp 0.5] [--region-size 1024]
                  [--overlap 0] [--patch-size 16] [--backend auto|sharp|openslide]
      print the slide's metadata, tissue fraction and region count; write <DIR>/<slide>.tissue.png

run 'flashslide <command> --help' for details.`;

const INSPECT_HELP = `usage: flashslide inspect <slide> [options]

  --json               print the report as JSON
  --mpp X              microns per level-0 pixel, overriding (or supplying) the slide's own
  --out DIR            folder for the tissue mask PNG (default: current folder)
  --target-mpp X       model resolution in µm/px (default 0.5)
  --region-size N      region side in model pixels, 224..4096, multiple of the patch size (default 1024)
  --overlap N          pixels shared by neighbouring regions (default 0)
  --patch-size N       ViT patch size (default 16)
  --backend NAME       auto (default), sharp or openslide`;

function numberFlag(values: Record<string, unknown>, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(v)) throw new UsageError(`--${name} expects a number, got "${String(raw)}"`);
  return v;
}

function parse(args: string[], options: ParseArgsConfig['options']): { values: Record<string, unknown>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: values as Record<string, unknown>, positionals };
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

async function inspectCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    'json': { type: 'boolean' },
    'help': { type: 'boolean', short: 'h' },
    'mpp': { type: 'string' },
    'out': { type: 'string' },
    'target-mpp': { type: 'string' },
    'region-size': { type: 'string' },
    'overlap': { type: 'string' },
    'patch-size': { type: 'string' },
    'backend': { type: 'string' },
  });
  if (values['help']) {
    process.stdout.write(`${INSPECT_HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError('inspect takes exactly one slide path');
  const backend = (values['backend'] as string | undefined) ?? 'auto';
  if (!['auto', 'sharp', 'openslide'].includes(backend)) throw new UsageError(`--backend must be auto, sharp or openslide, got "${backend}"`);
  const regions: Record<string, number> = {};
  for (const [flag, key] of [['target-mpp', 'targetMpp'], ['region-size', 'regionSize'], ['overlap', 'overlap'], ['patch-size', 'patchSize']] as const) {
    const v = numberFlag(values, flag);
    if (v !== undefined) regions[key] = v;
  }
  const report = await inspectSlide(positionals[0] as string, {
    mpp: numberFlag(values, 'mpp'),
    backend: backend as BackendName | 'auto',
    outDir: (values['out'] as string | undefined) ?? '.',
    regions,
  });
  process.stdout.write(values['json'] ? `${JSON.stringify(report, null, 2)}\n` : `${formatInspectReport(report)}\n`);
  return 0;
}

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  inspect: inspectCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  const run = COMMANDS[command];
  try {
    if (run === undefined) throw new UsageError(`unknown command "${command}"\n${USAGE}`);
    return await run(rest);
  } catch (err) {
    if (process.env['FLASHSLIDE_DEBUG']) console.error(err);
    if (err instanceof UsageError) {
      process.stderr.write(`flashslide: ${err.message}\n`);
      return 2;
    }
    if (err instanceof SlideError) {
      process.stderr.write(`flashslide: error: ${err.message}\n`);
      return 3;
    }
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`flashslide: internal error: ${msg.split('\n')[0]} (set FLASHSLIDE_DEBUG=1 for details)\n`);
    return 1;
  }
}
