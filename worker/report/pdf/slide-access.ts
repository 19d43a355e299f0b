/**
 * The slide file behind a report, opened once for all of its figures and checked against the
 * fingerprint the analysis recorded: a report may be made months later, after the file was moved,
 * replaced or deleted. Nothing here throws; a slide that cannot be opened or read becomes a note
 * in the report, never a missing report.
 */
import { fingerprintFile } from '../../pipeline/fingerprint.js';
import { openSlide } from '../../slide/open-slide.js';
import type { SlideSource } from '../../slide/slide-source.js';
import type { SlideReport } from '../slide-report.js';

export interface SlideCheck {
  /** The open slide, or null with `openError` saying why. Close it with closeSlideAccess. */
  source: SlideSource | null;
  openError: string | null;
  /** Fingerprint of the file at report.slidePath now; null when it could not be read. */
  currentFingerprint: string | null;
  fingerprintError: string | null;
  /** Whether the file now is the file analysed; null when either fingerprint is unknown. */
  matches: boolean | null;
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export async function openSlideAccess(report: SlideReport): Promise<SlideCheck> {
  const [opened, fingerprinted] = await Promise.allSettled([openSlide(report.slidePath), fingerprintFile(report.slidePath)]);
  const source = opened.status === 'fulfilled' ? opened.value : null;
  const currentFingerprint = fingerprinted.status === 'fulfilled' ? fingerprinted.value : null;
  const recorded = report.slide.fingerprint;
  return {
    source,
    openError: opened.status === 'rejected' ? message(opened.reason) : null,
    currentFingerprint,
    fingerprintError: fingerprinted.status === 'rejected' ? message(fingerprinted.reason) : null,
    matches: currentFingerprint === null || recorded === null ? null : currentFingerprint === recorded,
  };
}

/** The check of a report made without touching the slide (a failed analysis). */
export const NO_SLIDE_ACCESS: Readonly<SlideCheck> = { source: null, openError: null, currentFingerprint: null, fingerprintError: null, matches: null };

export async function closeSlideAccess(check: SlideCheck): Promise<void> {
  try {
    await check.source?.close();
  } catch {
    // Closing a read-only handle cannot lose data; the report is already written.
  }
}
