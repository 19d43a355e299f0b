/**
 * Tells connected browsers when the worklist changes (Server-Sent Events on /api/events).
 *
 * Changes are noticed three ways, all of which only *trigger* a rebuild of the worklist (the
 * catalog stays the one source of truth): BullMQ QueueEvents when there is a queue (progress,
 * completion, failure, new jobs), watching the results folder (a result folder appears or its
 * summary.json lands), and a slow poll as the safety net for filesystems where watching does not
 * work (network mounts). Triggers are debounced; only items that changed are sent as `slide`
 * events, plus the whole list as a `worklist` event. Nothing runs while no browser listens.
 */
import { watch, type FSWatcher } from 'node:fs';
import { QueueEvents } from 'bullmq';
import { workerConnectionOptions } from '../../worker/queue/connection.js';
import { QUEUES } from '../../worker/queue/queues.js';
import { closeSoon } from './close-soon.js';
import type { Worklist, WorklistEvent } from './api-types.js';

export type Listener = (event: WorklistEvent) => void;

export interface LiveUpdatesOptions {
  dataDir: string;
  redisUrl: string | undefined;
  pollSeconds: number;
  /** Rebuilds the worklist from scratch (invalidating any cache). */
  rebuild: () => Promise<Worklist>;
  debounceMs?: number;
}

export class LiveUpdates {
  private readonly listeners = new Set<Listener>();
  private last = new Map<string, string>();
  private lastList: Worklist | null = null;
  private watcher: FSWatcher | null = null;
  private poll: NodeJS.Timeout | null = null;
  private events: QueueEvents[] = [];
  private pending: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;

  constructor(private readonly options: LiveUpdatesOptions) {}

  /** Adds a listener and sends it the current worklist at once. Returns the unsubscribe function. */
  async subscribe(listener: Listener): Promise<() => void> {
    this.listeners.add(listener);
    if (this.listeners.size === 1) this.start();
    const list = this.lastList ?? (await this.options.rebuild());
    if (this.lastList === null) this.remember(list);
    listener({ type: 'worklist', worklist: list });
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) void this.stop();
    };
  }

  /** Something may have changed (a verdict, a submission): look soon. */
  trigger(): void {
    if (this.listeners.size === 0) return;
    if (this.pending !== null) return;
    this.pending = setTimeout(() => {
      this.pending = null;
      void this.refresh();
    }, this.options.debounceMs ?? 250);
  }

  private async refresh(): Promise<void> {
    if (this.running !== null) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      try {
        const list = await this.options.rebuild();
        const changed = list.slides.filter((s) => this.last.get(s.id) !== JSON.stringify(s));
        const removed = [...this.last.keys()].some((id) => !list.slides.some((s) => s.id === id));
        this.remember(list);
        if (changed.length === 0 && !removed) return;
        for (const item of changed) this.emit({ type: 'slide', item });
        this.emit({ type: 'worklist', worklist: list });
      } catch {
        // Redis down or a folder mid-write: the next trigger or poll tries again.
      }
    })();
    await this.running;
    this.running = null;
    if (this.again) {
      this.again = false;
      void this.refresh();
    }
  }

  private remember(list: Worklist): void {
    this.lastList = list;
    this.last = new Map(list.slides.map((s) => [s.id, JSON.stringify(s)]));
  }

  private emit(event: WorklistEvent): void {
    for (const l of this.listeners) l(event);
  }

  private start(): void {
    const poke = (): void => this.trigger();
    try {
      // Non-recursive: a result folder appearing or being renamed shows here; summary.json
      // landing inside it is caught by the poll within pollSeconds.
      this.watcher = watch(this.options.dataDir, poke);
      this.watcher.on('error', () => undefined);
    } catch {
      this.watcher = null;
    }
    this.poll = setInterval(poke, this.options.pollSeconds * 1000);
    if (this.options.redisUrl !== undefined) {
      const connection = workerConnectionOptions(this.options.redisUrl);
      for (const name of [QUEUES.plan, QUEUES.aggregate]) {
        const ev = new QueueEvents(name, { connection });
        ev.on('error', () => undefined);
        for (const e of ['added', 'active', 'progress', 'completed', 'failed', 'removed'] as const) ev.on(e, poke);
        this.events.push(ev);
      }
    }
  }

  private async stop(): Promise<void> {
    this.watcher?.close();
    this.watcher = null;
    if (this.poll !== null) clearInterval(this.poll);
    this.poll = null;
    if (this.pending !== null) clearTimeout(this.pending);
    this.pending = null;
    const events = this.events;
    this.events = [];
    this.lastList = null;
    await Promise.all(events.map((e) => closeSoon(e)));
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await this.stop();
  }
}
