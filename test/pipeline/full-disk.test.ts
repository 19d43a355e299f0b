/**
 * A full or read-only data folder (issue 13): embedded `analyze` fails the slide that met it with
 * the cause and goes on with the batch, leaving nothing half-written; in queue mode `status`
 * names the cause (ENOSPC), not BullMQ's "child ... failed". The disks are real: a small tmpfs
 * mounted over the data folder in a private mount namespace (unshare), so no root is needed where
 * user namespaces are allowed; where they are not, the tests say so and skip.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { BIN, CMU, TINY, cli, cliEnv, tempDir } from '../helpers.js';
import { startRedis, type RedisHandle } from '../redis-server.js';
import { dirname } from 'node:path';

/** Runs `script` (sh) with a tmpfs of `size` mounted at $DATA, in a mount namespace of its own. */
function onSmallDisk(size: string, script: string): string[] {
  return ['unshare', '-Urm', 'sh', '-c', `mount -t tmpfs -o size=${size} tmpfs "$DATA" && ${script}`];
}

const canMount = ((): boolean => {
  const dir = tempDir();
  const r = spawnSync('unshare', ['-Urm', 'sh', '-c', 'mount -t tmpfs -o size=64k tmpfs "$0"', dir], { encoding: 'utf8' });
  if (r.status !== 0) process.stderr.write(`full-disk tests skipped: cannot mount a tmpfs in a user namespace here (${(r.stderr || String(r.error)).trim()})\n`);
  return r.status === 0;
})();

function run(argv: string[], env: Record<string, string>): { code: number | null; stdout: string; stderr: string } {
  const [cmd, ...args] = argv as [string, ...string[]];
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000, env: { ...cliEnv(), ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const node = JSON.stringify(process.execPath);
const bin = JSON.stringify(BIN);

describe.skipIf(!canMount)('a full or read-only data folder', () => {
  it('embedded analyze: a per-slide failure with the cause, the batch goes on, nothing half-written', () => {
    const data = tempDir();
    const analyze = `${node} ${bin} analyze ${CMU} ${TINY} --data "$DATA" --region-size 512 --device cpu`;
    // 300 kB holds CMU-1's plan but not its embeddings; the tiny slide (no tissue) fits after it.
    const full = run(onSmallDisk('300k', `${analyze}; echo "exit=$?"; find "$DATA" -type f`), { DATA: data });
    expect(full.stdout, full.stderr).toMatch(/^exit=3$/m);
    expect(full.stdout).toMatch(/^FAILED +.*CMU-1-Small-Region\.svs: cannot write .*: no space left on the device \(ENOSPC\)$/m);
    expect(full.stdout).toMatch(/^DONE +.*tiny-aperio\.svs/m);
    expect(full.stdout + full.stderr).not.toMatch(/internal error|^\s+at /m);
    const files = full.stdout.split('\n').filter((l) => l.startsWith(data));
    expect(files.filter((f) => f.endsWith('.tmp')), 'no temp file is left behind').toEqual([]);
    expect(files.filter((f) => /CMU-1-Small-Region-\w+\/(?!failure\.json)/.test(f) && !f.includes('/embeddings/')), 'no partial result').toEqual([]);

    const readOnly = run(onSmallDisk('1m', `mount -o remount,ro "$DATA" && ${analyze}; echo "exit=$?"`), { DATA: data });
    expect(readOnly.stdout, readOnly.stderr).toMatch(/^exit=3$/m);
    expect(readOnly.stdout.match(/^FAILED +.*: cannot (write .*: the file system is read-only \(EROFS\)|create the folder .* \(is the file system read-only)/gm)).toHaveLength(2);
    expect(readOnly.stdout + readOnly.stderr).not.toMatch(/internal error/);
  }, 120_000);

  describe('queue mode', () => {
    let redis: RedisHandle;
    beforeAll(async () => {
      redis = await startRedis();
    });
    afterAll(async () => {
      await redis?.stop();
    });

    it('status shows the root cause of a slide that failed on a full disk', async () => {
      const data = tempDir();
      const worker = spawn(
        'unshare',
        ['-Urm', 'sh', '-c', `mount -t tmpfs -o size=300k tmpfs "$DATA" && exec ${node} ${bin} worker --redis ${redis.url} --device cpu --data "$DATA" --slides ${JSON.stringify(dirname(CMU))}`],
        { env: { ...cliEnv(), DATA: data }, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let log = '';
      worker.stderr?.on('data', (d: Buffer) => (log += d.toString()));
      try {
        const r = cli(['submit', CMU, '--wait', '--json', '--redis', redis.url, '--data', data, '--region-size', '512', '--device', 'cpu']);
        const [st] = JSON.parse(r.stdout || '[]') as { state: string; reason: string }[];
        expect(st?.state, r.stderr + log).toBe('failed');
        expect(st?.reason).toMatch(/cannot write .*: no space left on the device \(ENOSPC\) \(region batch \d+\)/);
        expect(st?.reason).not.toMatch(/^child /);
        const table = cli(['status', CMU, '--redis', redis.url, '--data', data, '--region-size', '512', '--device', 'cpu']).stdout;
        expect(table).toMatch(/^failed .*CMU-1-Small-Region\.svs .*: cannot write .*\(ENOSPC\)/m);
      } finally {
        worker.kill('SIGKILL');
      }
    }, 120_000);
  });
});
