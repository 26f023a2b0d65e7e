/**
 * What the worker-kill, server-restart, backpressure and soak scenarios share: worker
 * processes (worker-child.mjs on dist/) that can be killed with -9 at any moment, the
 * scheduler and producer as real `naq` processes, a library scope to look at the server
 * (queue depth, terminal records), and the arithmetic of counting (lost, duplicates,
 * recovery time).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { configSchema, type NaqConfigInput } from "../../../src/config/schema.js";
import { ServiceManager } from "../../../src/services/base.js";
import { ConnectionService } from "../../../src/services/connection.js";
import { QueueService } from "../../../src/services/queues.js";
import { StreamService } from "../../../src/services/streams.js";
import { readStream } from "../../../src/services/stream-reader.js";
import { kvStreamName } from "../../../src/model/topology.js";
import type { JobRecord } from "../../../src/model/job.js";
import { cliEnv } from "../../support/index.js";
import type { LedgerEntry } from "./ledger.js";
import { peakRssMiB } from "./proc.js";

const WORKER_CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), "worker-child.mjs");

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A temp dir, removed by the returned function. */
export function tempDir(prefix: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Polls `cond` until it is true or `timeoutMs` passed; returns whether it became true. */
export async function waitUntil(cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 200): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(everyMs);
  }
}

// ---------------------------------------------------------------------------
// Child processes.

const children = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): void {
  if (!exitHook) {
    exitHook = true;
    process.on("exit", () => {
      for (const c of children) c.kill("SIGKILL");
    });
  }
  children.add(child);
  child.once("exit", () => children.delete(child));
}

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** When it was spawned (epoch ms). */
  readonly spawnedAt: number;
  /** Resolves when it printed its ready line; rejects if it exited first or took too long. */
  readonly ready: Promise<void>;
  readonly isReady: boolean;
  /** When it became ready (epoch ms), undefined before. */
  readonly readyAt: number | undefined;
  readonly alive: boolean;
  /** Resolves when it has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  /** Last 20,000 characters of stderr. */
  stderr(): string;
  /** Its peak RSS (VmHWM) read now, MiB; the last value read once it is gone. */
  peakRss(): number | null;
  /** SIGKILL; resolves once it is gone. */
  kill9(): Promise<void>;
  /** SIGTERM, SIGKILL after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
}

interface SpawnSpec {
  name: string;
  args: string[];
  env: Record<string, string | undefined>;
  cwd: string;
  /** stdout text that means "ready". */
  readyOn: RegExp;
  readyTimeoutMs?: number;
  /** Keep all of stdout (default: the last 20,000 characters). */
  keepStdout?: boolean;
  stdin?: "ignore" | "pipe";
  /** Sees every complete stdout line. */
  onLine?: (line: string) => void;
}

