/**
 * What `flashslide serve` can be told, with every default in one place. The server binds to
 * loopback unless told otherwise: slides are patient data, and exposing them is a decision.
 */
import type { AnalysisOptions } from '../../worker/pipeline/analysis-spec.js';

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
};
