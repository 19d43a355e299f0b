/** Errors of report export, each with a message that says what to do. */

export class ReportError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A report option out of range, or a format that does not exist. */
export class ReportArgumentError extends ReportError {}

/**
 * A slide that has no report to give: unknown under the data folder, or still queued or
 * running. `state` says which.
 */
export class ReportTargetError extends ReportError {
  constructor(
    readonly target: string,
    readonly state: 'unknown' | 'queued' | 'running' | 'ambiguous',
    message: string,
  ) {
    super(message);
  }
}
