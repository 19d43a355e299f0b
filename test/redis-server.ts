/**
 * A real redis-server for the queue tests, on a free port, with the settings BullMQ requires
 * (noeviction), no persistence, stopped after the tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

export interface RedisHandle {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * `port`: a fixed port (a restart of the same server, as clients see it); default a free one.
 * `password`: the server requires it (requirepass); `url` then carries it.
 */
export async function startRedis(policy = 'noeviction', fixedPort?: number, options: { password?: string } = {}): Promise<RedisHandle> {
  const port = fixedPort ?? (await freePort());
  const auth = options.password === undefined ? [] : ['--requirepass', options.password];
  const proc: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', policy, ...auth], {
    stdio: 'ignore',
  });
  const url = options.password === undefined ? `redis://127.0.0.1:${port}` : `redis://:${encodeURIComponent(options.password)}@127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, ...(options.password === undefined ? {} : { password: options.password }) });
    r.on('error', () => undefined);
    try {
      await r.connect();
      await r.ping();
      r.disconnect();
      break;
    } catch {
      r.disconnect();
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`redis-server did not start on port ${port} (is redis-server installed?)`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }
  return {
    url,
    port,
    stop: async () => {
      if (proc.exitCode !== null) return;
      await new Promise<void>((res) => {
        proc.once('exit', () => res());
        proc.kill('SIGTERM');
      });
    },
  };
}
