/**
 * Fresh-machine set-up (issue 12): the one list of system packages that ensure-ready, .ci/run and
 * the Dockerfile share, the install-or-instruct decision in each situation (a pure function of the
 * facts, so no package is ever removed to test it), this machine's real check, the lock file
 * `npm ci` installs from, and the CLI from outside the checkout.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  SYSTEM_PACKAGES,
  decide,
  ensureSystemPackages,
  message,
  packagesFor,
  survey,
  withoutCandidate,
  type CheckedPackage,
  type Facts,
} from '../../scripts/system-packages.mjs';
import { BIN, ROOT, cliEnv, tempDir } from '../helpers.js';

const ALL = SYSTEM_PACKAGES.map((p) => p.name);
const without = (...names: string[]): Set<string> => new Set(ALL.filter((n) => !names.includes(n)));
const facts = (over: Partial<Facts>): Facts => ({
  packages: packagesFor('test'),
  present: new Set(ALL),
  isRoot: false,
  passwordlessSudo: false,
  hasApt: true,
  noApt: false,
  ...over,
});
const names = (pkgs: readonly CheckedPackage[]): string[] => pkgs.map((p) => p.name);

describe('system packages: one list', () => {
  it('lists every package with why and how to detect it; start checks build + optional runtime ones, test all', () => {
    for (const p of SYSTEM_PACKAGES) {
      expect(p.why.length, p.name).toBeGreaterThan(10);
      expect(['build', 'runtime-optional', 'test'], p.name).toContain(p.neededFor);
      expect(Object.keys(p.probe).length, p.name).toBe(1);
    }
    expect(ALL).toEqual(expect.arrayContaining(['g++', 'make', 'python3', 'pkg-config', 'libopenslide-dev', 'libopenblas-dev', 'redis-server', 'chromium', 'poppler-utils', 'fonts-dejavu-core']));
    const start = packagesFor('start');
    expect(names(start.filter((p) => p.required)).sort()).toEqual(['g++', 'libopenblas-dev', 'make', 'pkg-config', 'python3']);
    expect(names(start.filter((p) => !p.required)).sort()).toEqual(['fonts-dejavu-core', 'fonts-noto-cjk', 'libopenslide-dev']);
    expect(names(start)).not.toContain('redis-server');
    const test = packagesFor('test');
    expect(names(test).sort()).toEqual([...ALL].sort());
    expect(test.every((p) => p.required)).toBe(true);
  });

  it('.ci/run, ensure-ready and the Dockerfile use this list, not one of their own', () => {
    const ci = readFileSync(join(ROOT, '.ci', 'run'), 'utf8');
    expect(ci).toContain('node scripts/system-packages.mjs ensure --for test');
    expect(ci).not.toMatch(/apt-get install/);
    expect(spawnSync('bash', ['-n', join(ROOT, '.ci', 'run')]).status).toBe(0);
    expect(readFileSync(join(ROOT, 'scripts', 'ensure-ready.mjs'), 'utf8')).toContain('ensureSystemPackages(purpose)');
    expect(readFileSync(join(ROOT, 'Dockerfile'), 'utf8')).toContain('node scripts/system-packages.mjs ensure --for start');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['start']).toMatch(/^node scripts\/ensure-ready\.mjs --for start &&/);
    expect(pkg.scripts['test']).toMatch(/^node scripts\/ensure-ready\.mjs --for test &&/);
  });
});

describe('system packages: the decision', () => {
  it('installed: nothing to do', () => {
    const d = decide(facts({}));
    expect(d).toMatchObject({ action: 'none', missing: [], install: null, stop: false });
    expect(message(d)).toMatch(/nothing to do/);
  });

  it('missing and installable without a question (root, or sudo without a password): installs exactly the missing ones, saying why', () => {
    const present = without('libopenblas-dev', 'redis-server');
    const asRoot = decide(facts({ present, isRoot: true }));
    expect(asRoot.action).toBe('install');
    expect(names(asRoot.toInstall)).toEqual(['libopenblas-dev', 'redis-server']);
    expect(asRoot.install).toBe('apt-get update && apt-get install -y --no-install-recommends libopenblas-dev redis-server');
    expect(message(asRoot)).toMatch(/installing system packages with apt-get:\n {2}libopenblas-dev +the engine's CPU matrix multiplies/);
    const viaSudo = decide(facts({ present, passwordlessSudo: true }));
    expect(viaSudo.action).toBe('install');
    expect(viaSudo.install).toBe('sudo apt-get update && sudo apt-get install -y --no-install-recommends libopenblas-dev redis-server');
  });

  it('missing and not installable here: stops with the exact command and why it was not run', () => {
    const present = without('g++');
    const password = decide(facts({ present }));
    expect(password).toMatchObject({ action: 'instruct', stop: true, install: 'sudo apt-get update && sudo apt-get install -y --no-install-recommends g++' });
    expect(password.reason).toMatch(/needs root/);
    const text = message(password);
    expect(text).toMatch(/^flashslide: missing system packages \(installing needs root/);
    expect(text).toMatch(/\n {2}g\+\+ +node-gyp compiles the native addon/);
    expect(text.endsWith('install them with:\n  sudo apt-get update && sudo apt-get install -y --no-install-recommends g++')).toBe(true);
    const noApt = decide(facts({ present, isRoot: true, noApt: true }));
    expect(noApt).toMatchObject({ action: 'instruct', stop: true });
    expect(noApt.reason).toMatch(/FLASHSLIDE_NO_APT/);
  });

  it('not Debian/Ubuntu (no apt-get): says what to provide, with the Debian command for reference', () => {
    const d = decide(facts({ present: without('libopenblas-dev', 'make'), isRoot: true, hasApt: false }));
    expect(d).toMatchObject({ action: 'instruct', stop: true });
    expect(d.reason).toMatch(/not Debian\/Ubuntu/);
    const text = message(d, { hasApt: false });
    expect(text).toMatch(/provide:\n {2}make +the command make\n {2}libopenblas-dev +one of \/usr\/include\/cblas\.h/);
    expect(text).toContain('(the Debian/Ubuntu command: apt-get update && apt-get install -y --no-install-recommends make libopenblas-dev)');
  });

  it('npm start: optional packages are installed when possible, else it goes on with a warning; npm test requires them', () => {
    const present = without('libopenslide-dev');
    const startFacts = { packages: packagesFor('start'), present };
    expect(decide(facts({ ...startFacts, isRoot: true }))).toMatchObject({ action: 'install', stop: false });
    const warn = decide(facts(startFacts));
    expect(warn).toMatchObject({ action: 'instruct', stop: false });
    expect(message(warn)).toMatch(/^flashslide: going on without optional system packages .*\n {2}libopenslide-dev \(optional\) +the OpenSlide formats: NDPI/);
    expect(decide(facts({ present }))).toMatchObject({ action: 'instruct', stop: true });
    // test-only packages are not even looked at by npm start
    expect(decide(facts({ packages: packagesFor('start'), present: without('redis-server', 'chromium') })).action).toBe('none');
  });

  it("a package apt has no candidate for (e.g. chromium on Ubuntu): installs the rest, then names it", () => {
    const present = without('chromium', 'poppler-utils');
    const unavailable = new Set(['chromium']);
    const first = decide(facts({ present, isRoot: true, unavailable }));
    expect(first.action).toBe('install');
    expect(names(first.toInstall)).toEqual(['poppler-utils']);
    const after = decide(facts({ present: without('chromium'), isRoot: true, unavailable }));
    expect(after).toMatchObject({ action: 'instruct', stop: true });
    expect(after.reason).toMatch(/not in this machine's apt sources: chromium/);
  });
});

describe("system packages: this machine's real check", () => {
  it('everything installed: nothing to do, nothing said (ensure and the CLI)', () => {
    const here = survey(packagesFor('test'));
    expect(ALL.filter((n) => !here.present.has(n))).toEqual([]);
    expect(decide(here).action).toBe('none');
    const said: string[] = [];
    expect(ensureSystemPackages('test', { log: (line) => said.push(line) })).toEqual({ ok: true, installed: [] });
    expect(said).toEqual([]);
    const cli = spawnSync(process.execPath, [join(ROOT, 'scripts', 'system-packages.mjs'), 'ensure', '--for', 'test'], { encoding: 'utf8' });
    expect([cli.status, cli.stdout, cli.stderr]).toEqual([0, '', '']);
  });

  it('a package that is not installed is found missing (dpkg and probe), and FLASHSLIDE_NO_APT only reports', () => {
    const fake: CheckedPackage = { name: 'flashslide-no-such-package', neededFor: 'test', required: true, why: 'a fake package for this test', probe: { command: 'flashslide-no-such-command' } };
    const here = survey([fake, ...packagesFor('start')], { FLASHSLIDE_NO_APT: '1' });
    expect([...here.present]).not.toContain(fake.name);
    expect(here.present.has('g++')).toBe(true);
    expect(here.noApt).toBe(true);
    expect(survey([fake], { FLASHSLIDE_NO_APT: '0' }).noApt).toBe(false);
    const d = decide(here);
    expect(d).toMatchObject({ action: 'instruct', stop: true });
    expect(names(d.missing)).toEqual([fake.name]);
    expect(d.install).toMatch(/apt-get install -y --no-install-recommends flashslide-no-such-package$/);
  });

  it('the install path, against stand-ins for dpkg-query, apt-get and apt-cache: update, install what apt has, name the rest', () => {
    // PATH holds only the stand-ins, so the command probes of the missing packages fail too
    // (the missing ones are all found by a command).
    const dir = tempDir();
    const db = join(dir, 'installed');
    const log = join(dir, 'apt.log');
    writeFileSync(db, ALL.filter((n) => !['make', 'redis-server', 'poppler-utils'].includes(n)).join('\n') + '\n');
    const shim = (name: string, body: string): void => {
      writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(dir, name), 0o755);
    };
    // shell built-ins only: there is nothing else on PATH
    shim('dpkg-query', `shift 2; for p in "$@"; do while read -r l; do [ "$l" = "$p" ] && printf '%s\\tinstall ok installed\\n' "$p"; done < '${db}'; done; exit 0`);
    shim('apt-cache', `shift; for p in "$@"; do [ "$p" = poppler-utils ] || printf '%s:\\n  Candidate: 1.0\\n' "$p"; done`);
    // as a non-root user: passwordless sudo, which resets the environment (hence `env VAR=value`)
    shim('sudo', `[ "$1" = -n ] && shift; [ "$1" = true ] && exit 0; unset DEBIAN_FRONTEND; if [ "$1" = env ]; then export "$2"; shift 2; fi; exec "$@"`);
    shim('apt-get', `echo "$DEBIAN_FRONTEND $*" >> '${log}'; case " $* " in *" install "*) for p in "$@"; do case "$p" in -*|install|DPkg*) ;; *) echo "$p" >> '${db}';; esac; done;; esac`);
    const script = `const m = await import(${JSON.stringify(join(ROOT, 'scripts', 'system-packages.mjs'))}); const said = []; const r = m.ensureSystemPackages('test', { log: (l) => said.push(l) }); console.log(JSON.stringify({ r, said }));`;
    const env = { ...process.env, PATH: dir, FLASHSLIDE_NO_APT: '' };
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { env, encoding: 'utf8' });
    const { r, said } = JSON.parse(out) as { r: { ok: boolean; installed: string[] }; said: string[] };
    expect(r).toEqual({ ok: false, installed: ['make', 'redis-server'] });
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual([
      'noninteractive -o DPkg::Lock::Timeout=300 update -qq',
      'noninteractive -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends make redis-server',
    ]);
    expect(said[0]).toMatch(/^flashslide: installing system packages with apt-get:\n {2}make +node-gyp drives/);
    expect(said[1]).toMatch(/^flashslide: missing system packages \(not in this machine's apt sources: poppler-utils\)/);
    expect(said[1]).toContain('apt-get install -y --no-install-recommends poppler-utils');
    expect(said).toHaveLength(2);
  });

  it('the addon build (npm ci\'s prepare) stops before the compiler with the one message, and installs nothing', () => {
    // A copy of the two scripts in a bare root: were the check missing, node-gyp would run there
    // (and fail on a raw compiler or Python error), not in the checkout's native/.
    const root = tempDir();
    mkdirSync(join(root, 'scripts'));
    for (const f of ['build.mjs', 'system-packages.mjs']) writeFileSync(join(root, 'scripts', f), readFileSync(join(ROOT, 'scripts', f)));
    const bin = join(root, 'bin');
    mkdirSync(bin);
    const apt = join(root, 'apt.log');
    writeFileSync(join(bin, 'apt-get'), `#!/bin/sh\necho "$*" >> '${apt}'\n`);
    chmodSync(join(bin, 'apt-get'), 0o755);
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs'), '--native-only'], { encoding: 'utf8', env: { ...process.env, PATH: bin, FLASHSLIDE_CUDA: '0' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^flashslide: missing system packages \(the build only checks/);
    for (const name of ['g++', 'make', 'python3', 'pkg-config']) expect(r.stderr).toContain(name);
    expect(r.stderr).toMatch(/apt-get install -y --no-install-recommends g\+\+ make python3 pkg-config/);
    expect(r.stderr + r.stdout).not.toMatch(/gyp (ERR|info)|No such file/);
    expect(() => readFileSync(apt)).toThrow();
    expect(packagesFor('build').map((p) => p.name)).toEqual(SYSTEM_PACKAGES.filter((p) => p.neededFor === 'build').map((p) => p.name));
  });

  it.skipIf(spawnSync('/bin/sh', ['-c', 'command -v apt-cache']).status !== 0)('apt-cache tells a package the apt sources have from one they lack (read-only)', () => {
    expect([...withoutCandidate(['redis-server', 'flashslide-no-such-package'])]).toEqual(['flashslide-no-such-package']);
  });
});

describe('node packages and the command', () => {
  it('npm ci accepts the committed lock file (it refuses one out of sync with package.json)', () => {
    const r = spawnSync('npm', ['ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr.split('\n').filter((l) => l.includes('npm error')).join('\n')).toBe(0);
  });

  it('flashslide --version, also through a link from outside the checkout (npm link / npm install -g)', () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    const dir = tempDir();
    mkdirSync(join(dir, 'bin'));
    symlinkSync(BIN, join(dir, 'bin', 'flashslide'));
    const out = execFileSync(process.execPath, [join(dir, 'bin', 'flashslide'), '--version'], { cwd: dir, encoding: 'utf8', env: cliEnv() });
    expect(out.trim()).toBe(`flashslide ${version}`);
    // even when Node keeps the link's path (--preserve-symlinks-main): dist/ is found from the real one
    const kept = execFileSync(process.execPath, ['--preserve-symlinks-main', join(dir, 'bin', 'flashslide'), '-V'], { cwd: dir, encoding: 'utf8', env: cliEnv() });
    expect(kept.trim()).toBe(`flashslide ${version}`);
    expect(execFileSync(process.execPath, [BIN, '-V'], { cwd: dir, encoding: 'utf8', env: cliEnv() }).trim()).toBe(`flashslide ${version}`);
  });
});
