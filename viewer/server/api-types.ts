/**
 * The JSON the review server speaks: one place for the shapes both the server (viewer/server)
 * and the browser app (viewer/app, type-only imports) rely on. Every route addresses a slide by
 * its analysis id (24 hex characters); nothing a client sends becomes part of a filesystem path.
 *
 *   GET  /api/worklist                              Worklist
 *   GET  /api/events                                Server-Sent Events (see WorklistEvent)
 *   GET  /api/slides/:id                            SlideDetail
 *   GET  /api/slides/:id/thumbnail.jpg              small JPEG of the whole slide
 *   GET  /api/slides/:id/regions                    RegionList (ranked, highest score first)
 *   GET  /api/slides/:id/review                     Review, with ETag: "<version>"
 *   PUT  /api/slides/:id/review/regions/:regionId   VerdictInput; If-Match: "<version>" -> Review | 409 ApiError
 *   POST /api/submit                                SubmitRequest -> SubmitResponse (202), 503 without Redis
 *   PUT  /api/upload?name=<file name>               raw slide bytes -> SubmitResponse (202), 503 without Redis
 *   GET  /api/slides/:id/report.(pdf|geojson|csv|json)[?paper=a4|letter&top=N]   download; 409 while queued/running
 *   GET  /api/reports/batch.zip?format=pdf|geojson|csv|json[&ids=a,b]  one file per slide + batch.csv/json
 *   GET  /api/reports/batch.(csv|json)[?ids=a,b]    the batch summary: one row per slide
 *   GET  /tiles/:id/:version/slide.dzi              Deep Zoom descriptor (XML) of the slide
 *   GET  /tiles/:id/:version/slide_files/:level/:col_:row.jpeg
 *   GET  /tiles/:id/:version/heatmap.dzi            Deep Zoom descriptor of the heatmap (same size as the slide)
 *   GET  /tiles/:id/:version/heatmap_files/:level/:col_:row.png
 *   GET  /admin/queues                              bull-board (only with Redis)
 *   GET  /api/session                               SessionInfo (public: the app asks whether to show its sign-in form)
 *   POST /api/login                                 LoginRequest -> SessionInfo + session cookie (only with auth)
 *   POST /api/logout                                -> SessionInfo (only with auth)
 *
 * With authentication on (see auth/auth-plugin.ts) every route but the app's files, /api/session
 * and /api/login answers 401 without credentials, and cookie-authenticated writes need the
 * X-Flashslide-CSRF header.
 *
 * Errors are always { error, message } with a 4xx status for anything the client did wrong.
 */

export interface ApiError {
  /**
   * Machine-readable: 'not-found', 'bad-request', 'conflict', 'precondition-required', 'no-queue',
   * 'too-large', 'unauthorized', 'bad-credentials', 'csrf', 'reviewer-mismatch', 'too-many-requests', 'internal'.
   */
  error: string;
  /** A sentence a user can act on. */
  message: string;
}

import type { RankedRegion, RegionReview, Review, ReviewState, Verdict, VerdictRecord } from '../../worker/store/result-types.js';

export type { RegionReview, Review, ReviewState, Verdict, VerdictRecord };
/** A region as the review page lists it. */
export type RegionItem = RankedRegion;

export type SlideStatusName = 'queued' | 'running' | 'done' | 'failed';

export interface WorklistItem {
  id: string;
  /** File name of the slide without folder (e.g. "CMU-1.svs"). */
  name: string;
  status: SlideStatusName;
  /** Running slides: regions embedded so far and in all (null while planning). */
  progress: { done: number; total: number } | null;
  /** Failed slides: why, in words. */
  reason: string | null;
  /** Done slides: the slide score (null: no tissue). */
  score: number | null;
  /** Done slides: how many anomalous regions. */
  regions: number | null;
  reviewState: ReviewState;
  /** Regions with a verdict. */
  reviewed: number;
  /** ISO 8601: when the result was made or the failure recorded; null while the slide is in the queue. */
  updatedAt: string | null;
  /** Whether tiles can be served (the slide file is readable by the server). */
  viewable: boolean;
}

