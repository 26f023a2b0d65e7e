/** Actions of `naq scheduler ...`. */
import { readFile } from "node:fs/promises";
import type { Backoff } from "../../model/backoff.js";
import { parseTime } from "../../model/cron.js";
import { formatDuration } from "../../model/duration.js";
import { NaqError, UsageError, ValidationError } from "../../model/errors.js";
import type { JsonValue } from "../../model/job.js";
import { validateQueueName } from "../../model/naming.js";
import { describeRecurrence, validateScheduleName, type MisfirePolicy } from "../../model/schedule.js";
import { upcoming } from "../../model/schedule-timing.js";
import { SchedulerService, type FireInfo, type ScheduleInfo, type SkipInfo } from "../../services/scheduler.js";
import { Scheduler } from "../../scheduler/scheduler.js";
import type { Action } from "../act.js";
import { confirm } from "../confirm.js";
import { cliLogger, openServices, type CliContext } from "../context.js";
import { formatAge } from "../format.js";
import { labelsOf } from "../parse.js";

interface AddOpts {
  cron?: string;
  tz?: string;
  every?: number;
  queue: string;
  data?: string;
  startAt?: string;
  endAt?: string;
  limit?: number;
  misfire?: MisfirePolicy;
  jitter?: number;
  retries?: number;
  backoff?: Backoff;
  attemptTimeout?: number;
  label?: string[];
}

async function readPayload(arg: unknown, data: string | undefined): Promise<JsonValue> {
  if (arg !== undefined && data !== undefined) throw new UsageError("give the payload either as an argument or with --data, not both");
  let text: string | undefined = arg === undefined ? undefined : String(arg);
  let from = "the payload argument";
  if (data === "-") {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    text = Buffer.concat(chunks).toString("utf8");
    from = "stdin";
  } else if (data !== undefined) {
    if (!data.startsWith("@")) throw new UsageError(`--data takes @<file> or - (stdin), got "${data}"`);
    from = data.slice(1);
    try {
      text = await readFile(from, "utf8");
    } catch (err) {
      throw new UsageError(`cannot read --data file ${from}: ${(err as NodeJS.ErrnoException).code ?? "unreadable"}`);
    }
  }
  if (text === undefined) return null;
  try {
    return JSON.parse(text) as JsonValue;
  } catch (err) {
    throw new UsageError(`payload from ${from} is not valid JSON (${(err as Error).message}); quote it for the shell, e.g. '{"user": 42}'`);
  }
}

/** A time option: ISO 8601 with an offset, or without one when --tz names the zone. */
function timeOption(value: string | undefined, flag: string, tz: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  try {
    return parseTime(value, { tz, field: flag });
  } catch (err) {
    throw new UsageError((err as ValidationError).message);
  }
}

const when = (iso: string | undefined): string => (iso ? `${iso.replace(".000Z", "Z")} (${relative(Date.parse(iso))})` : "-");

function relative(ms: number, now = Date.now()): string {
  const d = ms - now;
  if (Math.abs(d) < 1_000) return "now";
  return d > 0 ? `in ${formatDuration(d)}` : formatAge(ms, now);
}

export const add: Action<AddOpts> = async (ctx, args, opts) => {
  if (opts.cron === undefined && opts.every === undefined) throw new UsageError("give the timing: --cron <expr> (with --tz <zone>) or --every <duration>");
  if (opts.cron !== undefined && opts.every !== undefined) throw new UsageError("give either --cron or --every, not both");
  const name = validateScheduleName(String(args[0]));
  if (opts.queue !== undefined) validateQueueName(opts.queue);
  const payload = await readPayload(args[2], opts.data);
  // --tz is the cron's zone and the zone of times written without an offset.
  const startAt = timeOption(opts.startAt, "--start-at", opts.tz);
  const endAt = timeOption(opts.endAt, "--end-at", opts.tz);
  await using services = await openServices(ctx);
  const scheduler = await services.get(SchedulerService);
  const s = await scheduler.add({
    name,
    task: String(args[1]),
    payload,
    queue: opts.queue,
    cron: opts.cron,
    tz: opts.cron !== undefined ? opts.tz : undefined,
    every: opts.every,
    startAt,
    endAt,
    limit: opts.limit,
    misfire: opts.misfire,
    jitterMs: opts.jitter,
    retries: opts.retries,
    backoff: opts.backoff,
    timeoutMs: opts.attemptTimeout,
    labels: labelsOf(opts.label),
  });
  ctx.out.result(s, () => `${s.created ? "added" : "updated"} ${s.name}: ${describeRecurrence(s.recurrence)}; next run ${when(s.nextRunAt)}${s.paused ? " (paused)" : ""}`);
};

