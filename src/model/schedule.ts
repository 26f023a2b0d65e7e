/**
 * Schedules (v1), pure: recurring definitions (cron with a time zone, or a fixed
 * interval) and delayed one-off jobs: their documents, names and ids, and building and
 * validating a schedule. No I/O. See docs/scheduler.md.
 *
 * Keys in `<ns>_schedules`:
 *   sched.<name>        ScheduleDoc     a recurring schedule
 *   delayed.<jobId>     DelayedDoc      a delayed job: the full envelope and its due time
 *   slot.<slot>, due.<slot>.<i>, cursor  the due-time index (src/model/due-slots.ts)
 * and in `<ns>_leader`:
 *   leader              LeaseDoc        the scheduler leader lease
 *
 * When runs are due and the misfire policies are in src/model/schedule-timing.ts.
 */
import { parseDuration, formatDuration } from "./duration.js";
import { ValidationError } from "./errors.js";
import type { Backoff } from "./backoff.js";
import { compileCron, validateTimeZone } from "./cron.js";
import { createEnvelope, validateTaskName, type JobEnvelope, type JsonValue } from "./job.js";
import { validateQueueName, validateToken } from "./naming.js";
import { nextRun } from "./schedule-timing.js";

export const SCHEDULE_VERSION = 1;
/** Shortest `--every`. */
export const MIN_EVERY_MS = 1_000;

export const MisfirePolicy = {
  skip: "skip",
  catchUp: "catch-up",
  fireOnce: "fire-once",
} as const;
export type MisfirePolicy = (typeof MisfirePolicy)[keyof typeof MisfirePolicy];
export const MISFIRE_POLICIES: readonly MisfirePolicy[] = Object.values(MisfirePolicy);
export const DEFAULT_MISFIRE: MisfirePolicy = "skip";

export type Recurrence = { kind: "cron"; cron: string; tz?: string } | { kind: "every"; everyMs: number; anchorMs: number };

/** What a fired job is made of (its id is derived from the schedule name and due time). */
export interface JobTemplate {
  task: string;
  queue: string;
  payload: JsonValue;
  retries?: number;
  backoff?: Backoff;
  timeoutMs?: number;
  labels?: Record<string, string>;
}

export interface ScheduleDoc {
  v: typeof SCHEDULE_VERSION;
  name: string;
  job: JobTemplate;
  recurrence: Recurrence;
  startAt?: string;
  endAt?: string;
  /** Stop after this many fired runs. */
  limit?: number;
  misfire: MisfirePolicy;
  /** Each run fires up to this much after its due time (the same offset on every scheduler). */
  jitterMs?: number;
  paused: boolean;
  pausedAt?: string;
  /** Due time of the next run not yet fired; absent once the schedule has ended. */
  nextRunAt?: string;
  runs: number;
  lastRunAt?: string;
  lastJobId?: string;
  lastFiredAt?: string;
  /** The run claimed by the last compare-and-set, with the index entry that led to it (crash recovery). */
  inflight?: { jobId: string; dueAt: string; entry: string; at: string };
  createdAt: string;
  updatedAt: string;
}

export type ScheduleStatus = "active" | "paused" | "ended";

export interface ScheduleInput {
  name: string;
  task: string;
  payload?: JsonValue;
  queue?: string;
  cron?: string;
  tz?: string;
  /** Interval, in ms or as a duration string. */
  every?: number | string;
  startAt?: number | Date;
  endAt?: number | Date;
  limit?: number;
  misfire?: MisfirePolicy;
  jitterMs?: number;
  retries?: number;
  backoff?: Backoff;
  timeoutMs?: number;
  labels?: Record<string, string>;
}

export interface DelayedDoc {
  v: typeof SCHEDULE_VERSION;
  job: JobEnvelope;
  dueAt: string;
  createdAt: string;
  /** Set by the compare-and-set that claims the job for publishing. */
  firing?: { at: string; by: string };
}

