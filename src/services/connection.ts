/**
 * ConnectionService: the scope's NATS connections, one per lane ("main" for everything,
 * "pulls" for a worker's pull requests and deliveries), shared by every service of that
 * scope. Knows the server's version and what it supports. Options: connect-options.ts.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { ConnectionError } from "../model/errors.js";
import { BaseService } from "./base.js";
import { describeAuth, natsOptions, probeTlsRefusal } from "./connect-options.js";
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
