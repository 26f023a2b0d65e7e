/**
 * naq's error classes. Every failure a user can see is one of these, with a stable
 * `code` and the CLI exit code it maps to. nats.js errors are translated into these
 * in exactly one place (src/services/nats-errors.ts).
 */

export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  timeout: 4,
  connection: 5,
  jobFailed: 6,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export const ErrorCode = {
  internal: "NAQ_INTERNAL",
  usage: "NAQ_USAGE",
  config: "NAQ_CONFIG",
  validation: "NAQ_VALIDATION",
  notFound: "NAQ_NOT_FOUND",
  timeout: "NAQ_TIMEOUT",
  connection: "NAQ_CONNECTION",
  auth: "NAQ_AUTH",
  conflict: "NAQ_CONFLICT",
  incompatible: "NAQ_INCOMPATIBLE",
  unsupported: "NAQ_UNSUPPORTED",
  jobFailed: "NAQ_JOB_FAILED",
  cancelled: "NAQ_CANCELLED",
  service: "NAQ_SERVICE",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class NaqError extends Error {
  override name = "NaqError";
  readonly code: ErrorCode = ErrorCode.internal;
  readonly exitCode: ExitCode = ExitCode.failure;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Bad command-line input or arguments that do not make sense together. */
export class UsageError extends NaqError {
  override name = "UsageError";
  override readonly code = ErrorCode.usage;
  override readonly exitCode = ExitCode.usage;
}

/** A configuration file, env var or flag holds a value naq does not accept. */
export class ConfigError extends NaqError {
  override name = "ConfigError";
  override readonly code = ErrorCode.config;
  override readonly exitCode = ExitCode.usage;
}

/** A document (job, schedule, input line) failed validation; `field` names where. */
export class ValidationError extends NaqError {
  override name = "ValidationError";
  override readonly code = ErrorCode.validation;
  override readonly exitCode = ExitCode.usage;
  constructor(
    message: string,
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A message over the server's max_payload: a job at enqueue, or a job's result when its
 * record is written. `bytes` is its size, `limit` the most the server takes (minus room for
 * headers). Exit code 2, like any input naq refuses.
 */
export class PayloadTooLargeError extends ValidationError {
  override name = "PayloadTooLargeError";
  constructor(
    message: string,
    readonly bytes: number,
    readonly limit: number,
    field = "payload",
  ) {
    super(message, field);
  }
}

export class NotFoundError extends NaqError {
  override name = "NotFoundError";
  override readonly code = ErrorCode.notFound;
  override readonly exitCode = ExitCode.notFound;
}

export class TimeoutError extends NaqError {
  override name = "TimeoutError";
  override readonly code = ErrorCode.timeout;
  override readonly exitCode = ExitCode.timeout;
}

/** NATS cannot be reached, or the connection was lost for good. */
export class ConnectionError extends NaqError {
  override name = "ConnectionError";
  override readonly code: ErrorCode = ErrorCode.connection;
  override readonly exitCode = ExitCode.connection;
}

/** NATS refused our credentials or permissions. */
export class AuthError extends ConnectionError {
  override name = "AuthError";
  override readonly code = ErrorCode.auth;
}

/** A compare-and-set lost, or an insert-only create found the key. */
export class ConflictError extends NaqError {
  override name = "ConflictError";
  override readonly code = ErrorCode.conflict;
}

/** An existing stream/bucket differs in a field that cannot be changed in place. */
export class IncompatibleError extends NaqError {
  override name = "IncompatibleError";
  override readonly code = ErrorCode.incompatible;
}

/** The server is too old (or lacks JetStream) for a requested feature. */
export class UnsupportedError extends NaqError {
  override name = "UnsupportedError";
  override readonly code = ErrorCode.unsupported;
}

/** An awaited job ended failed (or dead-lettered, or cancelled). */
export class JobFailedError extends NaqError {
  override name = "JobFailedError";
  override readonly code = ErrorCode.jobFailed;
  override readonly exitCode = ExitCode.jobFailed;
}

/** A service failed to initialize or clean up; wraps the cause. */
export class ServiceError extends NaqError {
  override name = "ServiceError";
  override readonly code = ErrorCode.service;
}

/**
 * A failure the command already reported in its output (e.g. a `naq check` status line):
 * the CLI exits with its code without printing the message again.
 */
export class ReportedError extends NaqError {
  override name = "ReportedError";
}

/** Thrown by a handler to fail its job at once, without further attempts. */
export class UnrecoverableError extends Error {
  override name = "UnrecoverableError";
}

/** Turns anything thrown into an Error, so catch blocks never handle `unknown` twice. */
export function coerceError(err: unknown): Error {
  if (err instanceof Error) return err;
  if (typeof err === "string") return new Error(err);
  try {
    // JSON.stringify returns undefined (not a string) for undefined, functions and symbols.
    return new Error(JSON.stringify(err) ?? String(err));
  } catch {
    return new Error(String(err));
  }
}

/** The exit code a CLI run should end with for this error. */
export function exitCodeOf(err: unknown): ExitCode {
  if (err instanceof NaqError) return err.exitCode;
  if (err instanceof AggregateError) {
    for (const e of err.errors) if (e instanceof NaqError) return e.exitCode;
  }
  return ExitCode.failure;
}
