/** Actions of `naq job ...`. */
import { readFile } from "node:fs/promises";
import type { Backoff } from "../../model/backoff.js";
import { formatDuration } from "../../model/duration.js";
import { JobFailedError, UsageError } from "../../model/errors.js";
import { createEnvelope, validateJobId, type JobRecord, type JsonValue } from "../../model/job.js";
import { JobService, type JobState } from "../../services/jobs.js";
import type { Action } from "../act.js";
import { openServices, type CliContext } from "../context.js";
import { labelsOf } from "../parse.js";
import { execJobOf, humanResult } from "./enqueue-exec.js";
import { reportEach } from "./ops.js";

export interface EnqueueOpts {
  queue: string;
  data?: string;
  id?: string;
  retries?: number;
  backoff?: Backoff;
  timeout?: number;
  attemptTimeout?: number;
  dependsOn?: string[];
  label?: string[];
  wait?: boolean;
  waitTimeout?: number;
  ndjson?: string | boolean;
  strict?: boolean;
  window?: number;
  exec?: boolean;
  cwd?: string;
  env?: string[];
  delay?: number;
  at?: string;
  tz?: string;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function parsePayload(text: string, from: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new UsageError(`payload from ${from} is not valid JSON (${(err as Error).message}); quote it for the shell, e.g. '{"user": 42}'`);
  }
}

async function payloadOf(arg: unknown, data: string | undefined): Promise<JsonValue> {
  if (arg !== undefined && data !== undefined) throw new UsageError("give the payload either as an argument or with --data, not both");
  if (data === "-") return parsePayload(await readStdin(), "stdin");
  if (data !== undefined) {
    if (!data.startsWith("@")) throw new UsageError(`--data takes @<file> or - (stdin), got "${data}"`);
    const file = data.slice(1);
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      throw new UsageError(`cannot read --data file ${file}: ${(err as NodeJS.ErrnoException).code ?? "unreadable"}`);
    }
    return parsePayload(text, file);
  }
  return arg === undefined ? null : parsePayload(String(arg), "the payload argument");
}

/** Prints a finished job's result; throws JobFailedError (exit 6) when it did not complete. */
function printOutcome(ctx: CliContext, record: JobRecord): void {
  if (record.status === "completed") {
    ctx.out.result(record, () => humanResult(record));
    return;
  }
  if (ctx.out.json) ctx.out.result(record, () => "");
  const why = record.error ? `${record.error.name}: ${record.error.message}` : (record.reason ?? record.status);
  throw new JobFailedError(`job ${record.id} ${record.status} after ${record.attempts} attempt${record.attempts === 1 ? "" : "s"}: ${why}`);
}

