/**
 * The job envelope (v1): what a producer publishes on a queue subject and a worker
 * decodes. Plain JSON, versioned, validated field by field: a worker never runs code
 * named by a message, only the handler registered for its task. See docs/wire-format.md.
 */
import { isoTime } from "./clock.js";
import { newJobId } from "./ids.js";
import { type Backoff, DEFAULT_BACKOFF } from "./backoff.js";
import { MAX_DURATION_MS } from "./duration.js";
import { ValidationError } from "./errors.js";
import { validateQueueName, validateToken } from "./naming.js";

export const JOB_VERSION = 1;

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface JobEnvelope {
  v: typeof JOB_VERSION;
  id: string;
  queue: string;
  task: string;
  payload: JsonValue;
  /** ISO 8601 time the job was first enqueued. */
  enqueuedAt: string;
  /** Total attempts allowed (1 = no retries). */
  attempts: number;
  backoff: Backoff;
  /** Per-attempt time limit; absent = none. */
  timeoutMs?: number;
  dependsOn?: string[];
  labels?: Record<string, string>;
}

export interface EnqueueInput {
  task: string;
  payload?: JsonValue;
  queue?: string;
  id?: string;
  /** Retries after the first attempt (attempts = retries + 1). */
  retries?: number;
  backoff?: Backoff;
  timeoutMs?: number;
  dependsOn?: string[];
  labels?: Record<string, string>;
}

export const DEFAULT_QUEUE = "default";
export const DEFAULT_RETRIES = 3;
export const MAX_ATTEMPTS = 1_000;
/**
 * How deep a payload may nest (`[[...]]` counts 2). Deeper JSON parses, but re-encoding it
 * (dead-letter entry, retry) would overflow the stack: such a job is refused up front.
 */
export const MAX_JSON_DEPTH = 100;
/** An ISO 8601 date and time with a zone, as `Date.prototype.toISOString` and other languages write it. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

export const validateTaskName = (t: string): string => {
  if (typeof t !== "string" || t.length === 0 || t.length > 128 || !/^[A-Za-z0-9_.:-]+$/.test(t)) {
    throw new ValidationError(
      `task ${JSON.stringify(t)} is not valid: use letters, digits, '_', '-', '.' and ':' only, 1 to 128 characters`,
      "task",
    );
  }
  return t;
};
/**
 * A job's deliveries that were not attempts (the server counts every delivery): `waits`,
 * put back to wait for its dependencies; `released`, handed back without running by a
 * worker that was stopping or had no free slot. Kept in `wait.<id>` beside its record.
 */
export interface SkippedDeliveries {
  waits: number;
  released: number;
}

export const validateJobId = (id: string): string => validateToken(id, "id", 128);

/** Id under which an undecodable message is dead-lettered ('_' ids are reserved for naq). */
export const poisonId = (seq: number): string => `_seq${seq}`;

