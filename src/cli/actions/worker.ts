/** Actions of `naq worker ...`. */
import { NaqError, NotFoundError, TimeoutError, UsageError } from "../../model/errors.js";
import { validateQueueName, validateToken } from "../../model/naming.js";
import { ControlService } from "../../services/control.js";
import { formatDuration } from "../../model/duration.js";
import { WorkerService } from "../../services/workers.js";
import { loadHandlerModules } from "../../worker/handlers.js";
import { Worker, type JobEventInfo } from "../../worker/worker.js";
import type { Action } from "../act.js";
import { cliLogger, openServices, type CliContext } from "../context.js";
import { formatAge } from "../format.js";

interface StartOpts {
  handlers?: string[];
  allowExec?: string[];
  metricsPort?: number;
  metricsHost?: string;
  concurrency?: number;
  grace?: number;
  burst?: boolean;
  maxJobs?: number;
  maxIdle?: number;
  name?: string;
}

class ForcedStop extends NaqError {
  override name = "ForcedStop";
}

function jobLine(ctx: CliContext, j: JobEventInfo): string {
  const { c } = ctx.out;
  const time = new Date().toISOString().slice(11, 23);
  const mark = {
    completed: c.green("completed"),
    failed: c.red("failed   "),
    retrying: c.yellow("retrying "),
    waiting: c.cyan("waiting  "),
    cancelled: c.magenta("cancelled"),
    released: c.dim("released "),
  }[j.outcome];
  const parts = [c.dim(time), mark, j.queue, j.task ?? "-", j.id, `attempt ${j.attempt}`];
  if (j.durationMs !== undefined) parts.push(formatDuration(j.durationMs));
  if (j.delayMs !== undefined) parts.push(`next in ${formatDuration(j.delayMs)}`);
  if (j.reason) parts.push(c.dim(j.reason));
  if (j.error && j.error !== j.reason) parts.push(c.red(j.error));
  return parts.join(" ");
}

export const start: Action<StartOpts> = async (ctx, args, opts) => {
  const queues = (args[0] as string[] | undefined) ?? ["default"];
  if (!opts.handlers && !opts.allowExec) {
    throw new UsageError("give --handlers <module> (task handlers) and/or --allow-exec <commands> (exec jobs)");
  }
  const handlers = await loadHandlerModules(opts.handlers ?? []);
  if (opts.handlers && handlers.size === 0) {
    ctx.out.warn(`no task handlers found in ${opts.handlers.join(", ")}: every job${opts.allowExec ? " but exec jobs" : ""} will be dead-lettered`);
  }
  const worker = new Worker({
    queues,
    handlers,
    concurrency: opts.concurrency,
    graceMs: opts.grace,
    burst: opts.burst,
    maxJobs: opts.maxJobs,
    maxIdleMs: opts.maxIdle,
    name: opts.name,
    config: ctx.config,
    logger: cliLogger(ctx.out),
    verbose: ctx.out.verbose,
    allowExec: opts.allowExec,
  });
  const chatty = !ctx.out.quiet && !ctx.out.json;
  worker.on("pause", ({ queue, paused }) => {
    if (chatty) ctx.out.stderr.write(`queue ${queue} ${paused ? "is paused: not fetching from it" : "resumed"}\n`);
  });
  worker.on("stopRequested", (req) => {
    ctx.out.warn(`stop requested by ${req.by ?? "an operator"}${req.reason ? ` (${req.reason})` : ""}: finishing running jobs${req.graceMs !== undefined ? ` (grace ${formatDuration(req.graceMs)})` : ""}`);
  });
  const metrics =
    opts.metricsPort !== undefined
      ? await (await import("../../worker/metrics.js")).startMetrics(worker, { port: opts.metricsPort, host: opts.metricsHost })
      : undefined;
  if (metrics && chatty) ctx.out.stderr.write(`metrics on ${metrics.url}\n`);
  worker.on("job", (j) => {
    if (ctx.out.json) ctx.out.line({ at: new Date().toISOString(), worker: worker.id, ...j }, () => "");
    else if (!ctx.out.quiet) ctx.out.stderr.write(`${jobLine(ctx, j)}\n`);
  });
  worker.on("error", (err) => ctx.out.warn(err.message));

  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      ctx.out.warn(`${sig}: finishing running jobs (up to the grace period); send again to stop at once`);
      void worker.close();
    } else {
      ctx.out.warn(`${sig} again: releasing running jobs and exiting`);
      void worker.close({ force: true });
    }
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  let forced = false;
  worker.on("stopped", (s) => (forced = s.forced));
  try {
    await worker.start();
    if (!ctx.out.quiet && !ctx.out.json) {
      ctx.out.stderr.write(
        `worker ${worker.id} started: queues ${worker.queues.join(", ")}; tasks ${[...handlers.keys(), ...(opts.allowExec ? [`exec (${opts.allowExec.join(", ")})`] : [])].join(", ") || "(none)"}\n`,
      );
    }
    await worker.run();
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    await metrics?.close();
  }
  const s = worker.stats;
  if (!ctx.out.quiet && !ctx.out.json) ctx.out.stderr.write(`worker ${worker.id} stopped: ${s.processed} completed, ${s.failed} failed\n`);
  if (forced) throw new ForcedStop("stopped by a second signal: running jobs were released for redelivery");
};

