#!/usr/bin/env node
// Launcher: runs the compiled CLI (dist/). `npm start`/`npm test` (scripts/ensure-ready.mjs) or
// `npm run build` produce it. Linked from anywhere (`npm link`, `npm install -g .`, a symlink on
// PATH), it finds dist/ next to its own real path, never next to the link.
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// libuv's pool (4 threads by default) runs the engine's forwards, sharp's region decodes and file
// I/O. A forward holds its thread for the whole pass and the pipeline keeps a second one waiting
// on the engine, so with 4 the decodes and writes of the next batches would queue behind them.
// Read when the pool starts, i.e. on its first use: setting it here, before any, takes effect.
process.env.UV_THREADPOOL_SIZE ??= '16';

// Node already resolves the main script's symlinks unless --preserve-symlinks-main is given.
const checkout = join(dirname(realpathSync(fileURLToPath(import.meta.url))), '..');
const entry = join(checkout, 'dist', 'worker', 'cli', 'main.js');
if (!existsSync(entry)) {
  process.stderr.write(`flashslide: not built yet: run \`npm start\` (or \`npm run build\`) in ${checkout}\n`);
  process.exit(2);
}
const { main } = await import(pathToFileURL(entry).href);
process.exitCode = await main(process.argv.slice(2));
// Every command has finished its work (and closed what it opened) when main resolves; the process
// ends then. Should anything still hold the event loop (a leak would be a bug), the command's exit
// code stands and nobody is left waiting on a process that did its job: exit after a moment,
// which lets stdout and stderr drain. unref: a process that ends by itself is not held by it.
setTimeout(() => process.exit(), 2000).unref();
