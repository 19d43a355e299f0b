/**
 * Errors a route raises on purpose. Each carries its HTTP status and the `error` code of the
 * JSON body ({ error, message }); anything else reaching the error handler is a 500 whose
 * details stay in the server log.
 */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class NotFoundError extends HttpError {
  constructor(message: string) {
    super(404, 'not-found', message);
  }
}

export class BadRequestError extends HttpError {
  constructor(message: string) {
    super(400, 'bad-request', message);
  }
}

/** The review changed since the client read it (If-Match names an older version). */
export class ConflictError extends HttpError {
  constructor(message: string) {
    super(409, 'conflict', message);
  }
}

export class PreconditionRequiredError extends HttpError {
  constructor(message: string) {
    super(428, 'precondition-required', message);
  }
}

/** Submission without a queue: the server was started without --redis. */
export class NoQueueError extends HttpError {
  constructor(message = 'this server has no queue: start it with --redis URL (and run `flashslide worker`) to submit slides') {
    super(503, 'no-queue', message);
  }
}

export class TooLargeError extends HttpError {
  constructor(message: string) {
    super(413, 'too-large', message);
  }
}

/** The slide exists in the results but its file cannot be read by this server. */
export class UnprocessableError extends HttpError {
  constructor(message: string) {
    super(422, 'unreadable', message);
  }
}
