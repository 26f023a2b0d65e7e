/**
 * RunningJobs: the jobs a worker has taken and not yet acked/NAKed, and the counts that go
 * with them (taken, processed, failed, the --max-jobs budget, last activity).
 *
 * A job enters with dispatch() (it runs at once: its slot was reserved before the pull),
 * gives its slot back as soon as its handler settles (releaseSlot), and leaves once its
 * outcome is stored and acked, or NAKed because it could not be stored. On stop, drain()
 * gives running jobs their grace, then aborts them. The Worker owns the lifecycle around
 * it (pulls, pause/stop, shutdown) and hears of jobs through hooks.
 *
 * dispatch() is the per-job hot path: it allocates one RunningJob, a Set entry and the
 * three promise callbacks below, nothing more (no async wrapper, no closure per hook).
 */
import { timerDelay } from "../model/duration.js";
import { coerceError } from "../model/errors.js";
import { poisonId } from "../model/job.js";
import type { Delivery } from "../services/queues.js";
import { execute, JobCancelledError, RunningJob, WorkerStoppingError, type ExecDeps, type Outcome } from "./execute.js";
import { jobEventInfo, type JobEventInfo } from "./options.js";
import type { SlotPool } from "./slots.js";

/** What the registry tells its worker. */
export interface RunningJobsHooks {
  /** A job's outcome was stored: the worker's `job` event. */
  job(info: JobEventInfo): void;
  /** A job's outcome could not be stored (the job was NAKed to come back): the worker's `error` event. */
  error(err: Error): void;
  /** `maxJobs` jobs have been taken: take no more. */
  limitReached(): void;
}

export class RunningJobs implements Iterable<RunningJob> {
  private readonly running = new Set<RunningJob>();
  private noneRunning: Array<() => void> = [];
  private pool?: SlotPool;
  private deps?: ExecDeps;
  private takenCount = 0;
  /** Jobs asked for in open pulls and not yet dispatched (for --max-jobs). */
  private pulledNotTaken = 0;
  private processedCount = 0;
  private failedCount = 0;
  private lastActivity = Date.now();
  private hurried = false;
  private endGrace?: () => void;

  constructor(
    private readonly hooks: RunningJobsHooks,
    private readonly maxJobs?: number,
  ) {}

  /** Where jobs run from now on: the worker's slots and what execute() needs (on start, before any dispatch). */
  start(pool: SlotPool, deps: ExecDeps): void {
    this.pool = pool;
    this.deps = deps;
  }

  /** Jobs taken and not yet acked/NAKed. */
  get size(): number {
    return this.running.size;
  }

  /** Jobs taken since start. */
  get taken(): number {
    return this.takenCount;
  }

  /** Jobs whose outcome was `completed`. */
  get processed(): number {
    return this.processedCount;
  }

  /** Jobs whose outcome was `failed`. */
  get failed(): number {
    return this.failedCount;
  }

  [Symbol.iterator](): Iterator<RunningJob> {
    return this.running.values();
  }

  /** Jobs that may still be asked for under `maxJobs` (undefined: no limit). */
  jobsLeft(): number | undefined {
    return this.maxJobs === undefined ? undefined : this.maxJobs - this.takenCount - this.pulledNotTaken;
  }

  /** Jobs asked for by a pull (+n) or no longer expected from it (-n). */
  expect(n: number): void {
    this.pulledNotTaken += n;
  }

  /** Whether no job runs and none has started or ended for `ms`. */
  idleFor(ms: number, now: number = Date.now()): boolean {
    return this.running.size === 0 && now - this.lastActivity >= ms;
  }

  /** Runs a delivered job in the slot reserved for it; settles by itself (never throws). */
  dispatch(d: Delivery): void {
    const run = new RunningJob(d);
    this.running.add(run);
    this.takenCount++;
    this.lastActivity = Date.now();
    if (this.maxJobs !== undefined && this.takenCount >= this.maxJobs) this.hooks.limitReached();
    execute(run, this.deps as ExecDeps)
      .then(
        (outcome) => this.report(outcome, d),
        (err: unknown) => {
          // The job ran (or not) but its outcome could not be stored: let it come back.
          const e = coerceError(err);
          this.hooks.error(new Error(`job ${run.job?.id ?? poisonId(d.seq)}: ${e.message}`, { cause: e }));
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
  releaseSlot(run: RunningJob): void {
    if (run.slotReleased) return;
    run.slotReleased = true;
    (this.pool as SlotPool).release(1);
  }

  /** Resolves when every delivered job has been run and acked/NAKed. */
  whenNone(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.noneRunning.push(resolve));
  }

  /** In-progress acks: every running job's ack_wait starts over. */
  touch(): void {
    for (const r of this.running) r.delivery.working();
  }

  /** Fires the AbortSignal of the running job(s) with this id (a cancel request). */
  cancel(jobId: string): void {
    for (const r of this.running) {
      if (r.job?.id === jobId) r.controller.abort(new JobCancelledError("cancelled by request"));
    }
  }

  /**
   * Stopping: running jobs get `graceMs` to finish (less once hurry() is called), then
   * their AbortSignals fire. Resolves when every job has been acked/NAKed.
   */
  async drain(graceMs: number): Promise<void> {
    if (this.running.size > 0 && !this.hurried) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timerDelay(graceMs));
        this.endGrace = () => {
          clearTimeout(timer);
          resolve();
        };
        void this.whenNone().then(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    for (const r of this.running) r.controller.abort(new WorkerStoppingError("worker stopping"));
    await this.whenNone();
  }

  /** A forced stop: no grace for running jobs, now or in a drain to come. */
  hurry(): void {
    this.hurried = true;
    this.endGrace?.();
  }

  /** Ids of the running jobs (a poison id for one that could not be decoded). */
  ids(): string[] {
    return [...this.running].map((r) => r.job?.id ?? poisonId(r.delivery.seq));
  }

  /** Running jobs per queue. */
  byQueue(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const r of this.running) counts[r.delivery.queue] = (counts[r.delivery.queue] ?? 0) + 1;
    return counts;
  }

  private report(o: Outcome, d: Delivery): void {
    if (o.kind === "completed") this.processedCount++;
    else if (o.kind === "failed") this.failedCount++;
    this.hooks.job(jobEventInfo(o, d));
  }
}
