/**
 * ConnectionService: one pooled NATS connection per server list per scope, shared by
 * every service of that scope. Knows the server's version and what it supports.
 */
import { readFile } from "node:fs/promises";
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
import { connectError, redactUrl, toNaqError } from "./nats-errors.js";

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
  if (cfg.creds) authenticators.push(credsAuthenticator(await readSecretFile(cfg.creds, "creds")));
  if (cfg.nkey) {
    const seed = cfg.nkey.trim().startsWith("SU")
      ? new TextEncoder().encode(cfg.nkey.trim())
      : new TextEncoder().encode(new TextDecoder().decode(await readSecretFile(cfg.nkey, "nkey seed")).trim());
    authenticators.push(nkeyAuthenticator(seed));
  }
  const tls =
    cfg.tls.ca || cfg.tls.cert || cfg.tls.key
      ? { caFile: cfg.tls.ca, certFile: cfg.tls.cert, keyFile: cfg.tls.key }
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

export class ConnectionService extends BaseService {
  private readonly pool = new Map<string, Promise<NatsConnection>>();
  private js?: JetStreamClient;
  private jsm?: Promise<JetStreamManager>;

  /** The scope's connection to `servers` (default: the configured servers), opened once. */
  connection(servers: readonly string[] = this.config.connection.servers): Promise<NatsConnection> {
    const key = servers.join(",");
    let nc = this.pool.get(key);
    if (!nc) {
      nc = this.open(servers);
      this.pool.set(key, nc);
      nc.catch(() => this.pool.delete(key));
    }
    return nc;
  }

  private async open(servers: readonly string[]): Promise<NatsConnection> {
    const opts = await natsOptions({ ...this.config.connection, servers: [...servers] }, this.ctx.longLived);
    try {
      const nc = await connect(opts);
      this.ctx.logger.debug(`connected to ${redactUrl(nc.getServer())} (nats-server ${nc.info?.version ?? "?"})`);
      return nc;
    } catch (err) {
      throw connectError(err, servers);
    }
  }

  protected override async onInitialize(): Promise<void> {
    // Probe now so a scope fails at open with a clear error, not on first use.
    await this.connection();
  }

  protected override async onCleanup(): Promise<void> {
    const all = await Promise.allSettled([...this.pool.values()]);
    this.pool.clear();
    await Promise.all(
      all.map(async (r) => {
        if (r.status === "fulfilled" && !r.value.isClosed()) {
          await r.value.drain().catch(() => r.value.close());
        }
      }),
    );
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
