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
import { coerceError, UnrecoverableError } from "../model/errors.js";
import { JobEventType } from "../model/events.js";
import { decodeEnvelope, JOB_VERSION, poisonId, type JobEnvelope, type JobError, type JobRecord, type JsonValue } from "../model/job.js";
import type { EventInput } from "../services/events.js";
import type { DeadLetter } from "../services/jobs.js";
import type { Delivery } from "../services/queues.js";
import type { Handler, JobContext } from "./handlers.js";

export interface ExecDeps {
  workerId: string;
  handlers: ReadonlyMap<string, Handler>;
  writeRecord(record: JobRecord): Promise<void>;
  deadLetter(entry: DeadLetter, msgId: string): Promise<void>;
  getRecord(id: string): Promise<JobRecord | undefined>;
  /** Whether a job was ever seen (it has events), for dependencies without a record. */
  jobExists(id: string): Promise<boolean>;
  /** How many times this job was put back to wait for dependencies (not attempts). */
  waits(id: string): Promise<number>;
  recordWait(id: string, count: number): Promise<void>;
  isCancelled(id: string): boolean;
  /** The handler has settled: its slot may take the next job while the outcome is written. */
  handlerSettled?(run: RunningJob): void;
  /** Why this worker will not run `job` at all (dead-lettered without starting), if it will not. */
  refuse?(job: JobEnvelope): string | undefined;
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

/** Cancels/aborts a running job from outside (cancel request, forced shutdown). */
export class RunningJob {
  readonly controller = new AbortController();
  job?: JobEnvelope;
  startedAt = Date.now();
  /** Set when the job's slot was handed back (at the latest when the job ends). */
  slotReleased = false;
  constructor(readonly delivery: Delivery) {}
}

export class JobTimeoutError extends Error {
  override name = "JobTimeoutError";
}
export class JobCancelledError extends Error {
  override name = "JobCancelledError";
}
export class WorkerStoppingError extends Error {
  override name = "WorkerStoppingError";
}

const MAX_WAIT_DELAY = 30_000;
/** Waits before a dependency nobody has heard of fails its dependant (it may be enqueued just after). */
const UNKNOWN_DEPENDENCY_WAITS = 3;

export function toJobError(err: unknown, verbose = false): JobError {
  const e = coerceError(err);
  return { name: e.name, message: e.message, ...(verbose && e.stack ? { stack: e.stack } : {}) };
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
  try {
    job = decodeEnvelope(d.data);
  } catch (err) {
    const id = poisonId(d.seq);
    const reason = `invalid job: ${coerceError(err).message}`;
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

  const refusal = deps.refuse?.(job);
  if (refusal) return deadLetterJob(run, job, 0, refusal, undefined, deps);

  const handler = deps.handlers.get(job.task);
  if (!handler) {
    return deadLetterJob(run, job, 1, `unknown task "${job.task}": this worker has handlers for ${[...deps.handlers.keys()].join(", ") || "no tasks"}`, undefined, deps);
  }

  let waits = 0;
  if (job.dependsOn && job.dependsOn.length > 0) {
    const pending: string[] = [];
    for (const dep of job.dependsOn) {
      const rec = await deps.getRecord(dep);
      if (!rec) pending.push(dep);
      else if (rec.status !== "completed") {
        return deadLetterJob(run, job, 0, `dependency ${dep} ${rec.status}${rec.error ? `: ${rec.error.message}` : ""}`, undefined, deps);
      }
    }
    waits = await deps.waits(job.id);
    if (pending.length > 0 && waits >= UNKNOWN_DEPENDENCY_WAITS) {
      for (const dep of pending) {
        if (!(await deps.jobExists(dep))) {
          return deadLetterJob(run, job, 0, `dependency ${dep} not found (never enqueued, or its record expired)`, undefined, deps);
        }
      }
    }
    if (pending.length > 0) {
      const delayMs = Math.min(MAX_WAIT_DELAY, 500 * 2 ** Math.min(waits, 10));
      await deps.recordWait(job.id, waits + 1);
      d.nak(delayMs);
      deps.emit({ ...base, type: JobEventType.waiting, delayMs, reason: `waiting for ${pending.join(", ")}` });
      return { kind: "waiting", job, delayMs, on: pending };
    }
  }

  const attempt = Math.max(1, d.deliveryCount - waits);
  run.startedAt = now();
  deps.emit({ ...base, type: JobEventType.started, attempt });
  const signal = run.controller.signal;
  const ctx: JobContext = {
    job,
    id: job.id,
    attempt,
    signal,
    progress: (value) => deps.emit({ ...base, type: JobEventType.progress, attempt, progress: value }),
    log: (line) => deps.emit({ ...base, type: JobEventType.progress, attempt, log: String(line) }),
  };

  let timer: NodeJS.Timeout | undefined;
  let result: JsonValue;
  try {
    const running = Promise.resolve().then(() => handler(job.payload, ctx));
    const aborted = new Promise<never>((_, reject) => {
      const onAbort = () => reject(signal.reason);
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    });
    if (job.timeoutMs !== undefined) {
      timer = setTimeout(() => run.controller.abort(new JobTimeoutError(`timed out after ${job.timeoutMs}ms`)), job.timeoutMs);
    }
    running.catch(() => undefined); // a handler that rejects after we gave up on it is not unhandled
    result = toJson(await Promise.race([running, aborted]));
  } catch (err) {
    deps.handlerSettled?.(run);
    if (timer) clearTimeout(timer);
    const reason: unknown = signal.aborted ? signal.reason : err;
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
  if (timer) clearTimeout(timer);

  const finishedAt = now();
  const durationMs = finishedAt - run.startedAt;
  if (deps.isCancelled(job.id)) {
    // cancel() already wrote the cancelled record; finishing anyway must not overwrite it.
    d.ack();
    return { kind: "cancelled", job };
  }
  await deps.writeRecord({
    v: JOB_VERSION,
    id: job.id,
    queue: job.queue,
    task: job.task,
    status: "completed",
    attempts: attempt,
    maxAttempts: job.attempts,
    enqueuedAt: job.enqueuedAt,
    startedAt: new Date(run.startedAt).toISOString(),
    finishedAt: new Date(finishedAt).toISOString(),
    durationMs,
    worker: deps.workerId,
    result,
    ...(job.labels ? { labels: job.labels } : {}),
  });
  d.ack();
  deps.emit({ ...base, type: JobEventType.completed, attempt, durationMs });
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
