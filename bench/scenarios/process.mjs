/**
 * process: `n` trivial jobs run by one worker at `concurrency`, results stored
 * (naq: result KV record; raw: one KV put per job; BullMQ: its default, the job kept
 * in the completed set with its return value). Returns jobs/s.
 *
 *   mode "prefilled": the queue is filled first (not timed); jobs/s = (n - 1) / (time from
 *                     the first completion to the last), so connecting and the first
 *                     pull are not counted for anyone.
 *   mode "live":      the worker runs, then a producer in another process enqueues the n
 *                     jobs in chunks of 1,000 while it works; jobs/s = n / (time from the
 *                     producer's start to the last completion).
 *
 * Also returns, over the same window, the CPU this process (the worker; in live mode not
 * the producer) and the server (nats-server for naq and raw, redis-server for BullMQ; only
 * when its pid is given as natsPid / redisPid) used per 1,000 jobs: { value, clientCpu, serverCpu }.
 */
import { spawnChild } from "../lib/child.mjs";
import { completionCounter, jobs, withSystem } from "../lib/harness.mjs";
import { cpuMsOfSync } from "../lib/servers.mjs";

/** CPU ms of this process and of the server so far (server undefined without a pid). */
function cpuNow(serverPid) {
  const u = process.cpuUsage();
  return { client: (u.user + u.system) / 1000, server: serverPid ? cpuMsOfSync(serverPid) : undefined };
}
function perThousand(from, to, jobsDone) {
  const k = jobsDone / 1000;
  return { clientCpu: (to.client - from.client) / k, serverCpu: from.server !== undefined && to.server !== undefined ? (to.server - from.server) / k : NaN };
}

const CHUNK = 1_000;

async function processJobs(system, { natsUrl, redisUrl, n = 20_000, concurrency = 10, mode = "prefilled", natsPid, redisPid }) {
  const serverPid = system === "bullmq" ? redisPid : natsPid;
  return withSystem(system, { natsUrl, redisUrl }, async (sys) => {
    const counter = completionCounter(n, { timeoutMs: 600_000 });
    let cpuFirst;
    let cpuLast;
    const onDone = () => {
      counter.tick();
      if (counter.count === 1) cpuFirst = cpuNow(serverPid);
      else if (counter.count === n) cpuLast = cpuNow(serverPid);
    };
    if (mode === "prefilled") {
      for (let i = 0; i < n; i += 5_000) await sys.enqueueMany(jobs(Math.min(5_000, n - i), i));
      const worker = await sys.startWorker({ concurrency, onDone });
      try {
        await counter.reached;
      } finally {
        await worker.close();
      }
      return { value: ((n - 1) / (counter.lastAt - counter.firstAt)) * 1000, ...perThousand(cpuFirst, cpuLast, n - 1) };
    }
    if (mode !== "live") throw new Error(`unknown mode ${mode}`);
    const producer = spawnChild({ role: "producer", system, natsUrl, redisUrl, name: sys.name, n, chunk: CHUNK });
    try {
      const worker = await sys.startWorker({ concurrency, onDone });
      try {
        await producer.ready;
        const t0 = performance.now();
        const cpu0 = cpuNow(serverPid);
        producer.send({ type: "go" });
        await Promise.all([counter.reached, producer.next("done")]);
        return { value: (n / (counter.lastAt - t0)) * 1000, ...perThousand(cpu0, cpuLast, n) };
      } finally {
        await worker.close();
      }
    } finally {
      await Promise.race([producer.exited, new Promise((r) => setTimeout(r, 5_000))]);
      producer.kill();
    }
  });
}

export const naq = (opts) => processJobs("naq", opts);
export const raw = (opts) => processJobs("raw", opts);
export const bullmq = (opts) => processJobs("bullmq", opts);
