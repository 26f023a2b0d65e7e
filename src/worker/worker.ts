/**
 * Worker: runs jobs from one or more queues (listed order is priority) with a fixed
 * number of slots, until closed.
 *
 * Life: created -> running (pull loops + heartbeat + in-progress acks + cancel, pause
 * and stop-request watches) -> stopping (no new pulls; running jobs get `graceMs`, then
 * are released with a NAK so another worker takes them at once; exec commands still
 * alive are killed) -> stopped (deregistered, events flushed).
 *
 * A paused queue's pull loop waits (no pull requests) until the queue is resumed; a pull
 * in flight when the pause arrives is stopped. Jobs already delivered still run.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { loadConfig } from "../config/load.js";
import { configSchema, queueSettings, type NaqConfig, type NaqConfigInput } from "../config/schema.js";
import { coerceError, UsageError } from "../model/errors.js";
import { EXEC_TASK } from "../model/exec.js";
import { WorkerEventType, WORKER_EVENTS_QUEUE } from "../model/events.js";
import { DEFAULT_QUEUE, poisonId, type JobRecord } from "../model/job.js";
import { validateQueueName } from "../model/naming.js";
import { BackgroundTask } from "../services/background-task.js";
import { ServiceManager, silentLogger, type Logger } from "../services/base.js";
import { ControlService, type Follow, type StopRequest } from "../services/control.js";
import { EventService } from "../services/events.js";
import { JobService } from "../services/jobs.js";
import { KVStoreService, type Watcher } from "../services/kv.js";
import { QueueService, type Delivery, type FetchBatch } from "../services/queues.js";
import { WorkerService, type WorkerInfo } from "../services/workers.js";
import { ExecRunner } from "./exec-task.js";
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
  /**
   * Commands this worker runs as built-in `exec` jobs: names (resolved on PATH at start)
   * or absolute paths. Without it, exec jobs are dead-lettered. `*` is refused.
   */
  allowExec?: string[];
  /** For exec jobs: time between SIGTERM and SIGKILL of the process group (default 5s). */
  execKillGraceMs?: number;
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
  /** A heartbeat was written. */
  heartbeat: (at: Date) => void;
  /** A queue was paused or resumed (also for flags found at start). */
  pause: (info: { queue: string; paused: boolean }) => void;
  /** An operator asked this worker to stop (`naq worker stop`). */
  stopRequested: (req: StopRequest) => void;
  error: (err: Error) => void;
  stopped: (info: { processed: number; failed: number; forced: boolean }) => void;
};

export interface CloseOptions {
  graceMs?: number;
  /** Release running jobs at once (NAK) instead of waiting for them. */
  force?: boolean;
}