export const enqueue: Action<EnqueueOpts> = async (ctx, args, opts) => {
  if (opts.ndjson !== undefined && (opts.delay !== undefined || opts.at !== undefined)) throw new UsageError("--delay and --at do not go with --ndjson");
  if (opts.ndjson !== undefined) return (await import("./enqueue-ndjson.js")).enqueueNdjson(ctx, args, opts);
  const exec = opts.exec ? execJobOf(args, opts) : undefined;
  if (!exec) {
    if (opts.cwd !== undefined || opts.env !== undefined) throw new UsageError("--cwd and --env go with --exec");
    if (args[0] === undefined) throw new UsageError("missing the task name: naq job enqueue <task> [payload-json] (or --ndjson, or --exec -- <command>)");
    if ((args[2] as unknown[] | undefined)?.length) throw new UsageError(`too many arguments: ${JSON.stringify((args[2] as string[])[0])} (quote the payload JSON as one argument)`);
  }
  const payload = exec ? exec.payload : await payloadOf(args[1], opts.data);
  // --delay / --at: a delayed job, held by the scheduler until its due time.
  const dueAt = opts.delay !== undefined || opts.at !== undefined || opts.tz !== undefined ? (await import("./scheduler.js")).dueTimeOf(opts) : undefined;
  const input = {
    task: exec ? exec.task : String(args[0]),
    payload,
    queue: opts.queue,
    id: opts.id,
    retries: opts.retries,
    backoff: opts.backoff,
    timeoutMs: opts.attemptTimeout ?? opts.timeout,
    dependsOn: opts.dependsOn,
    labels: labelsOf(opts.label),
  };
  // Bad input (a name with a dot or a wildcard, a payload JSON cannot carry) is refused before
  // connecting: exit 2 with what is accepted, not a connection error.
  createEnvelope(input);
  await using services = await openServices(ctx);
  const jobs = await services.get(JobService);
  const r =
    dueAt === undefined
      ? await jobs.enqueue(input)
      : await (await services.get((await import("../../services/scheduler.js")).SchedulerService)).scheduleJob(input, dueAt);
  if (!opts.wait) {
    ctx.out.result(r, () => r.id);
    if (r.duplicate) ctx.out.warn(`job ${r.id} was already enqueued (same id within the duplicate window); not enqueued again`);
    return;
  }
  ctx.out.info(`enqueued ${r.id}; waiting for it to finish`);
  printOutcome(ctx, await jobs.result(r.id, { wait: true, timeoutMs: opts.waitTimeout }));
};

function stateView(ctx: CliContext, s: JobState): string {
  const r = s.record;
  const e = s.lastEvent;
  return ctx.out.keyValues([
    ["ID", s.id],
    ["Status", s.status],
    ["Queue", s.queue],
    ["Task", s.task],
    ...(r
      ? ([
          ["Attempts", `${r.attempts} of ${r.maxAttempts}`],
          ["Enqueued", r.enqueuedAt],
          ["Started", r.startedAt],
          ["Finished", r.finishedAt],
          ["Duration", r.durationMs !== undefined ? formatDuration(r.durationMs) : undefined],
          ["Worker", r.worker],
          ...(r.reason ? ([["Reason", r.reason]] as const) : []),
          ...(r.error ? ([["Error", `${r.error.name}: ${r.error.message}`]] as const) : []),
        ] as const)
      : e
        ? ([
            ["Last event", `${e.type} at ${e.at}`],
            ...(e.attempt ? ([["Attempt", `${e.attempt}${e.maxAttempts ? ` of ${e.maxAttempts}` : ""}`]] as const) : []),
            ...(e.worker ? ([["Worker", e.worker]] as const) : []),
            ...(e.error ? ([["Last error", `${e.error.name}: ${e.error.message}`]] as const) : []),
          ] as const)
        : []),
  ]);
}

export const status: Action<object> = async (ctx, args) => {
  const id = validateJobId(String(args[0]));
  await using services = await openServices(ctx);
  const state = await (await services.get(JobService)).status(id);
  ctx.out.result(state, () => stateView(ctx, state));
};

export const result: Action<{ wait?: boolean; waitTimeout?: number }> = async (ctx, args, opts) => {
  const id = validateJobId(String(args[0]));
  await using services = await openServices(ctx);
  const jobs = await services.get(JobService);
  printOutcome(ctx, await jobs.result(id, { wait: opts.wait, timeoutMs: opts.waitTimeout }));
};

export const cancel: Action<{ reason?: string }> = async (ctx, args, opts) => {
  const ids = args[0] as string[];
  // A mistyped id is a usage error (exit 2) before anything is cancelled, server up or not.
  for (const id of ids) validateJobId(id);
  await using services = await openServices(ctx);
  // SchedulerService.cancel also removes a delayed job from the schedule, so it never fires.
  const jobs = await services.get((await import("../../services/scheduler.js")).SchedulerService);
  // One line (or JSON record) per cancelled job; each failure on stderr; exit code of the first failure.
  await reportEach(ctx, ids, (id) => jobs.cancel(id, opts.reason), (record) => `cancelled ${record.id}`);
};