export const list: Action<{ names?: boolean }> = async (ctx, _args, opts) => {
  await using services = await openServices(ctx);
  const workers = await (await services.get(WorkerService)).list();
  if (opts.names) {
    ctx.out.result(
      workers.map((w) => w.id),
      () => workers.map((w) => w.id).join("\n"),
    );
    return;
  }
  ctx.out.result(workers, () =>
    ctx.out.table(workers, [
      { header: "ID", value: (w) => w.id },
      { header: "HOST", value: (w) => w.host },
      { header: "PID", value: (w) => w.pid, align: "right" },
      { header: "QUEUES", value: (w) => w.queues.join(",") },
      { header: "STATUS", value: (w) => w.status },
      { header: "RUNNING", value: (w) => `${w.running.length}/${w.concurrency}`, align: "right" },
      { header: "PROCESSED", value: (w) => w.processed, align: "right" },
      { header: "FAILED", value: (w) => w.failed, align: "right" },
      { header: "UPTIME", value: (w) => formatDuration(Date.now() - Date.parse(w.startedAt)), align: "right" },
      { header: "HEARTBEAT", value: (w) => formatAge(w.lastHeartbeat) },
    ]),
  );
};

interface StopOpts {
  all?: boolean;
  queue?: string;
  grace?: number;
  reason?: string;
  wait?: boolean;
  waitTimeout?: number;
}

export const stop: Action<StopOpts> = async (ctx, args, opts) => {
  const ids = (args[0] as string[] | undefined) ?? [];
  if (opts.all && ids.length > 0) throw new UsageError("give worker ids or --all, not both");
  if (!opts.all && ids.length === 0) throw new UsageError("give the ids of the workers to stop (see naq worker list), or --all");
  if (opts.queue && !opts.all) throw new UsageError("--queue goes with --all");
  if (opts.queue) validateQueueName(opts.queue);
  for (const id of ids) validateToken(id, "worker id");
  await using services = await openServices(ctx);
  const [workers, control] = await Promise.all([services.get(WorkerService), services.get(ControlService)]);
  const live = await workers.list();
  const targets = opts.all ? live.filter((w) => !opts.queue || w.queues.includes(opts.queue)).map((w) => w.id) : ids;
  const missing = targets.filter((id) => !live.some((w) => w.id === id));
  if (missing.length > 0) throw new NotFoundError(`no live worker ${missing.join(", ")} (see naq worker list)`);
  if (targets.length === 0) ctx.out.info(`no live workers${opts.queue ? ` serving ${opts.queue}` : ""}: nothing to stop`);
  for (const id of targets) {
    const req = await control.requestStop(id, { graceMs: opts.grace, reason: opts.reason });
    ctx.out.line(req, () => id);
  }
  if (!opts.wait || targets.length === 0) return;
  const deadline = opts.waitTimeout !== undefined ? Date.now() + opts.waitTimeout : Number.POSITIVE_INFINITY;
  let left = new Set(targets);
  while (left.size > 0) {
    if (Date.now() >= deadline) throw new TimeoutError(`timed out waiting for ${[...left].join(", ")} to stop`);
    await new Promise((r) => setTimeout(r, 250));
    const still = new Set((await workers.list()).map((w) => w.id));
    left = new Set([...left].filter((id) => still.has(id)));
  }
  ctx.out.info(`stopped: ${targets.join(", ")}`);
};
