/**
 * Job and worker events (v1). One per transition, on `<ns>.events.<queue>.<jobId>.<type>`
 * (worker lifecycle: `<ns>.events._worker.<workerId>.<type>`), so history and tail filter
 * on the server. Events are the audit trail; the terminal record in KV is the truth.
 */
import type { JobError, JobStatus, JsonValue } from "./job.js";

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

/** Event types after which a job's log has nothing more to say (until it is retried). */
export const FINAL_JOB_EVENTS: ReadonlySet<string> = new Set([JobEventType.completed, JobEventType.deadLettered, JobEventType.cancelled]);

export const WorkerEventType = {
  started: "worker_started",
  stopped: "worker_stopped",
} as const;
export type WorkerEventType = (typeof WorkerEventType)[keyof typeof WorkerEventType];

/**
 * Recurring schedule events, on `<ns>.events._schedule.<scheduleName>.<type>`. The job a
 * schedule fires has its own events (`enqueued`, ...) on its queue under its own id.
 */
export const ScheduleEventType = {
  added: "schedule_added",
  updated: "schedule_updated",
  fired: "schedule_fired",
  paused: "schedule_paused",
  resumed: "schedule_resumed",
  removed: "schedule_removed",
  misfireSkipped: "misfire_skipped",
} as const;
export type ScheduleEventType = (typeof ScheduleEventType)[keyof typeof ScheduleEventType];

export type EventType = JobEventType | WorkerEventType | ScheduleEventType;
export const EVENT_TYPES: readonly EventType[] = [
  ...Object.values(JobEventType),
  ...Object.values(WorkerEventType),
  ...Object.values(ScheduleEventType),
];

/** The queue token under which worker lifecycle events are published. */
export const WORKER_EVENTS_QUEUE = "_worker";
/** The queue token under which recurring schedule events are published (id = schedule name). */
export const SCHEDULE_EVENTS_QUEUE = "_schedule";

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
  /**
   * On `completed`, `failed` and `retrying`: when the attempt began, if its `started` event
   * was folded into this one (the attempt ended within `streams.events.foldStarted`).
   * Readers get the `started` back from it (expandFolded).
   */
  startedAt?: string;
  /** For `retrying` and `waiting`: when the next attempt may start. */
  delayMs?: number;
  error?: JobError;
  reason?: string;
  progress?: JsonValue;
  log?: string;
  /** Scheduler: the due time of the run (or of a delayed job), ISO 8601. */
  dueAt?: string;
  /** Scheduler: the job a schedule fired (`schedule_fired`). */
  firedJob?: string;
  /** Scheduler: how many runs (`misfire_skipped`). */
  count?: number;
}

/** The events an attempt's `started` may be folded into (they carry task, worker and attempt). */
export const FOLDS_STARTED: ReadonlySet<EventType> = new Set([JobEventType.completed, JobEventType.failed, JobEventType.retrying]);

/**
 * A stored event as the events it stands for: a `completed`, `failed` or `retrying` with
 * `startedAt` is its attempt's `started` (rebuilt from its fields) followed by itself.
 */
export function expandFolded(ev: NaqEvent): NaqEvent[] {
  if (ev.startedAt === undefined || !FOLDS_STARTED.has(ev.type)) return [ev];
  const started: NaqEvent = { v: ev.v, type: JobEventType.started, at: ev.startedAt, queue: ev.queue, jobId: ev.jobId };
  if (ev.task !== undefined) started.task = ev.task;
  if (ev.worker !== undefined) started.worker = ev.worker;
  if (ev.maxAttempts !== undefined) started.maxAttempts = ev.maxAttempts;
  if (ev.attempt !== undefined) started.attempt = ev.attempt;
  return [started, ev];
}

/** The status a job's newest event tells (when the job has no terminal record yet). */
export function statusFromEvent(ev: NaqEvent): JobStatus {
  switch (ev.type) {
    case JobEventType.started:
    case JobEventType.progress:
      return "running";
    case JobEventType.retrying:
      return "retrying";
    case JobEventType.waiting:
      return "waiting";
    case JobEventType.scheduled:
      return "scheduled";
    case JobEventType.completed:
      return "completed";
    case JobEventType.failed:
    case JobEventType.deadLettered:
      return "failed";
    case JobEventType.cancelled:
      return "cancelled";
    default:
      return "queued";
  }
}