export const list: Action<object> = async (ctx) => {
  await using services = await openServices(ctx);
  const all = await (await services.get(SchedulerService)).list();
  ctx.out.result(all, () =>
    ctx.out.table(all, [
      { header: "NAME", value: (s) => s.name },
      { header: "TASK", value: (s) => s.job.task },
      { header: "QUEUE", value: (s) => s.job.queue },
      { header: "SCHEDULE", value: (s) => describeRecurrence(s.recurrence) },
      { header: "NEXT RUN", value: (s) => (s.status === "active" && s.nextRunAt ? relative(Date.parse(s.nextRunAt)) : "-") },
      { header: "LAST RUN", value: (s) => (s.lastRunAt ? formatAge(s.lastRunAt) : "-") },
      { header: "RUNS", value: (s) => (s.limit ? `${s.runs}/${s.limit}` : s.runs), align: "right" },
      { header: "STATUS", value: (s) => s.status },
    ]),
  );
};

function view(ctx: CliContext, s: ScheduleInfo, next: number[]): string {
  return ctx.out.keyValues([
    ["Name", s.name],
    ["Status", s.status],
    ["Task", s.job.task],
    ["Queue", s.job.queue],
    ["Payload", JSON.stringify(s.job.payload)],
    ["Schedule", describeRecurrence(s.recurrence)],
    ...(s.startAt ? ([["Starts", s.startAt]] as const) : []),
    ...(s.endAt ? ([["Ends", s.endAt]] as const) : []),
    ["Runs", s.limit ? `${s.runs} of ${s.limit}` : s.runs],
    ["Misfire", s.misfire],
    ...(s.jitterMs ? ([["Jitter", formatDuration(s.jitterMs)]] as const) : []),
    ["Next run", s.status === "active" ? when(s.nextRunAt) : "-"],
    ["Last run", when(s.lastRunAt)],
    ["Last job", s.lastJobId ?? "-"],
    ...(s.pausedAt ? ([["Paused", when(s.pausedAt)]] as const) : []),
    ["Upcoming", next.map((t) => new Date(t).toISOString().replace(".000Z", "Z")).join("\n" + " ".repeat(10)) || "-"],
  ]);
}

export const show: Action<{ next: number }> = async (ctx, args, opts) => {
  const name = validateScheduleName(String(args[0]));
  await using services = await openServices(ctx);
  const s = await (await services.get(SchedulerService)).get(name);
  const next = s.status === "active" ? upcoming(s, opts.next) : [];
  ctx.out.result({ ...s, upcoming: next.map((t) => new Date(t).toISOString()) }, () => view(ctx, s, next));
};

export const pause: Action<object> = async (ctx, args) => {
  const name = validateScheduleName(String(args[0]));
  await using services = await openServices(ctx);
  const s = await (await services.get(SchedulerService)).pause(name);
  ctx.out.result(s, () => `paused ${s.name}`);
};

export const resume: Action<object> = async (ctx, args) => {
  const name = validateScheduleName(String(args[0]));
  await using services = await openServices(ctx);
  const s = await (await services.get(SchedulerService)).resume(name);
  ctx.out.result(s, () => `resumed ${s.name}: next run ${when(s.nextRunAt)}${s.skipped ? `; ${s.skipped} missed run(s) skipped (misfire ${s.misfire})` : ""}`);
};

