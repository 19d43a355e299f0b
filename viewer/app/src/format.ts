/** How numbers read on the page: fixed, short, with units. */

/** Decimals that resolve a step of `step` (e.g. 0.038 -> 3), at least `min`. */
export function decimalsFor(step: number, min = 1): number {
  if (!(step > 0) || !Number.isFinite(step)) return 3;
  return Math.max(min, Math.min(6, Math.ceil(-Math.log10(step)) + 1));
}

export function fmtScore(value: number | null | undefined, decimals = 2): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(decimals);
}

export function fmtInt(value: number | null | undefined): string {
  return value === null || value === undefined ? '—' : Math.round(value).toLocaleString('en-US');
}

/** A length in µm, switching to mm from 1000 µm. */
export function fmtLength(um: number): string {
  if (um >= 1000) return `${trim(um / 1000)} mm`;
  return `${trim(um)} µm`;
}

/** An area given in µm²: µm² below 0.01 mm², mm² above. */
export function fmtArea(um2: number): string {
  if (um2 >= 10_000) return `${(um2 / 1e6).toFixed(um2 >= 1e6 ? 2 : 3)} mm²`;
  return `${Math.round(um2).toLocaleString('en-US')} µm²`;
}

export function fmtMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms - m * 60_000) / 1000)} s`;
}

/** "3 min ago", "yesterday", or the date. */
export function fmtWhen(iso: string | null, now = Date.now()): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  const s = Math.round((now - t) / 1000);
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  if (s < 2 * 86_400) return 'yesterday';
  return new Date(t).toISOString().slice(0, 10);
}

/** Nominal objective magnification from the scan resolution: 0.25 µm/px = 40x, 0.5 = 20x. */
export function magnificationFromMpp(mpp: number): number {
  return 10 / mpp;
}

export function fmtMagnification(mag: number): string {
  return `${mag >= 10 ? Math.round(mag) : trim(mag)}×`;
}

function trim(v: number): string {
  const s = v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}
