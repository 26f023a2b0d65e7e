/**
 * The bench's own servers: a nats-server with JetStream and a redis-server, each on a
 * free loopback port with a temporary directory, killed (and their directories removed)
 * by stop(). Nothing is shared with other servers on the machine, so numbers from one
 * run are comparable across systems.
 *
 *   const nats = await startNats();   // { url, version, pid, stop() }
 *   const redis = await startRedis(); // { url, version, pid, stop() } — or throws ServerMissingError
 */
import { spawn, execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { existsSync, readFileSync } from "node:fs";
import { createServer, connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join, delimiter } from "node:path";

export class ServerMissingError extends Error {
  name = "ServerMissingError";
}

/** A free TCP port on 127.0.0.1 (asks the kernel for one, then releases it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Absolute path of an executable: $envVar, then PATH, then the given fallbacks. */
export function findBinary(name, envVar, fallbacks = []) {
  const fromEnv = envVar ? process.env[envVar] : undefined;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : undefined;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return fallbacks.find((p) => existsSync(p));
}

export const natsServerBinary = () => findBinary("nats-server", "NAQ_BENCH_NATS_SERVER", ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"]);
export const redisServerBinary = () => findBinary("redis-server", "NAQ_BENCH_REDIS_SERVER", ["/usr/bin/redis-server", "/usr/sbin/redis-server", "/usr/local/bin/redis-server"]);

function versionOf(bin, args, re) {
  try {
    const out = execFileSync(bin, args, { encoding: "utf8", timeout: 5_000 });
    return re.exec(out)?.[1] ?? out.trim();
  } catch {
    return "unknown";
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Every child started here, killed on exit even if the caller forgets (or crashes). */
const children = new Set();
let hooked = false;
function track(child) {
  children.add(child);
  child.once("exit", () => children.delete(child));
  if (!hooked) {
    hooked = true;
    process.once("exit", () => {
      for (const c of children) c.kill("SIGKILL");
    });
    for (const sig of ["SIGINT", "SIGTERM"]) {
      process.once(sig, () => {
        for (const c of children) c.kill("SIGKILL");
        process.exit(130);
      });
    }
  }
}

function spawnServer(bin, args, label) {
  const child = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] });
  track(child);
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d) => {
    if (stderr.length < 20_000) stderr += d;
  });
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  return { child, exited, stderrText: () => stderr, label };
}

async function waitReady(probe, srv, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let dead = false;
  void srv.exited.then(() => (dead = true));
  while (Date.now() < deadline) {
    if (dead) throw new Error(`${srv.label} exited before it was ready:\n${srv.stderrText().slice(-2_000)}`);
    if (await probe().catch(() => false)) return;
    await sleep(25);
  }
  srv.child.kill("SIGKILL");
  throw new Error(`${srv.label} not ready after ${timeoutMs} ms:\n${srv.stderrText().slice(-2_000)}`);
}

function stopper(srv, dir) {
  let stopped = false;
  return async () => {
    if (stopped) return;
    stopped = true;
    if (srv.child.exitCode === null && srv.child.signalCode === null) {
      srv.child.kill("SIGTERM");
      const done = await Promise.race([srv.exited.then(() => true), sleep(3_000).then(() => false)]);
      if (!done) {
        srv.child.kill("SIGKILL");
        await srv.exited;
      }
    }
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };
}

/**
 * nats-server -js on a free port, store in a temp dir; ready when the monitor port's
 * /healthz says so (it checks JetStream too).
 */
export async function startNats({ timeoutMs = 15_000 } = {}) {
  const bin = natsServerBinary();
  if (!bin) throw new ServerMissingError("nats-server not found (PATH, /usr/sbin, or NAQ_BENCH_NATS_SERVER)");
  const version = versionOf(bin, ["--version"], /v?(\d+\.\d+\.\d+\S*)/);
  for (let attempt = 1; ; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), "naq-bench-nats-"));
    const [port, monitor] = [await freePort(), await freePort()];
    const srv = spawnServer(bin, ["-js", "-a", "127.0.0.1", "-p", String(port), "-m", String(monitor), "-sd", dir, "-n", `naq-bench-${process.pid}`], "nats-server");
    const healthz = async () => {
      const res = await fetch(`http://127.0.0.1:${monitor}/healthz`, { signal: AbortSignal.timeout(1_000) });
      return res.ok;
    };
    try {
      await waitReady(healthz, srv, timeoutMs);
    } catch (err) {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      // Another process may have taken the port between freePort() and listen: try again.
      if (attempt < 3 && /address already in use/i.test(String(err.message))) continue;
      throw err;
    }
    return { url: `nats://127.0.0.1:${port}`, port, monitorPort: monitor, version, pid: srv.child.pid, storeDir: dir, stop: stopper(srv, dir) };
  }
}

function redisPing(port) {
  return new Promise((resolve) => {
    const sock = netConnect({ host: "127.0.0.1", port });
    let buf = "";
    const done = (ok) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1_000, () => done(false));
    sock.on("error", () => done(false));
    sock.on("connect", () => sock.write("PING\r\n"));
    sock.on("data", (d) => {
      buf += d.toString();
      if (buf.includes("\r\n")) done(buf.startsWith("+PONG"));
    });
  });
}

/** redis-server on a free port, no persistence (--save '' --appendonly no), in a temp dir. */
export async function startRedis({ timeoutMs = 10_000 } = {}) {
  const bin = redisServerBinary();
  if (!bin) throw new ServerMissingError("redis-server not found (PATH, /usr/bin, or NAQ_BENCH_REDIS_SERVER); install Debian's redis-server to compare with BullMQ");
  const version = versionOf(bin, ["--version"], /v=(\S+)/);
  for (let attempt = 1; ; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), "naq-bench-redis-"));
    const port = await freePort();
    const srv = spawnServer(
      bin,
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--loglevel", "warning", "--protected-mode", "no"],
      "redis-server",
    );
    try {
      await waitReady(() => redisPing(port), srv, timeoutMs);
    } catch (err) {
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      if (attempt < 3 && /address already in use/i.test(String(err.message))) continue;
      throw err;
    }
    return { url: `redis://127.0.0.1:${port}`, port, version, pid: srv.child.pid, dir, stop: stopper(srv, dir) };
  }
}

/** Resident set size of a process in bytes (Linux /proc), or undefined. */
export async function rssOf(pid) {
  const { readFile } = await import("node:fs/promises");
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** cpuMsOf, synchronously (cheap enough to call from a hot callback once). */
export function cpuMsOfSync(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

/** CPU time (user+system, ms) a process has used so far (Linux /proc), or undefined. */
export async function cpuMsOf(pid) {
  const { readFile } = await import("node:fs/promises");
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}