export const remove: Action<{ force?: boolean }> = async (ctx, args, opts) => {
  const name = validateScheduleName(String(args[0]));
  await using services = await openServices(ctx);
  const scheduler = await services.get(SchedulerService);
  await scheduler.get(name); // exit 3 before asking, when it does not exist
  await confirm(`remove schedule ${name}?`, { force: opts.force, out: ctx.out, what: `remove schedule ${name}` });
  const s = await scheduler.remove(name);
  ctx.out.result(s, () => `removed ${s.name}`);
};

export const trigger: Action<object> = async (ctx, args) => {
  const name = validateScheduleName(String(args[0]));
  await using services = await openServices(ctx);
  const f = await (await services.get(SchedulerService)).trigger(name);
  ctx.out.result(f, () => f.jobId);
};

class ForcedStop extends NaqError {
  override name = "ForcedStop";
}

function fireLine(ctx: CliContext, f: FireInfo): string {
  const { c } = ctx.out;
  const parts = [c.dim(f.firedAt.slice(11, 23)), c.green("fired"), f.kind, f.name, "->", f.queue, f.task, f.jobId, `due ${f.dueAt}`];
  if (f.lateMs >= 1_000) parts.push(c.yellow(`${formatDuration(f.lateMs)} late`));
  if (f.recovered) parts.push(c.dim("(published again after a crash)"));
  if (f.duplicate) parts.push(c.dim("(duplicate, absorbed)"));
  return parts.join(" ");
}

function skipLine(ctx: CliContext, s: SkipInfo): string {
  const { c } = ctx.out;
  return [c.dim(new Date().toISOString().slice(11, 23)), c.yellow("skipped"), s.name, `${s.capped ? ">=" : ""}${s.count} missed run(s) ${s.firstDueAt}..${s.lastDueAt}`, c.dim(s.reason)].join(" ");
}

export const start: Action<{ id?: string; tick?: number }> = async (ctx, _args, opts) => {
  const scheduler = new Scheduler({ id: opts.id, tickMs: opts.tick, config: ctx.config, logger: cliLogger(ctx.out) });
  const record = (event: string, data: object, human: () => string) => {
    if (ctx.out.json) ctx.out.line({ at: new Date().toISOString(), scheduler: scheduler.id, event, ...data }, () => "");
    else if (!ctx.out.quiet) ctx.out.stderr.write(`${human()}\n`);
  };
  scheduler.on("fired", (f) => record("fired", f, () => fireLine(ctx, f)));
  scheduler.on("skipped", (s) => record("skipped", s, () => skipLine(ctx, s)));
  scheduler.on("leader", (l) => record("leader", l, () => `scheduler ${l.id} is the leader`));
  scheduler.on("follower", (l) => record("follower", l, () => `scheduler ${l.id} is a follower (${l.reason})`));
  scheduler.on("error", (err) => ctx.out.warn(err.message));

  let signals = 0;
  let forced = false;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      ctx.out.warn(`${sig}: releasing the leader lease and stopping; send again to stop at once`);
      void scheduler.close();
    } else {
      forced = true;
      ctx.out.warn(`${sig} again: stopping at once`);
      void scheduler.close({ force: true });
    }
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    await scheduler.start();
    record("started", { leader: scheduler.isLeader }, () => `scheduler ${scheduler.id} started (${scheduler.isLeader ? "leader" : "follower"})`);
    await scheduler.run();
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
  }
  const h = scheduler.health();
  record("stopped", { fired: h.fired, skipped: h.skipped }, () => `scheduler ${scheduler.id} stopped: fired ${h.fired} job(s)`);
  if (forced) throw new ForcedStop("stopped by a second signal");
};

/** The due time of `naq job enqueue --delay D | --at T [--tz Z]`, in ms; UsageError for bad input. */
export function dueTimeOf(opts: { delay?: number; at?: string; tz?: string }, now = Date.now()): number {
  if (opts.delay !== undefined && opts.at !== undefined) throw new UsageError("give either --delay or --at, not both");
  if (opts.tz !== undefined && opts.at === undefined) throw new UsageError("--tz goes with --at (the zone of a time written without an offset)");
  if (opts.delay !== undefined) return now + opts.delay;
  return timeOption(opts.at, "--at", opts.tz) as number;
}
