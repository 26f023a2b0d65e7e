/**
 * Scheduler: the long-lived component that fires delayed and recurring jobs. Run several
 * for availability: they elect a leader with a lease (see lease.ts) and only the leader
 * fires; a follower takes over within the lease TTL when the leader dies, at once when it
 * stops cleanly (the lease is released).
 *
 * Life: created -> running (lease loop + tick loop, both BackgroundTasks) -> closing (tick
 * stopped, lease released, scope closed) -> closed.
 *
 *   const scheduler = new Scheduler({ id: "sched-1" });
 *   scheduler.on("fired", (f) => console.log(f.jobId));
 *   await scheduler.start();
 *   ...
 *   await scheduler.close();
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { loadConfig } from "../config/load.js";
import { configSchema, type NaqConfig, type NaqConfigInput } from "../config/schema.js";
import { coerceError } from "../model/errors.js";
import { validateToken } from "../model/naming.js";
import { BackgroundTask, type BackgroundTaskHealth } from "../services/background-task.js";
import { ServiceManager, silentLogger, type Logger } from "../services/base.js";
import { SchedulerService, type FireInfo, type SkipInfo } from "../services/scheduler.js";
import { TypedEmitter } from "../worker/typed-emitter.js";
import { DueScan } from "./due-scan.js";
import { LeaderLease, LeaseLostError } from "./lease.js";

export interface SchedulerOptions {
  /** This process's id in the lease (default: host-pid-random). */
  id?: string;
  /** How often to look for due runs when nothing is known to be due sooner. Default 1000 ms. */
  tickMs?: number;
  /** Validated config, or input to validate; default: loaded like the CLI does (files + env). */
  config?: NaqConfig | NaqConfigInput;
  /** Share an existing scope instead of opening one (it is then not closed by close()). */
  services?: ServiceManager;
  logger?: Logger;
}

export type SchedulerEvents = {
  leader: (info: { id: string; since: string }) => void;
  follower: (info: { id: string; reason: string }) => void;
  fired: (info: FireInfo) => void;
  skipped: (info: SkipInfo) => void;
  error: (err: Error) => void;
  stopped: (info: { released: boolean }) => void;
};

export interface SchedulerCloseOptions {
  /** Give the lease up so a follower takes over at once (default true). */
  release?: boolean;
  /** Do not wait for a running tick. */
  force?: boolean;
}

export interface SchedulerHealth {
  id: string;
  leader: boolean;
  fired: number;
  skipped: number;
  lease?: BackgroundTaskHealth;
  tick?: BackgroundTaskHealth;
}

