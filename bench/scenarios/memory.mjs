/**
 * memory: a worker (concurrency 10) in its own process, fed at a fixed rate (default
 * 500 jobs/s) by this process. After `warmupMs`, its RSS is sampled every 100 ms for
 * `measureMs` (from /proc, without touching the worker). Returns { rssMb: median RSS
 * in MiB, cpuPct: the worker's CPU use over the window, % of one core }.
 */
import { spawnChild } from "../lib/child.mjs";
import { paced, sleep, withSystem } from "../lib/harness.mjs";
import { cpuMsOf, rssOf } from "../lib/servers.mjs";
import { median } from "../lib/stats.mjs";

async function memory(system, { natsUrl, redisUrl, rate = 500, warmupMs = 5_000, measureMs = 10_000, concurrency = 10 }) {
  return withSystem(system, { natsUrl, redisUrl }, async (sys) => {
    const worker = spawnChild({ role: "worker", system, natsUrl, redisUrl, name: sys.name, concurrency });
    try {
      await worker.ready;
      const failures = [];
      const samples = [];
      let cpuStart;
      let measuring = false;
      let sampler;
      const total = Math.round((rate * (warmupMs + measureMs)) / 1000);
      await paced({
        rate,
        total,
        send: (i) =>
          void sys.enqueue({ payload: { i } }).catch((err) => {
            if (failures.length < 10) failures.push(err);
          }),
        onTick: (elapsed) => {
          if (!measuring && elapsed >= warmupMs) {
            measuring = true;
            void cpuMsOf(worker.pid).then((c) => (cpuStart = { c, t: performance.now() }));
            sampler = setInterval(() => void rssOf(worker.pid).then((r) => r !== undefined && samples.push(r)), 100);
          }
        },
      });
      clearInterval(sampler);
      const cpuEnd = { c: await cpuMsOf(worker.pid), t: performance.now() };
      if (failures.length > 0) throw failures[0];
      // Let it finish what was sent, then check it kept up with the rate.
      for (let waited = 0; waited < 10_000; waited += 100) {
        worker.send({ type: "count" });
        if ((await worker.next("count")).done >= total) break;
        await sleep(100);
      }
      worker.send({ type: "stop" });
      const stopped = await worker.next("stopped");
      if (stopped.errors > 0) throw new Error(`worker: ${stopped.errors} error(s), first: ${stopped.firstError}`);
      if (stopped.done < total) throw new Error(`worker did not keep up with ${rate} jobs/s: ${stopped.done} of ${total} done`);
      const cpuPct = cpuStart && cpuStart.c !== undefined && cpuEnd.c !== undefined ? ((cpuEnd.c - cpuStart.c) / (cpuEnd.t - cpuStart.t)) * 100 : NaN;
      return { rssMb: median(samples) / (1024 * 1024), cpuPct };
    } finally {
      await Promise.race([worker.exited, sleep(5_000)]);
      worker.kill();
    }
  });
}

export const naq = (opts) => memory("naq", opts);
export const raw = (opts) => memory("raw", opts);
export const bullmq = (opts) => memory("bullmq", opts);
