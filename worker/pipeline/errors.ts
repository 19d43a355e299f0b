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

/**
 * A result or work folder that is not a plain folder inside --data (a symbolic link planted there,
 * a file in its place). Fails that analysis, never the run: the other slides still have theirs.
 */
export class DataFolderError extends Error {
  override readonly name = 'DataFolderError';
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(`${path} ${problem}`);
  }
}

/** What a failed write's errno means, in words a lab engineer acts on. */
const STORAGE_PROBLEMS: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'the disk quota is exceeded',
  EROFS: 'the file system is read-only',
  EIO: 'an input/output error (a failing disk or a lost network mount)',
  EFBIG: 'the file is larger than the file system allows',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
};

/**
 * The data folder could not be written (full, read-only, quota, permissions). It fails the
 * analysis that met it with the root cause, not "internal error"; the next slide is tried, since
 * space may have been freed meanwhile, and atomic writes mean nothing half-written stays behind.
 */
export class StorageError extends Error {
  override readonly name = 'StorageError';
  constructor(
    readonly code: string,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

/** A StorageError for a file system error of a kind above (with its path when Node gives one), else null. */
export function storageFailure(err: unknown, where: string): StorageError | null {
  if (err instanceof StorageError) return err;
  const e = err as NodeJS.ErrnoException | null;
  const code = e?.code;
  const path = typeof e?.path === 'string' ? e.path : where;
  // Node's recursive mkdir reports a read-only file system as ENOENT.
  if (code === 'ENOENT' && e?.syscall === 'mkdir') return new StorageError(code, `cannot create the folder ${path} (is the file system read-only, or was a folder above it removed?)`, err);
  if (typeof code !== 'string' || !(code in STORAGE_PROBLEMS)) return null;
  const verb = /^(read|stat|lstat|readdir|scandir|access)$/.test(e?.syscall ?? '') ? 'read' : 'write';
  return new StorageError(code, `cannot ${verb} ${path}: ${STORAGE_PROBLEMS[code]} (${code})`, err);
}
