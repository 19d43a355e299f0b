#!/usr/bin/env node
// The Debian/Ubuntu packages flashslide needs beyond Node.js: one list, used by
// scripts/ensure-ready.mjs (`npm start`, `npm test`) and by .ci/run, so they never disagree.
//
//   node scripts/system-packages.mjs ensure --for start|test   install what is missing, or say how
//   node scripts/system-packages.mjs list --for start|test     print the package names
//
// A missing package is installed with apt-get when that can happen without a question (root, or
// sudo without a password) and FLASHSLIDE_NO_APT is not set; otherwise the check stops with one
// message giving the exact command. Only Node built-ins here: it runs before npm install.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/**
 * `need`: 'start' packages are needed to build and run (`npm start`); 'test' ones only by the
 * tests. `probe` says how to tell the package is there on a system without dpkg.
 */
export const SYSTEM_PACKAGES = [
  { name: 'g++', need: 'start', why: 'node-gyp compiles the native addon (native/)', probe: { command: 'g++' } },
  { name: 'make', need: 'start', why: 'node-gyp drives the addon build with make', probe: { command: 'make' } },
  { name: 'python3', need: 'start', why: 'node-gyp is written in Python', probe: { command: 'python3' } },
  { name: 'pkg-config', need: 'start', why: 'the addon build finds OpenSlide and OpenBLAS with it', probe: { command: 'pkg-config' } },
  { name: 'libopenblas-dev', need: 'start', why: "the engine's CPU matrix multiplies (cblas.h)", probe: { file: ['/usr/include/cblas.h', '/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/aarch64-linux-gnu/cblas.h', '/usr/include/openblas/cblas.h'] } },
  { name: 'libopenslide-dev', need: 'start', why: 'OpenSlide formats: NDPI, MRXS, SCN, BIF, JPEG 2000 SVS', probe: { pkgConfig: 'openslide' } },
  { name: 'fonts-dejavu-core', need: 'start', why: 'the PDF report font (µ, ², notes in any European script)', probe: { file: ['/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf'] } },
  { name: 'redis-server', need: 'test', why: 'the queue tests start their own Redis (queue mode needs one too)', probe: { command: 'redis-server' } },
  { name: 'chromium', need: 'test', why: "the review page's browser test drives /usr/bin/chromium", probe: { file: ['/usr/bin/chromium'] } },
  { name: 'poppler-utils', need: 'test', why: 'the PDF report tests read reports back (pdftotext, pdfimages, pdfinfo)', probe: { command: 'pdftotext' } },
  { name: 'docker-compose', need: 'test', why: 'validates docker-compose.yml against the Compose specification (no Docker engine needed)', probe: { command: 'docker-compose' } },
];

/** The packages a purpose needs: 'test' includes 'start'. */
export function packagesFor(purpose) {
  if (purpose !== 'start' && purpose !== 'test') throw new Error(`--for must be start or test, got ${purpose}`);
  return SYSTEM_PACKAGES.filter((p) => purpose === 'test' || p.need === 'start');
}

/**
 * What to do, as a pure function of the facts, so every branch is testable:
 *   missing: package names not present; install: the command that would install them;
 *   action: 'none' (nothing missing), 'install' (run it now, no question asked), or 'instruct'
 *   (cannot install here: print `install` and stop), with `reason` saying why not.
 */
export function decide({ packages, present, isRoot, passwordlessSudo, hasApt, noApt }) {
  const missing = packages.filter((p) => !present.has(p.name));
  const sudo = isRoot ? '' : 'sudo ';
  const install = missing.length === 0 ? null : `${sudo}apt-get install -y --no-install-recommends ${missing.map((p) => p.name).join(' ')}`;
  if (missing.length === 0) return { action: 'none', missing, install, reason: null };
  let reason = null;
  if (!hasApt) reason = 'apt-get is not available (not Debian/Ubuntu): install the equivalent packages with your package manager';
  else if (noApt) reason = 'FLASHSLIDE_NO_APT is set';
  else if (!isRoot && !passwordlessSudo) reason = 'installing needs root (sudo asks for a password)';
  return { action: reason === null ? 'install' : 'instruct', missing, install, reason };
}

const succeeds = (cmd, args) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
const hasCommand = (name) => succeeds('sh', ['-c', `command -v ${name}`]);

/** Whether a package is installed: dpkg where it exists, else the package's probe. */
function isPresent(pkg, useDpkg) {
  if (useDpkg) {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg.name], { encoding: 'utf8' });
    if (r.status === 0 && r.stdout.includes('install ok installed')) return true;
  }
  const { command, file, pkgConfig } = pkg.probe;
  if (command !== undefined) return hasCommand(command);
  if (file !== undefined) return file.some((f) => existsSync(f));
  if (pkgConfig !== undefined) return succeeds('pkg-config', ['--exists', pkgConfig]);
  return false;
}

/** The facts of this machine. */
export function survey(packages) {
  const useDpkg = hasCommand('dpkg-query');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return {
    packages,
    present: new Set(packages.filter((p) => isPresent(p, useDpkg)).map((p) => p.name)),
    isRoot,
    passwordlessSudo: !isRoot && hasCommand('sudo') && succeeds('sudo', ['-n', 'true']),
    hasApt: hasCommand('apt-get'),
    noApt: Boolean(process.env.FLASHSLIDE_NO_APT),
  };
}

/** Installs or instructs; returns true when everything is present afterwards. */
export function ensureSystemPackages(purpose, log = (line) => process.stderr.write(`${line}\n`)) {
  const packages = packagesFor(purpose);
  const d = decide(survey(packages));
  if (d.action === 'none') return true;
  const list = d.missing.map((p) => `  ${p.name.padEnd(18)} ${p.why}`).join('\n');
  if (d.action === 'instruct') {
    log(`flashslide: missing system packages (${d.reason}):\n${list}\ninstall them with:\n  ${d.install}`);
    return false;
  }
  log(`flashslide: installing system packages:\n${list}`);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args) => {
    const [cmd, ...rest] = isRoot ? args : ['sudo', '-n', ...args];
    return spawnSync(cmd, rest, { stdio: 'inherit', env }).status === 0;
  };
  if (!run(['apt-get', 'update', '-qq']) || !run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...d.missing.map((p) => p.name)])) {
    log(`flashslide: apt-get failed; install them yourself with:\n  ${d.install}`);
    return false;
  }
  return decide(survey(packages)).action === 'none';
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [cmd, flag, purpose = 'test'] = process.argv.slice(2);
  const forWhat = flag === '--for' ? purpose : 'test';
  if (cmd === 'list') {
    process.stdout.write(`${packagesFor(forWhat).map((p) => p.name).join(' ')}\n`);
  } else if (cmd === 'ensure') {
    process.exit(ensureSystemPackages(forWhat) ? 0 : 1);
  } else {
    process.stderr.write('usage: node scripts/system-packages.mjs ensure|list [--for start|test]\n');
    process.exit(2);
  }
}
