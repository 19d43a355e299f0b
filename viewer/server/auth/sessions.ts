/**
 * Browser sessions, held in this process's memory only: a restart signs everyone out, which is
 * the safe side for a server that holds no other state about users. The id is 32 random bytes,
 * sent to the browser once in an HttpOnly cookie; the store keys sessions by the id's SHA-256, so
 * the ids themselves are never kept (a heap dump does not hand them out) and lookups never compare
 * secrets character by character. Each session has a CSRF token of its own (auth/csrf.ts).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { SessionOptions } from '../options.js';

export interface Session {
  user: string;
  /** Sent back by the app in X-Flashslide-CSRF on every write. */
  csrf: string;
  createdAt: number;
  lastSeenAt: number;
  /** createdAt + maxHours: the hard end however busy the session is. */
  endsAt: number;
}

const digest = (id: string): string => createHash('sha256').update(id).digest('hex');

export class SessionStore {
  /** digest(id) -> session, oldest first (Map keeps insertion order). */
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly options: SessionOptions,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  /** A new session for `user`; returns its id (for the cookie) and the session. */
  create(user: string): { id: string; session: Session } {
    this.prune();
    while (this.sessions.size >= this.options.maxSessions) {
      const oldest = this.sessions.keys().next().value;
      if (oldest === undefined) break;
      this.sessions.delete(oldest);
    }
    const id = randomBytes(32).toString('base64url');
    const t = this.now();
    const session: Session = { user, csrf: randomBytes(32).toString('base64url'), createdAt: t, lastSeenAt: t, endsAt: t + this.options.maxHours * 3_600_000 };
    this.sessions.set(digest(id), session);
    return { id, session };
  }

  /** Whether `id` is a live session, without restarting its idle clock (a long-lived stream must not keep it alive). */
  isLive(id: string): boolean {
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return false;
    const s = this.sessions.get(digest(id));
    return s !== undefined && !this.expired(s, this.now());
  }

  /** The live session of `id` (its idle clock restarted), or null when unknown or expired. */
  get(id: string): Session | null {
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return null;
    const key = digest(id);
    const s = this.sessions.get(key);
    if (s === undefined) return null;
    const t = this.now();
    if (this.expired(s, t)) {
      this.sessions.delete(key);
      return null;
    }
    s.lastSeenAt = t;
    return s;
  }

  delete(id: string): void {
    this.sessions.delete(digest(id));
  }

  /** Ends every session of `user` (their account was removed). */
  deleteUser(user: string): void {
    for (const [k, s] of this.sessions) if (s.user === user) this.sessions.delete(k);
  }

  private expired(s: Session, t: number): boolean {
    return t >= s.endsAt || t - s.lastSeenAt >= this.options.idleMinutes * 60_000;
  }

  private prune(): void {
    const t = this.now();
    for (const [k, s] of this.sessions) if (this.expired(s, t)) this.sessions.delete(k);
  }
}
