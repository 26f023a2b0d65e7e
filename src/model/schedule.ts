/**
 * Schedules (v1), pure: recurring definitions (cron with a time zone, or a fixed
 * interval), delayed one-off jobs, the due-time index, and the decisions the scheduler
 * takes about a due run (fire it, skip missed runs, wait). No I/O. See docs/scheduler.md.
 *
 * Keys in `<ns>_schedules`:
 *   sched.<name>        ScheduleDoc     a recurring schedule
 *   delayed.<jobId>     DelayedDoc      a delayed job: the full envelope and its due time
 *   slot.<slot>         SlotCounter     how many index entries slot <slot> has handed out
 *   due.<slot>.<i>      IndexEntry      entry i of the slot: "schedule X / job Y is due at T"
 *   cursor              CursorDoc       every slot <= cursor.slot has been swept
 * where <slot> = floor(fireAtMs / SLOT_MS), zero-padded. The index is read with direct
 * gets of literal keys only (never a wildcard listing, which nats-server 2.9 serves in
 * time proportional to every key of the bucket), so a tick costs what is due.
 */
import { parseDuration, formatDuration } from "./duration.js";
import { ValidationError } from "./errors.js";
import type { Backoff } from "./backoff.js";
import { compileCron, validateTimeZone } from "./cron.js";
import { createEnvelope, validateTaskName, type JobEnvelope, type JsonValue } from "./job.js";
import { validateQueueName, validateToken } from "./naming.js";

export const SCHEDULE_VERSION = 1;
/** Width of one due-time slot of the index. */
export const SLOT_MS = 10_000;
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

