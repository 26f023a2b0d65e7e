/**
 * Checking the JSON documents naq reads back from KV buckets and streams (job records,
 * events, schedules, delayed jobs, the due-time index, leases; services check their own
 * documents with the same kit). Anyone with access to the account can write any bytes to
 * these keys, so every document read is checked before use: a value that is not the
 * document it should be is a ValidationError naming the key and the field, never a
 * TypeError deep inside a command or a long-running loop. Pure: no I/O.
 *
 * The checks cover what naq relies on (types of the fields it reads); fields it does not
 * know are left alone, as docs/wire-format.md promises.
 */
import { ValidationError } from "./errors.js";
import type { EventType, NaqEvent } from "./events.js";
import { validateEnvelope, type JobError, type JobRecord } from "./job.js";
import type { CursorDoc, IndexEntry, SlotCounter } from "./due-slots.js";
import { MISFIRE_POLICIES, type DelayedDoc, type LeaseDoc, type ScheduleDoc } from "./schedule.js";

/** Checks a parsed document; throws ValidationError naming `where` (bucket/key, stream/seq). */
export type DocCheck<T> = (value: unknown, where: string) => T;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Field accessors over one document, each throwing a ValidationError that names the document and the field. */
export class Fields {
  constructor(
    readonly doc: Record<string, unknown>,
    readonly where: string,
  ) {}

  fail(key: string, what: string): never {
    throw new ValidationError(`${this.where}: not a valid document: ${key} must be ${what}`, key);
  }

  private has(key: string): boolean {
    return Object.hasOwn(this.doc, key) && this.doc[key] !== undefined;
  }

  str(key: string): string {
    const v = this.doc[key];
    if (!Object.hasOwn(this.doc, key) || typeof v !== "string") this.fail(key, "a string");
    return v;
  }

  optStr(key: string): void {
    if (this.has(key)) this.str(key);
  }

  num(key: string): number {
    const v = this.doc[key];
    if (!Object.hasOwn(this.doc, key) || typeof v !== "number" || !Number.isFinite(v)) this.fail(key, "a number");
    return v;
  }

  optNum(key: string): void {
    if (this.has(key)) this.num(key);
  }

  bool(key: string): boolean {
    const v = this.doc[key];
    if (!Object.hasOwn(this.doc, key) || typeof v !== "boolean") this.fail(key, "true or false");
    return v;
  }

  /** An ISO 8601 time (anything Date.parse reads to a valid time). */
  time(key: string): string {
    const v = this.str(key);
    if (!Number.isFinite(Date.parse(v))) this.fail(key, "an ISO 8601 time");
    return v;
  }

  optTime(key: string): void {
    if (this.has(key)) this.time(key);
  }

  oneOf<T extends string>(key: string, values: readonly T[]): T {
    const v = this.doc[key];
    if (!Object.hasOwn(this.doc, key) || !(values as readonly unknown[]).includes(v)) this.fail(key, `one of ${values.join(", ")}`);
    return v as T;
  }

  obj(key: string): Fields {
    const v = this.doc[key];
    if (!Object.hasOwn(this.doc, key) || !isObject(v)) this.fail(key, "an object");
    return new Fields(v, `${this.where} ${key}`);
  }

  optObj(key: string): Fields | undefined {
    return this.has(key) ? this.obj(key) : undefined;
  }

  strList(key: string): string[] {
    const v = this.doc[key];
    if (!Object.hasOwn(this.doc, key) || !Array.isArray(v) || !v.every((s) => typeof s === "string")) this.fail(key, "a list of strings");
    return v as string[];
  }

  optStrList(key: string): void {
    if (this.has(key)) this.strList(key);
  }

  /** An object whose values all pass `check` (labels: strings; counts: numbers). */
  optRecordOf(key: string, what: string, check: (v: unknown) => boolean): void {
    if (!this.has(key)) return;
    const v = this.doc[key];
    if (!isObject(v) || !Object.values(v).every(check)) this.fail(key, what);
  }

  optJobError(key: string): void {
    const e = this.optObj(key);
    if (!e) return;
    e.str("name");
    e.str("message");
    e.optStr("stack");
  }
}

/** A JSON object with `v` equal to `version`; its fields, for the checks that follow. */
export function versionedDoc(value: unknown, where: string, version = 1): Fields {
  if (!isObject(value)) throw new ValidationError(`${where}: not a naq document (expected a JSON object with "v": ${version})`, "");
  if (value.v !== version) {
    throw new ValidationError(`${where}: unsupported version ${JSON.stringify(value.v) ?? "(none)"} (this naq reads version ${version})`, "v");
  }
  return new Fields(value, where);
}

/** Any naq document: a JSON object with a version this naq reads. */
export const checkVersioned = <T>(value: unknown, where: string): T => versionedDoc(value, where).doc as T;

export const checkJobError: DocCheck<JobError> = (value, where) => {
  if (!isObject(value)) throw new ValidationError(`${where}: an error must be an object with name and message`, "error");
  const f = new Fields(value, where);
  f.str("name");
  f.str("message");
  f.optStr("stack");
  return value as unknown as JobError;
};

const RECORD_STATUSES = ["completed", "failed", "cancelled"] as const;

