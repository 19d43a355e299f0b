#!/usr/bin/env node
// Long fuzz run of the slide readers through the CLI (issue 13): builds the fuzzer
// (test/fuzz/*.ts -> dist/test/fuzz/) and runs it. The CLI under test is bin/flashslide.js, i.e.
// dist/ as `npm run build` (or `npx tsc -p tsconfig.json`) left it: rebuild after changing sources.
//
//   node bench/fuzz-slides.mjs --seed 1 --count 1000        # ~1000 mutants; summary in data/fuzz/seed-1/
//   node bench/fuzz-slides.mjs --seed 1 --only 417          # rebuild and rerun one mutant
//
// Options: --jobs N (default: cores), --out DIR, --analyze-every N (default 10), --timeout S
// (default 60), --backends auto,sharp,openslide. Exit 1 when a mutant crashed, hung, printed a stack
// trace or an internal error.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const build = spawnSync(process.execPath, [tsc, '-p', join(root, 'test', 'fuzz', 'tsconfig.json')], { stdio: 'inherit' });
if (build.status !== 0) {
  process.stderr.write('fuzz-slides: the fuzzer does not compile (see above)\n');
  process.exit(2);
}

// A stale CLI build would fuzz yesterday's code: say so (the run goes on; it is what users run).
const cli = join(root, 'dist', 'worker', 'cli', 'main.js');
if (!existsSync(cli)) {
  process.stderr.write('fuzz-slides: dist/ has no CLI: run `npm run build` first\n');
  process.exit(2);
}
const newest = (dir) =>
  readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .reduce((m, e) => Math.max(m, statSync(join(e.parentPath ?? e.path, e.name)).mtimeMs), 0);
const slideSources = join(root, 'worker', 'slide');
if (newest(slideSources) > statSync(join(root, 'dist', 'worker', 'slide', 'open-slide.js')).mtimeMs) {
  process.stderr.write('fuzz-slides: warning: worker/slide/ is newer than dist/: run `npx tsc -p tsconfig.json` to fuzz the current sources\n');
}

await import(pathToFileURL(join(root, 'dist', 'test', 'fuzz', 'fuzz-slides.js')).href);
