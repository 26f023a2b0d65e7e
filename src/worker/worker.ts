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
import { loadConfig } from "../config/load.js";
import { configSchema, queueSettings, type NaqConfig } from "../config/schema.js";
import { coerceError, UsageError } from "../model/errors.js";
import { EXEC_TASK } from "../model/exec.js";
import { WorkerEventType, WORKER_EVENTS_QUEUE } from "../model/events.js";
import { DEFAULT_QUEUE, type JobRecord } from "../model/job.js";
import { validateQueueName } from "../model/naming.js";
import { BackgroundTask } from "../services/background-task.js";
import { ServiceManager, silentLogger, type Logger } from "../services/base.js";
import { ConnectionService } from "../services/connection.js";
import { ControlService, type Follow, type StopRequest } from "../services/control.js";
import { EventService } from "../services/events.js";
import { JobService } from "../services/jobs.js";
import { KVStoreService, type Watcher } from "../services/kv.js";
import { QueueService } from "../services/queues.js";
import { WorkerService, type WorkerInfo } from "../services/workers.js";
import { ExecRunner } from "./exec-task.js";
import type { ExecDeps } from "./execute.js";
import { handlersFromObject, type Handler, type Handlers } from "./handlers.js";
import { SlotPool } from "./slots.js";
import { PullGate } from "./pull-gate.js";
import { RunningJobs } from "./running-jobs.js";
import { channelLoop, type ChannelHost } from "./channel-loop.js";
import { follow, workerLoops } from "./background.js";
import { workerHealth, type WorkerHealth } from "./health.js";
import { HandBacks } from "./hand-back.js";
import { isValidated, NAQ_VERSION, workerIdFor, type CloseOptions, type WorkerEvents, type WorkerOptions } from "./options.js";
import { TypedEmitter } from "./typed-emitter.js";

export { NAQ_VERSION, type CloseOptions, type JobEventInfo, type WorkerEvents, type WorkerOptions } from "./options.js";

