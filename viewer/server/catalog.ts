/**
 * Which slides the server knows, and where each one's files are: the result folders under
 * --data (done or failed, whether `analyze` or a worker wrote them) merged with what the queue
 * knows (queued and running slides, which have no result folder yet). Clients only ever name a
 * slide by its analysis id; this is the one place an id becomes a path, by lookup, never by
 * joining what a client sent.
 *
 * The list is rebuilt at most once per `maxAgeMs` (a worklist poll or an SSE burst would
 * otherwise rescan the folder and Redis for every request), and at once after invalidate().
 */
import { existsSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { HeatmapMeta } from '../../worker/store/heatmap-json.js';
import { parseHeatmapMeta } from '../../worker/store/heatmap-json.js';
import { decodeNpyFloat32 } from '../../worker/store/npy.js';
import { RESULT_FILES } from '../../worker/store/result-store.js';
import { readJsonFile } from '../../worker/store/json-file.js';
import type { SlideFailure, SlideSummary } from '../../worker/store/summary.js';
import { EMBEDDINGS_FOLDER, UPLOADS_FOLDER } from '../../worker/pipeline/analysis-spec.js';
import { readerConnectionOptions, redactText, redactUrl } from '../../worker/queue/connection.js';
import { closeSoon } from './close-soon.js';
import { knownSpecs, openQueues, statusOf, type Queues, type SlideState, type SlideStatus } from '../../worker/queue/submit.js';
import type { SlideStatusName } from './api-types.js';

/** Folders under --data that are not results. */
export { UPLOADS_FOLDER };
const NOT_RESULTS = new Set([EMBEDDINGS_FOLDER, UPLOADS_FOLDER]);

export const ANALYSIS_ID = /^[0-9a-f]{24}$/;

export interface CatalogEntry {
  id: string;
  name: string;
  slidePath: string;
  resultDir: string;
  status: SlideStatusName;
  progress: { done: number; total: number } | null;
  reason: string | null;
  score: number | null;
  regions: number | null;
  updatedAt: string | null;
  summary: SlideSummary | null;
}

export interface CatalogOptions {
  dataDir: string;
  redisUrl: string | undefined;
  maxAgeMs?: number;
}

export class SlideCatalog {
  readonly dataDir: string;
  private readonly redisUrl: string | undefined;
  private readonly maxAgeMs: number;
  private cached: { at: number; entries: Promise<CatalogEntry[]> } | null = null;
  private readonly heatmaps = new Map<string, Promise<{ grid: Float32Array; meta: HeatmapMeta } | null>>();
  /** Opened on first use and kept: a worklist refresh must not cost two new Redis connections. */
  private queues: Queues | null = null;
  /** Why the last rebuild could not read the queue; null when it could (or there is none). */
  queueError: string | null = null;

  constructor(options: CatalogOptions) {
    this.dataDir = resolve(options.dataDir);
    this.redisUrl = options.redisUrl;
    this.maxAgeMs = options.maxAgeMs ?? 1000;
  }

  invalidate(): void {
    this.cached = null;
  }

  /** Every slide, newest first. */
  async list(): Promise<CatalogEntry[]> {
    const now = Date.now();
    if (this.cached === null || now - this.cached.at > this.maxAgeMs) {
      const entries = this.build();
      this.cached = { at: now, entries };
      entries.catch(() => {
        if (this.cached?.entries === entries) this.cached = null;
      });
    }
    return this.cached.entries;
  }

  async get(id: string): Promise<CatalogEntry | null> {
    if (!ANALYSIS_ID.test(id)) return null;
    const hit = (await this.list()).find((e) => e.id === id);
    if (hit !== undefined) return hit;
    // A slide that appeared since the last scan (a link opened right after submission).
    this.invalidate();
    return (await this.list()).find((e) => e.id === id) ?? null;
  }

  /**
   * The heatmap grid and its geometry, read once per result (keyed by the result's creation
   * time, so a recomputed result is read anew). Two are kept: a reviewer flips between a few.
   */
  async heatmap(entry: CatalogEntry): Promise<{ grid: Float32Array; meta: HeatmapMeta } | null> {
    if (entry.status !== 'done') return null;
    const key = `${entry.id}\u0000${entry.updatedAt ?? ''}`;
    let hit = this.heatmaps.get(key);
    if (hit === undefined) {
      hit = readHeatmap(entry.resultDir);
      this.heatmaps.set(key, hit);
      hit.catch(() => this.heatmaps.delete(key));
      while (this.heatmaps.size > 2) this.heatmaps.delete(this.heatmaps.keys().next().value as string);
    }
    return hit;
  }

  private async build(): Promise<CatalogEntry[]> {
    const byId = new Map<string, CatalogEntry>();
    for (const e of await this.scanResults()) {
      // Two folders of one analysis id (a result copied, or re-run into another name): prefer
      // the one whose slide file is still there, then the newer.
      const other = byId.get(e.id);
      if (other === undefined || preferred(e, other)) byId.set(e.id, e);
    }
    if (this.redisUrl !== undefined) {
      if (this.queues === null) {
        this.queues = openQueues(this.redisUrl, readerConnectionOptions(this.redisUrl));
        for (const q of [this.queues.plan, this.queues.embed, this.queues.aggregate]) q.on('error', () => undefined); // reported as queueError
      }
      let queued: CatalogEntry[] = [];
      try {
        queued = await this.queueEntries(this.queues);
        this.queueError = null;
      } catch (err) {
        // Redis away: still show what is on disk, and say the queue part is missing.
        this.queueError = `cannot read the queue at ${redactUrl(this.redisUrl)}: ${redactText((err as Error).message, this.redisUrl)}`;
      }
      for (const e of queued) {
        const onDisk = byId.get(e.id);
        // The folder is the truth for finished slides; the queue for everything still moving.
        if (onDisk === undefined || (onDisk.status !== 'done' && e.status !== 'done')) byId.set(e.id, { ...e, summary: onDisk?.summary ?? null });
      }
    }
    return [...byId.values()].sort((a, b) => (b.updatedAt ?? '').localeCompare(a.updatedAt ?? '') || a.name.localeCompare(b.name));
  }

  private async scanResults(): Promise<CatalogEntry[]> {
    let dirs: string[];
    try {
      dirs = (await readdir(this.dataDir, { withFileTypes: true })).filter((d) => d.isDirectory() && !d.name.startsWith('.') && !NOT_RESULTS.has(d.name)).map((d) => d.name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const entries = await Promise.all(dirs.map((d) => readResultFolder(join(this.dataDir, d)).catch(() => null)));
    return entries.filter((e): e is CatalogEntry => e !== null);
  }

  private async queueEntries(queues: Queues): Promise<CatalogEntry[]> {
    const specs = (await knownSpecs(queues, 1000)).filter((s) => dirname(s.resultDir) === this.dataDir);
    const statuses = await Promise.all(specs.map((s) => statusOf(queues, s)));
    return statuses.map((s) => fromQueueStatus(s));
  }

  async close(): Promise<void> {
    const q = this.queues;
    this.queues = null;
    if (q !== null) await Promise.all([closeSoon(q.plan), closeSoon(q.embed), closeSoon(q.aggregate)]);
  }
}

function preferred(a: CatalogEntry, b: CatalogEntry): boolean {
  const ra = existsSync(a.slidePath);
  const rb = existsSync(b.slidePath);
  if (ra !== rb) return ra;
  return (a.updatedAt ?? '') > (b.updatedAt ?? '');
}

/** The queue's detailed state as the four a reviewer cares about ('missing': the result was deleted). */
export function statusName(state: SlideState): SlideStatusName {
  if (state === 'done') return 'done';
  if (state === 'failed' || state === 'missing') return 'failed';
  return state === 'queued' || state === 'unknown' ? 'queued' : 'running';
}

function fromQueueStatus(s: SlideStatus): CatalogEntry {
  const status = statusName(s.state);
  return {
    id: s.analysisId,
    name: basename(s.slidePath),
    slidePath: s.slidePath,
    resultDir: s.resultDir,
    status,
    progress: s.regionsTotal === null ? null : { done: s.regionsDone ?? 0, total: s.regionsTotal },
    reason: s.reason,
    score: s.slideScore ?? null,
    regions: s.anomalousRegions ?? null,
    updatedAt: null,
    summary: null,
  };
}

/** A done or failed result folder as an entry; null when it holds neither (being written, or not ours). */
async function readResultFolder(dir: string): Promise<CatalogEntry | null> {
  const summary = await readJsonFile<SlideSummary & { threshold: number | null }>(join(dir, RESULT_FILES.summary));
  if (summary !== null && summary.status === 'done' && typeof summary.slideId === 'string' && ANALYSIS_ID.test(summary.slideId)) {
    const slidePath = summary.slidePath ?? parseHeatmapMeta(await readFile(join(dir, RESULT_FILES.meta), 'utf8')).slidePath;
    const updatedAt = summary.createdAt ?? (await stat(join(dir, RESULT_FILES.summary))).mtime.toISOString();
    return {
      id: summary.slideId,
      name: basename(slidePath),
      slidePath,
      resultDir: dir,
      status: 'done',
      progress: summary.regionsAnalysed === undefined ? null : { done: summary.regionsAnalysed, total: summary.regionsAnalysed },
      reason: null,
      score: summary.slideScore,
      regions: summary.regionsCount,
      updatedAt,
      summary: { ...summary, threshold: summary.threshold ?? Infinity },
    };
  }
  const failure = await readJsonFile<SlideFailure>(join(dir, RESULT_FILES.failure));
  if (failure !== null && failure.status === 'failed' && typeof failure.slideId === 'string' && ANALYSIS_ID.test(failure.slideId)) {
    return {
      id: failure.slideId,
      name: basename(failure.slidePath),
      slidePath: failure.slidePath,
      resultDir: dir,
      status: 'failed',
      progress: null,
      reason: failure.reason,
      score: null,
      regions: null,
      updatedAt: failure.at,
      summary: null,
    };
  }
  return null;
}

async function readHeatmap(dir: string): Promise<{ grid: Float32Array; meta: HeatmapMeta }> {
  const [metaText, npy] = await Promise.all([readFile(join(dir, RESULT_FILES.meta), 'utf8'), readFile(join(dir, RESULT_FILES.heatmap))]);
  const meta = parseHeatmapMeta(metaText, join(dir, RESULT_FILES.meta));
  const { data, shape } = decodeNpyFloat32(npy);
  if (shape.length !== 2 || shape[0] !== meta.rows || shape[1] !== meta.cols) {
    throw new Error(`${join(dir, RESULT_FILES.heatmap)} has shape [${shape.join(', ')}], heatmap.json says [${meta.rows}, ${meta.cols}]`);
  }
  return { grid: data, meta };
}
