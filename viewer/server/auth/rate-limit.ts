/**
 * Token buckets keyed by client address (or user name): each key holds up to `burst` tokens,
 * refilled at `perMinute` a minute; a request takes one, and an empty bucket means 429 with the
 * seconds until a token is back. In memory, bounded: at most `maxKeys` buckets, the least recently
 * used dropped first (a dropped bucket is a full one, so forgetting errs towards the client).
 */

export interface BucketOptions {
  perMinute: number;
  burst: number;
  maxKeys?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export type Take = { ok: true } | { ok: false; retryAfterSeconds: number };

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;
  private readonly maxKeys: number;

  constructor(
    private readonly options: BucketOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.perMs = options.perMinute / 60_000;
    this.maxKeys = options.maxKeys ?? 100_000;
  }

  /** Takes a token for `key` if there is one. */
  take(key: string): Take {
    const b = this.refilled(key);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterSeconds: this.secondsUntilToken(b) };
  }

  private secondsUntilToken(b: Bucket): number {
    return this.perMs > 0 ? Math.max(1, Math.ceil((1 - b.tokens) / this.perMs / 1000)) : 60;
  }

  private refilled(key: string): Bucket {
    const t = this.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = { tokens: this.options.burst, at: t };
      if (this.buckets.size >= this.maxKeys) {
        const oldest = this.buckets.keys().next().value;
        if (oldest !== undefined) this.buckets.delete(oldest);
      }
    } else {
      this.buckets.delete(key); // re-inserted below: most recently used last
      b.tokens = Math.min(this.options.burst, b.tokens + (t - b.at) * this.perMs);
      b.at = t;
    }
    this.buckets.set(key, b);
    return b;
  }
}
