/**
 * BackgroundTask: the one pattern for naq's long-running loops (scheduler tick, worker
 * heartbeat, leader lease). It runs `step` again and again, never two at once, and turns
 * every failure into backoff instead of a crash.
 *
 * States:
 *
 *   idle ──start()──> running ──ok──> idle (waits intervalMs from the step's start) ──> running …
 *                        │
 *                        └─throw─> backing-off (retryDelayMs × backoffFactor^(n-1), capped) ──> running …
 *                                      └─ n = maxConsecutiveFailures ──> failed   (onGiveUp, once)
 *
 *   any state ──stop()──> stopped   (aborts the step's signal, waits for it, clears the timer)
 *
 * `idle` is also the state before start(). `stopped` and `failed` are final: `done` resolves
 * and no timer is left behind. A success resets the consecutive-failure count. Each failure
 * logs one warn line; a step that fails after stop() was called is logged at debug only and
 * never leads to giving up. health().healthy: started, `running` or `idle`, under the limit.
 *
 * A step must not await `stop()` of its own task (it would wait for itself until the timeout);
 * calling it without awaiting is fine.
 */
import { timerDelay } from "../model/duration.js";
import { coerceError, ServiceError, ValidationError } from "../model/errors.js";
import { silentLogger, type Logger } from "./base.js";

export const BackgroundTaskState = {
  idle: "idle",
  running: "running",
  backingOff: "backing-off",
  stopped: "stopped",
  failed: "failed",
} as const;
export type BackgroundTaskState = (typeof BackgroundTaskState)[keyof typeof BackgroundTaskState];

export interface BackgroundTaskOptions {
  name: string;
  /** Time between successful step starts (fixed rate; a slow step shortens the wait, never below 0). */
  intervalMs: number;
  /** One unit of work. The signal aborts when the task stops. */
  step: (signal: AbortSignal) => Promise<void>;
  /** Consecutive failures before giving up (state `failed`). 0 or Infinity: never give up. Default 5. */
  maxConsecutiveFailures?: number;
  /** Delay before the first retry. Default min(intervalMs, 1000). */
  retryDelayMs?: number;
  /** Upper bound of the retry delay. Default 30_000. */
  maxRetryDelayMs?: number;
  /** Each further consecutive failure multiplies the retry delay by this. Default 2. */
  backoffFactor?: number;
  /** Run the first step at start() instead of after intervalMs. Default true. */
  runImmediately?: boolean;
  /** Let the process exit while the task waits between steps. Default false. */
  unref?: boolean;
  logger?: Logger;
  /** Called once when the task gives up, with the last error. */
  onGiveUp?: (err: Error) => void;
}

export interface BackgroundTaskMetrics {
  runs: number;
  successes: number;
  failures: number;
  consecutiveFailures: number;
  lastRunAt?: Date;
  lastSuccessAt?: Date;
  lastError?: string;
  lastDurationMs?: number;
  totalDurationMs: number;
}

export interface BackgroundTaskHealth extends BackgroundTaskMetrics {
  name: string;
  state: BackgroundTaskState;
  /** Started, running or idle between runs, and not at the failure limit. */
  healthy: boolean;
}

export interface StopOptions {
  /** How long to wait for a running step before resolving anyway. Default 5000. */
  timeoutMs?: number;
}

const DEFAULT_STOP_TIMEOUT_MS = 5_000;

function requireNumber(value: number, field: string, min: number, allowInfinity = false): number {
  if (Number.isNaN(value) || value < min || (!allowInfinity && !Number.isFinite(value))) {
    throw new ValidationError(`${field}: ${value} must be a ${allowInfinity ? "" : "finite "}number >= ${min}`, field);
  }
  return value;
}

export class BackgroundTask implements AsyncDisposable {
  readonly name: string;
  /** Resolves once the task has stopped for any reason (stop() or giving up). Never rejects. */
  readonly done: Promise<void>;

  private readonly step: (signal: AbortSignal) => Promise<void>;
  private readonly intervalMs: number;
  private readonly maxFailures: number;
  private readonly retryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly backoffFactor: number;
  private readonly runImmediately: boolean;
  private readonly unref: boolean;
  private readonly logger: Logger;
  private readonly onGiveUp?: (err: Error) => void;

