/**
 * Job and worker events (v1). One per transition, on `<ns>.events.<queue>.<jobId>.<type>`
 * (worker lifecycle: `<ns>.events._worker.<workerId>.<type>`), so history and tail filter
 * on the server. Events are the audit trail; the terminal record in KV is the truth.
 */
import type { JobError, JsonValue } from "./job.js";

export const EVENT_VERSION = 1;

export const JobEventType = {
  enqueued: "enqueued",
  scheduled: "scheduled",
  waiting: "waiting",
  started: "started",
  progress: "progress",
  completed: "completed",
  failed: "failed",
  retrying: "retrying",
  deadLettered: "dead_lettered",
  cancelled: "cancelled",
} as const;
export type JobEventType = (typeof JobEventType)[keyof typeof JobEventType];

export const WorkerEventType = {
  started: "worker_started",
  stopped: "worker_stopped",
} as const;
export type WorkerEventType = (typeof WorkerEventType)[keyof typeof WorkerEventType];

export type EventType = JobEventType | WorkerEventType;
export const EVENT_TYPES: readonly EventType[] = [...Object.values(JobEventType), ...Object.values(WorkerEventType)];

/** The queue token under which worker lifecycle events are published. */
export const WORKER_EVENTS_QUEUE = "_worker";

export interface NaqEvent {
  v: typeof EVENT_VERSION;
  type: EventType;
  /** ISO 8601 time of the transition. */
  at: string;
  queue: string;
  /** Job id, or worker id for worker events. */
  jobId: string;
  task?: string;
  worker?: string;
  attempt?: number;
  maxAttempts?: number;
  durationMs?: number;
  /** For `retrying` and `waiting`: when the next attempt may start. */
  delayMs?: number;
  error?: JobError;
  reason?: string;
  progress?: JsonValue;
  log?: string;
}
