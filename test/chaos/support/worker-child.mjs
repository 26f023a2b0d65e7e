// A worker process for chaos scenarios, on the built library (dist/): kill -9 it, SIGSTOP
// it, restart its server; it must carry on or its jobs must come back.
//
// env: NAQ_URL (comma-separated servers), NAQ_NAMESPACE, CHAOS_LEDGER (file),
//      CHAOS_QUEUES (default "chaos"), CHAOS_CONCURRENCY (default 10)
// Task "record": payload { ms?: number, failUntil?: number, fatal?: boolean }
//   sleeps ms, throws while ctx.attempt < failUntil, then appends "<id> <attempt> <pid>" to the ledger.
// Prints "ready" on stdout once the worker runs, and a JSON line per lifecycle note on stderr.
import { appendFileSync } from "node:fs";
import { Worker } from "../../../dist/index.js";

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
      if (p.failUntil && ctx.attempt < p.failUntil) throw new Error(`planned failure on attempt ${ctx.attempt}`);
      appendFileSync(ledger, `${ctx.id} ${ctx.attempt} ${process.pid}\n`);
      return { attempt: ctx.attempt };
    },
  },
});
worker.on("error", (err) => process.stderr.write(JSON.stringify({ error: String(err?.message ?? err) }) + "\n"));
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.once(sig, () => {
    void worker.close().then(() => process.exit(0));
  });
}
await worker.start();
process.stdout.write("ready\n");
