/**
 * A Redis that refuses what a command asks of it (issue 13): a database index it does not have,
 * a wrong password, no password where one is needed. Every command that uses the queue (status,
 * submit, worker, report --redis, serve --redis) says so in one line naming the problem, with the
 * password redacted, exits 3, and starts nothing: no worker "listening", no job queued in
 * another database. Real redis-server processes (one with requirepass), the built CLI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startRedis, type RedisHandle } from '../redis-server.js';
import { BIN, SLIDES, TINY, cliEnv, tempDir } from '../helpers.js';

const PASSWORD = 'pw-Zq81-secret';
let open: RedisHandle;
let locked: RedisHandle;

beforeAll(async () => {
  open = await startRedis();
  locked = await startRedis('noeviction', undefined, { password: PASSWORD });
});
afterAll(async () => {
  await open?.stop();
  await locked?.stop();
});

/** The built CLI, killed after `timeoutMs` (a worker or server that started would run on). */
function run(args: string[], timeoutMs = 45_000): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', env: cliEnv() });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The keys of a server's database 0 (where jobs would land if a refused SELECT were ignored). */
async function keysOf(handle: RedisHandle): Promise<string[]> {
  const client = new Redis(handle.url);
  try {
    return await client.keys('*');
  } finally {
    client.disconnect();
  }
}

const cases: { what: string; url: () => string; server: () => RedisHandle; message: RegExp; secret?: string }[] = [
  {
    what: 'a database index the server does not have',
    url: () => `${open.url}/99`,
    server: () => open,
    message: /^flashslide: error: Redis at redis:\/\/127\.0\.0\.1:\d+\/99 has no database 99 \(ERR DB index is out of range; it has 16, 0\.\.15\): use one it has as the URL's \/DB/,
  },
  {
    what: 'a wrong password',
    url: () => `redis://:wrong-${PASSWORD}@127.0.0.1:${locked.port}`,
    server: () => locked,
    message: /^flashslide: error: Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ refused the user name or password \(WRONGPASS [^)]*\): check the credentials/,
    secret: `wrong-${PASSWORD}`,
  },
  {
    what: 'a database index the server does not have, behind the right password',
    url: () => `redis://:${PASSWORD}@127.0.0.1:${locked.port}/99`,
    server: () => locked,
    message: /^flashslide: error: Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/99 has no database 99 /,
    secret: PASSWORD,
  },
  {
    what: 'no password for a server that needs one',
    url: () => `redis://127.0.0.1:${locked.port}`,
    server: () => locked,
    message: /^flashslide: error: Redis at redis:\/\/127\.0\.0\.1:\d+ needs a password \(NOAUTH Authentication required\.\): give it in the URL/,
  },
];

describe('a Redis that refuses the connection: one line, exit 3, nothing started', () => {
  for (const c of cases) {
    it(c.what, async () => {
      const data = join(tempDir(), 'data');
      mkdirSync(data);
      const commands: [string, string[]][] = [
        ['status', ['status', '--redis', c.url()]],
        ['submit', ['submit', TINY, '--data', data, '--redis', c.url()]],
        ['worker', ['worker', '--data', data, '--slides', SLIDES, '--device', 'cpu', '--redis', c.url()]],
        ['report', ['report', '--all', '--format', 'csv', '--out', join(data, 'reports'), '--data', data, '--redis', c.url()]],
        ['serve', ['serve', '--data', data, '--port', '0', '--redis', c.url()]],
      ];
      for (const [name, args] of commands) {
        const r = run(args);
        const said = `${name}: exit ${String(r.code)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
        expect(r.code, said).toBe(3);
        expect(r.stderr.trimEnd().split('\n'), said).toHaveLength(1);
        expect(r.stderr, said).toMatch(c.message);
        expect(r.stderr, said).not.toMatch(/ReplyError|^\s+at |Connection is closed|internal error/m);
        expect(r.stdout, said).toBe('');
        expect(`${r.stdout}${r.stderr}`, said).not.toMatch(/listening/);
        if (c.secret !== undefined) expect(`${r.stdout}${r.stderr}`, said).not.toContain(c.secret);
      }
      // Nothing was queued anywhere, not even in the database the connection fell back to.
      expect(await keysOf(c.server())).toEqual([]);
    }, 240_000);
  }
});
