/**
 * Worker: runs jobs from one or more queues (listed order is priority) with a fixed
 * number of slots, until closed.
 *
 * Life: created -> running (pull loops + heartbeat + in-progress acks + cancel watch)
 * -> stopping (no new pulls; running jobs get `graceMs`, then are released with a NAK
 * so another worker takes them at once) -> stopped (deregistered, events flushed).
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { loadConfig } from "../config/load.js";
import { configSchema, queueSettings, type NaqConfig, type NaqConfigInput } from "../config/schema.js";
import { coerceError } from "../model/errors.js";
import { WorkerEventType, WORKER_EVENTS_QUEUE } from "../model/events.js";
import { DEFAULT_QUEUE, poisonId, type JobRecord } from "../model/job.js";
import { validateQueueName } from "../model/naming.js";
import { BackgroundTask } from "../services/background-task.js";
import { ServiceManager, silentLogger, type Logger } from "../services/base.js";
import { EventService } from "../services/events.js";
import { JobService } from "../services/jobs.js";
import { KVStoreService, type Watcher } from "../services/kv.js";
import { QueueService, type Delivery, type FetchBatch } from "../services/queues.js";
import { WorkerService, type WorkerInfo } from "../services/workers.js";
import { execute, JobCancelledError, RunningJob, WorkerStoppingError, type ExecDeps, type Outcome } from "./execute.js";
import { handlersFromObject, type Handler, type Handlers } from "./handlers.js";
import { SlotPool } from "./slots.js";
import { TypedEmitter } from "./typed-emitter.js";

export const NAQ_VERSION = "0.1.0";

export interface WorkerOptions {
  /** Queues to take jobs from; the first listed has priority. Default ["default"]. */
  queues?: string[];
  handlers: Handlers | ReadonlyMap<string, Handler>;
  /** Jobs run at once by this worker (default: config worker.concurrency). */
  concurrency?: number;
  /** On close, how long running jobs may take to finish (default: config worker.grace). */
  graceMs?: number;
  /** Stop when the queues are empty and nothing runs. */
  burst?: boolean;
  /** Stop after this many jobs were taken. */
  maxJobs?: number;
  /** Stop after being idle (no job running or received) this long. */
  maxIdleMs?: number;
  name?: string;
  /** Validated config, or input to validate; default: loaded like the CLI does (files + env). */
  config?: NaqConfig | NaqConfigInput;
  logger?: Logger;
  /** Include stack traces in job errors. */
  verbose?: boolean;
}

export interface JobEventInfo {
  outcome: Outcome["kind"];
  id: string;
  queue: string;
  task?: string;
  attempt: number;
  durationMs?: number;
  delayMs?: number;
  error?: string;
  reason?: string;
}

export type WorkerEvents = {
  job: (info: JobEventInfo) => void;
  error: (err: Error) => void;
  stopped: (info: { processed: number; failed: number; forced: boolean }) => void;
};

export interface CloseOptions {
  graceMs?: number;
  /** Release running jobs at once (NAK) instead of waiting for them. */
  force?: boolean;
}

const PULL_EXPIRES_MS = 2_000;

