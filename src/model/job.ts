/**
 * The job envelope (v1): what a producer publishes on a queue subject and a worker
 * decodes. Plain JSON, versioned, validated field by field: a worker never runs code
 * named by a message, only the handler registered for its task. See docs/wire-format.md.
 */
import { newJobId } from "./ids.js";
import { type Backoff, DEFAULT_BACKOFF } from "./backoff.js";
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

export const validateTaskName = (t: string): string => {
  if (typeof t !== "string" || t.length === 0 || t.length > 128 || !/^[A-Za-z0-9_.:-]+$/.test(t)) {
    throw new ValidationError(
      `task ${JSON.stringify(t)} is not valid: use letters, digits, '_', '-', '.' and ':' only, 1 to 128 characters`,
      "task",
    );
  }
  return t;
};
export const validateJobId = (id: string): string => validateToken(id, "id", 128);

/** Id under which an undecodable message is dead-lettered ('_' ids are reserved for naq). */
export const poisonId = (seq: number): string => `_seq${seq}`;

/** Builds a complete envelope from what a caller gave, with defaults, validating everything. */
export function createEnvelope(input: EnqueueInput, now = new Date()): JobEnvelope {
  const retries = input.retries ?? DEFAULT_RETRIES;
  if (!Number.isInteger(retries) || retries < 0 || retries >= MAX_ATTEMPTS) {
    throw new ValidationError(`retries must be a whole number from 0 to ${MAX_ATTEMPTS - 1}, got ${String(retries)}`, "retries");
  }
  const env: JobEnvelope = {
    v: JOB_VERSION,
    id: input.id ?? newJobId(now.getTime()),
    queue: input.queue ?? DEFAULT_QUEUE,
    task: input.task,
    payload: input.payload ?? null,
    enqueuedAt: now.toISOString(),
    attempts: retries + 1,
    backoff: input.backoff ?? DEFAULT_BACKOFF,
  };
  if (input.timeoutMs !== undefined) env.timeoutMs = input.timeoutMs;
  if (input.dependsOn && input.dependsOn.length > 0) env.dependsOn = [...input.dependsOn];
  if (input.labels && Object.keys(input.labels).length > 0) env.labels = { ...input.labels };
  return validateEnvelope(env);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function fail(field: string, message: string): never {
  throw new ValidationError(`job.${field}: ${message}`, field);
}

function validateBackoff(b: unknown): Backoff {
  if (!isObject(b)) fail("backoff", "must be an object");
  const num = (k: string) => {
    const n = b[k];
    if (typeof n !== "number" || !Number.isFinite(n) || n < 0) fail(`backoff.${k}`, "must be a number >= 0");
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
      if (!Array.isArray(b.delaysMs) || b.delaysMs.length === 0 || !b.delaysMs.every((d) => typeof d === "number" && d >= 0)) {
        fail("backoff.delaysMs", "must be a non-empty list of numbers >= 0");
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
  if (typeof value.id !== "string") fail("id", "must be a string");
  validateJobId(value.id);
  if (value.id.startsWith("_")) fail("id", "ids starting with '_' are reserved for naq");
  if (typeof value.queue !== "string") fail("queue", "must be a string");
  validateQueueName(value.queue);
  if (typeof value.task !== "string") fail("task", "must be a string");
  validateTaskName(value.task);
  if (!("payload" in value)) fail("payload", "is missing (use null for none)");
  if (typeof value.enqueuedAt !== "string" || Number.isNaN(Date.parse(value.enqueuedAt))) {
    fail("enqueuedAt", "must be an ISO 8601 time");
  }
  if (!Number.isInteger(value.attempts) || (value.attempts as number) < 1 || (value.attempts as number) > MAX_ATTEMPTS) {
    fail("attempts", `must be a whole number from 1 to ${MAX_ATTEMPTS}`);
  }
  validateBackoff(value.backoff);
  if (value.timeoutMs !== undefined && !(typeof value.timeoutMs === "number" && value.timeoutMs > 0)) {
    fail("timeoutMs", "must be a number of milliseconds > 0");
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
  return value as unknown as JobEnvelope;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

export function encodeEnvelope(env: JobEnvelope): Uint8Array {
  return encoder.encode(JSON.stringify(env));
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
