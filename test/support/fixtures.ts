/**
 * Per-file fixtures for the integration tests: one nats-server for the file, a fresh
 * namespace for each test, and cleanup of whatever a test started. Call `useLibraryFixture`
 * or `useCliFixture` once, at the top level of a test file: they register the vitest hooks
 * (beforeAll, afterEach, afterAll) of that file.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import type { NaqConfigInput } from "../../src/config/schema.js";
import { runCli, runCliJson, spawnCli, type CliOptions, type CliResult, type SpawnedCli } from "./cli.js";
import { startServer, type NatsServer } from "./nats-server.js";

/** `naq worker start` with the CLI fixture's handler module (tasks.mjs in its temp dir). */
export const WORKER = ["worker", "start", "--handlers", "tasks.mjs"];

/** Resolves once a spawned `naq worker start` has said on stderr that it started (15 s at most). */
export async function workerStarted(worker: SpawnedCli): Promise<void> {
  await worker.waitFor(/worker \S+ started/, { stream: "stderr", timeoutMs: 15_000 });
}

/**
 * Handler module of the day-2 operations CLI tests (dlq-cli, ops-cli): `add` ({a, b});
 * `nap` ({ms}) writes `START <id>` to stderr and sleeps (the job's AbortSignal ends it);
 * `needsFlag` ({flag}) fails until the file `flag` exists; `chatty` ({lines, gapMs}) logs
 * `line 1`.. with ctx.log.
 */
export const OPS_TASKS = `
import { existsSync } from "node:fs";
const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener("abort", () => { clearTimeout(t); reject(signal.reason); }, { once: true });
});
export function add(p) { return p.a + p.b; }
export async function nap(p, ctx) {
  process.stderr.write(\`START \${ctx.id}\\n\`);
  await sleep(p.ms, ctx.signal);
  return "woke";
}
export function needsFlag(p) {
  if (!existsSync(p.flag)) throw new Error("flag file missing: " + p.flag);
  return "ok";
}
export async function chatty(p, ctx) {
  for (let i = 1; i <= p.lines; i++) {
    ctx.log("line " + i);
    await sleep(p.gapMs ?? 0, ctx.signal);
  }
  return p.lines;
}
`;

/** Whether process `pid` is running (a zombie waiting to be reaped by init is not: it has ended). Linux (/proc). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** The non-empty lines of NDJSON output (`--json` of a command that prints one line per item), parsed. */
export function ndjson<T>(stdout: string): T[] {
  return stdout
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as T);
}

/** Registers `fn` to run after the current test. */
export type AddCleanup = (fn: () => Promise<unknown>) => void;

/**
 * Leak guard: the functions registered during a test run after it, newest first, each even
 * when an earlier one failed; the afterEach then fails if any of them threw.
 */
function cleanupsAfterEach(): { add: AddCleanup; run: () => Promise<void> } {
  const cleanups: Array<() => Promise<unknown>> = [];
  return {
    add: (fn) => void cleanups.push(fn),
    run: async () => {
      const errors: unknown[] = [];
      for (const fn of cleanups.splice(0).reverse()) await fn().catch((e: unknown) => errors.push(e));
      expect(errors).toEqual([]);
    },
  };
}

/** `value`, once the fixture's beforeAll has set it. */
function ready<T>(value: T | undefined): T {
  if (value === undefined) throw new Error("the fixture is not set up yet (its beforeAll has not run): use it inside a test or hook");
  return value;
}

export interface LibraryFixture {
  /** This file's nats-server (started in beforeAll). */
  readonly server: NatsServer;
  /** Config for a fresh namespace (`<prefix><n>`) on this file's server. */
  freshConfig(extra?: Omit<NaqConfigInput, "connection" | "namespace">): NaqConfigInput;
  /** Closes what a test opened (a Queue, Worker, ServiceManager...) after it; see the leak guard. */
  cleanup: AddCleanup;
}

/**
 * For tests of the library API: one nats-server for the file, a config with a fresh
 * namespace per test (`namespacePrefix` 1, 2, ...), and a cleanup list run after each test
 * (newest first; the test fails if a cleanup throws).
 */
