#!/usr/bin/env node
// Builds what flashslide needs beyond node_modules: the native addon (native/, node-gyp) and the
// compiled TypeScript (dist/). Only Node built-ins here: it runs before anything else exists.
//   node scripts/build.mjs               both
//   node scripts/build.mjs --native-only
//   node scripts/build.mjs --ts-only
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));

function run(cmd, argv, cwd = root) {
  const r = spawnSync(cmd, argv, { cwd, stdio: 'inherit', env: process.env });
  if (r.status !== 0) {
    console.error(`flashslide build: ${[cmd, ...argv].join(' ')} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status || 1);
  }
}

/** node-gyp: the one npm ships (npm sets npm_config_node_gyp), else next to this Node's npm. */
export function findNodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  const found = candidates.find((c) => c && existsSync(c));
  if (!found) {
    console.error('flashslide build: node-gyp not found (it ships with npm); reinstall Node.js with npm');
    process.exit(1);
  }
  return found;
}

/** Headers of the running Node, so node-gyp never tries to download them (there is no network). */
function nodedirArgs() {
  const prefix = join(dirname(process.execPath), '..');
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

if (!args.has('--ts-only')) {
  const hasOpenSlide = spawnSync('pkg-config', ['--exists', 'openslide']).status === 0;
  if (!hasOpenSlide) {
    console.warn('flashslide build: libopenslide not found: NDPI/MRXS/JPEG 2000 slides will need `apt-get install libopenslide-dev` and a rebuild');
  }
  run(process.execPath, [findNodeGyp(), 'rebuild', ...nodedirArgs()], join(root, 'native'));
}
if (!args.has('--native-only')) {
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')]);
}
