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

/** No credentials, or ones that are not (or no longer) valid: sign in again. */
export class UnauthorizedError extends HttpError {
  constructor(message: string) {
    super(401, 'unauthorized', message);
  }
}

/** A sign-in with a wrong name, password or token. */
export class BadCredentialsError extends HttpError {
  constructor(message: string) {
    super(401, 'bad-credentials', message);
  }
}

/** Signed in, but this request may not do what it asks (CSRF check, another reviewer's name). */
export class ForbiddenError extends HttpError {
  constructor(code: string, message: string) {
    super(403, code, message);
  }
}

/** Too many requests from this client (or for this account): try again after `retryAfterSeconds`. */
export class TooManyRequestsError extends HttpError {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(429, 'too-many-requests', message);
  }
}
