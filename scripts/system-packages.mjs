#!/usr/bin/env node
// The Debian/Ubuntu packages flashslide needs beyond Node.js: one list, used by
// scripts/ensure-ready.mjs (`npm start`, `npm test`), by .ci/run and by the Dockerfile, so they
// never disagree.
//
//   node scripts/system-packages.mjs ensure --for start|test   install what is missing, or say how
//   node scripts/system-packages.mjs check --for start|test    only report (never installs)
//   node scripts/system-packages.mjs list --for start|test     print the package names
//   node scripts/system-packages.mjs runtime                    the run-time libraries of the
//                                                              start packages (the image's last stage)
//
// A missing package is installed with apt-get when that can happen without a question (root, or
// sudo without a password) and FLASHSLIDE_NO_APT is not set; otherwise the check stops with one
// message giving the exact command. Only Node built-ins here: it runs before npm ci.
import { spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/**
 * `neededFor`:
 *   'build'            `npm start` cannot build without it: required by start and test.
 *   'runtime-optional' flashslide builds and runs without it, minus a feature: `npm start`
 *                      installs it along with the others when it can, and otherwise goes on with a
 *                      warning giving the command; `npm test` requires it (tests use the feature).
 *   'test'             only the tests use it: `npm test` requires it, `npm start` never asks.
 * `runtime`: what a machine that only runs a built flashslide needs in its place (the Dockerfile's
 * runtime stage: the shared library of a -dev package, the OpenMP runtime g++ links).
 * `probe` says how to tell the package is there where dpkg does not know it (no dpkg, or installed
 * another way): a command on PATH, one of some files, a pkg-config module, a Python module.
 */
export const SYSTEM_PACKAGES = [
  { name: 'g++', neededFor: 'build', runtime: ['libgomp1'], why: 'node-gyp compiles the native addon (native/)', probe: { command: 'g++' } },
  { name: 'make', neededFor: 'build', why: 'node-gyp drives the addon build with make', probe: { command: 'make' } },
  { name: 'python3', neededFor: 'build', why: 'node-gyp is written in Python', probe: { command: 'python3' } },
  { name: 'pkg-config', neededFor: 'build', why: 'the addon build finds OpenSlide with it', probe: { command: 'pkg-config' } },
  { name: 'libopenblas-dev', neededFor: 'build', runtime: ['libopenblas0'], why: "the engine's CPU matrix multiplies (cblas.h, -lopenblas)", probe: { file: ['/usr/include/cblas.h', '/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/aarch64-linux-gnu/cblas.h', '/usr/include/openblas/cblas.h'] } },
  { name: 'libopenslide-dev', neededFor: 'runtime-optional', runtime: ['libopenslide0'], why: 'the OpenSlide formats: NDPI, MRXS, SCN, BIF, JPEG 2000/ZSTD SVS (without it: JPEG SVS and TIFF only)', probe: { pkgConfig: 'openslide' } },
  { name: 'fonts-dejavu-core', neededFor: 'runtime-optional', runtime: ['fonts-dejavu-core'], why: 'the PDF report font (µ, ², notes in any European script; else Helvetica, ? for what it lacks)', probe: { file: ['/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf'] } },
  { name: 'fonts-noto-cjk', neededFor: 'runtime-optional', runtime: ['fonts-noto-cjk'], why: 'the PDF report font for Chinese, Japanese and Korean notes (without it they print as ?)', probe: { file: ['/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc'] } },
  { name: 'redis-server', neededFor: 'test', why: 'the queue tests start their own Redis (queue mode, submit/worker, needs a Redis too)', probe: { command: 'redis-server' } },
  { name: 'chromium', neededFor: 'test', why: "the review page's browser test drives /usr/bin/chromium headless", probe: { file: ['/usr/bin/chromium'] } },
  { name: 'poppler-utils', neededFor: 'test', why: 'the PDF report tests read reports back (pdftotext, pdfimages, pdfinfo)', probe: { command: 'pdftotext' } },
  { name: 'docker-compose', neededFor: 'test', why: 'the deployment test validates docker-compose.yml (docker-compose config, no Docker engine)', probe: { command: 'docker-compose' } },
  { name: 'python3-yaml', neededFor: 'test', why: "the deployment test reads docker-compose's normalised config with Python's yaml", probe: { python: 'yaml' } },
];

/**
 * The packages a purpose checks, each with `required`: 'start' checks build and runtime-optional
 * packages (only the build ones required), 'test' checks all and requires all, 'build' (the
 * addon build itself, e.g. `npm ci`'s prepare) only the build ones.
 */
export function packagesFor(purpose) {
  if (purpose === 'build') return SYSTEM_PACKAGES.filter((p) => p.neededFor === 'build').map((p) => ({ ...p, required: true }));
  if (purpose !== 'start' && purpose !== 'test') throw new Error(`--for must be start or test, got ${purpose}`);
  return SYSTEM_PACKAGES.filter((p) => purpose === 'test' || p.neededFor !== 'test').map((p) => ({ ...p, required: purpose === 'test' || p.neededFor === 'build' }));
}

/** The run-time libraries of the packages `npm start` checks, for an image that only runs the build. */
export function runtimePackages() {
  return packagesFor('start').flatMap((p) => p.runtime ?? []);
}

/** The command a person runs (a fresh machine has no package lists yet, hence the update). */
export function installCommand(names, isRoot) {
  const sudo = isRoot ? '' : 'sudo ';
  return `${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ${names.join(' ')}`;
}

/**
 * What to do, as a pure function of the facts, so every branch is testable:
 *   facts: { packages (from packagesFor), present: Set of names, isRoot, passwordlessSudo,
 *            hasApt, noApt, unavailable?: Set of names apt has no candidate for (known once
 *            apt-get update ran) }
 *   -> { action, missing, install, reason, stop }
 *   action: 'none' (nothing missing), 'install' (run apt-get for `toInstall` now, no question
 *     asked), or 'instruct' (cannot install here: say `reason` and `install`, the exact command);
 *   stop: a required package is missing (after 'instruct' the caller fails; else it goes on).
 */
export function decide({ packages, present, isRoot, passwordlessSudo, hasApt, noApt, unavailable = new Set() }) {
  const missing = packages.filter((p) => !present.has(p.name));
  const stop = missing.some((p) => p.required);
  if (missing.length === 0) return { action: 'none', missing, toInstall: [], install: null, reason: null, stop: false };
  const install = installCommand(missing.map((p) => p.name), isRoot);
  const toInstall = missing.filter((p) => !unavailable.has(p.name));
  let reason = null;
  if (!hasApt) reason = 'no apt-get: this is not Debian/Ubuntu';
  else if (noApt) reason = 'FLASHSLIDE_NO_APT is set: only reporting';
  else if (!isRoot && !passwordlessSudo) reason = 'installing needs root and sudo asks for a password';
  else if (toInstall.length === 0) reason = `not in this machine's apt sources: ${[...unavailable].filter((n) => missing.some((p) => p.name === n)).join(', ')}`;
  if (reason !== null) return { action: 'instruct', missing, toInstall: [], install, reason, stop };
  return { action: 'install', missing, toInstall, install, reason, stop };
}

/** What a probe looks for, in words (for systems without apt, where the names differ). */
function probeText(probe) {
  if (probe.command !== undefined) return `the command ${probe.command}`;
  if (probe.file !== undefined) return probe.file.length === 1 ? probe.file[0] : `one of ${probe.file.join(', ')}`;
  if (probe.pkgConfig !== undefined) return `pkg-config module ${probe.pkgConfig}`;
  if (probe.python !== undefined) return `Python module ${probe.python} (python3 -c 'import ${probe.python}')`;
  return 'nothing';
}

/** The message for a decision (pure too): what is missing and why, then what to do. */
export function message(d, { hasApt = true } = {}) {
  const tag = (p) => (p.required ? '' : ' (optional)');
  const lines = (pkgs) => {
    const width = Math.max(...pkgs.map((p) => (p.name + tag(p)).length));
    return pkgs.map((p) => `  ${(p.name + tag(p)).padEnd(width)}  ${p.why}`).join('\n');
  };
  if (d.action === 'none') return 'flashslide: system packages: nothing to do';
  if (d.action === 'install') return `flashslide: installing system packages with apt-get:\n${lines(d.toInstall)}`;
  const head = d.stop ? 'flashslide: missing system packages' : 'flashslide: going on without optional system packages';
  if (!hasApt) {
    const width = Math.max(...d.missing.map((p) => p.name.length));
    const what = d.missing.map((p) => `  ${p.name.padEnd(width)}  ${probeText(p.probe)}`).join('\n');
    return `${head} (${d.reason}):\n${lines(d.missing)}\ninstall your system's packages that provide:\n${what}\n(the Debian/Ubuntu command: ${d.install})`;
  }
  return `${head} (${d.reason}):\n${lines(d.missing)}\ninstall them with:\n  ${d.install}`;
}

const succeeds = (cmd, args) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
const hasCommand = (name) => succeeds('/bin/sh', ['-c', `command -v '${name}'`]);

/** The names dpkg reports installed (one dpkg-query for all; it exits 1 when one is unknown). */
function dpkgInstalled(names) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package}\t${Status}\n', ...names], { encoding: 'utf8' });
  const installed = new Set();
  for (const line of (r.stdout ?? '').split('\n')) {
    const [name, status] = line.split('\t');
    if (status?.endsWith('install ok installed')) installed.add(name);
  }
  return installed;
}

