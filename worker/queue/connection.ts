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

/**
 * The URL as it may be shown: a password (and a user name) replaced by "***". Every message and
 * log line that names the queue uses this; the real URL only ever reaches the connection.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password === '' && u.username === '') return url;
    if (u.password !== '') u.password = '***';
    if (u.username !== '') u.username = '***';
    return u.toString();
  } catch {
    // Not a URL: show its shape only, in case it is a mistyped one holding a password.
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

/** `text` with the URL's password removed wherever it appears (errors may quote the URL). */
export function redactText(text: string, url: string): string {
  let password = '';
  try {
    password = decodeURIComponent(new URL(url).password);
  } catch {
    return text;
  }
  return password === '' ? text : text.split(password).join('***');
}

export function redisUrl(flag: string | undefined): string {
  return flag ?? process.env['FLASHSLIDE_REDIS'] ?? DEFAULT_REDIS_URL;
}

function baseOptions(url: string): RedisOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new QueueConfigError(`"${redactUrl(url)}" is not a Redis URL (expected redis://[:password@]host:port[/db])`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new QueueConfigError(`"${redactUrl(url)}" is not a redis:// URL`);
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
    throw new QueueConfigError(`cannot reach Redis at ${redactUrl(url)}: ${redactText((err as Error).message, url)} (start it, or pass --redis / set FLASHSLIDE_REDIS)`);
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
        `Redis at ${redactUrl(url)} has maxmemory-policy ${policy}; flashslide needs noeviction so queued slides are never dropped ` +
          `(redis-cli -u ${redactUrl(url)} config set maxmemory-policy noeviction, and set it in redis.conf)`,
      );
    }
  } finally {
    redis.disconnect();
  }
}