/** Builds a complete envelope from what a caller gave, with defaults, validating everything. */
export function createEnvelope(input: EnqueueInput, now: Date | number = Date.now(), queue: string = DEFAULT_QUEUE): JobEnvelope {
  if (!isObject(input)) throw new ValidationError("a job must be an object such as { task, payload }", "");
  const retries = input.retries ?? DEFAULT_RETRIES;
  if (!Number.isInteger(retries) || retries < 0 || retries >= MAX_ATTEMPTS) {
    throw new ValidationError(`retries must be a whole number from 0 to ${MAX_ATTEMPTS - 1}, got ${String(retries)}`, "retries");
  }
  const ms = typeof now === "number" ? now : now.getTime();
  const env: JobEnvelope = {
    v: JOB_VERSION,
    id: input.id ?? newJobId(ms),
    queue: input.queue ?? queue,
    task: input.task,
    payload: input.payload ?? null,
    enqueuedAt: isoTime(ms),
    attempts: retries + 1,
    backoff: input.backoff ?? DEFAULT_BACKOFF,
  };
  if (input.timeoutMs !== undefined) env.timeoutMs = input.timeoutMs;
  if (input.dependsOn && input.dependsOn.length > 0) env.dependsOn = [...input.dependsOn];
  if (input.labels && Object.keys(input.labels).length > 0) env.labels = { ...input.labels };
  // What was made here (version, a new id, the time, attempts, the default backoff) is
  // valid by construction (tested): only what the caller gave is checked, once per job.
  if (input.id !== undefined) checkId(env.id);
  if (input.backoff !== undefined) validateBackoff(env.backoff);
  checkCallerFields(env as unknown as Record<string, unknown>);
  return env;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function fail(field: string, message: string): never {
  throw new ValidationError(`job.${field}: ${message}`, field);
}

/** A number of milliseconds that JSON carries unchanged and timers and JetStream accept (100 years at most). */
const isMs = (n: unknown): n is number => typeof n === "number" && Number.isFinite(n) && n >= 0 && n <= MAX_DURATION_MS;

/**
 * Checks that `value` is JSON that survives a round trip: finite numbers only (1e999 parses
 * to Infinity, which JSON writes as null), at most MAX_JSON_DEPTH levels deep. Iterative, so
 * hostile nesting cannot overflow the stack here. `undefined` (dropped by JSON) and objects
 * with a toJSON method (Date) are accepted from JavaScript callers.
 */
export function validateJson(value: unknown, field: string, maxDepth = MAX_JSON_DEPTH): void {
  if (value === null || typeof value === "string" || typeof value === "boolean") return; // the common payloads: no walk
  // Depth first (a stack), so a circular value fails fast at maxDepth instead of being walked wide.
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    switch (typeof v) {
      case "string":
      case "boolean":
      case "undefined":
        continue;
      case "number":
        if (!Number.isFinite(v)) fail(field, `holds ${String(v)}, which JSON cannot carry (numbers must be finite)`);
        continue;
      case "object":
        break;
      default:
        fail(field, `holds a ${typeof v}, which is not JSON`);
    }
    if (v === null) continue;
    if (depth > maxDepth) fail(field, `is nested more than ${maxDepth} levels deep (or is circular)`);
    if (typeof (v as { toJSON?: unknown }).toJSON === "function") continue;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
}

function validateBackoff(b: unknown): Backoff {
  if (!isObject(b)) fail("backoff", "must be an object");
  const num = (k: string) => {
    const n = b[k];
    if (!isMs(n)) fail(`backoff.${k}`, "must be a number of milliseconds >= 0 (100 years at most)");
    return n;
  };
  if (b.jitter !== undefined && !(typeof b.jitter === "number" && b.jitter >= 0 && b.jitter <= 1)) {
    fail("backoff.jitter", "must be a number from 0 to 1");
  }
  switch (b.type) {
    case "fixed":
      num("delayMs");
      break;
    case "exponential":
      num("baseMs");
      num("maxMs");
      break;
    case "list":
      if (!Array.isArray(b.delaysMs) || b.delaysMs.length === 0 || !b.delaysMs.every(isMs)) {
        fail("backoff.delaysMs", "must be a non-empty list of milliseconds >= 0 (100 years at most)");
      }
      break;
    default:
      fail("backoff.type", `must be "fixed", "exponential" or "list", got ${JSON.stringify(b.type)}`);
  }
  return b as Backoff;
}

/** Checks a parsed value is a valid v1 envelope; throws ValidationError naming the field. */
export function validateEnvelope(value: unknown): JobEnvelope {
  if (!isObject(value)) fail("", "a job must be a JSON object");
  if (value.v !== JOB_VERSION) fail("v", `unsupported version ${JSON.stringify(value.v)} (this naq reads version ${JOB_VERSION})`);
  checkId(value.id);
  if (typeof value.enqueuedAt !== "string" || !ISO_TIME.test(value.enqueuedAt) || Number.isNaN(Date.parse(value.enqueuedAt))) {
    fail("enqueuedAt", "must be an ISO 8601 time with a zone, e.g. 2025-01-15T09:30:00.000Z");
  }
  if (!Number.isInteger(value.attempts) || (value.attempts as number) < 1 || (value.attempts as number) > MAX_ATTEMPTS) {
    fail("attempts", `must be a whole number from 1 to ${MAX_ATTEMPTS}`);
  }
  validateBackoff(value.backoff);
  checkCallerFields(value);
  return value as unknown as JobEnvelope;
}

function checkId(id: unknown): void {
  if (typeof id !== "string") fail("id", "must be a string");
  validateJobId(id);
  if (id.startsWith("_")) fail("id", "ids starting with '_' are reserved for naq");
}

/** The fields a producer chooses: queue, task, payload, timeout, dependencies, labels. */
function checkCallerFields(value: Record<string, unknown>): void {
  if (typeof value.queue !== "string") fail("queue", "must be a string");
  validateQueueName(value.queue);
  if (typeof value.task !== "string") fail("task", "must be a string");
  validateTaskName(value.task);
  if (!Object.hasOwn(value, "payload")) fail("payload", "is missing (use null for none)");
  validateJson(value.payload, "payload");
  if (value.timeoutMs !== undefined && !(isMs(value.timeoutMs) && value.timeoutMs > 0)) {
    fail("timeoutMs", "must be a number of milliseconds > 0 (100 years at most)");
  }
  if (value.dependsOn !== undefined) {
    if (!Array.isArray(value.dependsOn)) fail("dependsOn", "must be a list of job ids");
    value.dependsOn.forEach((d, i) => {
      if (typeof d !== "string") fail(`dependsOn[${i}]`, "must be a job id");
      validateToken(d, `dependsOn[${i}]`, 128);
    });
  }
  if (value.labels !== undefined) {
    if (!isObject(value.labels) || !Object.values(value.labels).every((l) => typeof l === "string")) {
      fail("labels", "must be an object of string values");
    }
  }
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export function encodeEnvelope(env: JobEnvelope): Uint8Array {
  try {
    return encoder.encode(JSON.stringify(env));
  } catch (err) {
    // A circular payload, a BigInt, or a toJSON that throws (validateEnvelope catches the rest).
    throw new ValidationError(`job.payload: cannot be written as JSON (${(err as Error).message})`, "payload", { cause: err });
  }
}

/** Decodes message bytes into an envelope; ValidationError for bad JSON or a bad field. */
export function decodeEnvelope(data: Uint8Array): JobEnvelope {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data));
  } catch {
    throw new ValidationError("job is not valid JSON", "");
  }
  return validateEnvelope(parsed);
}

