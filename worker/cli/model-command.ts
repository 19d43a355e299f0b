/**
 * `flashslide model info|check|demo`: inspect what the engine makes of a checkpoint, verify it
 * against reference outputs, or write the demo model.
 */
import { resolve } from 'node:path';
import { choiceFlag, numberFlag, parse, stringFlag, UsageError } from './args.js';
import { checkModel } from '../infer/model-check.js';
import { VitEngine, type DeviceRequest } from '../infer/vit-engine.js';
import { DEMO_MODEL_SPEC, writeDemoModel } from '../infer/demo-model.js';

export const MODEL_HELP = `usage: flashslide model <info|check|demo> ...

  model info <weights.safetensors|demo> [--config C] [--device auto|cpu|cuda] [--json]
      the architecture the engine inferred from the weights and config
  model check <weights.safetensors> <io.safetensors> [--config C] [--device auto|cpu|cuda] [--tolerance T]
      run io's input_u8 through the model, compare with io's features; prints JSON
      {maxAbsErr, relErr, shape, ...}; exit 4 when relErr >= tolerance (cpu 1e-4, cuda 1e-2)
  model demo [--out DIR]
      write the demo model (seeded random weights; NOT diagnostic) to DIR (default ./models)

The config defaults to the weights path with .json instead of .safetensors.`;

const DEVICES = ['auto', 'cpu', 'cuda'] as const;

async function info(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    config: { type: 'string' },
    device: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length !== 1) throw new UsageError('model info takes one weights file (or "demo")');
  const engine = await VitEngine.load(positionals[0] as string, {
    config: stringFlag(values, 'config'),
    device: choiceFlag<DeviceRequest>(values, 'device', DEVICES, 'cpu'),
  });
  const report = { weights: resolve(engine.weightsPath), config: resolve(engine.configPath), device: engine.device, ...engine.arch };
  if (values['json']) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    const a = engine.arch;
    const side = Math.floor(1024 / a.patchSize) * a.patchSize;
    process.stdout.write(
      [
        `weights      ${report.weights}`,
        `config       ${report.config}`,
        `model        ${a.description}`,
        `tokens       ${a.numPrefixTokens} prefix + (H/${a.patchSize})*(W/${a.patchSize}) patches: ${engine.tokens(side, side)} at ${side}x${side}`,
        `input        (x/255 - [${a.mean.map((v) => v.toFixed(3)).join(', ')}]) / [${a.std.map((v) => v.toFixed(3)).join(', ')}]`,
      ].join('\n') + '\n',
    );
  }
  return 0;
}

async function check(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    config: { type: 'string' },
    device: { type: 'string' },
    tolerance: { type: 'string' },
  });
  if (positionals.length !== 2) throw new UsageError('model check takes <weights.safetensors> <io.safetensors>');
  const tolerance = numberFlag(values, 'tolerance');
  if (tolerance !== undefined && !(tolerance > 0)) throw new UsageError('--tolerance must be positive');
  const result = await checkModel(positionals[0] as string, positionals[1] as string, {
    config: stringFlag(values, 'config'),
    device: choiceFlag<DeviceRequest>(values, 'device', DEVICES, 'auto'),
    tolerance,
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
  if (!result.pass) {
    process.stderr.write(`flashslide: model check failed: relErr ${result.relErr.toExponential(3)} >= tolerance ${result.tolerance}\n`);
    return 4;
  }
  return 0;
}

async function demo(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, { out: { type: 'string' } });
  if (positionals.length !== 0) throw new UsageError('model demo takes no positional arguments');
  const files = await writeDemoModel(stringFlag(values, 'out') ?? 'models');
  process.stdout.write(`${files.weights}\n${files.config}\n(${DEMO_MODEL_SPEC.name}: seeded random weights for testing the pipeline; not diagnostic)\n`);
  return 0;
}

export async function modelCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(`${MODEL_HELP}\n`);
    return sub === undefined ? 2 : 0;
  }
  switch (sub) {
    case 'info':
      return info(rest);
    case 'check':
      return check(rest);
    case 'demo':
      return demo(rest);
    default:
      throw new UsageError(`unknown model command "${sub}" (info, check, demo)`);
  }
}