const PULL_EXPIRES_MS = 2_000;
/** Pulls one queue loop keeps open at once (the consumer allows 512 waiting pulls in all). */
const MAX_OPEN_PULLS = 4;

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
  private noneRunning: Array<() => void> = [];
  private readonly batches = new Map<FetchBatch, string>();
  private readonly exec: ExecRunner;
  private readonly paused = new Set<string>();
  private wakers: Array<() => void> = [];
  private pauseWatch?: Follow<unknown>;
  private stopWatch?: Follow<unknown>;
  private stopRequest?: StopRequest;
  private lastHeartbeatAt?: Date;
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
  /** Jobs asked for in open pulls and not yet dispatched (for --max-jobs). */
  private pulledNotTaken = 0;
  private processed = 0;
  private failed = 0;
  private readonly startedAt = new Date();
  private lastActivity = Date.now();
  private status: WorkerInfo["status"] = "starting";

  constructor(opts: WorkerOptions) {
    super();
    this.opts = opts;
    this.queues = (opts.queues && opts.queues.length > 0 ? opts.queues : [DEFAULT_QUEUE]).map(validateQueueName);
    const handlers = new Map(opts.handlers instanceof Map ? opts.handlers : handlersFromObject(opts.handlers as Handlers));
    if (handlers.has(EXEC_TASK)) {
      throw new UsageError(`task name "${EXEC_TASK}" is reserved for naq's built-in exec task: rename the handler (allow commands with --allow-exec)`);
    }
    this.exec = new ExecRunner({ allow: opts.allowExec, killGraceMs: opts.execKillGraceMs });
    if (this.exec.enabled) handlers.set(EXEC_TASK, this.exec.handler);
    this.handlers = handlers;
    this.id = workerIdFor(opts.name);
  }

  private get logger(): Logger {
    return this.opts.logger ?? silentLogger;
  }

  get stats() {
    return { processed: this.processed, failed: this.failed, running: this.running.size, taken: this.taken };
  }

  /** When the last heartbeat was written, if one was. */
  get lastHeartbeat(): Date | undefined {
    return this.lastHeartbeatAt;
  }

  /** Jobs this worker runs at once at most (0 before start). */
  get concurrency(): number {
    return this.pool?.capacity ?? 0;
  }

  /** Queues of this worker that are paused now. */
  get pausedQueues(): string[] {
    return this.queues.filter((q) => this.paused.has(q));
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
    const [queues, jobs, events, workers, kv, control] = await Promise.all([
      this.services.get(QueueService),
      this.services.get(JobService),
      this.services.get(EventService),
      this.services.get(WorkerService),
      this.services.get(KVStoreService),
      this.services.get(ControlService),
    ]);
    for (const q of this.queues) await queues.consumer(q);

    const names = this.services.ctx.names;
    this.cancelWatch = await kv.watch(names.buckets.cancels, {}, () => undefined);
    void this.followCancels(this.cancelWatch);
    // Watch first, then read: a pause set in between is seen by one or the other.
    const pauseWatch = await control.watchPauses();
    this.pauseWatch = pauseWatch;
    for (const q of (await control.paused()).keys()) this.setPaused(q, true);
    void this.followPauses(pauseWatch);
    const stopWatch = await control.watchStop(this.id);
    this.stopWatch = stopWatch;
    void this.followStop(stopWatch);

    const deps: ExecDeps = {
      workerId: this.id,
      handlers: this.handlers,
      handlerSettled: (run) => this.releaseSlot(run),
      writeRecord: (r) => jobs.writeRecord(r),
      deadLetter: (e, msgId) => jobs.deadLetter(e, msgId),
      getRecord: (id) => jobs.getRecord(id),
      jobExists: async (id) => (await jobs.lastEvent(id)) !== undefined,
      waits: (id) => jobs.waitCount(id),
      recordWait: (id, n) => jobs.recordWait(id, n),
      isCancelled: (id) => this.cancelled.has(id),
      refuse: (job) => this.exec.refuse(job),
      emit: (e) => events.emit(e),
      verbose: this.opts.verbose,
    };

    const heartbeat = new BackgroundTask({
      name: "worker heartbeat",
      intervalMs: this.config.worker.heartbeat,
      step: async () => {
        await workers.heartbeat(this.info());
        this.lastHeartbeatAt = new Date();
        this.emit("heartbeat", this.lastHeartbeatAt);
      },
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
    this.lastHeartbeatAt = new Date();
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

  private async followPauses(watch: Follow<{ queue: string; paused: boolean }>): Promise<void> {
    try {
      for await (const e of watch) this.setPaused(e.queue, e.paused);
    } catch (err) {
      if (!this.stopping) this.emit("error", coerceError(err));
    }
  }

  private setPaused(queue: string, paused: boolean): void {
    if (!this.queues.includes(queue) || this.paused.has(queue) === paused) return;
    if (paused) {
      this.paused.add(queue);
      // Stop the pull in flight: the server drops a pull request nobody listens to.
      for (const [b, q] of this.batches) if (q === queue) b.stop();
    } else {
      this.paused.delete(queue);
    }
    this.wake();
    this.emit("pause", { queue, paused });
  }

  private async followStop(watch: Follow<StopRequest | undefined>): Promise<void> {
    try {
      for await (const req of watch) {
        if (!req || this.stopRequest) continue;
        this.stopRequest = req;
        this.emit("stopRequested", req);
        void this.close(req.graceMs !== undefined ? { graceMs: req.graceMs } : {});
      }
    } catch (err) {
      if (!this.stopping) this.emit("error", coerceError(err));
    }
  }

  /** Wakes pull loops waiting for a change (resume, stop). */
  private wake(): void {
    const w = this.wakers;
    this.wakers = [];
    for (const fn of w) fn();
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.wakers.push(resolve));
  }

  private checkBurst(): void {
    if (this.opts.burst && this.idleQueues.size === this.queues.length && this.running.size === 0) this.stopFetching();
  }

  private info(): WorkerInfo {
    const runningByQueue: Record<string, number> = {};
    for (const r of this.running) runningByQueue[r.delivery.queue] = (runningByQueue[r.delivery.queue] ?? 0) + 1;
    const paused = this.pausedQueues;
    return {
      v: 1,
      id: this.id,
      ...(this.opts.name ? { name: this.opts.name } : {}),
      host: hostname(),
      pid: process.pid,
      queues: this.queues,
      concurrency: this.pool?.capacity ?? 0,
      status: this.status === "running" && paused.length === this.queues.length ? "paused" : this.status,
      running: [...this.running].map((r) => r.job?.id ?? poisonId(r.delivery.seq)),
      runningByQueue,
      ...(paused.length > 0 ? { paused } : {}),
      ...(this.exec.enabled ? { allowExec: this.exec.rules.map((r) => (r.kind === "name" ? r.name : r.path)) } : {}),
      processed: this.processed,
      failed: this.failed,
      startedAt: this.startedAt.toISOString(),
      lastHeartbeat: new Date().toISOString(),
      version: NAQ_VERSION,
    };
  }

  /**
   * One queue's pulls. Each pull asks for as many jobs as there are free slots and is
   * consumed in the background, so a new pull goes out as soon as a slot frees (while
   * earlier pulls are still open), instead of after the previous batch ended; slots freed
   * in the same turn are gathered into one pull. At most MAX_OPEN_PULLS are open at once.
   */
  private async pullLoop(queue: string, priority: number, queues: QueueService, deps: ExecDeps): Promise<void> {
    const pool = this.pool as SlotPool;
    const open = new Set<Promise<void>>();
    let idle = false;
    let failures = 0;
    while (!this.stopping) {
      if (failures > 0) await sleep(Math.min(5_000, 250 * 2 ** Math.min(failures, 5)));
      if (this.stopping) break;
      if (this.paused.has(queue)) {
        // Paused: no pull requests until resumed (or stopped); counts as idle for --burst.
        this.idleQueues.add(queue);
        this.checkBurst();
        if (!this.stopping) await this.changed();
        continue;
      }
      // Several pulls at once only while jobs are flowing: on an empty queue one long poll is enough.
      if (open.size >= (idle ? 1 : MAX_OPEN_PULLS)) {
        await Promise.race(open);
        continue;
      }
      // An idle queue asks for one slot, leaving the rest to lower-priority queues.
      const want = idle && this.queues.length > 1 ? 1 : pool.capacity;
      let n = await pool.reserve(priority, want);
      if (n > 0 && n < want && open.size > 0) {
        // Let the jobs finishing in this turn hand back their slots, then pull for all of them.
        await new Promise((r) => setImmediate(r));
        n += pool.tryReserve(priority, want - n);
      }
      if (this.stopping || n === 0 || this.paused.has(queue)) {
        pool.release(n);
        if (this.stopping || n === 0) break;
        continue;
      }
      if (this.opts.maxJobs !== undefined) {
        const left = this.opts.maxJobs - this.taken - this.pulledNotTaken;
        if (left <= 0) {
          pool.release(n);
          if (open.size === 0) {
            this.stopFetching();
            break;
          }
          await Promise.race(open);
          continue;
        }
        if (n > left) {
          pool.release(n - left);
          n = left;
        }
      }
      let batch: FetchBatch;
      try {
        batch = await queues.fetch(queue, n, PULL_EXPIRES_MS);
        failures = 0;
      } catch (err) {
        pool.release(n);
        if (this.stopping) break;
        failures++;
        this.emit("error", coerceError(err));
        continue;
      }
      this.pulledNotTaken += n;
      const consuming: Promise<void> = this.consumeBatch(queue, batch, n, deps).then(({ got, failed }) => {
        open.delete(consuming);
        failures = failed ? failures + 1 : 0;
        idle = got === 0;
        // Empty only when this pull found nothing and no other pull is still open.
        if (idle && open.size === 0) this.idleQueues.add(queue);
        else if (!idle) this.idleQueues.delete(queue);
        this.checkBurst();
      });
      open.add(consuming);
    }
    await Promise.allSettled(open);
  }

  /** Runs the jobs of one pull as they arrive; returns how many arrived and whether the pull failed. */
  private async consumeBatch(queue: string, batch: FetchBatch, reserved: number, deps: ExecDeps): Promise<{ got: number; failed: boolean }> {
    const pool = this.pool as SlotPool;
    this.batches.set(batch, queue);
    if (this.paused.has(queue)) batch.stop();
    let got = 0;
    let dispatched = 0;
    let failed = false;
    try {
      for await (const d of batch) {
        got++;
        if (this.stopping || dispatched >= reserved) {
          d.nak();
          continue;
        }
        this.pulledNotTaken--;
        this.dispatch(d, deps);
        dispatched++;
      }
    } catch (err) {
      failed = true;
      if (!this.stopping) this.emit("error", coerceError(err));
    } finally {
      this.batches.delete(batch);
      this.pulledNotTaken -= reserved - dispatched;
      // A dispatched job holds its slot until its handler settles (dispatch releases it);
      // return only the rest. Releasing a running job's slot here would let shutdown cut it short.
      pool.release(reserved - dispatched);
    }
    return { got, failed };
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
        this.releaseSlot(run);
        if (this.running.size === 0) {
          const waiters = this.noneRunning;
          this.noneRunning = [];
          for (const w of waiters) w();
        }
      });
  }

  /**
   * A job's slot goes back as soon as its handler settles, so the next pull overlaps the
   * writing of this job's outcome; the job itself stays in `running` until it is acked.
   */
  private releaseSlot(run: RunningJob): void {
    if (run.slotReleased) return;
    run.slotReleased = true;
    (this.pool as SlotPool).release(1);
  }

  /** Resolves when every delivered job has been run and acked/NAKed. */
  private whenNoneRunning(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.noneRunning.push(resolve));
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
      if (o.durationMs !== undefined) info.durationMs = o.durationMs;
    } else if (o.kind === "retrying") {
      info.delayMs = o.delayMs;
      info.error = o.error.message;
      info.durationMs = o.durationMs;
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
    for (const b of this.batches.keys()) b.stop();
    this.pool?.cancelWaiters();
    this.wake();
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
        void this.whenNoneRunning().then(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    for (const r of this.running) r.controller.abort(new WorkerStoppingError("worker stopping"));
    await this.whenNoneRunning();
    // Commands sent SIGTERM get their kill grace to exit, then the rest is SIGKILLed.
    await this.exec.settle(this.forced ? 0 : (this.opts.execKillGraceMs ?? 5_000));
    this.exec.dispose();
    this.cancelWatch?.stop();
    this.pauseWatch?.stop();
    this.stopWatch?.stop();
    await Promise.all(this.tasks.map((t) => t.stop({ timeoutMs: 2_000 })));
    if (this.services && !this.services.closed) {
      try {
        const [events, workers] = await Promise.all([this.services.get(EventService), this.services.get(WorkerService)]);
        events.emit({ type: WorkerEventType.stopped, queue: WORKER_EVENTS_QUEUE, jobId: this.id, worker: this.id });
        await workers.deregister(this.id).catch((err: unknown) => this.logger.warn(`deregister failed: ${coerceError(err).message}`));
        if (this.stopRequest) {
          const control = await this.services.get(ControlService);
          await control.clearStop(this.id).catch((err: unknown) => this.logger.warn(`clearing the stop request failed: ${coerceError(err).message}`));
        }
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
