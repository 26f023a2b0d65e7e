/**
 * latency: jobs enqueued at a light steady rate (default 500/s) to a worker at
 * concurrency 10, all in one process; for each job, enqueue -> handler start and
 * enqueue -> completed (result stored, acked). Returns { startP50, startP99, doneP50,
 * doneP99 } in ms. Jobs enqueued during the first `warmupMs` are not counted.
 *
 * Enqueues are not awaited one by one (a producer at a fixed rate does not wait for the
 * previous job): each is timed from the moment it is handed to the client library.
 */
import { completionCounter, paced, withSystem } from "../lib/harness.mjs";
import { latencySummary } from "../lib/stats.mjs";

let runs = 0;

async function latency(system, { natsUrl, redisUrl, rate = 500, durationMs = 5_000, warmupMs = 500, concurrency = 10 }) {
  return withSystem(system, { natsUrl, redisUrl }, async (sys) => {
    const total = Math.round((rate * (durationMs + warmupMs)) / 1000);
    const prefix = `l${(runs++).toString(36)}x`;
    const enq = new Map();
    const start = new Map();
    const done = new Map();
    const counter = completionCounter(total, { timeoutMs: durationMs + warmupMs + 60_000 });
    const worker = await sys.startWorker({
      concurrency,
      onStart: (id) => start.set(id, performance.now()),
      onDone: (id) => {
        done.set(id, performance.now());
        counter.tick();
      },
    });
    try {
      const failures = [];
      await paced({
        rate,
        total,
        send: (i) => {
          const id = `${prefix}${i}`;
          enq.set(id, performance.now());
          sys.enqueue({ id, payload: { i } }).catch((err) => {
            failures.push(err);
            counter.fail(err);
          });
        },
      });
      await counter.reached;
      if (failures.length > 0) throw failures[0];
      const warmupCount = Math.round((rate * warmupMs) / 1000);
      const startLat = [];
      const doneLat = [];
      for (let i = warmupCount; i < total; i++) {
        const id = `${prefix}${i}`;
        const te = enq.get(id);
        if (start.has(id)) startLat.push(start.get(id) - te);
        if (done.has(id)) doneLat.push(done.get(id) - te);
      }
      const s = latencySummary(startLat);
      const d = latencySummary(doneLat);
      return { startP50: s.p50, startP99: s.p99, doneP50: d.p50, doneP99: d.p99 };
    } finally {
      await worker.close();
    }
  });
}

export const naq = (opts) => latency("naq", opts);
export const raw = (opts) => latency("raw", opts);
export const bullmq = (opts) => latency("bullmq", opts);
