/**
 * The Worker's public option and event types, and small helpers it needs at construction.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type { NaqConfig, NaqConfigInput } from "../config/schema.js";
import type { Logger } from "../services/base.js";
import type { StopRequest } from "../services/control.js";
import type { Delivery } from "../services/queues.js";
import { poisonId } from "../model/job.js";
import type { Outcome } from "./execute.js";
import type { Handler, Handlers } from "./handlers.js";

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

export function workerIdFor(name?: string): string {
  const base = (name ?? hostname()).replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 40) || "worker";
  return `${base}-${process.pid}-${randomBytes(3).toString("hex")}`;
}

/** A config that has already been through the schema (as the CLI passes it). */
export function isValidated(cfg: NaqConfig | NaqConfigInput): cfg is NaqConfig {
  const c = cfg as NaqConfig;
  return typeof c.timeout === "number" && typeof c.connection?.connectTimeout === "number" && c.worker !== undefined && c.streams !== undefined;
}


/** What a finished delivery looks like to listeners of the Worker's `job` event. */
export function jobEventInfo(o: Outcome, d: Delivery): JobEventInfo {
  const job = "job" in o ? o.job : undefined;
  const info: JobEventInfo = {
    outcome: o.kind,
    id: job?.id ?? ("id" in o ? o.id : poisonId(d.seq)),
    queue: d.queue,
    task: job?.task,
    attempt: "attempt" in o ? o.attempt : d.deliveryCount,
  };
  if (o.kind === "completed") {
    info.durationMs = o.durationMs;
  } else if (o.kind === "failed") {
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
  return info;
}