export type IndexKind = "s" | "d";
export interface IndexEntry {
  v: typeof SCHEDULE_VERSION;
  /** "s": recurring schedule `id`; "d": delayed job `id`. */
  k: IndexKind;
  id: string;
  /** Fire time, ms since the epoch. */
  at: number;
}
export interface SlotCounter {
  v: typeof SCHEDULE_VERSION;
  n: number;
}
export interface CursorDoc {
  v: typeof SCHEDULE_VERSION;
  slot: number;
  at: string;
  by?: string;
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
// Keys and slots.

export const slotOf = (ms: number): number => Math.floor(ms / SLOT_MS);
export const slotStart = (slot: number): number => slot * SLOT_MS;
const pad = (slot: number): string => String(slot).padStart(10, "0");
export const scheduleKey = (name: string): string => `sched.${name}`;
export const delayedKey = (jobId: string): string => `delayed.${jobId}`;
export const slotCounterKey = (slot: number): string => `slot.${pad(slot)}`;
export const dueKey = (slot: number, i: number): string => `due.${pad(slot)}.${i}`;
export const CURSOR_KEY = "cursor";
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

/** A deterministic offset in [0, jitterMs) for one run, so every scheduler agrees on it. */
export function jitterOffset(name: string, dueMs: number, jitterMs: number | undefined): number {
  if (!jitterMs || jitterMs <= 0) return 0;
  let h = 0x811c9dc5;
  for (const ch of `${name}@${dueMs}`) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % Math.floor(jitterMs);
}

export const fireAtOf = (doc: Pick<ScheduleDoc, "name" | "jitterMs">, dueMs: number): number => dueMs + jitterOffset(doc.name, dueMs, doc.jitterMs);

// ---------------------------------------------------------------------------------------
// Recurrence.

/** The first run of `rec` strictly after `afterMs` (no start/end/limit applied). */
export function nextOf(rec: Recurrence, afterMs: number): number | undefined {
  if (rec.kind === "every") {
    if (afterMs < rec.anchorMs) return rec.anchorMs;
    return rec.anchorMs + (Math.floor((afterMs - rec.anchorMs) / rec.everyMs) + 1) * rec.everyMs;
  }
  return compileCron(rec.cron, rec.tz).next(afterMs);
}

/** The next run of a schedule strictly after `afterMs`, honouring start, end and limit (runs so far = `runs`). */
export function nextRun(doc: Pick<ScheduleDoc, "recurrence" | "startAt" | "endAt" | "limit">, afterMs: number, runs: number): number | undefined {
  if (doc.limit !== undefined && runs >= doc.limit) return undefined;
  const start = doc.startAt ? Date.parse(doc.startAt) : undefined;
  const from = start !== undefined && afterMs < start ? start - 1 : afterMs;
  const next = nextOf(doc.recurrence, from);
  if (next === undefined || (doc.endAt && next > Date.parse(doc.endAt))) return undefined;
  return next;
}

export function describeRecurrence(rec: Recurrence): string {
  return rec.kind === "every" ? `every ${formatDuration(rec.everyMs)}` : `cron ${rec.cron}${rec.tz ? ` (${rec.tz})` : ""}`;
}

/** The typical gap between two runs around `dueMs` (for the misfire grace). */
function periodAt(rec: Recurrence, dueMs: number): number {
  if (rec.kind === "every") return rec.everyMs;
  const after = nextOf(rec, dueMs);
  return after === undefined ? 60_000 : after - dueMs;
}

/** How late a run may fire and still count as on time: half its period, from 1s to 60s. */
export function misfireGraceMs(rec: Recurrence, dueMs: number): number {
  return Math.min(60_000, Math.max(1_000, Math.floor(periodAt(rec, dueMs) / 2)));
}

export function scheduleStatus(doc: ScheduleDoc): ScheduleStatus {
  if (doc.paused) return "paused";
  return doc.nextRunAt ? "active" : "ended";
}

/** The next `count` due times from the schedule's next run on (for `show`). */
export function upcoming(doc: ScheduleDoc, count: number): number[] {
  const out: number[] = [];
  if (!doc.nextRunAt) return out;
  let t: number | undefined = Date.parse(doc.nextRunAt);
  let runs = doc.runs;
  while (t !== undefined && out.length < count) {
    out.push(t);
    runs++;
    t = nextRun(doc, t, runs);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Building and changing schedules.

const toMs = (v: number | Date, field: string): number => {
  const ms = v instanceof Date ? v.getTime() : v;
  if (!Number.isFinite(ms)) throw new ValidationError(`${field} is not a valid time`, field);
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

// ---------------------------------------------------------------------------------------
// Decisions about due runs.

export type Step =
  | { kind: "wait"; fireAt: number }
  | { kind: "ended" }
  | { kind: "fire"; dueMs: number; late: boolean; nextMs: number | undefined }
  | { kind: "skip"; count: number; capped: boolean; firstMs: number; lastMs: number; nextMs: number | undefined };

/** Counting missed runs stops here (a cron with seconds over a long outage); counts are then "at least". */
const MAX_COUNT = 100_000;

/**
 * What to do now about a schedule's next run (`doc.nextRunAt`), one step at a time:
 * wait (not due), fire it, or skip a run of missed ones. A run is missed when it is
 * later than its grace (half the period, 1s..60s). Missed runs: `catch-up` fires each,
 * `skip` drops them, `fire-once` drops all but the newest, which fires.
 */
export function planStep(doc: ScheduleDoc, nowMs: number): Step {
  if (!doc.nextRunAt) return { kind: "ended" };
  const due = Date.parse(doc.nextRunAt);
  const fireAt = fireAtOf(doc, due);
  if (fireAt > nowMs) return { kind: "wait", fireAt };
  const grace = misfireGraceMs(doc.recurrence, due);
  const missed = (d: number) => fireAtOf(doc, d) < nowMs - grace;
  const next = (d: number, runs: number) => nextRun(doc, d, runs);
  if (!missed(due) || doc.misfire === "catch-up") {
    return { kind: "fire", dueMs: due, late: missed(due), nextMs: next(due, doc.runs + 1) };
  }
  // Walk the missed runs (skipping fires nothing, so the run count does not move).
  let last = due;
  let prev = due;
  let count = 1;
  const rec = doc.recurrence;
  if (rec.kind === "every") {
    // Jump over the runs that are missed for sure (even with the largest jitter).
    const bound = Math.min(nowMs - grace - (doc.jitterMs ?? 0) - 1, doc.endAt ? Date.parse(doc.endAt) : Number.POSITIVE_INFINITY);
    if (bound > due) {
      const steps = Math.floor((bound - due) / rec.everyMs);
      count += steps;
      last = due + steps * rec.everyMs;
      prev = last - rec.everyMs;
    }
  }
  let after = next(last, doc.runs);
  while (after !== undefined && missed(after) && count < MAX_COUNT) {
    prev = last;
    last = after;
    count++;
    after = next(after, doc.runs);
  }
  const capped = after !== undefined && missed(after);
  if (doc.misfire === "fire-once" && !capped) {
    if (count === 1) return { kind: "fire", dueMs: due, late: true, nextMs: next(due, doc.runs + 1) };
    // Drop all missed runs but the newest; the next step fires that one.
    return { kind: "skip", count: count - 1, capped, firstMs: due, lastMs: prev, nextMs: last };
  }
  return { kind: "skip", count, capped, firstMs: due, lastMs: last, nextMs: after };
}

/**
 * Where a schedule goes on when resumed at `nowMs` after a pause: `skip` continues with the
 * first run after now, `catch-up` keeps the missed runs (the scheduler fires them), and
 * `fire-once` fires the newest missed run once.
 */
export function resumeNext(doc: ScheduleDoc, nowMs: number): { nextMs: number | undefined; skipped: number } {
  if (!doc.nextRunAt) return { nextMs: undefined, skipped: 0 };
  let due: number | undefined = Date.parse(doc.nextRunAt);
  if (due > nowMs || doc.misfire === "catch-up") return { nextMs: due, skipped: 0 };
  let skipped = 0;
  let prev = due;
  while (due !== undefined && due <= nowMs && skipped < MAX_COUNT) {
    prev = due;
    skipped++;
    due = nextRun(doc, due, doc.runs);
  }
  if (doc.misfire === "fire-once") return { nextMs: prev, skipped: skipped - 1 };
  return { nextMs: due, skipped };
}