/** Where a job is in its life. `running`, `retrying`, `waiting` are derived from events. */
export const JobStatus = {
  scheduled: "scheduled",
  queued: "queued",
  waiting: "waiting",
  running: "running",
  retrying: "retrying",
  completed: "completed",
  failed: "failed",
  cancelled: "cancelled",
} as const;
export type JobStatus = (typeof JobStatus)[keyof typeof JobStatus];
export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set(["completed", "failed", "cancelled"]);

export interface JobError {
  name: string;
  message: string;
  /** Only with the worker's --verbose: stacks may hold paths, never secrets from naq. */
  stack?: string;
}

/**
 * The terminal record (KV `<ns>_results`, key = job id): the one awaited write that
 * ends a job, carrying status and result together.
 */
export interface JobRecord {
  v: typeof JOB_VERSION;
  id: string;
  queue: string;
  task: string;
  status: "completed" | "failed" | "cancelled";
  attempts: number;
  maxAttempts: number;
  enqueuedAt: string;
  startedAt?: string;
  finishedAt: string;
  durationMs?: number;
  worker?: string;
  result?: JsonValue;
  error?: JobError;
  /** Why it ended this way when not by its handler: dead-lettered input, failed dependency, cancel. */
  reason?: string;
  labels?: Record<string, string>;
}
