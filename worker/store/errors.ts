/** Errors raised while writing or reading a slide's result folder. */

export type StoreErrorCode = 'invalid_argument' | 'corrupt';

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  readonly path: string | undefined;

  constructor(code: StoreErrorCode, message: string, options?: { path?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.path = options?.path;
  }
}

/** A caller passed something that cannot be stored: an unsafe slide id, a heatmap of the wrong size. */
export class StoreArgumentError extends StoreError {
  constructor(message: string) {
    super('invalid_argument', message);
  }
}

/** A file in the result folder exists but cannot be parsed. */
export class CorruptResultError extends StoreError {
  constructor(path: string, reason: string, cause?: unknown) {
    super('corrupt', `${path}: ${reason}; delete the slide's result folder and run the slide again`, { path, cause });
  }
}