export function useLibraryFixture(namespacePrefix: string): LibraryFixture {
  let server: NatsServer | undefined;
  let count = 0;
  const cleanups = cleanupsAfterEach();

  beforeAll(async () => {
    server = await startServer();
  });
  afterEach(cleanups.run);
  afterAll(async () => {
    await server?.[Symbol.asyncDispose]();
  });

  return {
    get server() {
      return ready(server);
    },
    freshConfig: (extra = {}) => ({ connection: { servers: [ready(server).url] }, namespace: `${namespacePrefix}${++count}`, ...extra }),
    cleanup: cleanups.add,
  };
}

export interface CliFixtureOptions {
  /** Namespaces are `<namespacePrefix>1`, `<namespacePrefix>2`, ... (one per `fresh()`). */
  namespacePrefix: string;
  /** Prefix of the temp dir's name (under the OS temp dir). */
  tmpPrefix: string;
  /** Written as tasks.mjs in the temp dir: the handler module of `WORKER`. */
  tasks: string;
  /** Written as .naqrc.json in the temp dir (the CLI runs there, so it reads it). */
  naqrc?: unknown;
}

/** The CLI bound to one fresh namespace on the fixture's server, run in the fixture's temp dir. */
export interface CliNamespace {
  readonly namespace: string;
  /** NAQ_URL, NAQ_NAMESPACE and the `extraEnv` given to `fresh`. */
  readonly env: Record<string, string>;
  /** Run to completion (runCli) with `input` on stdin; killed after `timeoutMs` (default 30 s). */
  run(args: string[], input?: string, timeoutMs?: number): Promise<CliResult>;
  /** Run with --json, require exit 0 and parse stdout (runCliJson). */
  json<T>(args: string[]): Promise<T>;
  /** Start and return at once (spawnCli); stopped after the test (SIGTERM, SIGKILL 2 s later). */
  spawn(args: string[]): SpawnedCli;
}

export interface CliFixture {
  /** This file's nats-server (started in beforeAll). */
  readonly server: NatsServer;
  /** The temp dir the CLI runs in, with tasks.mjs (and .naqrc.json); removed in afterAll. */
  readonly dir: string;
  /** A fresh namespace and the CLI bound to it. */
  fresh(extraEnv?: Record<string, string>): CliNamespace;
  /** Runs `fn` after the current test, once its spawned CLIs are stopped; see the leak guard. */
  cleanup: AddCleanup;
}

/**
 * For tests of the CLI as a subprocess: one nats-server and one temp dir (with the handler
 * module and config) for the file, a fresh namespace per test, and every CLI a test spawned
 * stopped after it.
 */
export function useCliFixture(opts: CliFixtureOptions): CliFixture {
  let server: NatsServer | undefined;
  let dir: string | undefined;
  let count = 0;
  const children: SpawnedCli[] = [];
  const cleanups = cleanupsAfterEach();

  beforeAll(async () => {
    server = await startServer();
    dir = await mkdtemp(path.join(os.tmpdir(), opts.tmpPrefix));
    await writeFile(path.join(dir, "tasks.mjs"), opts.tasks);
    if (opts.naqrc !== undefined) await writeFile(path.join(dir, ".naqrc.json"), JSON.stringify(opts.naqrc));
  });
  afterEach(async () => {
    await Promise.all(children.splice(0).map((c) => c.stop(2_000)));
    await cleanups.run();
  });
  afterAll(async () => {
    await server?.[Symbol.asyncDispose]();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  return {
    get server() {
      return ready(server);
    },
    get dir() {
      return ready(dir);
    },
    fresh: (extraEnv = {}) => {
      const namespace = `${opts.namespacePrefix}${++count}`;
      const env = { NAQ_URL: ready(server).url, NAQ_NAMESPACE: namespace, ...extraEnv };
      const cliOpts: CliOptions = { env, cwd: ready(dir) };
      return {
        namespace,
        env,
        run: (args, input, timeoutMs = 30_000) => runCli(args, { ...cliOpts, input, timeoutMs }),
        json: <T>(args: string[]) => runCliJson<T>(args, cliOpts),
        spawn: (args) => {
          const child = spawnCli(args, cliOpts);
          children.push(child);
          return child;
        },
      };
    },
    cleanup: cleanups.add,
  };
}
