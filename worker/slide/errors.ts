/**
 * Errors raised while opening or reading a slide. Every message names the file and says what a
 * person can do about it; the CLI prints `message` as one line and exits non-zero.
 */

export type SlideErrorCode =
  | 'not_found'
  | 'unsupported_format'
  | 'corrupt'
  | 'missing_mpp'
  | 'backend_unavailable'
  | 'invalid_argument'
  | 'changed'
  | 'too_large';

export class SlideError extends Error {
  readonly code: SlideErrorCode;
  readonly path: string | undefined;

  constructor(code: SlideErrorCode, message: string, options?: { path?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.path = options?.path;
  }
}

/** The path does not exist or is not a readable file. */
export class SlideNotFoundError extends SlideError {
  constructor(path: string, reason: string) {
    super('not_found', `${path}: ${reason}`, { path });
  }
}

/** The file is not a slide format any backend reads. */
export class UnsupportedFormatError extends SlideError {
  constructor(path: string, reason: string) {
    super('unsupported_format', `${path}: ${reason}`, { path });
  }
}

/** The file looks like a slide but its structure or pixel data is damaged (truncated, bad offsets, absurd sizes). */
export class CorruptSlideError extends SlideError {
  constructor(path: string, reason: string, cause?: unknown) {
    super('corrupt', `${path}: ${reason}`, { path, cause });
  }
}

/** The slide carries no usable microns-per-pixel and the caller gave none. */
export class MissingMppError extends SlideError {
  /**
   * `objectivePower`: the magnification the file records, if any; it gives the likely mpp. Without
   * it the message does not guess: a wrong mpp shrinks or grows everything the pipeline measures
   * (tissue, regions, areas), which can look like "no tissue" or like a result.
   */
  constructor(path: string, detail: string, objectivePower: number | null = null) {
    const likely =
      objectivePower !== null
        ? `the file records a ${objectivePower}x objective, so most likely --mpp ${(10 / objectivePower).toFixed(3)} (check the scanner's report)`
        : "find it in the scanner's report or the slide's label: the objective magnification, about 0.25 µm/px at 40x and 0.5 µm/px at 20x (scanners differ by a few %)";
    super(
      'missing_mpp',
      `${path}: no microns-per-pixel in the slide (${detail}); pass --mpp <microns per level-0 pixel> for this slide, or --fallback-mpp for every slide of a batch that lacks it: ${likely}`,
      { path },
    );
  }
}

/** The format needs a backend this build lacks (e.g. OpenSlide for NDPI/MRXS). */
export class BackendUnavailableError extends SlideError {
  constructor(path: string, format: string, remedy: string) {
    super('backend_unavailable', `${path}: ${format} needs ${remedy}`, { path });
  }
}

/** A caller asked for something impossible: a level that does not exist, a huge region, bad options. */
export class InvalidArgumentError extends SlideError {
  constructor(message: string, path?: string) {
    super('invalid_argument', path === undefined ? message : `${path}: ${message}`, path === undefined ? {} : { path });
  }
}

/** The first line of an error's message: decoder errors often append multi-line dumps. */
export function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0] ?? msg;
}

/**
 * The file's bytes are not the ones the analysis was described for (replaced or rewritten since
 * `submit`, or while it ran). Its result would be filed under the other content's id, so the
 * slide fails instead; submitting it again describes the new content.
 */
export class SlideChangedError extends SlideError {
  constructor(path: string, expected: string, actual: string) {
    super(
      'changed',
      `${path}: the slide changed since it was submitted (content fingerprint ${expected.slice(0, 12)}, now ${actual.slice(0, 12)}): analyze or submit it again to analyse what the file holds now`,
      { path },
    );
  }
}

/** The file is larger than flashslide reads without a pyramid (see SLIDE_LIMITS in open-slide.ts). */
export class TooLargeSlideError extends SlideError {
  constructor(path: string, reason: string) {
    super('too_large', `${path}: ${reason}`, { path });
  }
}