/** A job record (`<ns>_results`, key = job id). */
export const checkJobRecord: DocCheck<JobRecord> = (value, where) => {
  const f = versionedDoc(value, where);
  f.str("id");
  f.str("queue");
  f.str("task");
  f.oneOf("status", RECORD_STATUSES);
  f.num("attempts");
  f.num("maxAttempts");
  f.str("enqueuedAt");
  f.optStr("startedAt");
  f.str("finishedAt");
  f.optNum("durationMs");
  f.optStr("worker");
  f.optJobError("error");
  f.optStr("reason");
  f.optRecordOf("labels", "an object of strings", (l) => typeof l === "string");
  return f.doc as unknown as JobRecord;
};

/** A stored event: the fields every event has, and the right types for the optional ones naq reads. */
export const checkEvent: DocCheck<NaqEvent> = (value, where) => {
  if (!isObject(value)) throw new ValidationError(`${where}: not an event (expected a JSON object)`, "");
  const f = new Fields(value, where);
  if (typeof value.v !== "number") f.fail("v", "a number");
  f.str("type");
  f.str("at");
  f.str("queue");
  f.str("jobId");
  for (const k of ["task", "worker", "reason", "log", "dueAt", "firedJob", "startedAt"]) f.optStr(k);
  for (const k of ["attempt", "maxAttempts", "durationMs", "delayMs", "count"]) f.optNum(k);
  f.optJobError("error");
  return value as unknown as NaqEvent & { type: EventType };
};

/** A recurring schedule (`<ns>_schedules`, key `sched.<name>`). */
export const checkScheduleDoc: DocCheck<ScheduleDoc> = (value, where) => {
  const f = versionedDoc(value, where);
  f.str("name");
  const job = f.obj("job");
  job.str("task");
  job.str("queue");
  if (!Object.hasOwn(job.doc, "payload")) job.fail("payload", "present (null for none)");
  job.optNum("retries");
  job.optObj("backoff");
  job.optNum("timeoutMs");
  job.optRecordOf("labels", "an object of strings", (l) => typeof l === "string");
  const rec = f.obj("recurrence");
  if (rec.oneOf("kind", ["cron", "every"]) === "cron") {
    rec.str("cron");
    rec.optStr("tz");
  } else {
    if (!(rec.num("everyMs") > 0)) rec.fail("everyMs", "a number > 0");
    rec.num("anchorMs");
  }
  f.optTime("startAt");
  f.optTime("endAt");
  f.optNum("limit");
  f.oneOf("misfire", MISFIRE_POLICIES);
  f.optNum("jitterMs");
  f.bool("paused");
  f.optTime("pausedAt");
  f.optTime("nextRunAt");
  f.num("runs");
  f.optTime("lastRunAt");
  f.optStr("lastJobId");
  f.optTime("lastFiredAt");
  const inflight = f.optObj("inflight");
  if (inflight) {
    inflight.str("jobId");
    inflight.time("dueAt");
    inflight.str("entry");
    inflight.time("at");
  }
  f.str("createdAt");
  f.str("updatedAt");
  return f.doc as unknown as ScheduleDoc;
};

/** A delayed job (`<ns>_schedules`, key `delayed.<job id>`): its envelope is checked as a worker would. */
export const checkDelayedDoc: DocCheck<DelayedDoc> = (value, where) => {
  const f = versionedDoc(value, where);
  try {
    validateEnvelope(f.doc.job);
  } catch (err) {
    throw new ValidationError(`${where}: not a valid document: ${(err as Error).message}`, "job", { cause: err });
  }
  f.time("dueAt");
  f.str("createdAt");
  const firing = f.optObj("firing");
  if (firing) {
    firing.time("at");
    firing.str("by");
  }
  return f.doc as unknown as DelayedDoc;
};

/** The scheduler's leader lease (`<ns>_leader`, key `leader`). */
export const checkLeaseDoc: DocCheck<LeaseDoc> = (value, where) => {
  const f = versionedDoc(value, where);
  f.str("id");
  f.str("host");
  f.num("pid");
  f.str("since");
  f.str("renewedAt");
  f.time("expiresAt");
  return f.doc as unknown as LeaseDoc;
};

/** An entry of the due-time index (`due.<slot>.<i>`). */
export const checkIndexEntry: DocCheck<IndexEntry> = (value, where) => {
  const f = versionedDoc(value, where);
  f.oneOf("k", ["s", "d"]);
  f.str("id");
  f.num("at");
  return f.doc as unknown as IndexEntry;
};

/** A slot counter of the due-time index (`slot.<slot>`). */
export const checkSlotCounter: DocCheck<SlotCounter> = (value, where) => {
  const f = versionedDoc(value, where);
  if (!Number.isSafeInteger(f.num("n")) || (f.doc.n as number) < 0) f.fail("n", "a whole number >= 0");
  return f.doc as unknown as SlotCounter;
};

/** The due-time index cursor (`cursor`). */
export const checkCursorDoc: DocCheck<CursorDoc> = (value, where) => {
  const f = versionedDoc(value, where);
  if (!Number.isSafeInteger(f.num("slot"))) f.fail("slot", "a whole number");
  f.str("at");
  f.optStr("by");
  return f.doc as unknown as CursorDoc;
};