function workerIdFor(name?: string): string {
  const base = (name ?? hostname()).replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 40) || "worker";
  return `${base}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

export class Worker extends TypedEmitter<WorkerEvents> {
  readonly id: string;
  readonly queues: string[];
  private readonly handlers: ReadonlyMap<string, Handler>;
  private readonly opts: WorkerOptions;
  private services?: ServiceManager;
  private config?: NaqConfig;
  private pool?: SlotPool;
  private readonly running = new Set<RunningJob>();
  private readonly batches = new Set<FetchBatch>();
  private readonly cancelled = new Set<string>();
  private cancelWatch?: Watcher<unknown>;
  private tasks: BackgroundTask[] = [];
  private loops: Promise<void>[] = [];
  private stopping = false;
  private forced = false;
  private forceNow?: () => void;
  private closing?: Promise<void>;
  private runPromise?: Promise<void>;
  private readonly idleQueues = new Set<string>();
  private taken = 0;
  private processed = 0;
  private failed = 0;
  private readonly startedAt = new Date();
  private lastActivity = Date.now();
  private status: WorkerInfo["status"] = "starting";

  constructor(opts: WorkerOptions) {
    super();
    this.opts = opts;
    this.queues = (opts.queues && opts.queues.length > 0 ? opts.queues : [DEFAULT_QUEUE]).map(validateQueueName);
    this.handlers = opts.handlers instanceof Map ? opts.handlers : handlersFromObject(opts.handlers as Handlers);
    this.id = workerIdFor(opts.name);
  }

  private get logger(): Logger {
    return this.opts.logger ?? silentLogger;
  }

  get stats() {
    return { processed: this.processed, failed: this.failed, running: this.running.size, taken: this.taken };
  }

  /** Starts the worker; resolves once it is pulling jobs. */
  async start(): Promise<void> {
    if (this.runPromise) return;
    let done!: () => void;
    this.runPromise = new Promise((resolve) => (done = resolve));
    this.runPromise.then = this.runPromise.then.bind(this.runPromise);
    try {
      await this.boot();
    } catch (err) {
      done();
      await this.services?.close().catch(() => undefined);
      throw err;
    }
    void Promise.all(this.loops).then(async () => {
      await this.close();
      done();
    });
  }

  /** Runs until closed (or burst / max-jobs / max-idle ends it). */
  async run(): Promise<void> {
    await this.start();
    await this.runPromise;
    await this.closing;
  }

  private async boot(): Promise<void> {
    const cfg = this.opts.config;
    this.config = cfg === undefined ? (await loadConfig()).config : isValidated(cfg) ? cfg : configSchema.parse(cfg);
    const concurrency = this.opts.concurrency ?? this.config.worker.concurrency;
    this.pool = new SlotPool(concurrency);
    this.services = await ServiceManager.open(this.config, { logger: this.logger, longLived: true });
    const [queues, jobs, events, workers, kv] = await Promise.all([
      this.services.get(QueueService),
      this.services.get(JobService),
      this.services.get(EventService),
      this.services.get(WorkerService),
      this.services.get(KVStoreService),
    ]);
    for (const q of this.queues) await queues.consumer(q);

    const names = this.services.ctx.names;
    this.cancelWatch = await kv.watch(names.buckets.cancels, {}, () => undefined);
    void this.followCancels(this.cancelWatch);

    const deps: ExecDeps = {
      workerId: this.id,
      handlers: this.handlers,
      writeRecord: (r) => jobs.writeRecord(r),
      deadLetter: (e, msgId) => jobs.deadLetter(e, msgId),
      getRecord: (id) => jobs.getRecord(id),
      jobExists: async (id) => (await jobs.lastEvent(id)) !== undefined,
      waits: (id) => jobs.waitCount(id),
      recordWait: (id, n) => jobs.recordWait(id, n),
      isCancelled: (id) => this.cancelled.has(id),
      emit: (e) => events.emit(e),
      verbose: this.opts.verbose,
    };

    const heartbeat = new BackgroundTask({
      name: "worker heartbeat",
      intervalMs: this.config.worker.heartbeat,
      step: () => workers.heartbeat(this.info()),
      maxConsecutiveFailures: 0,
      logger: this.logger,
      unref: true,
    });
    const ackWait = Math.min(...this.queues.map((q) => queueSettings(this.config as NaqConfig, q).ackWait));
    const inProgress = new BackgroundTask({
      name: "in-progress acks",
      intervalMs: Math.max(250, Math.floor(ackWait / 3)),
      runImmediately: false,
      step: async () => {
        for (const r of this.running) r.delivery.working();
      },
      maxConsecutiveFailures: 0,
      logger: this.logger,
      unref: true,
    });
    this.tasks = [heartbeat, inProgress];
    if (this.opts.maxIdleMs !== undefined) {
      const maxIdle = this.opts.maxIdleMs;
      this.tasks.push(
        new BackgroundTask({
          name: "idle check",
          intervalMs: Math.max(100, Math.min(1_000, maxIdle / 4)),
          runImmediately: false,
          step: async () => {
            if (this.running.size === 0 && Date.now() - this.lastActivity >= maxIdle) this.stopFetching();
          },
          unref: true,
        }),
      );
    }
    this.status = "running";
    await workers.register(this.info());
    events.emit({ type: WorkerEventType.started, queue: WORKER_EVENTS_QUEUE, jobId: this.id, worker: this.id });
    for (const t of this.tasks) t.start();
    this.loops = this.queues.map((q, i) => this.pullLoop(q, i, queues, deps));
  }

  private async followCancels(watch: Watcher<unknown>): Promise<void> {
    try {
      for await (const e of watch) {
        if (e.operation !== "PUT") continue;
        this.cancelled.add(e.key);
        for (const r of this.running) {
          if (r.job?.id === e.key) r.controller.abort(new JobCancelledError("cancelled by request"));
        }
      }
    } catch (err) {
      if (!this.stopping) this.emit("error", coerceError(err));
    }
  }

  private info(): WorkerInfo {
    return {
      v: 1,
      id: this.id,
      ...(this.opts.name ? { name: this.opts.name } : {}),
      host: hostname(),
      pid: process.pid,
      queues: this.queues,
      concurrency: this.pool?.capacity ?? 0,
      status: this.status,
      running: [...this.running].map((r) => r.job?.id ?? poisonId(r.delivery.seq)),
      processed: this.processed,
      failed: this.failed,
      startedAt: this.startedAt.toISOString(),
      lastHeartbeat: new Date().toISOString(),
      version: NAQ_VERSION,
    };
  }

  private async pullLoop(queue: string, priority: number, queues: QueueService, deps: ExecDeps): Promise<void> {
    const pool = this.pool as SlotPool;
    let idle = false;
    let failures = 0;
    while (!this.stopping) {
      // An idle queue asks for one slot, leaving the rest to lower-priority queues.
      const want = idle && this.queues.length > 1 ? 1 : pool.capacity;
      let n = await pool.reserve(priority, want);
      if (this.stopping || n === 0) {
        pool.release(n);
        break;
      }
      if (this.opts.maxJobs !== undefined) {
        const left = this.opts.maxJobs - this.taken;
        if (left <= 0) {
          pool.release(n);
          this.stopFetching();
          break;
        }
        if (n > left) {
          pool.release(n - left);
          n = left;
        }
      }
      let got = 0;
      let dispatched = 0;
      try {
        const batch = await queues.fetch(queue, n, PULL_EXPIRES_MS);
        this.batches.add(batch);
        try {
          for await (const d of batch) {
            got++;
            if (this.stopping) {
              d.nak();
              continue;
            }
            this.dispatch(d, deps);
            dispatched++;
          }
        } finally {
          this.batches.delete(batch);
        }
        failures = 0;
      } catch (err) {
        if (this.stopping) break;
        failures++;
        this.emit("error", coerceError(err));
        await sleep(Math.min(5_000, 250 * 2 ** Math.min(failures, 5)));
      } finally {
        // A dispatched job holds its slot until it ends (dispatch releases it); return only
        // the rest. Releasing a running job's slot here would let shutdown see an idle pool
        // and cut running jobs short instead of giving them the grace period.
        pool.release(n - Math.min(dispatched, n));
      }
      idle = got === 0;
      if (idle) this.idleQueues.add(queue);
      else this.idleQueues.delete(queue);
      if (this.opts.burst && this.idleQueues.size === this.queues.length && this.running.size === 0) this.stopFetching();
    }
  }

  private dispatch(d: Delivery, deps: ExecDeps): void {
    const run = new RunningJob(d);
    this.running.add(run);
    this.taken++;
    this.lastActivity = Date.now();
    if (this.opts.maxJobs !== undefined && this.taken >= this.opts.maxJobs) this.stopFetching();
    execute(run, deps)
      .then(
        (outcome) => this.report(outcome, d),
        (err: unknown) => {
          // The job ran (or not) but its outcome could not be stored: let it come back.
          const e = coerceError(err);
          this.emit("error", new Error(`job ${run.job?.id ?? poisonId(d.seq)}: ${e.message}`, { cause: e }));
          try {
            d.nak(1_000);
          } catch {
            // connection gone: the job is redelivered after ack_wait
          }
        },
      )
      .finally(() => {
        this.running.delete(run);
        this.lastActivity = Date.now();
        (this.pool as SlotPool).release(1);
      });
  }

  private report(o: Outcome, d: Delivery): void {
    const job = "job" in o ? o.job : undefined;
    const info: JobEventInfo = {
      outcome: o.kind,
      id: job?.id ?? ("id" in o ? o.id : poisonId(d.seq)),
      queue: d.queue,
      task: job?.task,
      attempt: "attempt" in o ? o.attempt : d.deliveryCount,
    };
    if (o.kind === "completed") {
      this.processed++;
      info.durationMs = o.durationMs;
    } else if (o.kind === "failed") {
      this.failed++;
      info.reason = o.reason;
      info.error = o.error?.message;
    } else if (o.kind === "retrying") {
      info.delayMs = o.delayMs;
      info.error = o.error.message;
    } else if (o.kind === "waiting") {
      // Waiting for dependencies is not an attempt.
      info.attempt = 0;
      info.delayMs = o.delayMs;
      info.reason = `waiting for ${o.on.join(", ")}`;
    }
    this.emit("job", info);
  }

  /** Stops taking new jobs; running ones go on. The worker closes when they are done. */
  private stopFetching(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.status = "stopping";
    for (const b of this.batches) b.stop();
    this.pool?.cancelWaiters();
  }

  /**
   * Graceful stop: no new jobs; running jobs get `graceMs` to finish, then are released
   * (NAK, redelivered at once elsewhere). Idempotent; `force` escalates a close in progress.
   */
  close(opts: CloseOptions = {}): Promise<void> {
    if (opts.force) {
      this.forced = true;
      this.forceNow?.();
    }
    this.closing ??= this.shutdown(opts.graceMs ?? this.opts.graceMs ?? this.config?.worker.grace ?? 30_000);
    return this.closing;
  }

  private async shutdown(graceMs: number): Promise<void> {
    this.stopFetching();
    await Promise.allSettled(this.loops);
    if (this.running.size > 0 && !this.forced) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.forceNow = () => {
          clearTimeout(timer);
          resolve();
        };
        void this.pool?.whenIdle().then(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    for (const r of this.running) r.controller.abort(new WorkerStoppingError("worker stopping"));
    await this.pool?.whenIdle();
    this.cancelWatch?.stop();
    await Promise.all(this.tasks.map((t) => t.stop({ timeoutMs: 2_000 })));
    if (this.services && !this.services.closed) {
      try {
        const [events, workers] = await Promise.all([this.services.get(EventService), this.services.get(WorkerService)]);
        events.emit({ type: WorkerEventType.stopped, queue: WORKER_EVENTS_QUEUE, jobId: this.id, worker: this.id });
        await workers.deregister(this.id).catch((err: unknown) => this.logger.warn(`deregister failed: ${coerceError(err).message}`));
      } finally {
        await this.services.close();
      }
    }
    this.emit("stopped", { processed: this.processed, failed: this.failed, forced: this.forced });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function isValidated(cfg: NaqConfig | NaqConfigInput): cfg is NaqConfig {
  const c = cfg as NaqConfig;
  return typeof c.timeout === "number" && typeof c.connection?.connectTimeout === "number" && c.worker !== undefined && c.streams !== undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export type { JobRecord };
