/**
 * Progress of one slide, as both modes report it: regions done out of total, with a rate and an
 * ETA. The embedded runner draws it as a bar on stderr; queue workers publish it as job progress.
 */

import { printable } from '../util/printable.js';

export interface SlideProgress {
  analysisId: string;
  slideName: string;
  stage: 'plan' | 'embed' | 'aggregate' | 'done';
  regionsDone: number;
  regionsTotal: number;
}

export type ProgressListener = (p: SlideProgress) => void;

/** A progress bar drawn on a terminal: `end()` finishes a line left open (a slide that failed or was interrupted). */
export type ProgressBar = ProgressListener & { end(): void };

export class RateMeter {
  private readonly started = performance.now();
  constructor(private readonly initial = 0) {}

  /** Items per second since construction. */
  rate(done: number): number {
    const s = (performance.now() - this.started) / 1000;
    return s > 0 ? (done - this.initial) / s : 0;
  }

  etaSeconds(done: number, total: number): number | null {
    const r = this.rate(done);
    return r > 0 ? (total - done) / r : null;
  }
}

function formatSeconds(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '--:--';
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.round(s % 60)).padStart(2, '0')}`;
}

/**
 * A one-line progress bar, redrawn in place on a TTY and printed every 10 % otherwise. Slides may
 * overlap (the embedded runner scores one slide while the next is embedded): each has its own
 * rate meter, and a slide that finishes gets its final line printed above the running one.
 */
export function progressBar(stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  const slides = new Map<string, { meter: RateMeter; lastDecile: number }>();
  let open = false;
  const listener: ProgressListener = (p) => {
    let s = slides.get(p.analysisId);
    if (s === undefined) {
      s = { meter: new RateMeter(p.regionsDone), lastDecile: -1 };
      slides.set(p.analysisId, s);
    }
    if (p.stage === 'done') slides.delete(p.analysisId);
    const frac = p.regionsTotal > 0 ? p.regionsDone / p.regionsTotal : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const line =
      `${printable(p.slideName)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.regionsDone}/${p.regionsTotal} regions ` +
      `${s.meter.rate(p.regionsDone).toFixed(2)}/s ETA ${formatSeconds(s.meter.etaSeconds(p.regionsDone, p.regionsTotal))} ${p.stage}`;
    if (stream.isTTY) {
      stream.write(`\r${line}\x1b[K${p.stage === 'done' ? '\n' : ''}`);
      open = p.stage !== 'done';
    } else {
      const decile = Math.floor(frac * 10);
      if (decile !== s.lastDecile || p.stage === 'done') {
        s.lastDecile = decile;
        stream.write(`${line}\n`);
      }
    }
  };
  return Object.assign(listener, {
    end(): void {
      if (open) stream.write('\n');
      open = false;
    },
  });
}
