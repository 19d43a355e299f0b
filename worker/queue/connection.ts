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
  const path = u.pathname.replace(/\/$/, '');
  if (path !== '' && !/^\/\d{1,9}$/.test(path)) throw new QueueConfigError(`"${redactUrl(url)}": "${path.slice(1)}" is not a database index (expected redis://[:password@]host:port[/db], db a number such as 0)`);
  const db = path === '' ? 0 : Number(path.slice(1));
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    db,
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

/** Why Redis refused a connection, as one line; null when `reply` is not a refusal of the credentials. */
function refusal(reply: Error, url: string): QueueConfigError | null {
  const where = `Redis at ${redactUrl(url)}`;
  const said = redactText(reply.message, url).replace(/^Ready check failed: /, '');
  if (/^NOAUTH\b/.test(said)) {
    return new QueueConfigError(`${where} needs a password (${said}): give it in the URL, redis://:PASSWORD@host:port, with --redis or FLASHSLIDE_REDIS`);
  }
  if (/^WRONGPASS\b|^ERR invalid (username-)?password|^ERR AUTH\b|^ERR Client sent AUTH/i.test(said)) {
    return new QueueConfigError(`${where} refused the user name or password (${said}): check the credentials in --redis or FLASHSLIDE_REDIS`);
  }
  if (/^NOPERM\b/.test(said)) return new QueueConfigError(`${where} does not allow this user what flashslide needs (${said}): grant it in the server's ACL`);
  return null;
}

/**
 * Connects once, checks that Redis takes the credentials and the database index, and the
 * eviction policy, and closes. Every command that uses the queue calls this first, so a Redis
 * that refuses it is one line (QueueConfigError, exit 3) before anything else connects: ioredis
 * reports a refused password only as "Connection is closed." and a missing database only as
 * 'error' events, which each later connection would repeat forever.
 */
export async function checkRedis(url: string): Promise<void> {
  const options = producerConnectionOptions(url);
  // disconnectTimeout: after a refused AUTH the socket may never report 'close', and ioredis's
  // 2 s timer to destroy it would hold the command's exit that long.
  const redis = new Redis({ ...options, lazyConnect: true, disconnectTimeout: 200 } as IoRedisOptions);
  let refused: QueueConfigError | null = null;
  // Connection errors surface through the rejected connect below; the server's own refusals
  // (AUTH, the ready check) only come as events.
  redis.on('error', (err: Error) => {
    refused ??= refusal(err, url);
  });
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw refused ?? refusal(err as Error, url) ?? new QueueConfigError(`cannot reach Redis at ${redactUrl(url)}: ${redactText((err as Error).message, url)} (start it, or pass --redis / set FLASHSLIDE_REDIS)`);
  }
  try {
    if (refused !== null) throw refused;
    const db = options.db ?? 0;
    if (db !== 0) {
      // Selected again here for its reply: the one ioredis sends on connect fails only as an event.
      try {
        await redis.select(db);
      } catch (err) {
        const count = await redis.config('GET', 'databases').then((r) => Number((r as string[])[1]), () => NaN);
        const has = Number.isInteger(count) && count > 0 ? `; it has ${count}, 0..${count - 1}` : '';
        throw (
          refusal(err as Error, url) ??
          new QueueConfigError(`Redis at ${redactUrl(url)} has no database ${db} (${redactText((err as Error).message, url)}${has}): use one it has as the URL's /DB in --redis or FLASHSLIDE_REDIS`)
        );
      }
    }
    let policy: string | undefined;
    try {
      const reply = (await redis.config('GET', 'maxmemory-policy')) as string[];
      policy = reply[1];
    } catch (err) {
      const denied = refusal(err as Error, url);
      if (denied !== null && !/^NOPERM\b/.test((err as Error).message)) throw denied;
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
