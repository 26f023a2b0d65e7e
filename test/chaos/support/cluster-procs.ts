/**
 * Helpers of the cluster-failover and scheduler-stop scenarios: worker processes
 * (worker-child.mjs on dist/), and a ledger that is read as it grows, so a scenario can
 * tell when a given job first ran.
 */
import { spawn, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ServiceManager } from "../../../src/services/base.js";
import { ConnectionService } from "../../../src/services/connection.js";
import { cliEnv } from "../../support/index.js";
import { LedgerReader, type LedgerEntry } from "./ledger.js";

const WORKER_CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), "worker-child.mjs");

export interface WorkerProc {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything it wrote on stderr (lifecycle notes, errors), last 20,000 characters. */
  stderr(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface WorkerProcOptions {
  servers: readonly string[];
  namespace: string;
  ledger: string;
  /** Working directory (no .naqrc there, so only the env configures it). */
  cwd: string;
  queues?: string[];
  concurrency?: number;
  name?: string;
  /** More NAQ_* variables (ack wait, max ack pending, ...). */
  env?: Record<string, string>;
}

/** Starts worker-child.mjs and resolves once it printed "ready". */
export async function startWorkerProc(opts: WorkerProcOptions, readyTimeoutMs = 30_000): Promise<WorkerProc> {
  const child = spawn(process.execPath, [WORKER_CHILD], {
    cwd: opts.cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: cliEnv({
      NAQ_URL: opts.servers.join(","),
      NAQ_NAMESPACE: opts.namespace,
      CHAOS_LEDGER: opts.ledger,
      CHAOS_QUEUES: (opts.queues ?? ["chaos"]).join(","),
      CHAOS_CONCURRENCY: String(opts.concurrency ?? 10),
      CHAOS_NAME: opts.name ?? "chaos",
      ...opts.env,
    }),
  });
  let out = "";
  let err = "";
  child.stdout?.setEncoding("utf8");
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (d: string) => {
    err = (err + d).slice(-20_000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  process.once("exit", () => child.kill("SIGKILL"));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`worker child did not start within ${readyTimeoutMs} ms\n${err}`));
    }, readyTimeoutMs);
    child.stdout?.on("data", (d: string) => {
      out += d;
      if (out.includes("ready\n")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`worker child exited (code ${code}, signal ${sig}) before it was ready\n${err}`));
    });
  });
  if (child.pid === undefined) throw new Error("worker child has no pid");
  const pid = child.pid;
  return {
    child,
    pid,
    stderr: () => err,
    async stop(graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Reads a ledger file as it grows (polling every `everyMs`) and hands each new line to
 * `onLine`, with `at` (when the worker wrote it) and `seenAt` (when this process read it).
 */
export class LedgerTail {
  private readonly reader: LedgerReader;
  private readonly timer: NodeJS.Timeout;

  constructor(
    file: string,
    private readonly onLine: (line: LedgerEntry & { seenAt: number }) => void = () => undefined,
    everyMs = 50,
  ) {
    this.reader = new LedgerReader(file);
    this.timer = setInterval(() => this.poll(), everyMs);
    this.timer.unref();
  }

  /** Every line read so far. */
  get lines(): readonly LedgerEntry[] {
    return this.reader.entries;
  }

  poll(): void {
    const seenAt = Date.now();
    for (const e of this.reader.poll()) this.onLine({ ...e, seenAt });
  }

  stop(): void {
    clearInterval(this.timer);
    this.poll();
  }
}

/**
 * Events stored per job id for one queue and event type, read from the events stream's
 * per-subject counts (`<ns>.events.<queue>.<id>.<type>`): a stream info with a subject
 * filter, paged by nats.js; no consumer, so nothing can cut the read short.
 */
export async function eventCounts(services: ServiceManager, queue: string, type: string): Promise<Map<string, number>> {
  const names = services.ctx.names;
  const jsm = await (await services.get(ConnectionService)).manager();
  const si = await jsm.streams.info(names.eventsStream, { subjects_filter: names.eventFilter({ queue, type }) });
  const out = new Map<string, number>();
  const prefix = `${names.namespace}.events.${queue}.`;
  for (const [subject, n] of Object.entries(si.state.subjects ?? {})) {
    const id = subject.slice(prefix.length, subject.length - type.length - 1);
    out.set(id, (out.get(id) ?? 0) + n);
  }
  return out;
}
