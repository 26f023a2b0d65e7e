/**
 * The measuring phases of `naq bench`, one after another, on one throwaway queue:
 *   1. enqueue one at a time: min(--jobs, 1000) jobs, each awaited (Queue.enqueue);
 *   2. enqueue in bulk: --jobs jobs, pipelined (Queue.enqueueMany, 256 awaiting their ack);
 *   3. process: a Worker in this process, at --concurrency, runs the jobs of 1 and 2 (a
 *      no-op task; each result stored, as always); jobs/s from the first completion to the last;
 *   4. latency: jobs enqueued at --rate for --duration (not awaited one by one) to the same
 *      worker; enqueue -> handler start and enqueue -> completed (result stored, acked),
 *      p50 and p99, leaving out the first 500 ms (or fifth of --duration).
 * What the run makes is noted in a BenchTrace as it goes, for src/cli/actions/bench-cleanup.ts.
 */
import { NaqError, TimeoutError, coerceError } from "../../model/errors.js";
import type { JsonValue } from "../../model/job.js";
import { percentile } from "../../model/stats.js";
import { Queue } from "../../queue.js";
import type { ServiceManager } from "../../services/base.js";
import { Worker } from "../../worker/worker.js";
import { cliLogger, type CliContext } from "../context.js";
import type { Interruption } from "../interrupt.js";
import type { Spinner } from "../output.js";
import type { BenchOpts } from "./bench.js";
import type { BenchTrace } from "./bench-cleanup.js";

export class BenchInterrupted extends NaqError {
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

/** Runs the four phases (see the file comment) and returns what they measured. */
export async function runBench(ctx: CliContext, services: ServiceManager, opts: BenchOpts, queueName: string, trace: BenchTrace, stop: Interruption, spinner: Spinner) {
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
