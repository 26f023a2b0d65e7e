/**
 * ConnectionService: one pooled NATS connection per server list per scope, shared by
 * every service of that scope. Knows the server's version and what it supports.
 */
import { readFile } from "node:fs/promises";
import net from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import {
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  type Authenticator,
  type NatsConnection,
  type NodeConnectionOptions,
} from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import type { ConnectionConfig } from "../config/schema.js";
import { ConfigError, ConnectionError } from "../model/errors.js";
import { BaseService } from "./base.js";
import { connectError, permissionDenial, redactUrl, toNaqError } from "./nats-errors.js";
import { AckedPublisher } from "./acked-publish.js";

/** Server features naq may use, with the first server version that honours them. */
export const FEATURES = {
  /** Per-message TTL (Nats-TTL header) and subject delete markers. */
  "msg-ttl": "2.11.0",
  /** Message schedules (Nats-Schedule). */
  schedules: "2.12.0",
  /** Pausing a consumer until a time. */
  "consumer-pause": "2.11.0",
  /** Pull consumer priority groups (pinned client, overflow). */
  "priority-groups": "2.11.0",
  /** Multiple subject filters on one consumer. */
  "multi-filter": "2.10.0",
  /** Direct get from streams (allow_direct). */
  "direct-get": "2.9.0",
  /** Sync to disk before acknowledging a write (sync_interval: always). */
  "sync-always": "2.10.0",
  /** `+TERM <reason>`: older servers ignore a term that carries a reason (the message is redelivered). */
  "term-reason": "2.10.4",
} as const;
export type Feature = keyof typeof FEATURES;

export interface ServerSummary {
  version: string;
  serverName: string;
  serverId: string;
  jetstream: boolean;
  maxPayload: number;
  connectedUrl: string;
  cluster?: string;
}

