#!/usr/bin/env node
// Makes a checkout runnable, doing only what is missing or stale: the system packages
// (scripts/system-packages.mjs: installed with apt-get when that needs no password, else one
// message with the command), node_modules (npm ci), the native addon, the compiled TypeScript and
// the browser app. Safe to run any number of times; `npm start` (--for start) and `npm test`
// (--for test: also what the tests need) call it first.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { ensureSystemPackages } from './system-packages.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const purpose = process.argv.includes('--for') ? process.argv[process.argv.indexOf('--for') + 1] : 'start';
if (purpose !== 'start' && purpose !== 'test') {
  console.error(`flashslide: --for must be start or test, got ${purpose}`);
  process.exit(2);
}
if (Number(process.versions.node.split('.')[0]) < 20) {
  console.error(`flashslide: Node.js 20 or newer is required, this is ${process.version} (https://nodejs.org)`);
  process.exit(1);
}
// First the system packages: without a compiler or cblas.h the build below would stop with a raw
// compiler error. Optional ones missing only warn. FLASHSLIDE_NO_APT=1: only report.
if (!ensureSystemPackages(purpose).ok) process.exit(1);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function newest(path) {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let t = 0;
  for (const entry of readdirSync(path)) {
    if (entry === 'build' || entry === 'node_modules') continue;
    t = Math.max(t, newest(join(path, entry)));
  }
  return t;
}

function mtime(path) {
  return existsSync(path) ? statSync(path).mtimeMs : 0;
}

function run(cmd, argv) {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status || 1);
}

const installed = join(root, 'node_modules', '.package-lock.json');
if (!existsSync(installed) || mtime(join(root, 'package-lock.json')) > mtime(installed)) {
  console.log('flashslide: installing dependencies (npm ci: exactly package-lock.json)...');
  // npm ci never rewrites the tracked lock file. The lock lists vite's Windows-only optional
  // dependency napi-windows-process-start-time without a download URL (some registries do not
  // serve it): npm ci needs the entry and skips the package on other platforms.
  // --ignore-scripts: the build below runs once, with the checks that follow.
  run(npm, ['ci', '--ignore-scripts', '--no-audit', '--no-fund']);
}
const addon = join(root, 'native', 'build', 'Release', 'flashslide.node');
// OpenSlide is optional at build time (binding.gyp asks pkg-config): an addon built before
// libopenslide-dev was installed is rebuilt with it.
const targetMk = join(root, 'native', 'build', 'flashslide.target.mk');
const withoutOpenSlide = () =>
  existsSync(targetMk) && !readFileSync(targetMk, 'utf8').includes('FLASHSLIDE_HAVE_OPENSLIDE') && spawnSync('pkg-config', ['--exists', 'openslide']).status === 0;
if (mtime(addon) < Math.max(newest(join(root, 'native')), newest(join(root, 'kernels'))) || withoutOpenSlide()) {
  console.log('flashslide: building the native addon...');
  run(process.execPath, [join(root, 'scripts', 'build.mjs'), '--native-only']);
}
if (mtime(join(root, 'dist', 'worker', 'cli', 'main.js')) < Math.max(newest(join(root, 'worker')), newest(join(root, 'viewer', 'server')), mtime(join(root, 'tsconfig.json')))) {
  console.log('flashslide: compiling TypeScript...');
  run(process.execPath, [join(root, 'scripts', 'build.mjs'), '--ts-only']);
}
if (mtime(join(root, 'dist', 'app', 'index.html')) < Math.max(newest(join(root, 'viewer', 'app')), mtime(join(root, 'worker', 'store', 'colormap.ts')))) {
  console.log('flashslide: building the browser app...');
  run(process.execPath, [join(root, 'scripts', 'build.mjs'), '--app-only']);
}
