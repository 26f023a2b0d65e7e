/**
 * cli: wall time of one process that enqueues one job and exits (what a shell script
 * pays per `naq job enqueue`). Returns the median ms of `k` invocations (after one warmup).
 *
 *   naq     node bin/naq --server URL --namespace NS --quiet job enqueue noop --queue bench
 *   raw     node bench/oneshot/raw-publish.mjs: connect, one JetStream publish, close
 *   bullmq  node bench/oneshot/bullmq-add.mjs: connect, Queue.add, close
 *
 * Timed with hyperfine (-N, no shell) when it is on PATH, else by this process: spawn,
 * wait for exit, one after another. With hyperfine the CPU (user + system) one process
 * uses is reported too: on a busy machine it is steadier than wall time.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { findBinary } from "../lib/servers.mjs";
import { withSystem, sleep } from "../lib/harness.mjs";
import { QUEUE } from "../lib/systems.mjs";
import { cleanEnv, NAQ_BIN } from "./add-bulk.mjs";
import { median } from "../lib/stats.mjs";

const RAW_SCRIPT = fileURLToPath(new URL("../oneshot/raw-publish.mjs", import.meta.url));
const BULLMQ_SCRIPT = fileURLToPath(new URL("../oneshot/bullmq-add.mjs", import.meta.url));

export const hyperfinePath = () => findBinary("hyperfine", "NAQ_BENCH_HYPERFINE");

/** How the CLI row is timed: "hyperfine <version>" or "own timing". */
export function timer() {
  const hf = hyperfinePath();
  if (!hf) return "own timing (spawn -> exit, sequential)";
  const v = spawnSync(hf, ["--version"], { encoding: "utf8" }).stdout?.trim();
  return v || "hyperfine";
}

function runOnce(argv) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "ignore", "pipe"], env: cleanEnv(), cwd: tmpdir() });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("exit", (code) => {
      const ms = performance.now() - t0;
      if (code === 0) resolve(ms);
      else reject(new Error(`${argv.slice(1, 3).join(" ")} exited ${code}: ${stderr.slice(0, 500)}`));
    });
  });
}

/**
 * Median wall time (ms) of k runs of argv, after one warmup: { value, cpu }, where cpu is
 * the mean user+system CPU ms of one run (from hyperfine; NaN when timing it ourselves).
 */
export async function timeCommand(argv, k = 10) {
  const hf = hyperfinePath();
  if (hf) {
    const dir = await mkdtemp(join(tmpdir(), "naq-bench-hf-"));
    try {
      const out = join(dir, "hf.json");
      const quoted = argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
      const r = spawnSync(hf, ["-N", "--warmup", "1", "--runs", String(k), "--style", "none", "--export-json", out, quoted], {
        encoding: "utf8",
        env: cleanEnv(),
        cwd: tmpdir(),
        timeout: 300_000,
      });
      if (r.status !== 0) throw new Error(`hyperfine failed (${r.status}): ${(r.stderr || r.stdout).slice(0, 500)}`);
      const res = JSON.parse(await readFile(out, "utf8")).results[0];
      return { value: median(res.times.map((s) => s * 1000)), cpu: (res.user + res.system) * 1000 };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  await runOnce(argv);
  const times = [];
  for (let i = 0; i < k; i++) {
    times.push(await runOnce(argv));
    await sleep(20);
  }
  return { value: median(times), cpu: NaN };
}

export async function naq({ natsUrl, redisUrl, k = 10 }) {
  return withSystem("naq", { natsUrl, redisUrl }, (sys) =>
    timeCommand([process.execPath, NAQ_BIN, "--server", natsUrl, "--namespace", sys.name, "--quiet", "job", "enqueue", "noop", "--queue", QUEUE], k),
  );
}

export async function raw({ natsUrl, redisUrl, k = 10 }) {
  return withSystem("raw", { natsUrl, redisUrl }, (sys) => timeCommand([process.execPath, RAW_SCRIPT, natsUrl, `${sys.name}.queue.${QUEUE}`], k));
}

export async function bullmq({ natsUrl, redisUrl, k = 10 }) {
  return withSystem("bullmq", { natsUrl, redisUrl }, (sys) => timeCommand([process.execPath, BULLMQ_SCRIPT, redisUrl, sys.name], k));
}
