/**
 * One delivery, start to finish: decode -> cancelled? -> dependencies -> run handler (with
 * timeout and AbortSignal) -> exactly one outcome: completed, retry (NAK with backoff),
 * dead-letter, wait (NAK), or released (NAK at once, on forced shutdown).
 *
 * At-least-once: the ack is sent only after the terminal record (or dead-letter entry)
 * is written. Everything that touches NATS comes in through `ExecDeps`, so this logic is
 * unit-testable without a server.
 */
import { backoffDelay } from "../model/backoff.js";
import { MAX_TIMER_MS } from "../model/duration.js";
import { coerceError, PayloadTooLargeError, UnrecoverableError } from "../model/errors.js";
import { boundedError } from "../model/limits.js";
import { JobEventType } from "../model/events.js";
import { isoTime } from "../model/clock.js";
import { decodeEnvelope, JOB_VERSION, poisonId, type JobEnvelope, type JobError, type JobRecord, type JsonValue, type SkippedDeliveries } from "../model/job.js";
import type { EventInput } from "../services/events.js";
import type { DeadLetter } from "../services/jobs.js";
import type { Handler } from "./handlers.js";
import { JobCancelledError, JobTimeoutError, RunContext, RunningJob, WorkerStoppingError } from "./running-job.js";

export interface ExecDeps {
  workerId: string;
  handlers: ReadonlyMap<string, Handler>;
  writeRecord(record: JobRecord): Promise<void>;
  deadLetter(entry: DeadLetter, msgId: string): Promise<void>;
  getRecord(id: string): Promise<JobRecord | undefined>;
  /** Whether a job was ever seen (it has events), for dependencies without a record. */
  jobExists(id: string): Promise<boolean>;
  /**
   * This job's deliveries that were not attempts (one document, read for a job with
   * dependencies or a redelivery): put back to wait for dependencies, and handed back
   * without running by a stopping or full worker.
   */
  skipped(id: string): Promise<SkippedDeliveries>;
  /** Stores the counts after one more dependency wait. */
  recordWait(id: string, skipped: SkippedDeliveries): Promise<void>;
  isCancelled(id: string): boolean;
  /** The handler has settled: its slot may take the next job while the outcome is written. */
  handlerSettled?(run: RunningJob): void;
  /** Why this worker will not run `job` at all (dead-lettered without starting), if it will not. */
  refuse?(job: JobEnvelope): string | undefined;
  /**
   * The largest job message this worker takes (its server's max_payload). A bigger one
   * (published through a server with a larger max_payload) is dead-lettered without
   * running: it could not be re-enqueued or dead-lettered whole through this server.
   */
  maxJobBytes?: number;
  emit(event: EventInput): void;
  verbose?: boolean;
  now?: () => number;
  random?: () => number;
}

export type Outcome =
  | { kind: "completed"; job: JobEnvelope; attempt: number; durationMs: number; result: JsonValue }
  | { kind: "retrying"; job: JobEnvelope; attempt: number; delayMs: number; error: JobError; durationMs: number }
  | { kind: "failed"; job?: JobEnvelope; id: string; attempt: number; reason: string; error?: JobError; durationMs?: number }
  | { kind: "waiting"; job: JobEnvelope; delayMs: number; on: string[] }
  | { kind: "cancelled"; job: JobEnvelope }
  | { kind: "released"; job: JobEnvelope };

export { JobCancelledError, JobTimeoutError, RunningJob, WorkerStoppingError } from "./running-job.js";

const MAX_WAIT_DELAY = 30_000;
/** Waits before a dependency nobody has heard of fails its dependant (it may be enqueued just after). */
const UNKNOWN_DEPENDENCY_WAITS = 3;

export function toJobError(err: unknown, verbose = false): JobError {
  const e = coerceError(err);
  // A handler's error can be any size: records, events and dead-letter entries keep a bounded part.
  return boundedError({ name: String(e.name), message: String(e.message), ...(verbose && e.stack ? { stack: String(e.stack) } : {}) });
}

/** setTimeout for any delay: Node fires a delay over 2^31-1 ms (24.8 days) at once, so a longer one is chained. */
function longTimeout(fn: () => void, ms: number): { clear(): void } {
  let handle: NodeJS.Timeout | undefined;
  const arm = (left: number): void => {
    handle = setTimeout(() => (left > MAX_TIMER_MS ? arm(left - MAX_TIMER_MS) : fn()), Math.min(left, MAX_TIMER_MS));
  };
  arm(ms);
  return { clear: () => clearTimeout(handle) };
}

