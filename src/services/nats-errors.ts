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

/**
 * The permission the server refused, when `err` or one of its causes is that refusal. A
 * denied request rejects with a RequestError caused by the PermissionViolationError; a
 * denied plain publish or pull request is only reported on the connection's status.
 */
export function permissionDenial(err: unknown): { operation: "publish" | "subscription"; subject: string } | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof natsErrors.PermissionViolationError) {
      return { operation: e.operation === "subscription" ? "subscription" : "publish", subject: e.subject };
    }
  }
  return undefined;
}

/** "permission denied: NATS does not allow this user to publish to "<subject>"". */
export function describeDenial(d: { operation: "publish" | "subscription"; subject: string }): string {
  return `permission denied: NATS does not allow this user to ${d.operation === "subscription" ? "subscribe to" : "publish to"} "${d.subject}"`;
}

/** What a connection attempt knew that the error cannot say. */
export interface ConnectHints {
  /** The credentials given ("--creds", "--user/--password", ...); undefined when none were. */
  auth?: string;
  /** Why the server ended the TLS session, found by a probe after a timed-out connect. */
  tlsRefusal?: string;
}

/** Node's codes for a server certificate that no trusted CA signed. */
const UNTRUSTED_CERT = /^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE)$/;

/** A one-line reason for a failed TLS handshake, or undefined when `e` is not one. */
function tlsReason(e: Error): string | undefined {
  const code = (e as NodeJS.ErrnoException).code ?? "";
  if (UNTRUSTED_CERT.test(code)) {
    return `TLS: the server's certificate is not trusted (${e.message}); give the CA that signed it with --tls-ca`;
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") return `TLS: the server's certificate does not match the host name (${e.message})`;
  if (code === "CERT_HAS_EXPIRED" || code === "CERT_NOT_YET_VALID") return `TLS: the server's certificate is not valid now (${e.message})`;
  if (/does not support 'tls'|'?tls'? is not available on this server/i.test(e.message)) {
    return "TLS: the server does not offer TLS, but a tls:// URL or --tls-* option was given";
  }
  if (/^ERR_SSL_|^ERR_TLS_|^ERR_OSSL_/.test(code)) return `TLS: ${e.message}`;
  return undefined;
}

/** Maps an error thrown while connecting to `servers`. */
export function connectError(err: unknown, servers: readonly string[], hints: ConnectHints = {}): NaqError {
  const where = servers.map(redactUrl).join(", ");
  const e = coerceError(err);
  if (e instanceof natsErrors.AuthorizationError || e instanceof natsErrors.UserAuthenticationExpiredError) {
    const advice = hints.auth
      ? `the server refused the credentials given (${hints.auth})`
      : "the server requires credentials: give --user/--password, --token, --nkey or --creds";
    return new AuthError(`cannot connect to NATS at ${where}: authorization failed (${e.message}): ${advice}`, { cause: e });
  }
  if (e instanceof natsErrors.TimeoutError) {
    if (hints.tlsRefusal) return new AuthError(`cannot connect to NATS at ${where}: ${hints.tlsRefusal}`, { cause: e });
    return new ConnectionError(`cannot connect to NATS at ${where}: timed out`, { cause: e });
  }
  const tls = tlsReason(e) ?? (e.cause instanceof Error ? tlsReason(e.cause) : undefined);
  if (tls) return new AuthError(`cannot connect to NATS at ${where}: ${tls}`, { cause: e });
  const cause = e.cause instanceof Error ? e.cause.message : undefined;
  const reason = /ENOTFOUND|EAI_AGAIN/.test(e.message) ? "host not found" : e.message;
  const tlsHint = /tls|certificate|self.signed|SSL/i.test(`${e.message} ${cause ?? ""}`) ? " (TLS)" : "";
  return new ConnectionError(`cannot connect to NATS at ${where}: ${reason}${tlsHint}${cause && !cause.includes(reason) ? ` (${cause})` : ""}`, { cause: e });
}

/** Maps an error from a JetStream/KV operation; `what` names the operation for the message. */
export function toNaqError(err: unknown, what: string): Error {
  if (err instanceof NaqError) return err;
  const e = coerceError(err);
  const denied = permissionDenial(e);
  if (denied) return new AuthError(`${what}: ${describeDenial(denied)}`, { cause: e });
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
  if (e instanceof natsErrors.ClosedConnectionError || e instanceof natsErrors.DrainingConnectionError) {
    return new ConnectionError(`${what}: the NATS connection is closed`, { cause: e });
  }
  if (e instanceof JetStreamApiError) return new NaqError(`${what}: ${e.message}`, { cause: e });
  return new NaqError(`${what}: ${e.message}`, { cause: e });
}
