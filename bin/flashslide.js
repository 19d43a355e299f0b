#!/usr/bin/env node
// Launcher: runs the compiled CLI (dist/). `npm run build` (run by npm install/ci and by
// `npm start`/`npm test` when needed) produces it.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/worker/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('flashslide: not built yet: run `npm run build` in the flashslide folder\n');
  process.exit(2);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
