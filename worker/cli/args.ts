/** Flag parsing shared by the subcommands (node:util parseArgs, strict). */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { printable } from '../util/printable.js';

/** Bad command-line usage: printed as one line, exit code 2. */
export class UsageError extends Error {}

export interface Parsed {
  values: Record<string, unknown>;
  positionals: string[];
}

export function parse(args: string[], options: ParseArgsConfig['options']): Parsed {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: values as Record<string, unknown>, positionals };
  } catch (err) {
    throw new UsageError(printable(err instanceof Error ? err.message : String(err)));
  }
}

export function numberFlag(values: Record<string, unknown>, name: string): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(v)) throw new UsageError(`--${name} expects a number, got "${printable(String(raw))}"`);
  return v;
}

export function stringFlag(values: Record<string, unknown>, name: string): string | undefined {
  const raw = values[name];
  return typeof raw === 'string' ? raw : undefined;
}

export function choiceFlag<T extends string>(values: Record<string, unknown>, name: string, choices: readonly T[], fallback: T): T {
  const raw = stringFlag(values, name) ?? fallback;
  if (!(choices as readonly string[]).includes(raw)) throw new UsageError(`--${name} must be ${choices.join(', ')}; got "${printable(raw)}"`);
  return raw as T;
}
