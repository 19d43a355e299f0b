import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const SLIDES = join(ROOT, 'test', 'fixtures', 'slides');
export const slide = (name: string): string => join(SLIDES, name);

export const CMU = slide('CMU-1-Small-Region.svs');
export const TINY = slide('tiny-aperio.svs');
export const BOXES = slide('boxes-generic-tiled-pyramid.tiff');
export const NDPI = slide('hamamatsu-fluorescence-dapi.ndpi');
export const KIDNEY = slide('kidney-he-strip.tif');
export const BROKEN = slide('broken.svs');

export function tempDir(prefix = 'flashslide-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Max and mean absolute difference of two equally sized byte buffers. */
export function diff(a: Uint8Array, b: Uint8Array): { max: number; mean: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs((a[i] as number) - (b[i] as number));
    if (d > max) max = d;
    sum += d;
  }
  return { max, mean: sum / a.length };
}

export const BIN = join(ROOT, 'bin', 'flashslide.js');

/** The environment for the built CLI in tests: no debug traces, and never this machine's queue or review server token. */
export function cliEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, FLASHSLIDE_DEBUG: '' };
  delete env['FLASHSLIDE_REDIS'];
  delete env['FLASHSLIDE_SERVE_TOKEN'];
  return env;
}

/** Runs the built `flashslide` with `args` in a child process. */
export function cli(args: string[], cwd?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 120_000, cwd, env: cliEnv() });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
