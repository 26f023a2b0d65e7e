#!/usr/bin/env node
/**
 * Where a worker's time goes: runs one process scenario for one system under
 * `node --cpu-prof` (the queue is pre-filled by another process, and only samples from the
 * worker's start to its last job are counted), then prints the top self-time functions and a breakdown by where the
 * code lives (naq, nats.js, node internals, GC...).
 *
 *   npm run build && node bench/profile.mjs                       # naq, 20,000 jobs, concurrency 100
 *   node bench/profile.mjs --system raw --n 20000 --concurrency 10
 *   node bench/profile.mjs --scenario add-bulk                     # the producer side: enqueueMany
 *   node bench/profile.mjs --analyze some.cpuprofile [--top 30]   # just summarize a profile
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const SELF = fileURLToPath(import.meta.url);

const { values: args } = parseArgs({
  options: {
    system: { type: "string", default: "naq" },
    scenario: { type: "string", default: "process" },
    n: { type: "string", default: "20000" },
    concurrency: { type: "string", default: "100" },
    top: { type: "string", default: "25" },
    analyze: { type: "string" },
    child: { type: "boolean", default: false },
    window: { type: "string" },
  },
});

/** Self time per function and per place, from a V8 .cpuprofile. */
export function summarizeProfile(profile, top = 25, window) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    // Only the samples inside the window (monotonic µs, the clock V8 and hrtime share on Linux).
    if (window && (t < window.startUs || t > window.endUs)) continue;
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const fns = new Map();
  const places = new Map();
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    const cf = n.callFrame;
    const url = cf.url.replace(/^file:\/\//, "");
    const short = url.replace(/^.*\/node_modules\//, "").replace(/^.*\/dist\//, "naq:dist/");
    const key = `${cf.functionName || "(anonymous)"}  ${short ? `${short}:${cf.lineNumber + 1}` : ""}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
    const place = placeOf(cf.functionName, url);
    places.set(place, (places.get(place) ?? 0) + us);
    total += us;
  }
  const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]);
  return { totalMs: total / 1000, top: sorted(fns).slice(0, top).map(([k, us]) => ({ fn: k, ms: us / 1000, pct: (100 * us) / total })), places: sorted(places).map(([k, us]) => ({ place: k, ms: us / 1000, pct: (100 * us) / total })) };
}

function placeOf(fn, url) {
  if (fn === "(garbage collector)") return "GC";
  if (fn === "(idle)") return "idle (waiting on I/O)";
  if (fn === "(program)") return "(program: V8/native, not JS)";
  if (url.includes("/node_modules/@nats-io/")) return `nats.js ${url.replace(/^.*\/node_modules\/@nats-io\/([^/]+)\/.*$/, "$1")}`;
  if (url.includes("/node_modules/")) return `node_modules/${url.replace(/^.*\/node_modules\/((@[^/]+\/)?[^/]+)\/.*$/, "$1")}`;
  if (url.includes("/dist/")) return `naq ${url.replace(/^.*\/dist\//, "").replace(/\/[^/]+$/, "/")}`;
  if (url.includes("/bench/")) return "bench harness";
  if (url.startsWith("node:")) return `node ${url.replace(/^node:internal\/([^/]+).*$/, "$1")}`;
  return url ? "other" : "native/builtins";
}

function print(summary, label) {
  console.log(`\n## CPU profile: ${label} — ${summary.totalMs.toFixed(0)} ms sampled\n`);
  console.log("| where | self ms | % |\n| --- | ---: | ---: |");
  for (const p of summary.places.slice(0, 15)) console.log(`| ${p.place} | ${p.ms.toFixed(0)} | ${p.pct.toFixed(1)} |`);
  console.log("\n| top self-time functions | self ms | % |\n| --- | ---: | ---: |");
  for (const f of summary.top) console.log(`| \`${f.fn.trim()}\` | ${f.ms.toFixed(1)} | ${f.pct.toFixed(1)} |`);
}

async function runChild() {
  const { startNats, startRedis } = await import("./lib/servers.mjs");
  const { openSystem, runName } = await import("./lib/systems.mjs");
  const { spawnChild } = await import("./lib/child.mjs");
  const { completionCounter } = await import("./lib/harness.mjs");
  const n = Number(args.n);
  const concurrency = Number(args.concurrency);
  const nats = await startNats();
  const redis = args.system === "bullmq" ? await startRedis() : undefined;
  try {
    const name = runName("p");
    const sys = await openSystem(args.system, { natsUrl: nats.url, redisUrl: redis?.url, name, create: true });
    const us = () => Number(process.hrtime.bigint() / 1000n);
    if (args.scenario === "add-bulk") {
      const { jobs } = await import("./lib/harness.mjs");
      await sys.enqueueMany(jobs(500));
      const batch = jobs(n);
      const window = { startUs: us() };
      const t0 = performance.now();
      await sys.enqueueMany(batch);
      const ms = performance.now() - t0;
      window.endUs = us();
      if (args.window) await writeFile(args.window, JSON.stringify(window));
      await sys.close();
      await sys.destroy();
      console.error(`${args.system}: enqueueMany of ${n} jobs: ${((n / ms) * 1000).toFixed(0)} jobs/s (under the profiler)`);
      return;
    }
    const producer = spawnChild({ role: "producer", system: args.system, natsUrl: nats.url, redisUrl: redis?.url, name, n, chunk: 5_000 });
    await producer.ready;
    producer.send({ type: "go" });
    await producer.next("done");
    await producer.exited;
    const counter = completionCounter(n);
    const window = { startUs: us() };
    const worker = await sys.startWorker({ concurrency, onDone: () => counter.tick() });
    await counter.reached;
    window.endUs = us();
    if (args.window) await writeFile(args.window, JSON.stringify(window));
    await worker.close();
    await sys.close();
    await sys.destroy();
    console.error(`${args.system}: ${n} jobs at concurrency ${concurrency}: ${(((n - 1) / (counter.lastAt - counter.firstAt)) * 1000).toFixed(0)} jobs/s (under the profiler)`);
  } finally {
    await nats.stop();
    await redis?.stop();
  }
}

if (args.analyze) {
  print(summarizeProfile(JSON.parse(await readFile(args.analyze, "utf8")), Number(args.top)), args.analyze);
} else if (args.child) {
  await runChild();
} else {
  const dir = await mkdtemp(join(tmpdir(), "naq-bench-prof-"));
  const r = spawnSync(
    process.execPath,
    ["--cpu-prof", "--cpu-prof-dir", dir, SELF, "--child", "--window", join(dir, "window.json"), "--scenario", args.scenario, "--system", args.system, "--n", args.n, "--concurrency", args.concurrency],
    { stdio: "inherit" },
  );
  if (r.status !== 0) process.exit(r.status ?? 1);
  const file = (await readdir(dir)).find((f) => f.endsWith(".cpuprofile"));
  const path = join(dir, file);
  const window = JSON.parse(await readFile(join(dir, "window.json"), "utf8"));
  const summary = summarizeProfile(JSON.parse(await readFile(path, "utf8")), Number(args.top), window);
  const what = args.scenario === "add-bulk" ? `enqueueMany of ${args.n} jobs` : `${args.n} pre-filled jobs, concurrency ${args.concurrency}, worker start to last job`;
  print(summary, `${args.system}, ${what} (${((window.endUs - window.startUs) / 1000).toFixed(0)} ms wall) — ${path}`);
}
