/** Actions of `naq check ...`: compute the values, judge them (src/model/check.ts), print one line, set the exit code. */
import { checkQueue, checkWorkers, type CheckResult } from "../../model/check.js";
import { ReportedError } from "../../model/errors.js";
import { validateQueueName } from "../../model/naming.js";
import { QueueService } from "../../services/queues.js";
import { WorkerService } from "../../services/workers.js";
import type { Action } from "../act.js";
import { openServices, type CliContext } from "../context.js";

/** A check found a problem: exit 1, and nothing more on stderr (the status line said it). */
export class CheckFailed extends ReportedError {
  override name = "CheckFailed";
}

function conclude(ctx: CliContext, r: CheckResult): void {
  ctx.out.result(r, () => r.summary);
  if (!r.ok) throw new CheckFailed(r.summary);
}

export const queue: Action<{ maxWaiting?: number; maxAge?: number; maxFailed?: number }> = async (ctx, args, opts) => {
  const name = validateQueueName(String(args[0]));
  await using services = await openServices(ctx);
  const q = await (await services.get(QueueService)).info(name);
  conclude(
    ctx,
    checkQueue(
      name,
      { waiting: q.waiting, running: q.running, oldestAgeMs: q.oldest?.ageMs ?? null, failed: q.failed, paused: q.paused },
      { maxWaiting: opts.maxWaiting, maxAgeMs: opts.maxAge, maxFailed: opts.maxFailed },
    ),
  );
};

export const workers: Action<{ min: number; queue?: string }> = async (ctx, _args, opts) => {
  if (opts.queue) validateQueueName(opts.queue);
  await using services = await openServices(ctx);
  const live = await (await services.get(WorkerService)).list();
  const count = opts.queue ? live.filter((w) => w.queues.includes(opts.queue as string)).length : live.length;
  conclude(ctx, checkWorkers(count, opts.min, opts.queue));
};
