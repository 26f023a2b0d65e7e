/** Day-2 actions of `naq job ...`: list, failed, retry, logs (and the per-id reporting cancel shares). */
import { formatDuration } from "../../model/duration.js";
import { coerceError, exitCodeOf, NaqError, UsageError, type ExitCode } from "../../model/errors.js";
import type { NaqEvent } from "../../model/events.js";
import { validateJobId, type JobStatus } from "../../model/job.js";
import { validateQueueName } from "../../model/naming.js";
import { JobService, type JobSummary } from "../../services/jobs.js";
import type { Action } from "../act.js";
import { openServices, type CliContext } from "../context.js";
import { formatAge } from "../format.js";

/** Several ids failed: the first failure's exit code, after every id was tried. */
export class PartialFailure extends NaqError {
  override name = "PartialFailure";
  override readonly exitCode: ExitCode;
  constructor(message: string, first: unknown) {
    super(message, { cause: first });
    this.exitCode = exitCodeOf(first);
  }
}

/**
 * Runs `fn` for each id in turn: one NDJSON record (or human line) per success on stdout,
 * one error line per failure on stderr; throws at the end if any failed.
 */
export async function reportEach<T>(ctx: CliContext, ids: readonly string[], fn: (id: string) => Promise<T>, human: (value: T) => string): Promise<void> {
  let first: unknown;
  let failures = 0;
  for (const id of ids) {
    try {
      const value = await fn(id);
      ctx.out.line(value, () => human(value));
    } catch (err) {
      failures++;
      first ??= err;
      if (ids.length > 1) ctx.out.error(coerceError(err).message);
    }
  }
  if (failures === 0) return;
  if (ids.length === 1) throw first;
  throw new PartialFailure(`${failures} of ${ids.length} failed`, first);
}

function errorText(j: { error?: { name: string; message: string }; reason?: string }): string {
  if (j.error) return `${j.error.name === "Error" ? "" : `${j.error.name}: `}${j.error.message}`;
  return j.reason ?? "";
}

export const list: Action<{ queue?: string; status?: JobStatus; limit: number }> = async (ctx, _args, opts) => {
  if (opts.queue) validateQueueName(opts.queue);
  await using services = await openServices(ctx);
  const jobs = await (await services.get(JobService)).listJobs({ queue: opts.queue, status: opts.status, limit: opts.limit });
  const due = jobs.some((j) => j.dueAt !== undefined);
  ctx.out.result(jobs, () =>
    ctx.out.table<JobSummary>(jobs, [
      { header: "ID", value: (j) => j.id },
      { header: "QUEUE", value: (j) => j.queue },
      { header: "TASK", value: (j) => j.task },
      { header: "STATUS", value: (j) => j.status },
      { header: "ATTEMPTS", value: (j) => `${j.attempts}/${j.maxAttempts}`, align: "right" },
      { header: "ENQUEUED", value: (j) => formatAge(j.enqueuedAt) },
      // Delayed jobs: when they are due (the column only when the list has one).
      ...(due ? [{ header: "DUE", value: (j: JobSummary) => (j.dueAt ? j.dueAt.replace(/\.\d{3}Z$/, "Z") : "") }] : []),
      { header: "DURATION", value: (j) => (j.durationMs !== undefined ? formatDuration(j.durationMs) : ""), align: "right" },
      { header: "ERROR", value: (j) => errorText(j).slice(0, 80) },
    ]),
  );
};

export const failed: Action<{ queue?: string; limit?: number }> = async (ctx, _args, opts) => {
  if (opts.queue) validateQueueName(opts.queue);
  await using services = await openServices(ctx);
  const entries = await (await services.get(JobService)).deadLetters({ queue: opts.queue, limit: opts.limit });
  ctx.out.result(entries, () =>
    ctx.out.table(entries, [
      { header: "ID", value: (e) => e.id },
      { header: "QUEUE", value: (e) => e.queue },
      { header: "TASK", value: (e) => e.task ?? "-" },
      { header: "ATTEMPTS", value: (e) => e.attempts, align: "right" },
      { header: "FAILED", value: (e) => formatAge(e.failedAt) },
      { header: "REASON", value: (e) => e.reason.slice(0, 60) },
      { header: "LAST ERROR", value: (e) => (e.error ? errorText({ error: e.error }).slice(0, 80) : "") },
    ]),
  );
};

export const retry: Action<{ all?: boolean; queue?: string }> = async (ctx, args, opts) => {
  const ids = (args[0] as string[] | undefined) ?? [];
  if (opts.all && ids.length > 0) throw new UsageError("give job ids or --all, not both");
  if (!opts.all && ids.length === 0) throw new UsageError("give the ids of dead-lettered jobs, or --all (see naq job failed)");
  if (opts.queue && !opts.all) throw new UsageError("--queue goes with --all");
  if (opts.queue) validateQueueName(opts.queue);
  await using services = await openServices(ctx);
  const jobs = await services.get(JobService);
  if (!opts.all) {
    await reportEach(ctx, ids, (id) => jobs.retry(id), (r) => r.id);
    return;
  }
  const outcomes = await jobs.retryAll({ queue: opts.queue });
  let first: unknown;
  for (const o of outcomes) {
    if (o.ok) ctx.out.line(o.result, () => o.id);
    else {
      first ??= o.error;
      ctx.out.error(`job ${o.id}: ${o.error.message}`);
    }
  }
  const bad = outcomes.filter((o) => !o.ok).length;
  ctx.out.info(`re-enqueued ${outcomes.length - bad} job${outcomes.length - bad === 1 ? "" : "s"}${bad ? `, ${bad} failed` : ""}`);
  if (bad > 0) throw new PartialFailure(`${bad} of ${outcomes.length} dead-lettered jobs could not be retried`, first);
};

function eventLine(ctx: CliContext, e: NaqEvent): string {
  const bits = [e.at, e.type];
  if (e.attempt) bits.push(`attempt ${e.attempt}${e.maxAttempts ? `/${e.maxAttempts}` : ""}`);
  if (e.worker) bits.push(`on ${e.worker}`);
  if (e.durationMs !== undefined) bits.push(formatDuration(e.durationMs));
  if (e.delayMs !== undefined) bits.push(`next in ${formatDuration(e.delayMs)}`);
  if (e.error) bits.push(errorText({ error: e.error }));
  else if (e.reason) bits.push(e.reason);
  return ctx.out.c.dim(`-- ${bits.join(" ")}`);
}

export const logs: Action<{ follow?: boolean }> = async (ctx, args, opts) => {
  const id = validateJobId(String(args[0]));
  await using services = await openServices(ctx);
  const jobs = await services.get(JobService);
  await jobs.status(id); // NotFoundError (exit 3) for a job naq has no trace of
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    for await (const e of jobs.jobEvents(id, { follow: opts.follow, signal: stop.signal })) {
      if (ctx.out.json) ctx.out.line(e, () => "");
      else if (e.log !== undefined) ctx.out.stdout.write(`${e.log}\n`);
      else ctx.out.info(eventLine(ctx, e));
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
};