export interface Worklist {
  slides: WorklistItem[];
  /** Whether this server is connected to a queue (submission works). */
  queue: boolean;
  /** Set when the queue cannot be read right now (Redis down): the list then shows results on disk only. */
  queueError: string | null;
}

/** Sent on /api/events as `event: worklist` (the whole list, on every change) and `event: slide` (one item). */
export type WorklistEvent = { type: 'worklist'; worklist: Worklist } | { type: 'slide'; item: WorklistItem };

export interface DziInfo {
  /** URL of the .dzi descriptor; tiles follow the Deep Zoom convention beside it. */
  url: string;
  width: number;
  height: number;
  tileSize: number;
  overlap: number;
  format: 'jpeg' | 'png' | 'webp';
}

/**
 * The heatmap tiles are 8-bit grey + alpha PNGs, a Deep Zoom image of the slide's level-0 size
 * (its tile size may differ from the slide's, which follows the file's stored tiles): grey q (0..255) means score = offset + q * scale; alpha 0 = no tissue (not scored).
 * Levels where one cell covers at least one pixel are nearest-neighbour (crisp cells); coarser
 * levels take the maximum of the cells under a pixel, so a small hot spot never vanishes when
 * zoomed out.
 */
export interface HeatmapInfo {
  dzi: DziInfo;
  offset: number;
  scale: number;
  min: number;
  max: number;
  /** Cells with score >= threshold are anomalous; null when the method set none. */
  threshold: number | null;
  /** 64 equal-width bins from min to max: counts of tissue cells. */
  histogram: number[];
  rows: number;
  cols: number;
  /** Level-0 pixels per cell side; cell (r, c) starts at (originX + c * cell, originY + r * cell). */
  cellSize: number;
  originX: number;
  originY: number;
}

export interface SlideDetail {
  id: string;
  name: string;
  status: SlideStatusName;
  progress: { done: number; total: number } | null;
  reason: string | null;
  slide: {
    vendor: string;
    backend: string;
    width: number;
    height: number;
    levels: number;
    /** µm per level-0 pixel; null when unknown. */
    mpp: number | null;
    objectivePower: number | null;
    /** Content fingerprint: the tile URLs' version. */
    fingerprint: string;
  } | null;
  /** null when the slide file cannot be opened by the server (moved, not mounted); slideError says why. */
  tiles: DziInfo | null;
  slideError: string | null;
  /** null until the result lands. */
  heatmap: HeatmapInfo | null;
  result: {
    score: number | null;
    threshold: number | null;
    tissueCells: number;
    anomalousCells: number;
    regions: number;
    model: string;
    scoreMethod: string;
    scoreParams: Record<string, unknown>;
    createdAt: string | null;
    timings: Record<string, number>;
  } | null;
  reviewState: ReviewState;
}

export interface RegionList {
  regions: RegionItem[];
}

export interface VerdictInput {
  verdict: Verdict;
  note?: string;
  reviewer?: string;
}

export type AuthModeName = 'none' | 'token' | 'users';

export interface SessionInfo {
  auth: AuthModeName;
  /** Who is signed in: the name verdicts are recorded under. null: not signed in, or no authentication. */
  user: string | null;
  /** The session's CSRF token: send it as X-Flashslide-CSRF on every PUT/POST/DELETE. null without a session. */
  csrf: string | null;
}

/** users mode: user + password; token mode: token. */
export interface LoginRequest {
  user?: string;
  password?: string;
  token?: string;
}

export interface SubmitRequest {
  /** A slide file inside one of the server's --slides roots (absolute, or relative to the first root). */
  path: string;
}

export interface SubmitResponse {
  id: string;
  name: string;
  status: SlideStatusName;
  /** What the queue did: queued it now, or found it queued or done already. */
  submitted: 'queued' | 'already-queued' | 'already-done' | 'requeued';
}
