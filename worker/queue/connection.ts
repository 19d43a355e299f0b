/**
 * Redis connections for BullMQ. Workers block on Redis and must never give up on a command
 * (maxRetriesPerRequest: null, as BullMQ requires); producers (submit, status) fail fast so a CLI
 * never hangs on a dead Redis. Redis must not evict keys: an evicted job is a lost slide.
 */
import { Redis, type RedisOptions as IoRedisOptions } from 'ioredis';
import type { RedisOptions } from 'bullmq';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export class QueueConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueueConfigError';
  }
}

export function redisUrl(flag: string | undefined): string {
  return flag ?? process.env['FLASHSLIDE_REDIS'] ?? DEFAULT_REDIS_URL;
}

function baseOptions(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new QueueConfigError(`"${url}" is not a Redis URL (expected redis://host:port[/db])`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new QueueConfigError(`"${url}" is not a redis:// URL`);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    db: Number.isInteger(db) ? db : 0,
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

export function workerConnectionOptions(url: string): RedisOptions {
  return { ...baseOptions(url), maxRetriesPerRequest: null };
}

export function producerConnectionOptions(url: string): RedisOptions {
  return { ...baseOptions(url), maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 5000, retryStrategy: () => null };
}

/**
 * Long-lived readers (the review server): reconnect forever in the background, but let each
 * command fail fast while Redis is away, so a page shows an error instead of hanging.
 */
export function readerConnectionOptions(url: string): RedisOptions {
  return { ...baseOptions(url), maxRetriesPerRequest: 1, connectTimeout: 5000, retryStrategy: (times: number) => Math.min(times * 500, 5000) };
}

/** Connects once, checks reachability and the eviction policy, and closes. */
export async function checkRedis(url: string): Promise<void> {
  const redis = new Redis({ ...producerConnectionOptions(url), lazyConnect: true } as IoRedisOptions);
  redis.on('error', () => undefined); // reported through the rejected connect below
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new QueueConfigError(`cannot reach Redis at ${url}: ${(err as Error).message} (start it, or pass --redis / set FLASHSLIDE_REDIS)`);
  }
  try {
    let policy: string | undefined;
    try {
      const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
      policy = reply[1];
    } catch {
      // Managed Redis services often disable CONFIG; they must then be configured by their console.
      policy = undefined;
    }
    if (policy !== undefined && policy !== 'noeviction') {
      throw new QueueConfigError(
        `Redis at ${url} has maxmemory-policy ${policy}; flashslide needs noeviction so queued slides are never dropped ` +
          `(redis-cli -u ${url} config set maxmemory-policy noeviction, and set it in redis.conf)`,
      );
    }
  } finally {
    redis.disconnect();
  }
}
