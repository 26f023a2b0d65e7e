// A worker process for chaos scenarios, on the built library as it ships (the package entry,
// dist/lib/naq.js): kill -9 it, SIGSTOP
// it, restart its server; it must carry on or its jobs must come back.
//
// env: NAQ_URL (comma-separated servers), NAQ_NAMESPACE, CHAOS_LEDGER (file),
//      CHAOS_QUEUES (default "chaos"), CHAOS_CONCURRENCY (default 10),
//      CHAOS_MEMORY_EVERY_MS (print process.memoryUsage() on stdout that often, after a full GC
//      when run with --expose-gc; default never)
// Task "record": payload { ms?: number, failUntil?: number, fatal?: boolean }
//   sleeps ms; throws while ctx.attempt < failUntil; with fatal, throws an UnrecoverableError
//   (dead-lettered at once, no retry); else appends "<id> <attempt> <pid> <epoch ms>
//   <enqueuedAt ms>" to the ledger (only runs that succeeded are written). enqueuedAt tells
//   two messages with one job id apart (a producer retry that was stored twice) from two
//   deliveries of one message (a redelivery).
// Prints "ready" on stdout once the worker runs, and a JSON line per lifecycle note on stderr.
import { appendFileSync } from "node:fs";
import { UnrecoverableError, Worker } from "naq";

const ledger = process.env.CHAOS_LEDGER;
if (!ledger) throw new Error("CHAOS_LEDGER is not set");

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      reject(signal.reason);
    });
  });
}

const worker = new Worker({
  queues: (process.env.CHAOS_QUEUES ?? "chaos").split(","),
  concurrency: Number(process.env.CHAOS_CONCURRENCY ?? 10),
  name: process.env.CHAOS_NAME ?? "chaos",
  graceMs: 2_000,
  handlers: {
    async record(payload, ctx) {
      const p = payload ?? {};
      if (p.ms) await sleep(p.ms, ctx.signal);
      if (p.fatal) throw new UnrecoverableError(`planned fatal failure on attempt ${ctx.attempt}`);
      if (p.failUntil && ctx.attempt < p.failUntil) throw new Error(`planned failure on attempt ${ctx.attempt}`);
      appendFileSync(ledger, `${ctx.id} ${ctx.attempt} ${process.pid} ${Date.now()} ${Date.parse(ctx.job.enqueuedAt)}\n`);
      return { attempt: ctx.attempt };
    },
  },
});
worker.on("error", (err) => process.stderr.write(JSON.stringify({ at: Date.now(), error: String(err?.message ?? err) }) + "\n"));
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.once(sig, () => {
    void worker.close().then(() => process.exit(0));
  });
}
await worker.start();
process.stdout.write("ready\n");
// CHAOS_MEMORY_EVERY_MS: a line `mem {"at","rss","heapUsed","heapTotal","external","arrayBuffers"}` (bytes) on stdout that
// often; run with --expose-gc and it does a full GC first, so heapUsed is what is really retained.
const memEvery = Number(process.env.CHAOS_MEMORY_EVERY_MS ?? 0);
if (memEvery > 0) {
  setInterval(() => {
    globalThis.gc?.();
    process.stdout.write(`mem ${JSON.stringify({ at: Date.now(), gc: typeof globalThis.gc === "function", ...process.memoryUsage() })}\n`);
  }, memEvery).unref();
}
