// Bulk enqueue throughput of `naq job enqueue --ndjson`, the way a shell pipeline uses it:
// BENCH_N lines (default 50,000) piped into `node bin/naq job enqueue --ndjson -`, timed
// from spawn to exit (process start, connect and stream creation included), BENCH_RUNS times
// (default 3), each into a fresh namespace. Prints jobs/s per run and the median.
//
//   npm run build && node bench/enqueue-ndjson.mjs          # starts its own nats-server
//   NAQ_URL=nats://127.0.0.1:4222 node bench/enqueue-ndjson.mjs
//   BENCH_N=100000 BENCH_WINDOW=1024 node bench/enqueue-ndjson.mjs
//
// The bar it must clear: 10,000 jobs/s into a local server.
import { spawn } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { startNats } from "./lib/servers.mjs";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";

const N = Number(process.env.BENCH_N ?? 50_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const WINDOW = process.env.BENCH_WINDOW;
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const NAQ = path.join(ROOT, "bin", "naq");


function run(args, env, stdinFile) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [NAQ, ...args], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    let lines = 0;
    let stderr = "";
    child.stdout.on("data", (d) => {
      for (let i = 0; i < d.length; i++) if (d[i] === 10) lines++;
    });
    child.stderr.on("data", (d) => (stderr += d));
    if (stdinFile) createReadStream(stdinFile).pipe(child.stdin);
    else child.stdin.end();
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, lines, stderr, ms: performance.now() - started }));
  });
}

const dir = await mkdtemp(path.join(os.tmpdir(), "naq-bench-ndjson-"));
const server = process.env.NAQ_URL ? undefined : await startNats();
const url = process.env.NAQ_URL ?? server.url;
try {
  const file = path.join(dir, "jobs.ndjson");
  const lines = [];
  for (let i = 0; i < N; i++) lines.push(JSON.stringify({ task: "resize", payload: { image: `img-${i}.png`, width: 640 } }));
  await writeFile(file, `${lines.join("\n")}\n`);
  const rates = [];
  for (let r = 1; r <= RUNS; r++) {
    const namespace = `benchndjson${Date.now().toString(36)}${r}`;
    const env = { NAQ_URL: url, NAQ_NAMESPACE: namespace };
    const args = ["job", "enqueue", "--ndjson", "-", ...(WINDOW ? ["--window", WINDOW] : [])];
    const res = await run(args, env, file);
    if (res.code !== 0 || res.lines !== N) {
      console.error(`run ${r}: exit ${res.code}, ${res.lines} of ${N} ids printed\n${res.stderr}`);
      process.exitCode = 1;
      break;
    }
    const rate = N / (res.ms / 1_000);
    rates.push(rate);
    console.log(`run ${r}: ${N} jobs in ${(res.ms / 1_000).toFixed(2)}s = ${Math.round(rate).toLocaleString("en-US")} jobs/s (whole process)`);
    // Leave an external server as we found it.
    if (process.env.NAQ_URL) {
      for (const s of ["jobs", "events", "dlq"]) await run(["stream", "delete", `${namespace}_${s}`, "--force"], env);
    }
  }
  if (rates.length > 0) {
    const sorted = [...rates].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    console.log(`median: ${Math.round(median).toLocaleString("en-US")} jobs/s over ${rates.length} run(s) of ${N} (${median >= 10_000 ? "meets" : "BELOW"} the 10,000 jobs/s bar)`);
  }
} finally {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
}
