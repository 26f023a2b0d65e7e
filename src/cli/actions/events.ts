/** Actions of `naq events ...`. */
import { formatDuration, timerDelay } from "../../model/duration.js";
import { NotFoundError, TimeoutError, UsageError } from "../../model/errors.js";
import { parseEventTypes, parseSince, type EventFilter } from "../../model/event-filter.js";
import { validateToken } from "../../model/naming.js";
import { lostWorkers, type StatsGroupBy } from "../../model/stats.js";
import { EventService } from "../../services/events.js";
import { WorkerService } from "../../services/workers.js";
import type { Action } from "../act.js";
import { openServices } from "../context.js";
import { interruption } from "../interrupt.js";
import { formatEventLine, historyView, statsView, summarizeHistory } from "../render-events.js";

interface TailOptions {
  queue?: string;
  job?: string;
  task?: string;
  worker?: string;
  type?: string[];
  since?: string;
  count?: number;
  maxWait?: number;
}

function filterOf(opts: TailOptions): EventFilter {
  return {
    queue: opts.queue === undefined ? undefined : validateToken(opts.queue, "--queue", 64),
    jobId: opts.job === undefined ? undefined : validateToken(opts.job, "--job"),
    task: opts.task,
    worker: opts.worker,
    types: opts.type ? parseEventTypes(opts.type) : undefined,
    since: opts.since === undefined ? "new" : parseSince(opts.since),
  };
}

export const tail: Action<TailOptions> = async (ctx, _args, opts) => {
  const filter = filterOf(opts);
  using stop = interruption(ctx.out.stdout);
  const deadline = opts.maxWait === undefined ? undefined : setTimeout(() => stop.stop("deadline"), timerDelay(opts.maxWait));
  try {
    await using services = await openServices(ctx, { longLived: true });
    const events = await services.get(EventService);
    const stream = events.tail(filter, { signal: stop.signal });
    await stream.ready();
    ctx.out.info(ctx.out.c.dim(`following ${stream.subjects.join(", ")}${stream.plan.client.length ? ` (and ${stream.plan.client.join(", ")} here)` : ""}; Ctrl-C to stop`));
    let seen = 0;
    for await (const ev of stream) {
      if (stop.signal.aborted) break;
      ctx.out.line(ev, () => formatEventLine(ev, ctx.out.c));
      if (opts.count !== undefined && ++seen >= opts.count) break;
    }
    if (stop.reason === "deadline" && opts.count !== undefined && seen < opts.count) {
      throw new TimeoutError(`saw ${seen} of ${opts.count} events in ${formatDuration(opts.maxWait ?? 0)}`);
    }
  } finally {
    clearTimeout(deadline);
  }
};

export const history: Action<object> = async (ctx, args) => {
  const jobId = validateToken(String(args[0]), "job id");
  await using services = await openServices(ctx);
  const events = await services.get(EventService);
  const list = await events.history(jobId);
  if (list.length === 0) {
    const maxAge = ctx.config.streams.events.maxAge;
    throw new NotFoundError(`no events for job ${jobId} in ${services.ctx.names.eventsStream}${maxAge ? ` (events are kept ${formatDuration(maxAge)})` : ""}`);
  }
  const summary = summarizeHistory(jobId, list);
  ctx.out.result(summary, () => historyView(ctx.out, summary));
};

export const stats: Action<{ since: string; by?: StatsGroupBy }> = async (ctx, _args, opts) => {
  const since = parseSince(opts.since);
  if (since === "new") throw new UsageError(`--since ${opts.since} leaves nothing to count: use a duration (1h), a time, or all`);
  await using services = await openServices(ctx);
  const events = await services.get(EventService);
  const result = await events.stats({ since, by: opts.by });
  // Workers that started in the window, never stopped, and no longer send heartbeats died.
  let lost: string[] | null = null;
  if (result.workers.open.length > 0) {
    try {
      const alive = await (await services.get(WorkerService)).list();
      lost = lostWorkers(result.workers.open, alive.map((w) => w.id));
    } catch (err) {
      ctx.out.debug(`cannot list live workers: ${(err as Error).message}`);
    }
  } else {
    lost = [];
  }
  ctx.out.result({ ...result, workers: { ...result.workers, lost } }, () => statsView(ctx.out, result, lost));
};
