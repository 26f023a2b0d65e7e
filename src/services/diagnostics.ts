/**
 * DiagnosticsService: what `naq doctor` reports — the server, JetStream and its limits,
 * each naq stream/bucket with drift from config, and honest durability warnings.
 */
import { BaseService, type ServiceContext } from "./base.js";
import { ConnectionService, versionAtLeast, FEATURES, type ServerSummary } from "./connection.js";
import { toNaqError } from "./nats-errors.js";
import { StreamService } from "./streams.js";
import { TopologyService, type TopologyCheck } from "./topology.js";

export type CheckLevel = "ok" | "warn" | "error";

export interface Check {
  level: CheckLevel;
  subject: string;
  message: string;
}

export interface JetStreamSummary {
  enabled: boolean;
  domain?: string;
  usage?: { memory: number; storage: number; streams: number; consumers: number };
  /** -1 means unlimited. */
  limits?: { maxMemory: number; maxStorage: number; maxStreams: number; maxConsumers: number; maxAckPending: number };
}

export interface DoctorReport {
  ok: boolean;
  server: ServerSummary;
  jetstream: JetStreamSummary;
  resources: TopologyCheck[];
  checks: Check[];
}

export class DiagnosticsService extends BaseService {
  static readonly deps = [ConnectionService, StreamService, TopologyService] as const;

  constructor(
    ctx: ServiceContext,
    private readonly connection: ConnectionService,
    private readonly streams: StreamService,
    private readonly topology: TopologyService,
  ) {
    super(ctx);
  }

  async report(): Promise<DoctorReport> {
    const server = await this.connection.server();
    const checks: Check[] = [];
    const jetstream = await this.jetstreamSummary(server);
    if (!jetstream.enabled) {
      checks.push({ level: "error", subject: "jetstream", message: "JetStream is not enabled: start nats-server with -js (or jetstream {} in its config)" });
      return { ok: false, server, jetstream, resources: [], checks };
    }
    checks.push(...this.serverChecks(server));
    const resources = await this.topology.check();
    checks.push(...this.resourceChecks(resources));
    checks.push(...(await this.clusterChecks(resources)));
    return { ok: !checks.some((c) => c.level === "error"), server, jetstream, resources, checks };
  }

  private async jetstreamSummary(server: ServerSummary): Promise<JetStreamSummary> {
    if (!server.jetstream) return { enabled: false };
    try {
      const jsm = await this.connection.manager();
      const a = await jsm.getAccountInfo();
      return {
        enabled: true,
        domain: a.domain,
        usage: { memory: a.memory, storage: a.storage, streams: a.streams, consumers: a.consumers },
        limits: {
          maxMemory: a.limits.max_memory,
          maxStorage: a.limits.max_storage,
          maxStreams: a.limits.max_streams,
          maxConsumers: a.limits.max_consumers,
          maxAckPending: a.limits.max_ack_pending,
        },
      };
    } catch (err) {
      const e = toNaqError(err, "JetStream account info");
      this.ctx.logger.debug(e.message);
      return { enabled: false };
    }
  }

  private serverChecks(server: ServerSummary): Check[] {
    const checks: Check[] = [];
    if (!versionAtLeast(server.version, FEATURES["sync-always"])) {
      checks.push({
        level: "warn",
        subject: "durability",
        message: `nats-server ${server.version} cannot fsync before acknowledging a write (sync_interval: always needs >= 2.10): an enqueued job can be lost if the machine (not just the process) crashes. For production use >= 2.10.23 with sync_interval: always, or 3 replicas`,
      });
    } else {
      checks.push({
        level: "ok",
        subject: "durability",
        message: `nats-server ${server.version} can fsync before ack, but naq cannot read the server's sync_interval: set sync_interval: always in its config for full durability`,
      });
    }
    if (!versionAtLeast(server.version, FEATURES["msg-ttl"])) {
      checks.push({
        level: "ok",
        subject: "features",
        message: `nats-server ${server.version}: per-message TTL, message schedules and consumer pause are unavailable (need 2.11+); naq uses its own scheduler and KV flags instead`,
      });
    }
    return checks;
  }

  private resourceChecks(resources: TopologyCheck[]): Check[] {
    const checks: Check[] = [];
    const missing = resources.filter((r) => !r.exists);
    if (missing.length > 0) {
      checks.push({
        level: "error",
        subject: "streams",
        message: `missing: ${missing.map((r) => r.name).join(", ")} (run: naq stream init)`,
      });
    }
    for (const r of resources.filter((x) => x.exists && x.drift.length > 0)) {
      const fixed = r.drift.filter((d) => !d.mutable);
      const list = r.drift.map((d) => `${d.field} ${String(d.from)} -> ${String(d.to)}`).join(", ");
      checks.push({
        level: "error",
        subject: r.name,
        message: fixed.length
          ? `differs from config in fields that cannot change in place: ${list}`
          : `differs from config: ${list} (run: naq stream init)`,
      });
    }
    const single = resources.filter((r) => r.exists && r.spec.replicas === 1);
    if (single.length > 0) {
      checks.push({
        level: "warn",
        subject: "replicas",
        message: `${single.length} streams/buckets have 1 replica: losing this server's disk loses queued jobs and results (use streams.replicas: 3 on a cluster)`,
      });
    }
    if (resources.some((r) => r.exists && r.spec.storage === "memory")) {
      checks.push({ level: "warn", subject: "storage", message: "memory storage: everything is lost when the server restarts" });
    }
    if (missing.length === 0 && checks.every((c) => c.level !== "error")) {
      checks.push({ level: "ok", subject: "streams", message: `all ${resources.length} streams and buckets present and matching config` });
    }
    return checks;
  }

  private async clusterChecks(resources: TopologyCheck[]): Promise<Check[]> {
    const checks: Check[] = [];
    for (const r of resources.filter((x) => x.exists && x.spec.replicas > 1)) {
      const h = await this.streams.health(r.stream);
      if (!h.healthy) checks.push({ level: "warn", subject: r.name, message: h.problems.join(", ") });
    }
    return checks;
  }
}
