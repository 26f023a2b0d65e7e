/**
 * Action of `naq bench`: measures the configured server or cluster with naq's own client
 * and worker, on a throwaway queue of the configured namespace, and removes what it made.
 *
 * Phases, one after another, on one queue:
 *   1. enqueue one at a time: min(--jobs, 1000) jobs, each awaited (Queue.enqueue);
 *   2. enqueue in bulk: --jobs jobs, pipelined (Queue.enqueueMany, 256 awaiting their ack);
 *   3. process: a Worker in this process, at --concurrency, runs the jobs of 1 and 2 (a
 *      no-op task; each result stored, as always); jobs/s from the first completion to the last;
 *   4. latency: jobs enqueued at --rate for --duration (not awaited one by one) to the same
 *      worker; enqueue -> handler start and enqueue -> completed (result stored, acked),
 *      p50 and p99, leaving out the first 500 ms (or fifth of --duration).
 * Afterwards (also after a failure or Ctrl-C): the queue's consumer and stored jobs, its
 * events and the worker's, dead letters of the queue, the jobs' result records and the
 * worker's heartbeat entry are removed.
 */
import { randomBytes } from "node:crypto";
import { NaqError, NotFoundError, TimeoutError, UsageError, coerceError } from "../../model/errors.js";
import { WORKER_EVENTS_QUEUE } from "../../model/events.js";
import type { JsonValue } from "../../model/job.js";
import { namesFor, validateQueueName } from "../../model/naming.js";
import { percentile } from "../../model/stats.js";
import { Queue } from "../../queue.js";
import type { ServiceManager } from "../../services/base.js";
import { ConnectionService } from "../../services/connection.js";
import { EventService } from "../../services/events.js";
import { KVStoreService } from "../../services/kv.js";
import { QueueService } from "../../services/queues.js";
import { StreamService } from "../../services/streams.js";
import { Worker } from "../../worker/worker.js";
import type { Action } from "../act.js";
import { cliLogger, openServices, type CliContext } from "../context.js";
import { interruption, type Interruption } from "../interrupt.js";
import type { Spinner } from "../output.js";

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

export interface BenchCleanup {
  /** The queue's durable consumer was deleted. */
  consumer: boolean;
  /** Jobs still stored for the queue (none after a complete run). */
  jobs: number;
  events: number;
  deadLetters: number;
  /** Messages of the result records (and of the worker's heartbeat entry). */
  records: number;
  worker?: string;
}

class BenchInterrupted extends NaqError {
  override name = "BenchInterrupted";
}

const TASK = "noop";
const SEQUENTIAL_MAX = 1_000;
const BULK_CHUNK = 2_048;
const WINDOW = 256;
/** A phase that sees no job complete for this long has failed. */
const STALL_MS = 30_000;

/** A payload whose JSON text is `size` bytes: a string (null for sizes below 2). */
export function payloadOfSize(size: number): JsonValue {
  return size < 2 ? null : "x".repeat(size - 2);
}

const round = (n: number, digits = 3): number => (Number.isFinite(n) ? Number(n.toFixed(digits)) : 0);
const perSec = (jobs: number, ms: number): number => round(ms > 0 ? (jobs / ms) * 1000 : 0, 1);
const pct = (values: number[], p: number): number => (values.length === 0 ? 0 : round(percentile([...values].sort((a, b) => a - b), p)));

/** Everything the run made that cleanup needs to find, filled in as it goes. */
interface Trace {
  ids: string[];
  worker?: Worker;
}

