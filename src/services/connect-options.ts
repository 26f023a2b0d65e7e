/**
 * How naq connects: NATS client options from naq's connection config (creds, nkey, user
 * and password, token, TLS), the auth in use for error messages, and a probe that tells
 * why a TLS server refused the connection. Pure of any scope: ConnectionService uses it.
 */
import { readFile } from "node:fs/promises";
import net from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { credsAuthenticator, nkeyAuthenticator, type Authenticator, type NodeConnectionOptions } from "@nats-io/transport-node";
import type { ConnectionConfig } from "../config/schema.js";
import { ConfigError } from "../model/errors.js";

async function readSecretFile(path: string, what: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new ConfigError(`cannot read ${what} file ${path}: ${(err as NodeJS.ErrnoException).code ?? "unreadable"}`, { cause: err });
  }
}

/** Translates naq's connection config into nats.js options (reading creds/nkey files). */
export async function natsOptions(cfg: ConnectionConfig, longLived: boolean): Promise<NodeConnectionOptions> {
  const authenticators: Authenticator[] = [];
  if (cfg.creds) {
    const creds = await readSecretFile(cfg.creds, "creds");
    const text = new TextDecoder().decode(creds);
    if (!/-{3,}BEGIN NATS USER JWT-{3,}/.test(text) || !/-{3,}BEGIN USER NKEY SEED-{3,}/.test(text)) {
      throw new ConfigError(`creds file ${cfg.creds} is not a NATS credentials file (it needs a "BEGIN NATS USER JWT" and a "BEGIN USER NKEY SEED" block)`);
    }
    authenticators.push(credsAuthenticator(creds));
  }
  if (cfg.nkey) {
    const value = cfg.nkey.trim();
    let seed = value;
    if (!value.startsWith("SU")) {
      let data: Uint8Array;
      try {
        data = await readFile(value);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? "unreadable";
        // Not path-like: it may be a mistyped seed, so never print it.
        throw new ConfigError(
          /[/.\\]/.test(value)
            ? `cannot read nkey seed file ${value}: ${code}`
            : `--nkey: the value is neither a user nkey seed (SU...) nor a readable file (${code})`,
          { cause: err },
        );
      }
      seed = new TextDecoder().decode(data).trim();
      if (!seed.startsWith("SU")) throw new ConfigError(`--nkey: file ${value} does not hold a user nkey seed (SU...)`);
    }
    authenticators.push(nkeyAuthenticator(new TextEncoder().encode(seed)));
  }
  // nats.js reads only host and port from a URL: a tls:// scheme alone would not make it
  // refuse a server without TLS. An empty tls option does (the CA is then the system's).
  const tlsUrl = cfg.servers.some((u) => /^tls:\/\//i.test(u));
  const tls =
    cfg.tls.ca || cfg.tls.cert || cfg.tls.key
      ? { caFile: cfg.tls.ca, certFile: cfg.tls.cert, keyFile: cfg.tls.key }
      : tlsUrl
        ? {}
        : undefined;
  if ((cfg.tls.cert && !cfg.tls.key) || (cfg.tls.key && !cfg.tls.cert)) {
    throw new ConfigError("TLS client certificate needs both --tls-cert and --tls-key");
  }
  if (cfg.password !== undefined && cfg.user === undefined) {
    throw new ConfigError("a password was given without a user (--user)");
  }
  return {
    servers: cfg.servers,
    name: cfg.name ?? "naq",
    user: cfg.user,
    pass: cfg.password,
    token: cfg.token,
    authenticator: authenticators.length > 0 ? authenticators : undefined,
    tls,
    timeout: cfg.connectTimeout,
    noAsyncTraces: true,
    // Long-lived processes ride out server restarts; one-shot commands fail fast.
    reconnect: true,
    maxReconnectAttempts: longLived ? -1 : 3,
    reconnectTimeWait: longLived ? 1_000 : 250,
    ignoreClusterUpdates: false,
  };
}

/** Which credentials `cfg` gives, for error messages (never their values); undefined: none. */
export function describeAuth(cfg: ConnectionConfig): string | undefined {
  const given: string[] = [];
  if (cfg.creds) given.push("--creds");
  if (cfg.nkey) given.push("--nkey");
  if (cfg.user !== undefined || cfg.password !== undefined) given.push("--user/--password");
  if (cfg.token) given.push("--token");
  if (cfg.servers.some((u) => /^[a-z]+:\/\/[^/]*@/i.test(u))) given.push("credentials in the server URL");
  return given.length > 0 ? given.join(", ") : undefined;
}

/** Node's codes for a TLS alert the server sent about our client certificate. */
const CLIENT_CERT_REFUSED = /ALERT_(BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|CERTIFICATE_REVOKED|CERTIFICATE_EXPIRED|ACCESS_DENIED|DECRYPT_ERROR)/;

/**
 * Why a TLS server ends our session, for a connect that timed out. With TLS 1.3 the server
 * checks the client certificate after the handshake has completed on the client's side;
 * nats.js then sees the socket close before the server's first PONG and retries until its
 * connect timeout, without an error. This probe redoes the handshake with the same files,
 * sends CONNECT and PING, and reports the alert the server answers with (undefined when the
 * server answers normally, is not a TLS server, or says nothing within `timeoutMs`).
 */
export async function probeTlsRefusal(url: string, cfg: ConnectionConfig["tls"], timeoutMs: number): Promise<string | undefined> {
  let host: string;
  let port: number;
  try {
    const u = new URL(/^[a-z]+:\/\//i.test(url) ? url : `nats://${url}`);
    host = u.hostname.replace(/^\[(.*)\]$/, "$1");
    port = Number(u.port || 4222);
  } catch {
    return undefined;
  }
  const read = async (file: string | undefined) => (file ? await readFile(file).catch(() => undefined) : undefined);
  const [ca, cert, key] = await Promise.all([read(cfg.ca), read(cfg.cert), read(cfg.key)]);
  return new Promise<string | undefined>((resolve) => {
    const sock = net.connect({ host, port });
    let secure: TLSSocket | undefined;
    const done = (reason: string | undefined) => {
      clearTimeout(timer);
      secure?.destroy();
      sock.destroy();
      resolve(reason);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    sock.once("error", () => done(undefined));
    sock.once("close", () => done(undefined));
    sock.once("data", (chunk: Buffer) => {
      if (!/"tls_required"\s*:\s*true|"tls_available"\s*:\s*true/.test(chunk.toString("utf8"))) return done(undefined);
      sock.removeAllListeners("close");
      secure = tlsConnect({ socket: sock, servername: net.isIP(host) ? undefined : host, ca, cert, key });
      secure.once("secureConnect", () => secure?.write('CONNECT {"verbose":false,"pedantic":false,"tls_required":true}\r\nPING\r\n'));
      secure.once("data", () => done(undefined));
      secure.once("close", () => done(undefined));
      secure.once("error", (err: NodeJS.ErrnoException) => {
        const code = err.code ?? "";
        if (!/CERTIFICATE_REQUIRED/.test(code) && !CLIENT_CERT_REFUSED.test(code)) return done(undefined);
        const alert = code.replace(/^ERR_SSL_(SSLV3|TLSV1|TLSV13)_ALERT_/, "").toLowerCase().replace(/_/g, " ");
        // Servers send "certificate required" or "bad certificate" for a missing one alike.
        done(
          cfg.cert
            ? `TLS: the server refused the client certificate ${cfg.cert} (${alert})`
            : `TLS: the server requires a client certificate (${alert}): give --tls-cert and --tls-key`,
        );
      });
    });
  });
}
