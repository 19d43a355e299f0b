/** `flashslide inspect <slide>`: flags -> inspectSlide -> text or JSON. */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { choiceFlag, numberFlag, parse, UsageError } from './args.js';
import { formatInspectReport, inspectSlide } from './inspect.js';
import type { BackendName } from '../slide/slide-source.js';
import { printable } from '../util/printable.js';

const INSPECT_HELP = `usage: flashslide inspect <slide> [options]

  --json               print the report as JSON
  --mpp X              microns per level-0 pixel, overriding (or supplying) the slide's own
  --out DIR            folder for the tissue mask PNG (default: <--data>/inspect)
  --data DIR           results folder (default ./data); the mask goes in its inspect/ folder
  --target-mpp X       model resolution in µm/px (default 0.5)
  --region-size N      region side in model pixels, 224..4096, multiple of the patch size (default 1024)
  --overlap N          pixels shared by neighbouring regions (default 0)
  --patch-size N       ViT patch size (default 16)
  --backend NAME       auto (default), sharp or openslide`;

export async function inspectCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    'json': { type: 'boolean' },
    'help': { type: 'boolean', short: 'h' },
    'mpp': { type: 'string' },
    'out': { type: 'string' },
    'data': { type: 'string' },
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
  const backend = choiceFlag<BackendName | 'auto'>(values, 'backend', ['auto', 'sharp', 'openslide'], 'auto');
  const regions: Record<string, number> = {};
  for (const [flag, key] of [['target-mpp', 'targetMpp'], ['region-size', 'regionSize'], ['overlap', 'overlap'], ['patch-size', 'patchSize']] as const) {
    const v = numberFlag(values, flag);
    if (v !== undefined) regions[key] = v;
  }
  // Not the current folder: a mask per inspected slide would litter wherever the command ran.
  const outDir = (values['out'] as string | undefined) ?? join((values['data'] as string | undefined) ?? 'data', 'inspect');
  // Checked before the slide is read: a file in the way is the user's to move, not an internal error.
  try {
    await mkdir(outDir, { recursive: true });
  } catch (err) {
    throw new UsageError(`--out ${printable(outDir)}: cannot be used as the folder for the tissue mask (${printable((err as NodeJS.ErrnoException).code ?? (err as Error).message)}); name a folder`);
  }
  const report = await inspectSlide(positionals[0] as string, { mpp: numberFlag(values, 'mpp'), backend, outDir, regions });
  process.stdout.write(values['json'] ? `${JSON.stringify(report, null, 2)}\n` : `${formatInspectReport(report)}\n`);
  return 0;
}
