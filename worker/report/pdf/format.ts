/**
 * How numbers, dates and hashes read in the PDF report: fixed decimals so columns align, units
 * always written, and one dash for "not recorded" so a gap never reads as zero.
 */

export const NONE = '—';

/** A score as the report prints it everywhere (table, crops, colour bar): three decimals. */
export function fmtScore(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return NONE;
  return Math.abs(value) >= 1e4 ? value.toExponential(3) : value.toFixed(3);
}

/** A positive quantity with `digits` significant digits and no exponent (areas span 1e-5..1e3 mm²). */
export function fmtSig(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return NONE;
  if (value === 0) return '0';
  const abs = Math.abs(value);
  if (abs >= 10 ** digits) return value.toFixed(0);
  const decimals = Math.min(8, Math.max(0, digits - 1 - Math.floor(Math.log10(abs))));
  return value.toFixed(decimals);
}

export const fmtMm2 = (mm2: number | null | undefined): string => (mm2 === null || mm2 === undefined ? NONE : `${fmtSig(mm2)} mm²`);

export function fmtInt(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value) ? NONE : Math.round(value).toLocaleString('en-US');
}

export function fmtPercent(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value) ? NONE : `${fmtSig(value, 2)} %`;
}

/** A length in µm, or mm from 1000 µm. */
export function fmtLength(um: number): string {
  return um >= 1000 ? `${fmtSig(um / 1000)} mm` : `${fmtSig(um)} µm`;
}

export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return NONE;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms - m * 60_000) / 1000)} s`;
}

/** An ISO 8601 instant as "2026-11-30 23:45 UTC" (a filed report must not depend on the reader's zone). */
export function fmtDate(iso: string | null | undefined): string {
  if (!iso) return NONE;
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  return `${new Date(t).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** The first `n` characters of a hash, enough to recognise it; the full one is in the details. */
export function shortHash(hash: string | null | undefined, n = 12): string {
  if (!hash) return NONE;
  return hash.length > n ? `${hash.slice(0, n)}…` : hash;
}

/** A scoring parameter's value as text (numbers as given, objects as compact JSON). */
export function fmtParam(value: unknown): string {
  if (value === null || value === undefined) return NONE;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** "1", "2", "5" x 10^k: the scale bar length nearest below `um`. */
export function niceLength(um: number): number {
  if (!(um > 0) || !Number.isFinite(um)) return 1;
  const k = 10 ** Math.floor(Math.log10(um));
  for (const m of [5, 2, 1]) if (m * k <= um) return m * k;
  return k;
}