/** Resolves when `done()` is true, checking on each `tick()`; rejects on abort, or when nothing ticks for STALL_MS. */
function progress(stop: Interruption, what: () => string, done: () => boolean) {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const finished = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => reject(new TimeoutError(`no progress for ${STALL_MS / 1000}s: ${what()}`)), STALL_MS);
  };
  const onAbort = () => reject(new BenchInterrupted(`interrupted (${stop.reason ?? "signal"})`));
  stop.signal.addEventListener("abort", onAbort, { once: true });
  arm();
  const check = () => {
    if (done()) resolve();
  };
  const settled = finished.finally(() => {
    clearTimeout(timer);
    stop.signal.removeEventListener("abort", onAbort);
  });
  // Awaited later: a failure before then must not count as unhandled.
  settled.catch(() => undefined);
  return {
    tick: () => {
      arm();
      check();
    },
    fail: (err: Error) => reject(err),
    finished: settled,
    check,
  };
}

function checkStop(stop: Interruption): void {
  if (stop.signal.aborted) throw new BenchInterrupted(`interrupted (${stop.reason ?? "signal"})`);
}

async function run(ctx: CliContext, services: ServiceManager, opts: BenchOpts, queueName: string, trace: Trace, stop: Interruption, spinner: Spinner) {
  const queue = new Queue(queueName, { services });
  const payload = payloadOfSize(opts.payloadSize);
  const prefix = queueName;

  // 1. Enqueue one at a time, each awaited.
  const nSeq = Math.min(opts.jobs, SEQUENTIAL_MAX);
  const seqTimes: number[] = [];
  spinner.update(`enqueueing ${nSeq} jobs one at a time`);
  const t0 = performance.now();
  for (let i = 0; i < nSeq; i++) {
    checkStop(stop);
    const id = `${prefix}-s${i}`;
    trace.ids.push(id);
    const t = performance.now();
    await queue.enqueue(TASK, payload, { id, retries: 0 });
    seqTimes.push(performance.now() - t);
  }
  const seqMs = performance.now() - t0;

  // 2. Enqueue in bulk, pipelined.
  spinner.update(`enqueueing ${opts.jobs} jobs in bulk`);
  const t1 = performance.now();
  for (let from = 0; from < opts.jobs; from += BULK_CHUNK) {
    checkStop(stop);
    const chunk = [];
    for (let i = from; i < Math.min(opts.jobs, from + BULK_CHUNK); i++) {
      const id = `${prefix}-b${i}`;
      trace.ids.push(id);
      chunk.push({ task: TASK, payload, id, retries: 0 });
    }
    const failed = (await queue.enqueueMany(chunk, { window: WINDOW })).find((r): r is Error => r instanceof Error);
    if (failed) throw failed;
  }
  const bulkMs = performance.now() - t1;

  // 3. Process what 1 and 2 enqueued, with one worker at --concurrency.
  const toProcess = nSeq + opts.jobs;
  const starts = new Map<string, number>();
  const completed = new Map<string, number>();
  let firstAt = 0;
  let lastAt = 0;
  let watching: ReturnType<typeof progress> | undefined;
  const worker = new Worker({
    queues: [queueName],
    handlers: {
      [TASK]: (_payload, job) => {
        starts.set(job.id, performance.now());
        return null;
      },
    },
    concurrency: opts.concurrency,
    graceMs: 5_000,
    name: "naq-bench",
    config: ctx.config,
    logger: cliLogger(ctx.out),
  });
  trace.worker = worker;
  worker.on("job", (j) => {
    if (j.outcome !== "completed") {
      watching?.fail(new NaqError(`bench job ${j.id} ${j.outcome}${j.error ? `: ${j.error}` : j.reason ? `: ${j.reason}` : ""}`));
      return;
    }
    const now = performance.now();
    completed.set(j.id, now);
    if (completed.size === 1) firstAt = now;
    lastAt = now;
    watching?.tick();
  });
  worker.on("error", (err) => ctx.out.warn(`bench worker: ${err.message}`));
  spinner.update(`processing ${toProcess} jobs at concurrency ${opts.concurrency}`);
  watching = progress(stop, () => `${completed.size} of ${toProcess} jobs processed`, () => completed.size >= toProcess);
  await worker.start();
  watching.check();
  const update = setInterval(() => spinner.update(`processing: ${completed.size} of ${toProcess} jobs`), 250);
  try {
    await watching.finished;
  } finally {
    clearInterval(update);
  }
  const processMs = lastAt - firstAt;

  // 4. Latency at a steady rate, to the same worker.
  const nLat = Math.max(1, Math.round((opts.rate * opts.duration) / 1000));
  const warmupMs = Math.min(500, opts.duration / 5);
  const sentAt = new Map<string, number>();
  const errors: Error[] = [];
  const target = toProcess + nLat;
  spinner.update(`latency: ${nLat} jobs at ${opts.rate}/s`);
  watching = progress(stop, () => `${completed.size - toProcess} of ${nLat} latency jobs completed`, () => completed.size >= target);
  const tl = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      if (stop.signal.aborted) return resolve();
      const due = Math.min(nLat, Math.floor(((performance.now() - tl) * opts.rate) / 1000) + 1);
      while (sent < due) {
        const id = `${prefix}-l${sent++}`;
        trace.ids.push(id);
        sentAt.set(id, performance.now());
        queue.enqueue(TASK, payload, { id, retries: 0 }).catch((err: unknown) => {
          errors.push(coerceError(err));
          watching?.fail(coerceError(err));
        });
      }
      if (sent >= nLat) resolve();
      else setTimeout(tick, 2);
    };
    tick();
  });
  await watching.finished;
  if (errors.length > 0) throw errors[0];
  const startLat: number[] = [];
  const doneLat: number[] = [];
  for (const [id, at] of sentAt) {
    if (at - tl < warmupMs) continue;
    const s = starts.get(id);
    const d = completed.get(id);
    if (s !== undefined) startLat.push(s - at);
    if (d !== undefined) doneLat.push(d - at);
  }

  return {
    enqueue: {
      sequential: { jobs: nSeq, seconds: round(seqMs / 1000), jobsPerSec: perSec(nSeq, seqMs), p50Ms: pct(seqTimes, 50), p99Ms: pct(seqTimes, 99) },
      bulk: { jobs: opts.jobs, seconds: round(bulkMs / 1000), jobsPerSec: perSec(opts.jobs, bulkMs), window: WINDOW },
    },
    process: { jobs: toProcess, concurrency: opts.concurrency, seconds: round(processMs / 1000), jobsPerSec: perSec(toProcess - 1, processMs) },
    latency: {
      rate: opts.rate,
      jobs: nLat,
      measured: doneLat.length,
      startP50Ms: pct(startLat, 50),
      startP99Ms: pct(startLat, 99),
      completedP50Ms: pct(doneLat, 50),
      completedP99Ms: pct(doneLat, 99),
    },
  };
}