/** Makes a handler's return value JSON (undefined -> null); throws if it cannot be. */
function toJson(value: unknown): JsonValue {
  if (value === undefined) return null;
  return JSON.parse(JSON.stringify(value)) as JsonValue;
}

export async function execute(run: RunningJob, deps: ExecDeps): Promise<Outcome> {
  const d = run.delivery;
  const now = deps.now ?? Date.now;
  let job: JobEnvelope;
  const oversized =
    deps.maxJobBytes !== undefined && d.data.length > deps.maxJobBytes
      ? `oversized job: the message is ${d.data.length} bytes, over the max_payload of ${deps.maxJobBytes} bytes of this worker's server`
      : undefined;
  try {
    job = decodeEnvelope(d.data);
  } catch (err) {
    const id = poisonId(d.seq);
    const reason = oversized ?? `invalid job: ${coerceError(err).message}`;
    await deps.deadLetter(
      {
        v: JOB_VERSION,
        id,
        queue: d.queue,
        reason,
        attempts: d.deliveryCount,
        failedAt: new Date(now()).toISOString(),
        worker: deps.workerId,
        raw: Buffer.from(d.data).toString("base64"),
      },
      `${id}.dlq`,
    );
    d.term(reason);
    deps.emit({ type: JobEventType.deadLettered, queue: d.queue, jobId: id, worker: deps.workerId, reason });
    return { kind: "failed", id, attempt: d.deliveryCount, reason };
  }
  run.job = job;
  const base = { queue: job.queue, jobId: job.id, task: job.task, worker: deps.workerId, maxAttempts: job.attempts };

  if (deps.isCancelled(job.id)) {
    d.ack();
    return { kind: "cancelled", job };
  }

  if (oversized) return deadLetterJob(run, job, 0, oversized, undefined, deps);
  const refusal = deps.refuse?.(job);
  if (refusal) return deadLetterJob(run, job, 0, refusal, undefined, deps);

  const handler = deps.handlers.get(job.task);
  if (!handler) {
    return deadLetterJob(run, job, 1, `unknown task "${job.task}": this worker has handlers for ${[...deps.handlers.keys()].join(", ") || "no tasks"}`, undefined, deps);
  }

  const hasDeps = job.dependsOn !== undefined && job.dependsOn.length > 0;
  let skipped: SkippedDeliveries = { waits: 0, released: 0 };
  // A failed read NAKs a job with dependencies (it cannot tell if they are done); any other
  // job runs anyway, those deliveries then counting as attempts (the safe side).
  if (hasDeps) skipped = await deps.skipped(job.id);
  else if (d.deliveryCount > 1) skipped = await deps.skipped(job.id).catch(() => skipped);
  const { waits, released } = skipped;
  if (hasDeps) {
    const pending: string[] = [];
    for (const dep of job.dependsOn ?? []) {
      const rec = await deps.getRecord(dep);
      if (!rec) pending.push(dep);
      else if (rec.status !== "completed") {
        return deadLetterJob(run, job, 0, `dependency ${dep} ${rec.status}${rec.error ? `: ${rec.error.message}` : ""}`, undefined, deps);
      }
    }
    if (pending.length > 0 && waits >= UNKNOWN_DEPENDENCY_WAITS) {
      for (const dep of pending) {
        if (!(await deps.jobExists(dep))) {
          return deadLetterJob(run, job, 0, `dependency ${dep} not found (never enqueued, or its record expired)`, undefined, deps);
        }
      }
    }
    if (pending.length > 0) {
      const delayMs = Math.min(MAX_WAIT_DELAY, 500 * 2 ** Math.min(waits, 10));
      await deps.recordWait(job.id, { waits: waits + 1, released });
      d.nak(delayMs);
      deps.emit({ ...base, type: JobEventType.waiting, delayMs, reason: `waiting for ${pending.join(", ")}` });
      return { kind: "waiting", job, delayMs, on: pending };
    }
  }

  // The server counts every delivery; an attempt is a delivery that ran.
  const attempt = Math.max(1, d.deliveryCount - waits - released);
  run.startedAt = now();
  const startedAt = isoTime(run.startedAt);
  // Literals, not `{ ...base, ... }`: a spread followed by more properties is V8's slow path.
  deps.emit({ at: startedAt, queue: job.queue, jobId: job.id, task: job.task, worker: deps.workerId, maxAttempts: job.attempts, type: JobEventType.started, attempt });
  const ctx = new RunContext(job, attempt, run, deps.emit, base);

  let timer: { clear(): void } | undefined;
  let result: JsonValue;
  try {
    const running = run.race(() => handler(job.payload, ctx));
    if (job.timeoutMs !== undefined) {
      timer = longTimeout(() => run.controller.abort(new JobTimeoutError(`timed out after ${job.timeoutMs}ms`)), job.timeoutMs);
    }
    result = toJson(await running);
  } catch (err) {
    deps.handlerSettled?.(run);
    timer?.clear();
    const reason: unknown = run.aborted ? run.abortReason : err;
    if (reason instanceof JobCancelledError) {
      d.ack();
      return { kind: "cancelled", job };
    }
    if (reason instanceof WorkerStoppingError) {
      d.nak();
      return { kind: "released", job };
    }
    const error = toJobError(reason, deps.verbose);
    const unrecoverable = reason instanceof UnrecoverableError || (reason instanceof Error && reason.name === "UnrecoverableError");
    if (!unrecoverable && attempt < job.attempts) {
      const delayMs = backoffDelay(job.backoff, attempt + 1, deps.random);
      const durationMs = now() - run.startedAt;
      d.nak(delayMs);
      deps.emit({ ...base, type: JobEventType.retrying, attempt, delayMs, error, durationMs });
      return { kind: "retrying", job, attempt, delayMs, error, durationMs };
    }
    const why = unrecoverable ? "unrecoverable error" : `failed after ${attempt} attempt${attempt === 1 ? "" : "s"}`;
    return deadLetterJob(run, job, attempt, why, error, deps);
  }
  deps.handlerSettled?.(run);
  timer?.clear();

  const finishedAt = now();
  const durationMs = finishedAt - run.startedAt;
  if (deps.isCancelled(job.id)) {
    // cancel() already wrote the cancelled record; finishing anyway must not overwrite it.
    d.ack();
    return { kind: "cancelled", job };
  }
  const record: JobRecord = {
    v: JOB_VERSION,
    id: job.id,
    queue: job.queue,
    task: job.task,
    status: "completed",
    attempts: attempt,
    maxAttempts: job.attempts,
    enqueuedAt: job.enqueuedAt,
    startedAt,
    finishedAt: isoTime(finishedAt),
    durationMs,
    worker: deps.workerId,
    result,
  };
  if (job.labels) record.labels = job.labels;
  try {
    await deps.writeRecord(record);
  } catch (err) {
    // A result over max_payload can never be stored: the job fails for good (retrying would
    // only compute it again), with the sizes in its reason; its failed record has no result.
    if (!(err instanceof PayloadTooLargeError)) throw err;
    const reason = `result too large: the job's record is ${err.bytes} bytes, over the limit of ${err.limit} bytes (the server's max_payload); return a smaller result, or store it elsewhere and return a reference`;
    return deadLetterJob(run, job, attempt, reason, toJobError(err, deps.verbose), deps);
  }
  d.ack();
  deps.emit({ queue: job.queue, jobId: job.id, task: job.task, worker: deps.workerId, maxAttempts: job.attempts, type: JobEventType.completed, attempt, durationMs });
  return { kind: "completed", job, attempt, durationMs, result };
}

