/**
 * add-bulk: enqueue `n` jobs as fast as the client allows. Returns jobs/s.
 *
 *   naq     Queue.enqueueMany (pipelined publishes, window 256)
 *   naqCli  `naq job enqueue --ndjson` reading n lines from stdin: one process, wall time
 *           including its start (only when the installed CLI has --ndjson)
 *   raw     js.publish with Msg-Id, pipelined, at most 256 acks outstanding
 *   bullmq  one Queue.addBulk call with all n jobs
 */
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { jetstreamManager } from "@nats-io/jetstream";
import { jobs, withSystem } from "../lib/harness.mjs";
import { QUEUE, rawConnect } from "../lib/systems.mjs";

export const NAQ_BIN = fileURLToPath(new URL("../../bin/naq", import.meta.url));

async function bulk(system, { natsUrl, redisUrl, n = 20_000 }) {
  return withSystem(system, { natsUrl, redisUrl }, async (sys) => {
    await sys.enqueue({ payload: { warmup: true } });
    const batch = jobs(n);
    const t0 = performance.now();
    await sys.enqueueMany(batch);
    return (n / (performance.now() - t0)) * 1000;
  });
}

export const naq = (opts) => bulk("naq", opts);
export const raw = (opts) => bulk("raw", opts);
export const bullmq = (opts) => bulk("bullmq", opts);

/** Whether this naq build has `naq job enqueue --ndjson` (it was being built when the bench was written). */
export function cliHasNdjson() {
  const r = spawnSync(process.execPath, [NAQ_BIN, "job", "enqueue", "--help"], { encoding: "utf8", timeout: 20_000, env: cleanEnv() });
  return r.status === 0 && /--ndjson\b/.test(r.stdout);
}

/** The environment without NAQ_ and NATS_ settings, so a developer's own config cannot leak in. */
export function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(NAQ|NATS)_/.test(k)) env[k] = v;
  return { ...env, NO_COLOR: "1", ...extra };
}

/** One `naq job enqueue --ndjson` process fed n lines on stdin; jobs/s of its whole wall time. */
export async function naqCli({ natsUrl, redisUrl, n = 20_000 }) {
  return withSystem("naq", { natsUrl, redisUrl }, async (sys) => {
    let text = "";
    for (let i = 0; i < n; i++) text += `{"task":"noop","payload":{"i":${i}}}\n`;
    const args = [NAQ_BIN, "--server", natsUrl, "--namespace", sys.name, "--quiet", "job", "enqueue", "--ndjson", "--queue", QUEUE];
    const t0 = performance.now();
    const code = await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, args, { stdio: ["pipe", "ignore", "pipe"], env: cleanEnv() });
      let stderr = "";
      child.stderr.on("data", (d) => (stderr += d));
      child.on("error", reject);
      child.on("exit", (c) => (c === 0 ? resolve(c) : reject(new Error(`naq job enqueue --ndjson exited ${c}: ${stderr.slice(0, 500)}`))));
      child.stdin.end(text);
    });
    const ms = performance.now() - t0;
    // Check the jobs really landed (a CLI that exits 0 having enqueued nothing must not look fast).
    const nc = await rawConnect(natsUrl);
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info(`${sys.name}_jobs`);
      if (info.state.messages < n) throw new Error(`naq job enqueue --ndjson exited ${code} but the jobs stream holds ${info.state.messages} of ${n} jobs`);
    } finally {
      await nc.close();
    }
    return (n / ms) * 1000;
  });
}