/** Removes everything the run left: see the file comment. Runs after a failure too. */
async function cleanup(services: ServiceManager, queueName: string, trace: Trace): Promise<BenchCleanup> {
  const worker = trace.worker;
  if (worker) await worker.close({ graceMs: 5_000 });
  const names = services.ctx.names;
  const [events, queues, streams, kv] = await Promise.all([
    services.get(EventService),
    services.get(QueueService),
    services.get(StreamService),
    services.get(KVStoreService),
  ]);
  // This scope's `enqueued` events: sent before purging them.
  await events.flush();
  const { consumer, jobs } = await queues.discard(queueName);
  const purgeAll = async (stream: string, subjects: string[]): Promise<number> => {
    if (!(await streams.find(stream))) return 0;
    let n = 0;
    // Events are plain publishes: one sent just before may be stored just after a purge.
    for (let attempt = 0; attempt < 3; attempt++) {
      for (const subject of subjects) n += await streams.purge(stream, { subject });
      await new Promise((r) => setTimeout(r, 200));
      let left = 0;
      for (const subject of subjects) left += await streams.countSubject(stream, subject);
      if (left === 0) break;
    }
    return n;
  };
  const eventSubjects = [names.eventFilter({ queue: queueName })];
  if (worker) eventSubjects.push(names.eventFilter({ queue: WORKER_EVENTS_QUEUE, jobId: worker.id }));
  const removedEvents = await purgeAll(names.eventsStream, eventSubjects);
  const deadLetters = await purgeAll(names.deadLetterStream, [names.deadLetterFilter({ queue: queueName })]);
  let records = trace.ids.length > 0 ? await kv.removeKeys(names.buckets.results, trace.ids) : 0;
  if (worker) records += await kv.removeKeys(names.buckets.workers, [worker.id]);
  return { consumer, jobs, events: removedEvents, deadLetters, records, ...(worker ? { worker: worker.id } : {}) };
}

