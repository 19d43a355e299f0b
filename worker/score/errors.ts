/**
 * Errors raised while configuring or running anomaly scoring. Every message says what is wrong and
 * what a person can do about it; the CLI prints `message` as one line and exits non-zero.
 */

export type ScoreErrorCode = 'invalid_spec' | 'invalid_input' | 'invalid_file' | 'model_mismatch';

export class ScoreError extends Error {
  readonly code: ScoreErrorCode;
  readonly path: string | undefined;

  constructor(code: ScoreErrorCode, message: string, options?: { path?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.path = options?.path;
  }
}

/** A `--score` spec or scorer option that makes no sense (unknown method, empty path, k out of range). */
export class ScoreConfigError extends ScoreError {
  constructor(message: string) {
    super('invalid_spec', message);
  }
}

/** Embeddings handed to a scorer are malformed: wrong length, wrong dim, NaN or infinite values. */
export class ScoreInputError extends ScoreError {
  constructor(message: string) {
    super('invalid_input', message);
  }
}

/** A reference bank or head file is unreadable or lacks the tensors/metadata it must carry. */
export class ScoreFileError extends ScoreError {
  constructor(path: string, reason: string, cause?: unknown) {
    super('invalid_file', `${path}: ${reason}`, { path, cause });
  }
}

/**
 * A bank or head was made for another model: its vectors live in a different embedding space, so
 * distances or logits against this model's embeddings would be meaningless.
 */
export class ModelMismatchError extends ScoreError {
  constructor(path: string, reason: string) {
    super('model_mismatch', `${path}: ${reason}`, { path });
  }
}
