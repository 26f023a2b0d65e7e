// Scheduler tick cost with 100,000 delayed jobs due next week vs. with none.
//
//   npm run build && node bench/scheduler-tick.mjs            # starts its own nats-server
//   NAQ_URL=nats://127.0.0.1:4222 node bench/scheduler-tick.mjs
//   BENCH_FAR=20000 BENCH_ROUNDS=10 node bench/scheduler-tick.mjs
//
// For each namespace ("empty": nothing else scheduled; "loaded": BENCH_FAR jobs due at
// random times over the next 7 days), each round schedules 10 jobs due in 300 ms, waits
// for them, and times one leader tick (SchedulerService.triggerDue) that fires them; it
// also times ticks with nothing due. The ratio loaded/empty is the point: the tick reads
// the due-time index with direct gets of literal keys, so it should stay near 1. For
// contrast it times what a wildcard KV key listing of the current slot costs (what the
// index would cost if read with a subject filter; nats-server 2.9 walks every key).
import { startNats } from "./lib/servers.mjs";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { configSchema, DueScan, KVStoreService, SchedulerService, ServiceManager } from "naq";

const FAR = Number(process.env.BENCH_FAR ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const DUE_PER_ROUND = 10;


const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const guard = { id: "bench", check() {} };

async function open(url, namespace, far) {
  const services = await ServiceManager.open(configSchema.parse({ connection: { servers: [url] }, namespace }), { longLived: true });
  const svc = await services.get(SchedulerService);
  const kv = await services.get(KVStoreService);
  let loadMs = 0;
  if (far > 0) {
    const week = 7 * 86_400_000;
    const t0 = performance.now();
    const now = Date.now();
    for (let i = 0; i < far; i += 10_000) {
      const n = Math.min(10_000, far - i);
      const items = Array.from({ length: n }, (_, k) => ({ input: { task: "later", payload: { i: i + k } }, atMs: now + 86_400_000 + Math.floor(Math.random() * week) }));
      const res = await svc.scheduleJobs(items, { window: 512 });
      const bad = res.find((r) => r instanceof Error);
      if (bad) throw bad;
    }
    loadMs = performance.now() - t0;
  }
  const scan = new DueScan();
  await svc.triggerDue(scan, guard); // the first tick loads the cursor
  return { services, svc, kv, scan, far, loadMs, busy: [], idle: [], listing: [], fired: 0, rounds: 0 };
}

/** One round: a tick with nothing due, then 10 jobs due in 300 ms and the tick that fires them. */
async function round(ns, keep) {
  let t = performance.now();
  await ns.svc.triggerDue(ns.scan, guard);
  const idle = performance.now() - t;
  const at = Date.now() + 300;
  await ns.svc.scheduleJobs(Array.from({ length: DUE_PER_ROUND }, (_, i) => ({ input: { task: "now", payload: { i } }, atMs: at })));
  await sleep(Math.max(0, at - Date.now()) + 20);
  t = performance.now();
  const r = await ns.svc.triggerDue(ns.scan, guard);
  const busy = performance.now() - t;
  const slot = String(Math.floor(Date.now() / 10_000)).padStart(10, "0");
  t = performance.now();
  await ns.kv.keys(ns.services.ctx.names.buckets.schedules, `due.${slot}.>`);
  const listing = performance.now() - t;
  if (!keep) return;
  ns.rounds++;
  ns.fired += r.fired.length;
  ns.idle.push(idle);
  ns.busy.push(busy);
  ns.listing.push(listing);
}

const external = process.env.NAQ_URL ?? process.env.NATS_URL;
const server = external ? undefined : await startNats();
const url = external ?? server.url;
try {
  const tag = Date.now().toString(36);
  const spaces = [await open(url, `bench_empty_${tag}`, 0), await open(url, `bench_loaded_${tag}`, FAR)];
  // Rounds alternate between the two namespaces, after 3 warm-up rounds each, so drift hits both alike.
  for (let i = 0; i < ROUNDS + 3; i++) for (const ns of spaces) await round(ns, i >= 3);
  const [e, l] = spaces.map((ns) => ({ ...ns, busy: median(ns.busy), idle: median(ns.idle), listing: median(ns.listing), expected: ns.rounds * DUE_PER_ROUND }));
  for (const ns of spaces) await ns.services.close();
  const empty = e;
  const loaded = l;
  const f = (ms) => `${ms.toFixed(2)} ms`;
  console.log(`nats-server at ${url}; ${ROUNDS} rounds, ${DUE_PER_ROUND} jobs due per round (median tick time)`);
  console.log(`                                     empty          ${FAR.toLocaleString("en")} due next week`);
  console.log(`tick firing ${DUE_PER_ROUND} due jobs               ${f(empty.busy).padEnd(15)}${f(loaded.busy)}`);
  console.log(`tick with nothing due               ${f(empty.idle).padEnd(15)}${f(loaded.idle)}`);
  console.log(`(wildcard key listing of one slot)  ${f(empty.listing).padEnd(15)}${f(loaded.listing)}`);
  console.log(`loading ${FAR.toLocaleString("en")} delayed jobs took ${(loaded.loadMs / 1000).toFixed(1)} s (${Math.round(FAR / (loaded.loadMs / 1000))}/s)`);
  console.log(`fired ${empty.fired}/${empty.expected} (empty), ${loaded.fired}/${loaded.expected} (loaded)`);
  console.log(`RATIO busy tick loaded/empty = ${(loaded.busy / empty.busy).toFixed(2)}; idle tick loaded/empty = ${(loaded.idle / empty.idle).toFixed(2)}; wildcard listing loaded/empty = ${(loaded.listing / empty.listing).toFixed(1)}`);
  if (empty.fired !== empty.expected || loaded.fired !== loaded.expected) process.exitCode = 1;
} finally {
  await server?.stop();
}