  private currentState: BackgroundTaskState = BackgroundTaskState.idle;
  private started = false;
  private finished = false;
  private readonly controller = new AbortController();
  /** The pending next run: a timeout, or an immediate when there is nothing to wait for. */
  private timer?: { kind: "timeout"; handle: NodeJS.Timeout } | { kind: "immediate"; handle: NodeJS.Immediate };
  private inFlight?: Promise<void>;
  private triggerRequested = false;
  /** Callers of trigger() waiting for the next step to finish. */
  private triggerWaiters: Array<() => void> = [];
  private stopping?: Promise<void>;
  private resolveDone!: () => void;
  private readonly m: BackgroundTaskMetrics = {
    runs: 0,
    successes: 0,
    failures: 0,
    consecutiveFailures: 0,
    totalDurationMs: 0,
  };

  constructor(options: BackgroundTaskOptions) {
    if (typeof options.step !== "function") throw new ValidationError("step must be a function", "step");
    this.name = options.name;
    this.step = options.step;
    this.intervalMs = requireNumber(options.intervalMs, "intervalMs", 0);
    const max = requireNumber(options.maxConsecutiveFailures ?? 5, "maxConsecutiveFailures", 0, true);
    this.maxFailures = max === 0 ? Infinity : max;
    this.retryDelayMs = requireNumber(options.retryDelayMs ?? Math.min(this.intervalMs, 1_000), "retryDelayMs", 0);
    this.maxRetryDelayMs = requireNumber(options.maxRetryDelayMs ?? 30_000, "maxRetryDelayMs", 0);
    this.backoffFactor = requireNumber(options.backoffFactor ?? 2, "backoffFactor", 1);
    this.runImmediately = options.runImmediately ?? true;
    this.unref = options.unref ?? false;
    this.logger = options.logger ?? silentLogger;
    this.onGiveUp = options.onGiveUp;
    this.done = new Promise<void>((resolve) => {
      this.resolveDone = resolve;
    });
  }

  get state(): BackgroundTaskState {
    return this.currentState;
  }

  /** A snapshot; later steps do not change it. */
  get metrics(): BackgroundTaskMetrics {
    return {
      ...this.m,
      lastRunAt: this.m.lastRunAt && new Date(this.m.lastRunAt),
      lastSuccessAt: this.m.lastSuccessAt && new Date(this.m.lastSuccessAt),
    };
  }

  health(): BackgroundTaskHealth {
    const state = this.currentState;
    const healthy =
      this.started &&
      (state === BackgroundTaskState.running || state === BackgroundTaskState.idle) &&
      this.m.consecutiveFailures < this.maxFailures;
    return { name: this.name, state, healthy, ...this.metrics };
  }

  /** Begins the loop. Idempotent while running; a stopped or failed task cannot be restarted. */
  start(): void {
    if (this.finished || this.stopping) {
      throw new ServiceError(`background task ${this.name} is ${this.currentState}; create a new one to run it again`);
    }
    if (this.started) return;
    this.started = true;
    if (this.runImmediately) void this.runOnce();
    else this.schedule(this.intervalMs);
  }

  /**
   * Runs a step now, or as soon as the running one ends. Resolves when that step has
   * finished (whatever its outcome), or at once when the task is not started or has ended.
   */
  trigger(): Promise<void> {
    if (!this.started || this.finished || this.stopping) return Promise.resolve();
    const finished = new Promise<void>((resolve) => this.triggerWaiters.push(resolve));
    if (this.inFlight) {
      this.triggerRequested = true;
    } else {
      this.clearTimer();
      void this.runOnce();
    }
    return finished;
  }

