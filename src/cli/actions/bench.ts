/**
 * Action of `naq bench`: measures the configured server or cluster with naq's own client
 * and worker, on a throwaway queue of the configured namespace, and removes what it made.
 *
 * Its parts, siblings of this file:
 *   bench-run.ts      the phases: enqueue one at a time, enqueue in bulk, process, latency
 *   bench-cleanup.ts  afterwards (also after a failure or Ctrl-C): removing what the run made
 *   bench-render.ts   the human view of the report
 */
import { randomBytes } from "node:crypto";
import { NaqError, NotFoundError, UsageError, coerceError } from "../../model/errors.js";
import { validateQueueName } from "../../model/naming.js";
import { ConnectionService } from "../../services/connection.js";
import { QueueService } from "../../services/queues.js";
import type { Action } from "../act.js";
import { openServices } from "../context.js";
import { interruption } from "../interrupt.js";
import { cleanupBench, type BenchCleanup, type BenchTrace } from "./bench-cleanup.js";
import { removedLine, renderBench } from "./bench-render.js";
import { BenchInterrupted, runBench } from "./bench-run.js";

export type { BenchCleanup } from "./bench-cleanup.js";
export { payloadOfSize } from "./bench-run.js";

export interface BenchOpts {
  jobs: number;
  concurrency: number;
  payloadSize: number;
  rate: number;
  duration: number;
  queue?: string;
}

export interface BenchReport {
  server: { url: string; name: string; id: string; version: string; cluster?: string };
  namespace: string;
  queue: string;
  options: { jobs: number; concurrency: number; payloadSize: number; rate: number; durationMs: number };
  enqueue: {
    sequential: { jobs: number; seconds: number; jobsPerSec: number; p50Ms: number; p99Ms: number };
    bulk: { jobs: number; seconds: number; jobsPerSec: number; window: number };
  };
  process: { jobs: number; concurrency: number; seconds: number; jobsPerSec: number };
  latency: { rate: number; jobs: number; measured: number; startP50Ms: number; startP99Ms: number; completedP50Ms: number; completedP99Ms: number };
  removed: BenchCleanup;
}

export const bench: Action<BenchOpts> = async (ctx, _args, opts) => {
  const queueName = validateQueueName(opts.queue ?? `naq-bench-${randomBytes(4).toString("hex")}`);
  using stop = interruption(ctx.out.stdout);
  await using services = await openServices(ctx);
  const queues = await services.get(QueueService);
  // Never a queue that is in use: naq must have no trace of it (jobs, consumer, workers, pause flag, dead letters).
  const existing = await queues.info(queueName).catch((err: unknown) => {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  });
  if (existing) {
    const jobs = existing.waiting + existing.running;
    throw new UsageError(
      `queue ${queueName} is in use (${jobs} job${jobs === 1 ? "" : "s"}, ${existing.workers} worker${existing.workers === 1 ? "" : "s"}): naq bench needs a queue of its own; leave out --queue for a fresh one`,
    );
  }
  const server = await (await services.get(ConnectionService)).server();
  ctx.out.info(`naq bench: throwaway queue ${queueName} on ${server.connectedUrl}, namespace ${ctx.config.namespace} (removed afterwards; Ctrl-C stops and cleans up)`);
  const spinner = await ctx.out.spinner("starting");
  const trace: BenchTrace = { ids: [] };
  let measured: Awaited<ReturnType<typeof runBench>> | undefined;
  let failure: unknown;
  try {
    measured = await runBench(ctx, services, opts, queueName, trace, stop, spinner);
  } catch (err) {
    failure = err;
  }
  spinner.update(`removing queue ${queueName}`);
  let removed: BenchCleanup;
  try {
    removed = await cleanupBench(services, queueName, trace);
  } catch (err) {
    if (failure) ctx.out.warn(coerceError(failure).message);
    throw new NaqError(`could not remove everything naq bench made on queue ${queueName}: ${coerceError(err).message}`, { cause: err });
  } finally {
    spinner.stop();
  }
  if (failure || !measured) {
    ctx.out.warn(removedLine(removed, queueName, services.ctx.names.queueConsumer(queueName)));
    throw failure ?? new BenchInterrupted("interrupted");
  }
  const report: BenchReport = {
    server: { url: server.connectedUrl, name: server.serverName, id: server.serverId, version: server.version, ...(server.cluster ? { cluster: server.cluster } : {}) },
    namespace: ctx.config.namespace,
    queue: queueName,
    options: { jobs: opts.jobs, concurrency: opts.concurrency, payloadSize: opts.payloadSize, rate: opts.rate, durationMs: opts.duration },
    ...measured,
    removed,
  };
  ctx.out.result(report, () => renderBench(ctx, report));
};