export interface LeaseDoc {
  v: typeof SCHEDULE_VERSION;
  id: string;
  host: string;
  pid: number;
  since: string;
  renewedAt: string;
  expiresAt: string;
}

// ---------------------------------------------------------------------------------------
// Keys, names and ids.

export const scheduleKey = (name: string): string => `sched.${name}`;
export const delayedKey = (jobId: string): string => `delayed.${jobId}`;
export const LEASE_KEY = "leader";
export const SCHEDULE_PREFIX = "sched.";

/** Schedule names become KV keys and job ids (`<name>-<dueMs>`): tokens, not starting with '_'. */
export function validateScheduleName(name: string): string {
  validateToken(name, "schedule name", 100);
  if (name.startsWith("_")) throw new ValidationError(`schedule name "${name}" is not valid: names starting with '_' are reserved for naq`, "name");
  return name;
}

/** The id of the job a schedule fires for the run due at `dueMs`: the same on every scheduler. */
export const scheduleJobId = (name: string, dueMs: number): string => `${name}-${dueMs}`;
/** The id of a run started by hand (`naq scheduler trigger`). */
export const triggerJobId = (name: string, nowMs: number): string => `${name}-t${nowMs}`;

export function describeRecurrence(rec: Recurrence): string {
  return rec.kind === "every" ? `every ${formatDuration(rec.everyMs)}` : `cron ${rec.cron}${rec.tz ? ` (${rec.tz})` : ""}`;
}

export function scheduleStatus(doc: ScheduleDoc): ScheduleStatus {
  if (doc.paused) return "paused";
  return doc.nextRunAt ? "active" : "ended";
}

// ---------------------------------------------------------------------------------------
// Building and changing schedules.

const toMs = (v: number | Date, field: string): number => {
  const ms = v instanceof Date ? v.getTime() : v;
  // Finite is not enough: a Date holds ±8.64e15 ms, and toISOString() throws beyond that.
  if (typeof ms !== "number" || !Number.isFinite(new Date(ms).getTime())) throw new ValidationError(`${field} is not a valid time`, field);
  return ms;
};

function recurrenceOf(input: ScheduleInput, nowMs: number): Recurrence {
  if ((input.cron === undefined) === (input.every === undefined)) {
    throw new ValidationError("a schedule needs exactly one of --cron or --every", input.cron === undefined ? "cron" : "every");
  }
  if (input.cron !== undefined) {
    const tz = input.tz !== undefined ? validateTimeZone(input.tz, "tz") : undefined;
    const cron = compileCron(input.cron, tz, "cron");
    return { kind: "cron", cron: cron.expr, ...(tz ? { tz } : {}) };
  }
  if (input.tz !== undefined) throw new ValidationError("--tz applies to --cron (and to times without an offset), not to --every", "tz");
  const everyMs = parseDuration(input.every as number | string, "every");
  if (everyMs < MIN_EVERY_MS) throw new ValidationError(`every: ${formatDuration(everyMs)} is too short: the shortest interval is 1s`, "every");
  const anchorMs = input.startAt !== undefined ? toMs(input.startAt, "startAt") : nowMs + everyMs;
  return { kind: "every", everyMs, anchorMs };
}

const sameRecurrence = (a: Recurrence, b: Recurrence): boolean =>
  a.kind === "every" && b.kind === "every"
    ? a.everyMs === b.everyMs
    : a.kind === "cron" && b.kind === "cron" && a.cron === b.cron && a.tz === b.tz;

/**
 * A schedule document from a definition: new, or an update of `existing` (upsert by name).
 * An update keeps the run count, last run and paused state, and keeps the next run unless
 * the timing (recurrence, start, end, limit) changed.
 */