/** Whether the package's probe finds it (systems without dpkg, or installed another way). */
function probeFinds({ command, file, pkgConfig, python }) {
  if (command !== undefined) return hasCommand(command);
  if (file !== undefined) return file.some((f) => existsSync(f));
  if (pkgConfig !== undefined) return succeeds('pkg-config', ['--exists', pkgConfig]);
  if (python !== undefined) return succeeds('python3', ['-c', `import ${python}`]);
  return false;
}

/** The facts of this machine: dpkg where it exists, else (or when dpkg says no) the probes. */
export function survey(packages, env = process.env) {
  const byDpkg = hasCommand('dpkg-query') ? dpkgInstalled(packages.map((p) => p.name)) : new Set();
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return {
    packages,
    present: new Set(packages.filter((p) => byDpkg.has(p.name) || probeFinds(p.probe)).map((p) => p.name)),
    isRoot,
    passwordlessSudo: !isRoot && hasCommand('sudo') && succeeds('sudo', ['-n', 'true']),
    hasApt: hasCommand('apt-get'),
    noApt: !['', '0', undefined].includes(env.FLASHSLIDE_NO_APT),
  };
}

/** Names apt has no install candidate for (`apt-cache policy` prints "Candidate: (none)" or nothing). */
export function withoutCandidate(names) {
  const r = spawnSync('apt-cache', ['policy', ...names], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  const candidate = new Map();
  let current = null;
  for (const line of (r.stdout ?? '').split('\n')) {
    const pkg = /^(\S+):$/.exec(line);
    if (pkg) current = pkg[1];
    const cand = /^\s+Candidate: (.+)$/.exec(line);
    if (cand && current !== null) candidate.set(current, cand[1].trim());
  }
  return new Set(names.filter((n) => !candidate.has(n) || candidate.get(n) === '(none)'));
}

/**
 * Installs or instructs. `ok`: flashslide can go on, every required package is present (missing
 * optional ones only warn); `installed`: the names apt-get installed. `installOk: false` only
 * reports, as FLASHSLIDE_NO_APT=1 does.
 */
export function ensureSystemPackages(purpose, { log = (line) => process.stderr.write(`${line}\n`), installOk = true } = {}) {
  const packages = packagesFor(purpose);
  const facts = survey(packages);
  if (!installOk) facts.noApt = true;
  let d = decide(facts);
  if (d.action === 'none') return { ok: true, installed: [] };
  if (d.action === 'install') {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    // sudo resets the environment: DEBIAN_FRONTEND goes through env(1). A fresh cloud machine may
    // still hold the dpkg lock (unattended-upgrades): wait for it rather than fail.
    const apt = (args) => {
      const argv = ['apt-get', '-o', 'DPkg::Lock::Timeout=300', ...args];
      const [cmd, ...rest] = facts.isRoot ? argv : ['sudo', '-n', 'env', 'DEBIAN_FRONTEND=noninteractive', ...argv];
      return spawnSync(cmd, rest, { stdio: ['ignore', 'inherit', 'inherit'], env }).status === 0;
    };
    if (!apt(['update', '-qq'])) {
      log(`flashslide: apt-get update failed (network, apt sources?); install the packages yourself with:\n  ${d.install}`);
      return { ok: !d.stop, installed: [] };
    }
    const unavailable = withoutCandidate(d.missing.map((p) => p.name));
    d = decide({ ...facts, unavailable });
    if (d.action === 'install') {
      log(message(d));
      if (!apt(['install', '-y', '-qq', '--no-install-recommends', ...d.toInstall.map((p) => p.name)])) {
        log(`flashslide: apt-get install failed; install the packages yourself with:\n  ${d.install}`);
        return { ok: !d.stop, installed: [] };
      }
    }
    const installed = d.action === 'install' ? d.toInstall.map((p) => p.name) : [];
    d = decide({ ...survey(packages), unavailable });
    if (d.action === 'none') return { ok: true, installed };
    if (d.action === 'install') d = { ...d, action: 'instruct', reason: 'apt-get ran, yet they are still not found' };
    log(message(d, facts));
    return { ok: !d.stop, installed };
  }
  log(message(d, facts));
  return { ok: !d.stop, installed: [] };
}

/**
 * The addon build's own check (scripts/build.mjs, which `npm ci`/`npm install` run as prepare):
 * it never installs (a package install should not hide inside `npm ci`), it only stops before
 * the compiler with the one message, instead of a raw `cblas.h: No such file` error. `skip`:
 * names the build can do without here (OpenBLAS where the CUDA build links its shim).
 */
export function checkBuildPackages({ skip = [], log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  const packages = packagesFor('build').filter((p) => !skip.includes(p.name));
  const facts = survey(packages);
  const d = decide({ ...facts, noApt: true });
  if (!d.stop) return true;
  log(message({ ...d, reason: 'the build only checks; `npm start` or `npm test` installs them when apt-get needs no password' }, facts));
  return false;
}

const isMain = () => {
  try {
    return import.meta.url === pathToFileURL(realpathSync(process.argv[1] ?? '')).href;
  } catch {
    return false;
  }
};

if (isMain()) {
  const argv = process.argv.slice(2);
  const cmd = argv[0];
  const forWhat = argv.includes('--for') ? argv[argv.indexOf('--for') + 1] : 'test';
  if (cmd === 'runtime') {
    process.stdout.write(`${runtimePackages().join(' ')}\n`);
  } else if (cmd === 'list') {
    process.stdout.write(`${packagesFor(forWhat).map((p) => p.name).join(' ')}\n`);
  } else if (cmd === 'ensure' || cmd === 'check') {
    process.exit(ensureSystemPackages(forWhat, { installOk: cmd === 'ensure' }).ok ? 0 : 1);
  } else {
    process.stderr.write('usage: node scripts/system-packages.mjs ensure|check|list [--for start|test] | runtime\n');
    process.exit(2);
  }
}
