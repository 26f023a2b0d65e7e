/**
 * A bench child process (started with fork(), talks over IPC), so that a producer and a
 * worker do not share one event loop, and a worker's RSS is its own.
 *
 *   role "producer": opens the system, says {ready}; on {go} enqueues `n` jobs in chunks of
 *                    `chunk` (enqueueMany / addBulk / pipelined publish), says {done, ms}.
 *   role "worker":   starts a worker at `concurrency`, says {ready}; answers {count} with
 *                    {count, done}; on {stop} closes and says {stopped, done, errors}.
 *
 * Parent side: spawnChild(opts) -> { child, ready, send(msg), next(type), exited }.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";

const SELF = fileURLToPath(import.meta.url);

export function spawnChild(opts, { execArgv = [] } = {}) {
  const child = fork(SELF, [JSON.stringify(opts)], { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv });
  const waiters = [];
  const inbox = [];
  let exitInfo;
  const exited = new Promise((resolve) =>
    child.once("exit", (code, signal) => {
      exitInfo = { code, signal };
      for (const w of waiters.splice(0)) w.reject(new Error(`bench child (${opts.role} ${opts.system}) exited (${code ?? signal}) while waiting for "${w.type}"`));
      resolve(exitInfo);
    }),
  );
  child.on("message", (msg) => {
    if (msg?.type === "error") {
      for (const w of waiters.splice(0)) w.reject(new Error(`bench child (${opts.role} ${opts.system}): ${msg.message}`));
      return;
    }
    const i = waiters.findIndex((w) => w.type === msg?.type);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(msg);
    else inbox.push(msg);
  });
  const next = (type) => {
    const i = inbox.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
    if (exitInfo) return Promise.reject(new Error(`bench child exited (${exitInfo.code ?? exitInfo.signal})`));
    return new Promise((resolve, reject) => waiters.push({ type, resolve, reject }));
  };
  return {
    child,
    pid: child.pid,
    exited,
    ready: next("ready"),
    next,
    send: (msg) => child.send(msg),
    kill: () => child.kill("SIGKILL"),
  };
}

// ---------------------------------------------------------------------------------------
// child side

async function main() {
  const opts = JSON.parse(process.argv[2]);
  const { openSystem } = await import("./systems.mjs");
  const sys = await openSystem(opts.system, { natsUrl: opts.natsUrl, redisUrl: opts.redisUrl, name: opts.name, create: false });
  const messages = [];
  let wake;
  process.on("message", (m) => {
    messages.push(m);
    wake?.();
  });
  /** The next message of `type` (any type when omitted). */
  const receive = async (type) => {
    for (;;) {
      const i = messages.findIndex((m) => type === undefined || m.type === type);
      if (i >= 0) return messages.splice(i, 1)[0];
      await new Promise((r) => (wake = r));
    }
  };

  if (opts.role === "producer") {
    const chunk = opts.chunk ?? 1_000;
    process.send({ type: "ready" });
    await receive("go");
    const t0 = performance.now();
    for (let i = 0; i < opts.n; i += chunk) {
      const jobs = [];
      for (let j = i; j < Math.min(opts.n, i + chunk); j++) jobs.push({ payload: { i: j } });
      await sys.enqueueMany(jobs);
    }
    process.send({ type: "done", ms: performance.now() - t0 });
    await sys.close();
  } else if (opts.role === "worker") {
    let done = 0;
    const worker = await sys.startWorker({ concurrency: opts.concurrency, onDone: () => done++ });
    process.send({ type: "ready" });
    for (;;) {
      const m = await receive();
      if (m.type === "count") process.send({ type: "count", done });
      if (m.type === "stop") break;
    }
    await worker.close();
    await sys.close();
    process.send({ type: "stopped", done, errors: sys.errors.length, firstError: sys.errors[0]?.message });
  } else {
    throw new Error(`unknown role ${opts.role}`);
  }
  process.disconnect();
}

if (process.argv[1] === SELF && process.send) {
  main().catch((err) => {
    process.send?.({ type: "error", message: err?.stack ?? String(err) });
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 100);
  });
}