export class Worker extends TypedEmitter<WorkerEvents> {
  readonly id: string;
  readonly queues: string[];
  private readonly handlers: ReadonlyMap<string, Handler>;
  private readonly opts: WorkerOptions;
  private services?: ServiceManager;
  private config?: NaqConfig;
  private pool?: SlotPool;
  /** Jobs taken and not yet acked/NAKed, with the job counts. */
  private readonly running: RunningJobs;
  /** Paused queues, open pulls, loops waiting for a change. */
  private readonly gate: PullGate;
  private readonly exec: ExecRunner;
  private pauseWatch?: Follow<unknown>;
  private stopWatch?: Follow<unknown>;
  private stopRequest?: StopRequest;
  private lastHeartbeatAt?: Date;
  /** Job ids with a cancel request, and when it was seen (oldest first). */
  private readonly cancelled = new Map<string, number>();
  private cancelWatch?: Watcher<unknown>;
  private handBacks?: HandBacks;
  private tasks: BackgroundTask[] = [];
  private loops: Promise<void>[] = [];
  private stopping = false;
  private forced = false;
  private closing?: Promise<void>;
  private runPromise?: Promise<void>;
  private readonly startedAt = new Date();
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
    this.gate = new PullGate(this.queues);
    this.running = new RunningJobs(
      { job: (info) => this.emit("job", info), error: (err) => this.emit("error", err), limitReached: () => this.stopFetching() },
      opts.maxJobs,
    );
  }

  private get logger(): Logger {
    return this.opts.logger ?? silentLogger;
  }

  get stats() {
    const r = this.running;
    return { processed: r.processed, failed: r.failed, running: r.size, taken: r.taken };
  }

  /** When the last heartbeat was written, if one was. */
  get lastHeartbeat(): Date | undefined {
    return this.lastHeartbeatAt;
  }

  /** Whether this worker is running with its heartbeat written lately (what `/healthz` answers). */
  health(now: number = Date.now()): WorkerHealth {
    return workerHealth({ status: this.shownStatus, lastHeartbeat: this.lastHeartbeatAt, heartbeatMs: this.config?.worker.heartbeat ?? 5_000, now });
  }

  /** Jobs this worker runs at once at most (0 before start). */
  get concurrency(): number {
    return this.pool?.capacity ?? 0;
  }

  /** Queues of this worker that are paused now. */
  get pausedQueues(): string[] {
    return this.gate.pausedQueues();
  }

  /** The status as shown (health, info): running with every queue paused is "paused". */
  private get shownStatus(): WorkerInfo["status"] {
    return this.status === "running" && this.gate.allPaused() ? "paused" : this.status;
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
    (await this.services.get(ConnectionService)).onMainConnection((up) => this.gate.setOffline(!up));

    const names = this.services.ctx.names;
    this.cancelWatch = await kv.watch(names.buckets.cancels, {}, () => undefined);
    void follow(this.cancelWatch, (e) => this.onCancel(e), this.onWatchError);
    // Watch first, then read: a pause set in between is seen by one or the other.
    const pauseWatch = await control.watchPauses();
    this.pauseWatch = pauseWatch;
    for (const q of (await control.paused()).keys()) this.setPaused(q, true);
    void follow(pauseWatch, (e) => this.setPaused(e.queue, e.paused), this.onWatchError);
    const stopWatch = await control.watchStop(this.id);
    this.stopWatch = stopWatch;
    void follow(stopWatch, (req) => this.onStopRequest(req), this.onWatchError);

    const deps: ExecDeps = {
      workerId: this.id,
      handlers: this.handlers,
      handlerSettled: (run) => this.running.releaseSlot(run),
      writeRecord: (r) => jobs.writeRecord(r),
      deadLetter: (e, msgId) => jobs.deadLetter(e, msgId),
      getRecord: (id) => jobs.getRecord(id),
      jobExists: async (id) => (await jobs.lastEvent(id)) !== undefined,
      skipped: (id) => jobs.skippedDeliveries(id),
      recordWait: (id, skipped) => jobs.recordWait(id, skipped),
      isCancelled: (id) => this.cancelled.has(id),
      refuse: (job) => this.exec.refuse(job),
      maxJobBytes: jobs.maxPayloadBytes,
      emit: (e) => events.emit(e),
      verbose: this.opts.verbose,
    };
    this.running.start(this.pool, deps);

    this.tasks = workerLoops({
      heartbeatMs: this.config.worker.heartbeat,
      ackWaitMs: Math.min(...this.queues.map((q) => queueSettings(this.config as NaqConfig, q).ackWait)),
      maxIdleMs: this.opts.maxIdleMs,
      logger: this.logger,
      heartbeat: async () => {
        await workers.heartbeat(this.info());
        this.lastHeartbeatAt = new Date();
        this.emit("heartbeat", this.lastHeartbeatAt);
      },
      touchRunning: () => this.running.touch(),
      idleFor: (ms) => this.running.idleFor(ms),
      onIdle: () => this.stopFetching(),
    });
    this.status = "running";
    await workers.register(this.info());
    this.lastHeartbeatAt = new Date();
    events.emit({ type: WorkerEventType.started, queue: WORKER_EVENTS_QUEUE, jobId: this.id, worker: this.id });
    for (const t of this.tasks) t.start();
    this.handBacks = new HandBacks((id) => jobs.recordRelease(id));
    const host = this.pullHost(queues);
    this.loops = this.queues.map((q, i) => channelLoop(host, q, i));
  }

  /** Cancel requests: remembered (a queued job is then skipped) and fired at a running job. */
  private onCancel(e: { key: string; operation: string }): void {
    this.cancelled.delete(e.key);
    if (e.operation !== "PUT") return;
    const now = Date.now();
    this.cancelled.set(e.key, now);
    // The bucket's entries expire after kv.resultTtl without telling watchers: forget
    // them as well, or a long-lived worker would keep every cancel it ever saw.
    const ttl = this.config?.kv.resultTtl ?? 0; // 0: entries never expire
    const cutoff = ttl > 0 ? now - ttl : Number.NEGATIVE_INFINITY;
    for (const [id, at] of this.cancelled) {
      if (at > cutoff) break;
      this.cancelled.delete(id);
    }
    this.running.cancel(e.key);
  }

  private onWatchError = (err: unknown): void => {
    if (!this.stopping) this.emit("error", coerceError(err));
  };

  private setPaused(queue: string, paused: boolean): void {
    if (this.gate.setPaused(queue, paused)) this.emit("pause", { queue, paused });
  }

  private onStopRequest(req: StopRequest | undefined): void {
    if (!req || this.stopRequest) return;
    this.stopRequest = req;
    this.emit("stopRequested", req);
    void this.close(req.graceMs !== undefined ? { graceMs: req.graceMs } : {});
  }

  private pullHost(queues: QueueService): ChannelHost {
    return {
      pool: this.pool as SlotPool,
      queueCount: this.queues.length,
      stopping: () => this.stopping,
      paused: (q) => this.gate.isPaused(q),
      offline: () => this.gate.offline,
      changed: () => this.gate.changed(),
      setIdle: (q, idle) => {
        if (this.gate.setIdle(q, idle) && this.opts.burst && this.running.size === 0) this.stopFetching();
      },
      jobsLeft: () => this.running.jobsLeft(),
      expect: (n) => this.running.expect(n),
      stopFetching: () => this.stopFetching(),
      dispatch: (d) => this.running.dispatch(d),
      handBack: (d) => (this.handBacks as HandBacks).handBack(d),
      open: (q, listener) => queues.channel(q, listener),
      track: (b, q) => this.gate.track(b, q),
      untrack: (b) => this.gate.untrack(b),
      error: (err) => this.emit("error", err),
    };
  }

  private info(): WorkerInfo {
    const runningByQueue = this.running.byQueue();
    const paused = this.pausedQueues;
    return {
      v: 1,
      id: this.id,
      ...(this.opts.name ? { name: this.opts.name } : {}),
      host: hostname(),
      pid: process.pid,
      queues: this.queues,
      concurrency: this.pool?.capacity ?? 0,
      status: this.shownStatus,
      running: this.running.ids(),
      runningByQueue,
      ...(paused.length > 0 ? { paused } : {}),
      ...(this.exec.enabled ? { allowExec: this.exec.rules.map((r) => (r.kind === "name" ? r.name : r.path)) } : {}),
      processed: this.running.processed,
      failed: this.running.failed,
      startedAt: this.startedAt.toISOString(),
      lastHeartbeat: new Date().toISOString(),
      version: NAQ_VERSION,
    };
  }

  /** Stops taking new jobs; running ones go on. The worker closes when they are done. */
  private stopFetching(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.status = "stopping";
    this.gate.stopAll();
    this.pool?.cancelWaiters();
  }

  /**
   * Graceful stop: no new jobs; running jobs get `graceMs` to finish, then are released
   * (NAK, redelivered at once elsewhere). Idempotent; `force` escalates a close in progress.
   */
  close(opts: CloseOptions = {}): Promise<void> {
    if (opts.force) {
      this.forced = true;
      this.running.hurry();
    }
    this.closing ??= this.shutdown(opts.graceMs ?? this.opts.graceMs ?? this.config?.worker.grace ?? 30_000);
    return this.closing;
  }

  private async shutdown(graceMs: number): Promise<void> {
    this.stopFetching();
    await Promise.allSettled(this.loops);
    await this.running.drain(graceMs);
    await this.handBacks?.settle();
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
    this.emit("stopped", { processed: this.running.processed, failed: this.running.failed, forced: this.forced });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}


export type { JobRecord };