function schedulerIdFor(id?: string): string {
  if (id !== undefined) return validateToken(id, "scheduler id", 64);
  const base = hostname().replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 40) || "scheduler";
  return `${base}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

export class Scheduler extends TypedEmitter<SchedulerEvents> {
  readonly id: string;
  private readonly opts: SchedulerOptions;
  private services?: ServiceManager;
  private service?: SchedulerService;
  private lease?: LeaderLease;
  private leaseTask?: BackgroundTask;
  private tickTask?: BackgroundTask;
  private readonly scan = new DueScan();
  private wake?: NodeJS.Timeout;
  private starting?: Promise<void>;
  private closing?: Promise<void>;
  private closed!: () => void;
  private readonly whenClosed = new Promise<void>((r) => (this.closed = r));
  private firedCount = 0;
  private skippedCount = 0;

  constructor(opts: SchedulerOptions = {}) {
    super();
    this.opts = opts;
    this.id = schedulerIdFor(opts.id);
  }

  private get logger(): Logger {
    return this.opts.logger ?? silentLogger;
  }

  get isLeader(): boolean {
    return this.lease?.isLeader ?? false;
  }

  /** Connects, and starts the lease and tick loops; resolves once the first lease attempt ran. */
  start(): Promise<void> {
    this.starting ??= this.boot().catch(async (err: unknown) => {
      await this.shutdown({ release: false }).catch(() => undefined);
      throw err;
    });
    return this.starting;
  }

  /** Runs until closed. */
  async run(): Promise<void> {
    await this.start();
    await this.whenClosed;
  }

  private async boot(): Promise<void> {
    const cfg = this.opts.config;
    const config = cfg === undefined ? (await loadConfig()).config : isValidated(cfg) ? cfg : configSchema.parse(cfg);
    this.services = this.opts.services ?? (await ServiceManager.open(config, { logger: this.logger, longLived: true }));
    const service = await this.services.get(SchedulerService);
    this.service = service;
    const ttl = await service.leaseTtlMs();
    if (ttl !== config.kv.leaderTtl) {
      this.logger.warn(`the leader bucket's TTL is ${ttl}ms, not kv.leaderTtl ${config.kv.leaderTtl}ms; using the bucket's (naq stream init updates it)`);
    }
    const lease = new LeaderLease(
      {
        doc: (id, since, ttlMs, now) => service.leaseDoc(id, since, ttlMs, now),
        acquire: (doc) => service.acquireLease(doc),
        renew: (doc, rev) => service.renewLease(doc, rev),
        release: (rev) => service.releaseLease(rev),
      },
      this.id,
      ttl,
    );
    this.lease = lease;
    const tickMs = this.opts.tickMs ?? 1_000;
    this.tickTask = new BackgroundTask({
      name: "scheduler tick",
      intervalMs: tickMs,
      maxConsecutiveFailures: 0,
      logger: this.logger,
      step: () => this.tick(),
    });
    this.leaseTask = new BackgroundTask({
      name: "scheduler lease",
      intervalMs: Math.max(100, Math.min(1_000, Math.floor(ttl / 3))),
      maxConsecutiveFailures: 0,
      retryDelayMs: Math.max(100, Math.min(1_000, Math.floor(ttl / 10))),
      maxRetryDelayMs: Math.max(200, Math.floor(ttl / 3)),
      logger: this.logger,
      step: () => this.leaseStep(),
    });
    this.leaseTask.start();
    await this.leaseTask.trigger();
    this.tickTask.start();
  }

  private async leaseStep(): Promise<void> {
    const lease = this.lease as LeaderLease;
    const r = await lease.step();
    if (r === "acquired") {
      this.scan.reset();
      this.logger.info(`scheduler ${this.id} is the leader`);
      this.emit("leader", { id: this.id, since: new Date(lease.leaderSince ?? Date.now()).toISOString() });
      void this.tickTask?.trigger();
    } else if (r === "lost") {
      this.scan.reset();
      this.logger.warn(`scheduler ${this.id} lost the leader lease; no longer firing`);
      this.emit("follower", { id: this.id, reason: "lease lost" });
    }
  }

  private async tick(): Promise<void> {
    const lease = this.lease as LeaderLease;
    if (!lease.isLeader || this.closing) return;
    let report;
    try {
      report = await (this.service as SchedulerService).triggerDue(this.scan, lease);
    } catch (err) {
      if (err instanceof LeaseLostError) {
        this.scan.reset();
        return;
      }
      this.emit("error", coerceError(err));
      throw err;
    }
    this.firedCount += report.fired.length;
    this.skippedCount += report.skipped.reduce((n, s) => n + s.count, 0);
    for (const f of report.fired) this.emit("fired", f);
    for (const s of report.skipped) this.emit("skipped", s);
    if (this.wake) clearTimeout(this.wake);
    this.wake = undefined;
    if (report.more) {
      void this.tickTask?.trigger();
    } else if (report.nextWakeAt !== undefined) {
      // Fire on time rather than on the next regular tick.
      const delay = report.nextWakeAt - Date.now();
      if (delay < (this.opts.tickMs ?? 1_000)) this.wake = setTimeout(() => void this.tickTask?.trigger(), Math.max(0, delay));
    }
  }

  health(): SchedulerHealth {
    return {
      id: this.id,
      leader: this.isLeader,
      fired: this.firedCount,
      skipped: this.skippedCount,
      lease: this.leaseTask?.health(),
      tick: this.tickTask?.health(),
    };
  }

  /** Stops firing, releases the lease (unless `release: false`) and closes the scope. Idempotent. */
  close(opts: SchedulerCloseOptions = {}): Promise<void> {
    this.closing ??= this.shutdown(opts);
    return this.closing;
  }

  private async shutdown(opts: SchedulerCloseOptions): Promise<void> {
    const release = opts.release ?? true;
    const timeoutMs = opts.force ? 0 : 5_000;
    if (this.wake) clearTimeout(this.wake);
    await this.tickTask?.stop({ timeoutMs });
    await this.leaseTask?.stop({ timeoutMs });
    let released = false;
    const lease = this.lease;
    try {
      if (lease && lease.leaderSince !== undefined) {
        if (release) {
          await lease.release();
          released = true;
        } else lease.abandon();
      }
    } catch (err) {
      this.logger.warn(`releasing the leader lease failed (a follower takes over when it expires): ${coerceError(err).message}`);
    } finally {
      if (this.services && !this.opts.services) await this.services.close();
    }
    this.emit("stopped", { released });
    this.closed();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function isValidated(cfg: NaqConfig | NaqConfigInput): cfg is NaqConfig {
  const c = cfg as NaqConfig;
  return typeof c.timeout === "number" && typeof c.connection?.connectTimeout === "number" && c.kv !== undefined && c.streams !== undefined;
}
