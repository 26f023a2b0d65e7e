/** Actions of `naq queue ...`. */
import { formatDuration } from "../../model/duration.js";
import { validateQueueName } from "../../model/naming.js";
import { ControlService } from "../../services/control.js";
import { QueueService, type QueueDetails } from "../../services/queues.js";
import type { Action } from "../act.js";
import { openServices, type CliContext } from "../context.js";
import { formatAge } from "../format.js";

export const list: Action<{ names?: boolean }> = async (ctx, _args, opts) => {
  await using services = await openServices(ctx);
  const queues = await (await services.get(QueueService)).list();
  if (opts.names) {
    const names = queues.map((q) => q.name);
    ctx.out.result(names, () => names.join("\n"));
    return;
  }
  ctx.out.result(queues, () =>
    ctx.out.table(queues, [
      { header: "QUEUE", value: (q) => q.name },
      { header: "WAITING", value: (q) => q.waiting, align: "right" },
      { header: "RUNNING", value: (q) => q.running, align: "right" },
      { header: "PAUSED", value: (q) => (q.paused ? ctx.out.c.yellow("paused") : "no") },
      { header: "WORKERS", value: (q) => q.workers, align: "right" },
      { header: "FAILED", value: (q) => (q.failed > 0 ? ctx.out.c.red(String(q.failed)) : 0), align: "right" },
    ]),
  );
};

function detailsView(ctx: CliContext, q: QueueDetails): string {
  return ctx.out.keyValues([
    ["Queue", q.name],
    ["Paused", q.pause ? `yes, since ${q.pause.at}${q.pause.reason ? ` (${q.pause.reason})` : ""}` : "no"],
    ["Waiting", q.waiting],
    ["Running", q.running],
    ["Not yet taken", q.undelivered],
    ["Unacknowledged", `${q.ackPending} (running or waiting for a retry)`],
    ["Redelivered", q.redelivered],
    ["Oldest waiting", q.oldest ? `${formatAge(q.oldest.enqueuedAt)} (seq ${q.oldest.seq})` : "-"],
    ["Failed", `${q.failed} dead-lettered`],
    ["Workers", q.workers > 0 ? `${q.workers}: ${q.workerIds.join(", ")}` : "0"],
    ["Consumer", q.consumer ? `${q.consumer.name}, max ${q.consumer.maxAckPending} in flight, ack wait ${formatDuration(q.consumer.ackWaitMs)}` : "none yet (created by the first worker)"],
  ]);
}

export const info: Action<object> = async (ctx, args) => {
  const queue = validateQueueName(String(args[0]));
  await using services = await openServices(ctx);
  const details = await (await services.get(QueueService)).info(queue);
  ctx.out.result(details, () => detailsView(ctx, details));
};

export const pause: Action<{ reason?: string }> = async (ctx, args, opts) => {
  const queue = validateQueueName(String(args[0]));
  await using services = await openServices(ctx);
  const { flag, already } = await (await services.get(ControlService)).pause(queue, opts.reason);
  ctx.out.result({ ...flag, paused: true, already }, () => (already ? `queue ${queue} was already paused (since ${flag.at})` : `paused ${queue}`));
};

export const resume: Action<object> = async (ctx, args) => {
  const queue = validateQueueName(String(args[0]));
  await using services = await openServices(ctx);
  const was = await (await services.get(ControlService)).resume(queue);
  ctx.out.result({ queue, paused: false, wasPaused: was !== undefined, ...(was ? { pausedAt: was.at } : {}) }, () =>
    was ? `resumed ${queue}` : `queue ${queue} was not paused`,
  );
};