  /**
   * Stops the loop: cancels the pending timer, aborts the running step's signal and waits
   * for it, up to `timeoutMs`, then resolves anyway. Idempotent: every call returns the
   * same promise. Never rejects.
   */
  stop(opts: StopOptions = {}): Promise<void> {
    // Memoize before any work: aborting runs the step's listeners, which may call stop() again.
    this.stopping ??= Promise.resolve().then(() => this.shutdown(opts.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS));
    return this.stopping;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.clearTimer();
    if (this.finished) return; // already failed
    this.currentState = BackgroundTaskState.stopped;
    this.controller.abort(new ServiceError(`background task ${this.name} stopped`));
    const running = this.inFlight;
    if (running) {
      let timeout: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timeout = setTimeout(() => resolve(true), timerDelay(timeoutMs));
      });
      const expired = await Promise.race([running.then(() => false), timedOut]);
      clearTimeout(timeout);
      if (expired) this.log("warn", `${this.name}: step still running ${timeoutMs}ms after stop; not waiting any longer`);
    }
    this.finish();
  }

  private async runOnce(): Promise<void> {
    if (this.inFlight || this.finished || this.stopping) return;
    this.triggerRequested = false;
    const waiters = this.triggerWaiters;
    this.triggerWaiters = [];
    this.currentState = BackgroundTaskState.running;

    const startedAt = Date.now();
    this.m.runs++;
    this.m.lastRunAt = new Date(startedAt);
    let error: Error | undefined;
    const run = (async () => {
      try {
        await this.step(this.controller.signal);
      } catch (err) {
        error = coerceError(err);
      }
    })();
    this.inFlight = run;
    await run;
    this.inFlight = undefined;

    const duration = Math.max(0, Date.now() - startedAt);
    this.m.lastDurationMs = duration;
    this.m.totalDurationMs += duration;
    if (error) {
      this.m.failures++;
      this.m.consecutiveFailures++;
      this.m.lastError = error.message;
    } else {
      this.m.successes++;
      this.m.consecutiveFailures = 0;
      this.m.lastSuccessAt = new Date(Date.now());
    }
    for (const resolve of waiters) resolve();

    if (this.stopping) {
      if (error) this.log("debug", `${this.name}: step ended with "${error.message}" while stopping`);
      return;
    }
    if (error) {
      const n = this.m.consecutiveFailures;
      if (n >= this.maxFailures) {
        this.log("warn", `${this.name}: step failed (${n}/${n}), giving up: ${error.message}`);
        this.giveUp(error);
        return;
      }
      const delay = this.triggerRequested ? 0 : this.retryDelay(n);
      const limit = Number.isFinite(this.maxFailures) ? `/${this.maxFailures}` : "";
      this.log("warn", `${this.name}: step failed (${n}${limit}), retrying in ${delay}ms: ${error.message}`);
      this.currentState = BackgroundTaskState.backingOff;
      this.schedule(delay);
    } else {
      this.currentState = BackgroundTaskState.idle;
      this.schedule(this.triggerRequested ? 0 : this.intervalMs - duration);
    }
  }

  private retryDelay(consecutiveFailures: number): number {
    const delay = this.retryDelayMs * this.backoffFactor ** (consecutiveFailures - 1);
    return Math.min(delay, this.maxRetryDelayMs);
  }

  private giveUp(error: Error): void {
    this.currentState = BackgroundTaskState.failed;
    this.controller.abort(error);
    try {
      this.onGiveUp?.(error);
    } catch (err) {
      this.log("error", `${this.name}: onGiveUp threw: ${coerceError(err).message}`);
    }
    this.finish();
  }

  private finish(): void {
    this.clearTimer();
    this.finished = true;
    const waiters = this.triggerWaiters;
    this.triggerWaiters = [];
    for (const resolve of waiters) resolve();
    this.resolveDone();
  }

  private schedule(delayMs: number): void {
    this.clearTimer();
    const run = (): void => {
      this.timer = undefined;
      void this.runOnce();
    };
    // setTimeout(fn, 0) waits at least 1ms; an immediate runs right after pending I/O.
    this.timer =
      delayMs > 0
        ? { kind: "timeout", handle: setTimeout(run, timerDelay(delayMs)) }
        : { kind: "immediate", handle: setImmediate(run) };
    if (this.unref) this.timer.handle.unref();
  }

  private clearTimer(): void {
    if (this.timer?.kind === "timeout") clearTimeout(this.timer.handle);
    if (this.timer?.kind === "immediate") clearImmediate(this.timer.handle);
    this.timer = undefined;
  }

  /** A throwing logger must not kill the loop either. */
  private log(level: keyof Logger, msg: string): void {
    try {
      this.logger[level](msg);
    } catch {
      // nothing sensible left to report it to
    }
  }
}
