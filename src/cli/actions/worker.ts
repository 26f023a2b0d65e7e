/** Actions of `naq worker ...`. */
import { NaqError } from "../../model/errors.js";
import { formatDuration } from "../../model/duration.js";
import { WorkerService } from "../../services/workers.js";
import { loadHandlerModules } from "../../worker/handlers.js";
import { Worker, type JobEventInfo } from "../../worker/worker.js";
import type { Action } from "../act.js";
import { cliLogger, openServices, type CliContext } from "../context.js";
import { formatAge } from "../format.js";

interface StartOpts {
  handlers: string[];
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
  const handlers = await loadHandlerModules(opts.handlers);
  if (handlers.size === 0) ctx.out.warn(`no task handlers found in ${opts.handlers.join(", ")}: every job will be dead-lettered`);
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
  });
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
        `worker ${worker.id} started: queues ${worker.queues.join(", ")}; tasks ${[...handlers.keys()].join(", ") || "(none)"}\n`,
      );
    }
    await worker.run();
  } finally {
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
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
