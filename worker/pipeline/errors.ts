/**
 * Errors of the pipeline's own intermediate files. A part file (one embedded batch, written by
 * the embed stage) that is missing or does not match the slide's plan means the work folder is
 * stale, e.g. left by an older version or an interrupted run with other options: the fix is to
 * recompute it (--force alone reuses finished parts), which the message says.
 */
export class PartFileError extends Error {
  override readonly name = 'PartFileError';
  constructor(message: string) {
    super(`${message}; delete the slide's work folder (the one holding parts/) to recompute it`);
  }
}
