/**
 * Fresh-machine set-up (issue 12): the one list of system packages that ensure-ready and .ci/run
 * share, the install-or-instruct decision in each situation, this machine's real check, the lock
 * file `npm ci` installs from, and the CLI from outside the checkout.
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { SYSTEM_PACKAGES, decide, ensureSystemPackages, packagesFor, survey, type Facts } from '../../scripts/system-packages.mjs';
import { BIN, ROOT, cliEnv, tempDir } from '../helpers.js';

const facts = (over: Partial<Facts>): Facts => ({
  packages: packagesFor('test'),
  present: new Set(SYSTEM_PACKAGES.map((p) => p.name)),
  isRoot: false,
  passwordlessSudo: false,
  hasApt: true,
  noApt: false,
  ...over,
});

describe('system packages: one list, one decision', () => {
  it('start needs the build packages; test adds what the tests use', () => {
    const start = packagesFor('start').map((p) => p.name);
    expect(start).toEqual(expect.arrayContaining(['g++', 'make', 'python3', 'pkg-config', 'libopenblas-dev']));
    expect(start).not.toContain('redis-server');
    expect(packagesFor('test').map((p) => p.name)).toEqual(expect.arrayContaining([...start, 'redis-server', 'chromium', 'poppler-utils']));
    for (const p of SYSTEM_PACKAGES) expect(p.why.length, p.name).toBeGreaterThan(10);
  });

  it('nothing missing: nothing to do', () => {
    expect(decide(facts({}))).toMatchObject({ action: 'none', missing: [], install: null });
  });

  it('missing and installable without a question (root, or sudo without a password): install exactly the missing ones', () => {
    const present = new Set(SYSTEM_PACKAGES.map((p) => p.name).filter((n) => n !== 'libopenblas-dev' && n !== 'redis-server'));
    const asRoot = decide(facts({ present, isRoot: true }));
    expect(asRoot.action).toBe('install');
    expect(asRoot.install).toBe('apt-get install -y --no-install-recommends libopenblas-dev redis-server');
    const viaSudo = decide(facts({ present, passwordlessSudo: true }));
    expect(viaSudo.action).toBe('install');
    expect(viaSudo.install).toBe('sudo apt-get install -y --no-install-recommends libopenblas-dev redis-server');
  });

  it('missing and not installable here: the exact command and why it was not run', () => {
    const present = new Set(SYSTEM_PACKAGES.map((p) => p.name).filter((n) => n !== 'g++'));
    const password = decide(facts({ present }));
    expect(password).toMatchObject({ action: 'instruct', install: 'sudo apt-get install -y --no-install-recommends g++' });
    expect(password.reason).toMatch(/needs root/);
    expect(decide(facts({ present, isRoot: true, noApt: true })).reason).toMatch(/FLASHSLIDE_NO_APT/);
    expect(decide(facts({ present, isRoot: true, hasApt: false })).reason).toMatch(/not Debian\/Ubuntu/);
  });

  it("this machine's real check finds everything the tests need (nothing installed, nothing said)", () => {
    const here = survey(packagesFor('test'));
    expect([...SYSTEM_PACKAGES.map((p) => p.name)].filter((n) => !here.present.has(n))).toEqual([]);
    const said: string[] = [];
    expect(ensureSystemPackages('test', (line) => said.push(line))).toBe(true);
    expect(said).toEqual([]);
  });

  it('.ci/run and ensure-ready use this list, not one of their own', () => {
    const ci = readFileSync(join(ROOT, '.ci', 'run'), 'utf8');
    expect(ci).toContain('node scripts/system-packages.mjs ensure --for test');
    expect(ci).not.toMatch(/apt-get install/);
    expect(readFileSync(join(ROOT, 'scripts', 'ensure-ready.mjs'), 'utf8')).toContain('ensureSystemPackages(purpose)');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['start']).toContain('ensure-ready.mjs --for start');
    expect(pkg.scripts['test']).toContain('ensure-ready.mjs --for test');
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
    expect(execFileSync(process.execPath, [BIN, '-V'], { cwd: dir, encoding: 'utf8', env: cliEnv() }).trim()).toBe(`flashslide ${version}`);
  });
});
