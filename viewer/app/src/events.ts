/**
 * Live updates from GET /api/events (Server-Sent Events): one EventSource for the whole page,
 * shared by every subscriber. `event: worklist` carries the whole list, `event: slide` one item.
 * The browser reconnects by itself after a drop; subscribers see the connection state.
 */
import type { Worklist, WorklistEvent, WorklistItem } from '../../server/api-types.js';

export interface EventHandlers {
  worklist?(worklist: Worklist): void;
  slide?(item: WorklistItem): void;
  connection?(open: boolean): void;
}

const subscribers = new Set<EventHandlers>();
let source: EventSource | null = null;
let open = false;

function parse(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return null;
  }
}

/** Accepts both the WorklistEvent envelope and the bare payload. */
function asWorklist(data: unknown): Worklist | null {
  const d = data as Partial<WorklistEvent & Worklist> | null;
  if (d && 'worklist' in d && d.worklist) return d.worklist;
  if (d && Array.isArray(d.slides)) return d as Worklist;
  return null;
}

function asItem(data: unknown): WorklistItem | null {
  const d = data as Partial<{ item: WorklistItem } & WorklistItem> | null;
  if (d && d.item && typeof d.item.id === 'string') return d.item;
  if (d && typeof d.id === 'string') return d as WorklistItem;
  return null;
}

function ensureSource(): void {
  // A stream the server closed for good (401 when the session ended) is opened anew after sign-in.
  if (source && source.readyState !== EventSource.CLOSED) return;
  source?.close();
  source = new EventSource('/api/events');
  source.addEventListener('open', () => setOpen(true));
  source.addEventListener('error', () => setOpen(source?.readyState === EventSource.OPEN));
  source.addEventListener('worklist', (e) => {
    const list = asWorklist(parse((e as MessageEvent<string>).data));
    if (list) for (const s of subscribers) s.worklist?.(list);
  });
  source.addEventListener('slide', (e) => {
    const item = asItem(parse((e as MessageEvent<string>).data));
    if (item) for (const s of subscribers) s.slide?.(item);
  });
}

function setOpen(now: boolean): void {
  if (now === open) return;
  open = now;
  for (const s of subscribers) s.connection?.(open);
}

/** Starts listening (the first subscriber opens the stream); returns the unsubscribe. */
export function subscribe(handlers: EventHandlers): () => void {
  subscribers.add(handlers);
  ensureSource();
  handlers.connection?.(open);
  return () => {
    subscribers.delete(handlers);
  };
}