async function deadLetterJob(
  run: RunningJob,
  job: JobEnvelope,
  attempt: number,
  reason: string,
  error: JobError | undefined,
  deps: ExecDeps,
): Promise<Outcome> {
  const d = run.delivery;
  const now = deps.now ?? Date.now;
  const failedAt = new Date(now()).toISOString();
  await deps.deadLetter(
    { v: JOB_VERSION, id: job.id, queue: job.queue, task: job.task, reason, error, attempts: attempt, failedAt, worker: deps.workerId, job },
    `${job.id}.dlq.${d.seq}`,
  );
  await deps.writeRecord({
    v: JOB_VERSION,
    id: job.id,
    queue: job.queue,
    task: job.task,
    status: "failed",
    attempts: attempt,
    maxAttempts: job.attempts,
    enqueuedAt: job.enqueuedAt,
    ...(attempt > 0 ? { startedAt: new Date(run.startedAt).toISOString(), durationMs: now() - run.startedAt } : {}),
    finishedAt: failedAt,
    worker: deps.workerId,
    reason,
    ...(error ? { error } : {}),
    ...(job.labels ? { labels: job.labels } : {}),
  });
  d.term(reason);
  const base = { queue: job.queue, jobId: job.id, task: job.task, worker: deps.workerId, attempt, maxAttempts: job.attempts };
  deps.emit({ ...base, type: JobEventType.failed, reason, ...(error ? { error } : {}) });
  deps.emit({ ...base, type: JobEventType.deadLettered, reason });
  return { kind: "failed", job, id: job.id, attempt, reason, error, ...(attempt > 0 ? { durationMs: now() - run.startedAt } : {}) };
}
