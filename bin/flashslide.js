#!/usr/bin/env node
// Launcher: runs the compiled CLI (dist/). `npm run build` (run by npm install/ci and by
// `npm start`/`npm test` when needed) produces it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// libuv's pool (4 threads by default) runs the engine's forwards, sharp's region decodes and file
// I/O. A forward holds its thread for the whole pass and the pipeline keeps a second one waiting
// on the engine, so with 4 the decodes and writes of the next batches would queue behind them.
// Read when the pool starts, i.e. on its first use: setting it here, before any, takes effect.
process.env.UV_THREADPOOL_SIZE ??= '16';

const entry = new URL('../dist/worker/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('flashslide: not built yet: run `npm run build` in the flashslide folder\n');
  process.exit(2);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
