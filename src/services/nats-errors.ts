/**
 * The one place where nats.js errors become naq errors. Services call `toNaqError`
 * in their catch blocks; nothing else inspects nats.js error types or messages.
 */
import { errors as natsErrors } from "@nats-io/transport-node";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import {
  AuthError,
  ConflictError,
  ConnectionError,
  NaqError,
  NotFoundError,
  TimeoutError,
  UnsupportedError,
  coerceError,
} from "../model/errors.js";

/** JetStream API error codes naq reacts to (see nats-server's errors.json). */
export const ApiCode = {
  ...JetStreamApiCodes,
  StreamNameExist: 10058,
  MaxPayloadExceeded: 10054,
  ConsumerNameExists: 10013,
  ConsumerExists: 10148,
} as const;

export function apiErrorCode(err: unknown): number | undefined {
  return err instanceof JetStreamApiError ? err.code : undefined;
}

export function isNotFound(err: unknown): boolean {
  const code = apiErrorCode(err);
  return code === ApiCode.StreamNotFound || code === ApiCode.ConsumerNotFound || code === ApiCode.NoMessageFound;
}

/**
 * A JetStream publish found no stream for its subject. The server answers with no
 * responders; nats.js v3 reports that as JetStreamNotEnabled caused by a RequestError
 * caused by NoRespondersError, so the cause chain is what tells it apart.
 */
export function isNoStreamForSubject(err: unknown): boolean {
  if (apiErrorCode(err) === ApiCode.StreamNotFound) return true;
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof natsErrors.NoRespondersError) return true;
  }
  return false;
}

/** Describes where we tried to connect, without credentials in URLs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):([^@/]*)@/, "//$1:***@").replace(/\/\/([^:@/]+)@/, "//***@");
}

/** Maps an error thrown while connecting to `servers`. */
export function connectError(err: unknown, servers: readonly string[]): NaqError {
  const where = servers.map(redactUrl).join(", ");
  const e = coerceError(err);
  if (e instanceof natsErrors.AuthorizationError || e instanceof natsErrors.UserAuthenticationExpiredError) {
    return new AuthError(`cannot connect to NATS at ${where}: authorization failed (${e.message}); check --user/--password, --token, --nkey or --creds`, { cause: e });
  }
  if (e instanceof natsErrors.TimeoutError) {
    return new ConnectionError(`cannot connect to NATS at ${where}: timed out`, { cause: e });
  }
  const cause = e.cause instanceof Error ? e.cause.message : undefined;
  const reason = /ENOTFOUND|EAI_AGAIN/.test(e.message) ? "host not found" : e.message;
  const tls = /tls|certificate|self.signed|SSL/i.test(`${e.message} ${cause ?? ""}`) ? " (TLS)" : "";
  return new ConnectionError(`cannot connect to NATS at ${where}: ${reason}${tls}${cause && !cause.includes(reason) ? ` (${cause})` : ""}`, { cause: e });
}

/** Maps an error from a JetStream/KV operation; `what` names the operation for the message. */
export function toNaqError(err: unknown, what: string): Error {
  if (err instanceof NaqError) return err;
  const e = coerceError(err);
  const code = apiErrorCode(e);
  // nats.js does not export its JetStreamNotEnabled class; its name is the only handle.
  if (e.name === "JetStreamNotEnabled" || code === ApiCode.JetStreamNotEnabledForAccount) {
    return new UnsupportedError(`${what}: JetStream is not enabled on this server or account (start nats-server with -js)`, { cause: e });
  }
  if (code === ApiCode.StreamNotFound) return new NotFoundError(`${what}: stream not found`, { cause: e });
  if (code === ApiCode.ConsumerNotFound) return new NotFoundError(`${what}: consumer not found`, { cause: e });
  if (code === ApiCode.StreamWrongLastSequence || code === ApiCode.StreamWrongLastSequenceUnknown) {
    return new ConflictError(`${what}: the value changed since it was read (revision mismatch)`, { cause: e });
  }
  if (e instanceof natsErrors.TimeoutError) return new TimeoutError(`${what}: timed out waiting for the server`, { cause: e });
  if (e instanceof natsErrors.NoRespondersError) {
    return new UnsupportedError(`${what}: no JetStream responders (is JetStream enabled and the stream present?)`, { cause: e });
  }
  if (e instanceof natsErrors.PermissionViolationError) {
    return new AuthError(`${what}: permission denied (${e.message})`, { cause: e });
  }
  if (e instanceof natsErrors.ClosedConnectionError || e instanceof natsErrors.DrainingConnectionError) {
    return new ConnectionError(`${what}: the NATS connection is closed`, { cause: e });
  }
  if (e instanceof JetStreamApiError) return new NaqError(`${what}: ${e.message}`, { cause: e });
  return new NaqError(`${what}: ${e.message}`, { cause: e });
}
