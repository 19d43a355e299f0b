/**
 * What `flashslide serve` can be told, with every default in one place. The server binds to
 * loopback unless told otherwise: slides are patient data, and exposing them is a decision, one
 * that needs authentication (auth/host.ts refuses a wider bind without it).
 */
import type { AnalysisOptions } from '../../worker/pipeline/analysis-spec.js';

/**
 * Who may use the server:
 * - none: anyone who reaches it (loopback only; verdicts carry the name the browser types);
 * - token: one shared secret, sent as `Authorization: Bearer` by scripts or exchanged for a
 *   session by the browser; verdicts are recorded under `tokenUser`;
 * - users: named accounts from a users file (scrypt hashes, auth/users-file.ts); verdicts are
 *   recorded under the signed-in name.
 */
export type AuthMode =
  | { mode: 'none' }
  | { mode: 'token'; token: string; tokenUser: string }
  | { mode: 'users'; usersFile: string };

export interface SessionOptions {
  /** A session unused this long ends (minutes). */
  idleMinutes: number;
  /** A session ends this long after sign-in however busy (hours): about a working day. */
  maxHours: number;
  /** Sessions held at once (all users); the oldest is dropped beyond this. */
  maxSessions: number;
}

export interface RateLimitOptions {
  /** Requests per minute per client address, sustained (tiles are many small requests). 0: off. */
  requestsPerMinute: number;
  /** Requests a client may make at once above the sustained rate (a viewer opening a slide). */
  burst: number;
  /** Sign-in attempts per minute per client address. */
  loginsPerMinute: number;
  /** Sign-in attempts per minute per user name (guessing one account from many addresses). */
  loginsPerUserPerMinute: number;
}

export interface ServeOptions {
  /** The results folder `analyze`/`worker` write to (`--data`). */
  dataDir: string;
  /** Folders whose slides may be submitted by path from the browser (`--slides`, repeatable). */
  slideRoots: string[];
  /** Redis URL of the queue; undefined = browse what `analyze` wrote, no submission. */
  redisUrl: string | undefined;
  host: string;
  port: number;
  /** Analysis options for slides submitted from the browser (model, score method, ...). */
  analysis: Partial<AnalysisOptions>;
  /** Largest upload accepted by PUT /api/upload, in bytes. */
  uploadLimitBytes: number;
  /** bull-board under /admin/queues may retry/remove jobs (otherwise read-only). */
  adminWritable: boolean;
  /** Folder of the built browser app (index.html + assets). */
  appDir: string;
  /** Slide tiles: JPEG quality, tile side, encoded-tile cache size. */
  jpegQuality: number;
  /** Slide tile format: JPEG (every browser, stored tiles reused) or WebP (smaller, always re-encoded). */
  tileFormat: 'jpeg' | 'webp';
  tileSize: number;
  tileCacheBytes: number;
  /** Concurrent tile renders; default: one per core. */
  renderConcurrency: number | undefined;
  /** Seconds between checks of the results folder for changes (besides file watching). */
  pollSeconds: number;
  /** Log every request (Fastify's logger). */
  logRequests: boolean;
  auth: AuthMode;
  session: SessionOptions;
  rateLimit: RateLimitOptions;
  /** Uploads written at once; more are refused with 429 (each may be gigabytes of disk I/O). */
  maxConcurrentUploads: number;
  /**
   * The browser reaches the server through TLS (a reverse proxy terminating https): cookies are
   * marked Secure, HSTS is sent and the page's plain-http subresources are upgraded. Requests that
   * arrive over https directly get Secure cookies anyway.
   */
  behindTls: boolean;
  /**
   * Believe X-Forwarded-For/-Proto from the peer (a reverse proxy on this machine or network), so
   * rate limits and logs see the browser's address, not the proxy's. Off: they could be forged.
   */
  trustProxy: boolean;
}

export const DEFAULT_SERVE_OPTIONS: Readonly<Omit<ServeOptions, 'dataDir' | 'appDir'>> = {
  slideRoots: [],
  redisUrl: undefined,
  host: '127.0.0.1',
  port: 8080,
  analysis: {},
  uploadLimitBytes: 20 * 1024 ** 3,
  adminWritable: false,
  jpegQuality: 80,
  tileFormat: 'jpeg',
  tileSize: 256,
  tileCacheBytes: 256 * 1024 ** 2,
  renderConcurrency: undefined,
  pollSeconds: 2,
  logRequests: false,
  auth: { mode: 'none' },
  session: { idleMinutes: 120, maxHours: 12, maxSessions: 10_000 },
  // 300 tiles/s sustained, 3000 at once: far above a pathologist panning (a few hundred tiles a
  // second at most) and a batch report, low enough that one client cannot flood the renders.
  rateLimit: { requestsPerMinute: 18_000, burst: 3000, loginsPerMinute: 10, loginsPerUserPerMinute: 10 },
  maxConcurrentUploads: 4,
  behindTls: false,
  trustProxy: false,
};

/** The name verdicts are recorded under in token mode, unless --token-user says otherwise. */
export const DEFAULT_TOKEN_USER = 'token';