type Semver = [number, number, number];
export function parseVersion(version: string): Semver {
  const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
}
export function versionAtLeast(version: string, min: string): boolean {
  const a = parseVersion(version);
  const b = parseVersion(min);
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

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

/** What a connection of the scope carries: "pulls" is a worker's pull requests and deliveries; "main" everything else. */
export type ConnectionLane = "main" | "pulls";

type DenialListener = { match: (subject: string) => boolean; fn: (err: Error) => void };

export class ConnectionService extends BaseService {
  private readonly pool = new Map<ConnectionLane, Promise<NatsConnection>>();
  private readonly denialListeners = new Set<DenialListener>();
  private readonly mainListeners = new Set<(up: boolean) => void>();
  private js?: JetStreamClient;
  private jsm?: Promise<JetStreamManager>;
  private acked?: Promise<AckedPublisher>;

  /**
   * The scope's connection for `lane`, opened once. Everything goes on "main" except a
   * worker's pull requests and deliveries (and so their acks), which have a connection of
   * their own: nats-server handles what one connection sends in order, one message after
   * another, so on a shared connection a pull waited behind the results, events and acks
   * of the jobs before it (steady state at c=100, median of 1 s samples: ~30.6k -> ~34.7k
   * jobs/s). A job is still acked only once its result is stored: the ack waits for the
   * result's PubAck, whichever connection carried it.
   */
  connection(lane: ConnectionLane = "main"): Promise<NatsConnection> {
    let nc = this.pool.get(lane);
    if (!nc) {
      nc = this.open(lane);
      this.pool.set(lane, nc);
      nc.catch(() => this.pool.delete(lane));
    }
    return nc;
  }

  private async open(lane: ConnectionLane): Promise<NatsConnection> {
    const cfg = this.config.connection;
    const servers = cfg.servers;
    const opts = await natsOptions(cfg, this.ctx.longLived);
    // Named apart in the server's connection list (`nats server report connections`).
    if (lane !== "main") opts.name = `${opts.name ?? "naq"} (${lane})`;
    try {
      const nc = await connect(opts);
      this.ctx.logger.debug(`connected to ${redactUrl(nc.getServer())} (nats-server ${nc.info?.version ?? "?"})`);
      void this.watchStatus(nc, lane);
      return nc;
    } catch (err) {
      const timedOut = err instanceof Error && err.name === "TimeoutError";
      const usesTls = opts.tls !== undefined || servers.some((u) => /^tls:\/\//i.test(u));
      const tlsRefusal = timedOut && usesTls && servers[0] ? await probeTlsRefusal(servers[0], cfg.tls, 2_000) : undefined;
      throw connectError(err, servers, { auth: describeAuth(cfg), tlsRefusal });
    }
  }

  /**
   * Calls `fn` with the server's error when it refuses this scope's publish or subscription
   * on a subject `match` accepts; returns the function that stops listening. nats.js rejects a
   * denied request at once, but reports a denied plain publish or pull request
   * (`$JS.API.CONSUMER.MSG.NEXT...`) only on the connection's status, so a reader that
   * waits for messages uses this to end with the error instead of waiting forever.
   */
  onPermissionDenied(match: (subject: string) => boolean, fn: (err: Error) => void): () => void {
    const listener: DenialListener = { match, fn };
    this.denialListeners.add(listener);
    return () => void this.denialListeners.delete(listener);
  }

  /**
   * Calls `fn(false)` when the main connection is lost and `fn(true)` when it is back;
   * returns the function that stops listening. A worker takes no jobs in between: its
   * pulls have a connection of their own, which may come back first.
   */
  onMainConnection(fn: (up: boolean) => void): () => void {
    this.mainListeners.add(fn);
    return () => void this.mainListeners.delete(fn);
  }

  private async watchStatus(nc: NatsConnection, lane: ConnectionLane): Promise<void> {
    try {
      for await (const s of nc.status()) {
        if (lane === "main" && (s.type === "disconnect" || s.type === "reconnect")) {
          for (const fn of [...this.mainListeners]) fn(s.type === "reconnect");
          continue;
        }
        if (s.type !== "error") continue;
        const denial = permissionDenial(s.error);
        if (!denial) continue;
        this.ctx.logger.debug(`NATS denied ${denial.operation} on ${denial.subject}`);
        for (const l of [...this.denialListeners]) if (l.match(denial.subject)) l.fn(s.error);
      }
    } catch {
      // the status iterator ends when the connection closes
    }
  }

  protected override async onInitialize(): Promise<void> {
    // Probe now so a scope fails at open with a clear error, not on first use.
    await this.connection();
  }

  protected override async onCleanup(): Promise<void> {
    const publisher = this.acked;
    this.acked = undefined;
    const all = await Promise.allSettled([...this.pool.values()]);
    this.pool.clear();
    await Promise.all(
      all.map(async (r) => {
        if (r.status === "fulfilled" && !r.value.isClosed()) {
          await r.value.drain().catch(() => r.value.close());
        }
      }),
    );
    (await publisher?.catch(() => undefined))?.close();
  }

  /** JetStream publishes with an awaited PubAck on the scope's connection, sharing one reply subscription (see acked-publish.ts). */
  publisher(): Promise<AckedPublisher> {
    if (!this.acked) {
      const p = this.connection().then((nc) => new AckedPublisher(nc, this.config.timeout));
      this.acked = p;
      p.catch(() => {
        if (this.acked === p) this.acked = undefined;
      });
    }
    return this.acked;
  }

  async jetstream(): Promise<JetStreamClient> {
    this.js ??= jetstream(await this.connection(), { timeout: this.config.timeout });
    return this.js;
  }

  async manager(): Promise<JetStreamManager> {
    this.jsm ??= (async () => {
      try {
        return await jetstreamManager(await this.connection(), { timeout: this.config.timeout, checkAPI: false });
      } catch (err) {
        throw toNaqError(err, "JetStream");
      }
    })();
    this.jsm.catch(() => (this.jsm = undefined));
    return this.jsm;
  }

  /** What the connected server says about itself. */
  async server(): Promise<ServerSummary> {
    const nc = await this.connection();
    const info = nc.info;
    if (!info) throw new ConnectionError("not connected to NATS");
    return {
      version: info.version,
      serverName: info.server_name,
      serverId: info.server_id,
      jetstream: info.jetstream === true,
      maxPayload: info.max_payload,
      connectedUrl: redactUrl(nc.getServer()),
      cluster: info.cluster,
    };
  }

  async supports(feature: Feature): Promise<boolean> {
    return versionAtLeast((await this.server()).version, FEATURES[feature]);
  }
}