export function spawnChild(spec: SpawnSpec): Child {
  const child = spawn(process.execPath, spec.args, {
    cwd: spec.cwd,
    stdio: [spec.stdin ?? "ignore", "pipe", "pipe"],
    env: cliEnv(spec.env),
  });
  track(child);
  if (child.pid === undefined) throw new Error(`${spec.name}: could not spawn`);
  const pid = child.pid;
  let out = "";
  let err = "";
  let ready = false;
  let readyAt: number | undefined;
  let lastPeak: number | null = null;
  let partial = "";
  const spawnedAt = Date.now();
  child.stdout?.setEncoding("utf8");
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (d: string) => void (err = (err + d).slice(-20_000)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  const readyP = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${spec.name} (pid ${pid}) not ready within ${spec.readyTimeoutMs ?? 30_000} ms\n${err}`)), spec.readyTimeoutMs ?? 30_000);
    child.stdout?.on("data", (d: string) => {
      out = spec.keepStdout ? out + d : (out + d).slice(-20_000);
      if (spec.onLine) {
        const parts = (partial + d).split("\n");
        partial = parts.pop() ?? "";
        for (const line of parts) spec.onLine(line);
      }
      if (!ready && spec.readyOn.test(out)) {
        ready = true;
        readyAt = Date.now();
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      if (!ready) reject(new Error(`${spec.name} (pid ${pid}) exited (code ${code}, signal ${signal}) before it was ready\n${err}`));
    });
  });
  readyP.catch(() => undefined);
  const alive = () => child.exitCode === null && child.signalCode === null;
  const peakRss = () => {
    if (alive()) lastPeak = peakRssMiB(pid) ?? lastPeak;
    return lastPeak;
  };
  return {
    name: spec.name,
    pid,
    child,
    spawnedAt,
    ready: readyP,
    get isReady() {
      return ready;
    },
    get readyAt() {
      return readyAt;
    },
    get alive() {
      return alive();
    },
    exited,
    stdout: () => out,
    stderr: () => err,
    peakRss,
    async kill9() {
      peakRss();
      if (alive()) child.kill("SIGKILL");
      await exited;
    },
    async stop(graceMs = 10_000) {
      peakRss();
      if (!alive()) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface WorkerSpec {
  servers: readonly string[];
  namespace: string;
  ledger: string;
  /** Working directory: no .naqrc there, so only the env configures the worker. */
  cwd: string;
  queues?: string[];
  concurrency?: number;
  name?: string;
  /** More env (NAQ_ACK_WAIT, ...). */
  env?: Record<string, string>;
  /** Have the worker report process.memoryUsage() this often (see WorkerChild.memory). */
  memoryEveryMs?: number;
  /** Run it with --expose-gc: each memory report follows a full GC (heapUsed = live data). */
  gcBeforeMemory?: boolean;
}

/** process.memoryUsage() of a worker at `at`, in MiB. */
export interface MemorySample {
  at: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export interface WorkerChild extends Child {
  /** What it reported (with `memoryEveryMs`). */
  readonly memory: MemorySample[];
}

/** A worker-child.mjs process; `ready` resolves once it is pulling jobs. */
export function spawnWorker(spec: WorkerSpec): WorkerChild {
  const memory: MemorySample[] = [];
  const MiB = 1024 * 1024;
  const child = spawnChild({
    onLine: (line) => {
      if (!line.startsWith("mem ")) return;
      const m = JSON.parse(line.slice(4)) as MemorySample;
      memory.push({ at: m.at, rss: m.rss / MiB, heapUsed: m.heapUsed / MiB, heapTotal: m.heapTotal / MiB, external: m.external / MiB, arrayBuffers: m.arrayBuffers / MiB });
    },
    name: spec.name ?? "worker",
    args: [...(spec.gcBeforeMemory ? ["--expose-gc"] : []), WORKER_CHILD],
    cwd: spec.cwd,
    readyOn: /^ready$/m,
    env: {
      NAQ_URL: spec.servers.join(","),
      NAQ_NAMESPACE: spec.namespace,
      CHAOS_LEDGER: spec.ledger,
      CHAOS_QUEUES: (spec.queues ?? ["chaos"]).join(","),
      CHAOS_CONCURRENCY: String(spec.concurrency ?? 10),
      CHAOS_NAME: spec.name ?? "chaos",
      ...(spec.memoryEveryMs ? { CHAOS_MEMORY_EVERY_MS: String(spec.memoryEveryMs) } : {}),
      ...spec.env,
    },
  });
  return Object.assign(child, { memory });
}

const NAQ_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "bin", "naq");

/** A `naq ...` process (the built CLI). */
export function spawnNaq(args: string[], opts: { name: string; cwd: string; env: Record<string, string>; readyOn?: RegExp; keepStdout?: boolean; readyTimeoutMs?: number }): Child {
  return spawnChild({
    name: opts.name,
    args: [NAQ_BIN, ...args],
    cwd: opts.cwd,
    env: opts.env,
    readyOn: opts.readyOn ?? /[\s\S]/,
    keepStdout: opts.keepStdout,
    readyTimeoutMs: opts.readyTimeoutMs,
  });
}

/** Runs `naq ...` to completion; throws unless it exits 0. */
export async function naq(args: string[], opts: { cwd: string; env: Record<string, string>; timeoutMs?: number }): Promise<string> {
  const c = spawnChild({ name: `naq ${args.join(" ")}`, args: [NAQ_BIN, ...args], cwd: opts.cwd, env: opts.env, readyOn: /$^/, keepStdout: true });
  const timer = setTimeout(() => c.child.kill("SIGKILL"), opts.timeoutMs ?? 30_000);
  const { code, signal } = await c.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`naq ${args.join(" ")} exited ${code ?? signal}: ${c.stderr().trim()}`);
  return c.stdout();
}

// ---------------------------------------------------------------------------
// Looking at the server through the library.

export interface TerminalCounts {
  /** Status of every job that has a terminal record. */
  status: Map<string, string>;
}

/** A library scope (one connection) on a namespace, to look at queues and records. */
export class Inspector {
  private constructor(readonly services: ServiceManager) {}

  static async open(config: NaqConfigInput): Promise<Inspector> {
    return new Inspector(await ServiceManager.open(configSchema.parse(config), { longLived: true }));
  }

  /** Jobs waiting (not yet delivered) and in flight (delivered, not acked) on a queue. */
  async depth(queue: string): Promise<{ waiting: number; inFlight: number }> {
    return (await this.services.get(QueueService)).depth(queue);
  }

  /** The status of every terminal record in the results bucket (one ordered read). */
  async terminalStatuses(): Promise<Map<string, JobRecord["status"]>> {
    const conn = await this.services.get(ConnectionService);
    const bucket = this.services.ctx.names.buckets.results;
    const stream = kvStreamName(bucket);
    const prefix = `$KV.${bucket}.`;
    const out = new Map<string, JobRecord["status"]>();
    const streams = await this.services.get(StreamService);
    if (!(await streams.find(stream))) return out;
    for await (const m of readStream(await conn.jetstream(), await conn.manager(), stream, { filter: `${prefix}>`, deliver: "last_per_subject" })) {
      const key = m.subject.slice(prefix.length);
      if (key.includes(".")) continue; // wait.<id> counters
      if (m.header["KV-Operation"]) continue; // DEL / PURGE markers
      const rec = JSON.parse(new TextDecoder().decode(m.data)) as Pick<JobRecord, "id" | "status">;
      out.set(key, rec.status);
    }
    return out;
  }

  /** Messages in the dead-letter stream. */
  async deadLettered(): Promise<number> {
    const info = await (await this.services.get(StreamService)).find(this.services.ctx.names.deadLetterStream);
    return info?.state.messages ?? 0;
  }

  close(): Promise<void> {
    return this.services.close();
  }
}

// ---------------------------------------------------------------------------
// Counting.

/**
 * Recovery after each fault: the time from the fault until the first handler execution
 * that finished after it (completions flowing again). Faults after the last completion
 * count until `end` (so a scenario that never recovered shows it).
 */
export function recoveryTimes(faultsAt: readonly number[], entries: readonly LedgerEntry[], end = Date.now()): number[] {
  const times = entries.map((e) => e.at).filter((t) => t > 0).sort((a, b) => a - b);
  return faultsAt.map((f) => {
    let lo = 0;
    let hi = times.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((times[mid] as number) <= f) lo = mid + 1;
      else hi = mid;
    }
    return (times[lo] ?? end) - f;
  });
}

/** Completed / lost / unexpected-status over the sent ids, from terminal records. */
export function recordTally(sent: Iterable<string>, statuses: Map<string, string>, expected: (id: string) => string = () => "completed") {
  let completed = 0;
  let failedAsExpected = 0;
  const missing: string[] = [];
  const wrong: Array<{ id: string; status: string; expected: string }> = [];
  for (const id of sent) {
    const s = statuses.get(id);
    const want = expected(id);
    if (s === undefined) missing.push(id);
    else if (s !== want) wrong.push({ id, status: s, expected: want });
    else if (s === "completed") completed++;
    else failedAsExpected++;
  }
  return { completed, failedAsExpected, missing, wrong };
}

export const round = (v: number, digits = 1): number => Math.round(v * 10 ** digits) / 10 ** digits;