function removedLine(r: BenchCleanup, queueName: string, consumerName: string): string {
  const parts = [
    r.consumer ? `consumer ${consumerName}` : "no consumer",
    `${r.jobs} queued job${r.jobs === 1 ? "" : "s"}`,
    `${r.events} events`,
    ...(r.deadLetters > 0 ? [`${r.deadLetters} dead letters`] : []),
    `${r.records} result and heartbeat records`,
  ];
  return `removed queue ${queueName}: ${parts.join(", ")}`;
}

const ms = (v: number): string => `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`;

function render(ctx: CliContext, r: BenchReport): string {
  const { c } = ctx.out;
  const head = [
    `naq bench on ${r.server.url} (${r.server.name !== r.server.id ? `${r.server.name}, ` : ""}nats-server ${r.server.version}${r.server.cluster ? `, cluster ${r.server.cluster}` : ""}), namespace ${r.namespace}`,
    `throwaway queue ${r.queue}; payload ${r.options.payloadSize} bytes; a no-op task, results stored`,
  ];
  interface Row {
    phase: string;
    jobs: number;
    rate?: number;
    p50?: number;
    p99?: number;
  }
  const rows: Row[] = [
    { phase: "enqueue, one at a time (awaited)", jobs: r.enqueue.sequential.jobs, rate: r.enqueue.sequential.jobsPerSec, p50: r.enqueue.sequential.p50Ms, p99: r.enqueue.sequential.p99Ms },
    { phase: `enqueue, bulk (${r.enqueue.bulk.window} in flight)`, jobs: r.enqueue.bulk.jobs, rate: r.enqueue.bulk.jobsPerSec },
    { phase: `process, concurrency ${r.process.concurrency}`, jobs: r.process.jobs, rate: r.process.jobsPerSec },
    { phase: `latency @${r.latency.rate}/s: enqueue -> start`, jobs: r.latency.measured, p50: r.latency.startP50Ms, p99: r.latency.startP99Ms },
    { phase: `latency @${r.latency.rate}/s: enqueue -> completed`, jobs: r.latency.measured, p50: r.latency.completedP50Ms, p99: r.latency.completedP99Ms },
  ];
  const table = ctx.out.table(rows, [
    { header: "PHASE", value: (x) => x.phase },
    { header: "JOBS", value: (x) => x.jobs, align: "right" },
    { header: "JOBS/S", value: (x) => (x.rate === undefined ? "" : Math.round(x.rate)), align: "right" },
    { header: "P50", value: (x) => (x.p50 === undefined ? "" : ms(x.p50)), align: "right" },
    { header: "P99", value: (x) => (x.p99 === undefined ? "" : ms(x.p99)), align: "right" },
  ]);
  return [...head, table, c.dim(removedLine(r.removed, r.queue, namesFor(r.namespace).queueConsumer(r.queue)))].join("\n");
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
  const trace: Trace = { ids: [] };
  let measured: Awaited<ReturnType<typeof run>> | undefined;
  let failure: unknown;
  try {
    measured = await run(ctx, services, opts, queueName, trace, stop, spinner);
  } catch (err) {
    failure = err;
  }
  spinner.update(`removing queue ${queueName}`);
  let removed: BenchCleanup;
  try {
    removed = await cleanup(services, queueName, trace);
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
  ctx.out.result(report, () => render(ctx, report));
};
