/**
 * The deployment files (issue 13): docker-compose.yml validated against the Compose
 * specification by docker-compose itself (`config` needs no Docker engine), then checked for what
 * a lab relies on; the Dockerfile builds with the same scripts as CI.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDir } from '../helpers.js';

interface ComposeService {
  image?: string;
  command?: string[];
  ports?: { published?: string | number; host_ip?: string; target: number }[] | string[];
  volumes?: { type: string; source: string; target: string; read_only?: boolean }[];
  environment?: Record<string, string>;
  deploy?: { resources?: { reservations?: { devices?: { driver?: string; count?: number; capabilities?: string[] }[] } } };
  healthcheck?: unknown;
}

/** docker-compose's own validation and normalised form (YAML, read as JSON through Python's yaml). */
function composeConfig(file: string, env: Record<string, string>): { code: number | null; stderr: string; config: { services: Record<string, ComposeService> } | null } {
  const r = spawnSync('docker-compose', ['-f', file, 'config'], { encoding: 'utf8', env: { ...process.env, ...env }, cwd: ROOT });
  if (r.error !== undefined) throw new Error(`docker-compose is missing: install it (apt-get install docker-compose) to validate the deployment files (${r.error.message})`);
  if (r.status !== 0) return { code: r.status, stderr: r.stderr, config: null };
  const json = spawnSync('python3', ['-c', 'import sys, json, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))'], { input: r.stdout, encoding: 'utf8' });
  return { code: 0, stderr: r.stderr, config: JSON.parse(json.stdout) as { services: Record<string, ComposeService> } };
}

describe('docker-compose.yml', () => {
  const env = { REDIS_PASSWORD: 'test-password-123', SLIDES_DIR: '/srv/slides', DATA_DIR: '/srv/results', MODELS_DIR: '/srv/models' };

  it('is valid Compose and runs Redis, the server and GPU workers', () => {
    const r = composeConfig(join(ROOT, 'docker-compose.yml'), env);
    expect(r.code, r.stderr).toBe(0);
    expect(Object.keys(r.config!.services).sort()).toEqual(['redis', 'server', 'worker']);
  });

  it('keeps Redis private, persistent, never evicting, with a password', () => {
    const redis = composeConfig(join(ROOT, 'docker-compose.yml'), env).config!.services['redis']!;
    expect(redis.ports ?? []).toEqual([]);
    expect(redis.command).toEqual(expect.arrayContaining(['--maxmemory-policy', 'noeviction', '--appendonly', 'yes', '--requirepass', 'test-password-123']));
    expect(redis.healthcheck).toBeDefined();
  });

  it('mounts the slides read-only and the results at the same paths in server and workers; workers reserve a GPU each', () => {
    const s = composeConfig(join(ROOT, 'docker-compose.yml'), env).config!.services;
    for (const name of ['server', 'worker']) {
      const svc = s[name]!;
      expect(svc.volumes).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ source: '/srv/slides', target: '/slides', read_only: true }),
          expect.objectContaining({ source: '/srv/results', target: '/data' }),
          expect.objectContaining({ source: '/srv/models', target: '/models', read_only: true }),
        ]),
      );
      expect(svc.environment?.['FLASHSLIDE_REDIS']).toBe('redis://:test-password-123@redis:6379');
    }
    expect(s['worker']!.deploy?.resources?.reservations?.devices).toEqual([expect.objectContaining({ driver: 'nvidia', count: 1, capabilities: ['gpu'] })]);
    // Workers read only under their slide and model roots and write only in their data folder.
    expect(s['worker']!.command).toEqual(expect.arrayContaining(['worker', '--data', '/data', '--slides', '/slides', '--models', '/models', '--grace']));
    // The server listens beyond loopback inside its container, so it signs reviewers in (accounts
    // mounted for it alone), and is published on the host's loopback only (a TLS proxy shares it).
    expect(s['server']!.command).toEqual(expect.arrayContaining(['serve', '--host', '0.0.0.0', '--users', '/config/users']));
    expect(s['server']!.volumes).toEqual(expect.arrayContaining([expect.objectContaining({ target: '/config' })]));
    expect(JSON.stringify(s['worker']!.volumes)).not.toContain('/config');
    expect(JSON.stringify(s['server']!.ports)).toMatch(/127\.0\.0\.1/);
  });

  it('refuses to start without a Redis password, and the validator does reject a broken file', () => {
    const noPassword = composeConfig(join(ROOT, 'docker-compose.yml'), { ...env, REDIS_PASSWORD: '' });
    expect(noPassword.code).not.toBe(0);
    expect(noPassword.stderr).toMatch(/set REDIS_PASSWORD/);
    const broken = join(tempDir(), 'docker-compose.yml');
    writeFileSync(broken, readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8').replace('restart: unless-stopped', 'restart_policy_typo: unless-stopped'));
    expect(composeConfig(broken, env).code).not.toBe(0);
  });
});

describe('Dockerfile', () => {
  it('builds with the scripts CI and npm start use, in two stages, and runs as a non-root user', () => {
    const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(text).toMatch(/FROM nvidia\/cuda:\$\{CUDA_VERSION\}-devel-\$\{UBUNTU\} AS build/);
    expect(text).toMatch(/FROM nvidia\/cuda:\$\{CUDA_VERSION\}-runtime-\$\{UBUNTU\} AS runtime/);
    expect(text).toContain('node scripts/system-packages.mjs ensure --for start');
    expect(text).toContain('FLASHSLIDE_CUDA=1 node scripts/ensure-ready.mjs --for start');
    // The runtime stage's libraries come from the one list, not typed by hand.
    expect(text).toContain('$(node /tmp/system-packages.mjs runtime)');
    expect(text).not.toMatch(/libopenblas0|libopenslide0|libgomp1/);
    const runtime = spawnSync(process.execPath, [join(ROOT, 'scripts', 'system-packages.mjs'), 'runtime'], { encoding: 'utf8' });
    expect(runtime.stdout.trim().split(' ')).toEqual(['libgomp1', 'libopenblas0', 'libopenslide0', 'fonts-dejavu-core', 'fonts-noto-cjk']);
    expect(text).toMatch(/^USER flashslide$/m);
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignore).toEqual(expect.arrayContaining(['node_modules', 'dist', 'native/build', 'data', '.env', '.git']));
  });
});