export function buildSchedule(input: ScheduleInput, nowMs: number, existing?: ScheduleDoc): ScheduleDoc {
  const name = validateScheduleName(input.name);
  const job: JobTemplate = {
    task: validateTaskName(input.task),
    queue: validateQueueName(input.queue ?? "default"),
    payload: input.payload ?? null,
    ...(input.retries !== undefined ? { retries: input.retries } : {}),
    ...(input.backoff !== undefined ? { backoff: input.backoff } : {}),
    ...(input.timeoutMs !== undefined ? { timeoutMs: input.timeoutMs } : {}),
    ...(input.labels && Object.keys(input.labels).length > 0 ? { labels: { ...input.labels } } : {}),
  };
  // Validate the job once now, so a bad template fails at `add`, not at every run.
  envelopeFor({ name, job }, nowMs, nowMs);
  let recurrence = recurrenceOf(input, nowMs);
  if (existing && recurrence.kind === "every" && existing.recurrence.kind === "every" && input.startAt === undefined && recurrence.everyMs === existing.recurrence.everyMs) {
    recurrence = existing.recurrence; // same interval: keep the phase
  }
  const startAt = input.startAt !== undefined ? new Date(toMs(input.startAt, "startAt")).toISOString() : undefined;
  const endAt = input.endAt !== undefined ? new Date(toMs(input.endAt, "endAt")).toISOString() : undefined;
  if (startAt && endAt && Date.parse(endAt) <= Date.parse(startAt)) throw new ValidationError("--end-at must be after --start-at", "endAt");
  if (input.limit !== undefined && (!Number.isInteger(input.limit) || input.limit < 1)) {
    throw new ValidationError(`limit must be a whole number >= 1, got ${input.limit}`, "limit");
  }
  const misfire = input.misfire ?? existing?.misfire ?? DEFAULT_MISFIRE;
  if (!MISFIRE_POLICIES.includes(misfire)) throw new ValidationError(`misfire "${String(misfire)}" is not one of ${MISFIRE_POLICIES.join(", ")}`, "misfire");
  if (input.jitterMs !== undefined && !(Number.isFinite(input.jitterMs) && input.jitterMs >= 0)) {
    throw new ValidationError("jitter must be a duration >= 0", "jitter");
  }
  const doc: ScheduleDoc = {
    v: SCHEDULE_VERSION,
    name,
    job,
    recurrence,
    ...(startAt ? { startAt } : {}),
    ...(endAt ? { endAt } : {}),
    ...(input.limit !== undefined ? { limit: input.limit } : {}),
    misfire,
    ...(input.jitterMs ? { jitterMs: input.jitterMs } : {}),
    paused: existing?.paused ?? false,
    ...(existing?.pausedAt ? { pausedAt: existing.pausedAt } : {}),
    runs: existing?.runs ?? 0,
    ...(existing?.lastRunAt ? { lastRunAt: existing.lastRunAt } : {}),
    ...(existing?.lastJobId ? { lastJobId: existing.lastJobId } : {}),
    ...(existing?.lastFiredAt ? { lastFiredAt: existing.lastFiredAt } : {}),
    ...(existing?.inflight ? { inflight: existing.inflight } : {}),
    createdAt: existing?.createdAt ?? new Date(nowMs).toISOString(),
    updatedAt: new Date(nowMs).toISOString(),
  };
  const timingSame =
    existing?.nextRunAt !== undefined &&
    sameRecurrence(existing.recurrence, recurrence) &&
    existing.startAt === doc.startAt &&
    existing.endAt === doc.endAt &&
    existing.limit === doc.limit;
  const next = timingSame ? Date.parse(existing.nextRunAt as string) : nextRun(doc, nowMs, doc.runs);
  if (next === undefined) {
    if (!existing) throw new ValidationError(`schedule ${name} would never run (no run between its start and end, or its cron never matches)`, "cron");
  } else doc.nextRunAt = new Date(next).toISOString();
  return doc;
}

/** The job a schedule fires for the run due at `dueMs`. */
export function envelopeFor(doc: Pick<ScheduleDoc, "name" | "job">, dueMs: number, nowMs: number, id = scheduleJobId(doc.name, dueMs)): JobEnvelope {
  const { task, queue, payload, retries, backoff, timeoutMs, labels } = doc.job;
  return createEnvelope({ id, task, queue, payload, retries, backoff, timeoutMs, labels }, new Date(nowMs));
}
