/**
 * Run the built CLI (`node bin/naq ...`) as a real subprocess, the way a shell script would:
 * no TTY (stdin is a pipe that gets `input` and is then closed; stdout/stderr are pipes),
 * and a clean environment (no NATS_URL, NAQ_*, NO_COLOR, FORCE_COLOR leaking in from the
 * developer's shell unless the test passes them).
 *
 * `npm test` builds first, so bin/naq runs dist/ — tests exercise what ships.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";

/** Repository root (this file is test/support/cli.ts). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The launcher the package ships. */
export const NAQ_BIN = path.join(REPO_ROOT, "bin", "naq");

export interface CliOptions {
  /** Env overrides on top of the cleaned process.env; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  /** Written to stdin, which is then closed. Without it stdin is closed at once. */
  input?: string;
  /** Kill the CLI (SIGTERM, then SIGKILL 2s later) after this long (default 30s). */
  timeoutMs?: number;
  /** Working directory (default: the repo root). */
  cwd?: string;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  signal: NodeJS.Signals | null;
  durationMs: number;
  /** True when runCli killed the process because timeoutMs elapsed. */
  timedOut: boolean;
}

/** process.env minus NATS_URL, NAQ_*, NO_COLOR, FORCE_COLOR; then `overrides` applied. */
export function cliEnv(overrides: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(env)) {
    if (key === "NATS_URL" || key.startsWith("NAQ_") || key === "NO_COLOR" || key === "FORCE_COLOR") {
      delete env[key];
    }
  }
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

function spawnNaq(args: string[], opts: CliOptions): ChildProcess {
  const child = spawn(process.execPath, [NAQ_BIN, ...args], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: cliEnv(opts.env),
    stdio: ["pipe", "pipe", "pipe"],
  });
  child.stdin?.on("error", () => undefined); // EPIPE if the CLI exits without reading stdin
  if (opts.input !== undefined) child.stdin?.end(opts.input);
  else child.stdin?.end();
  return child;
}

function showCommand(args: string[]): string {
  return `naq ${args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(" ")}`;
}

export interface SpawnedCli {
  readonly child: ChildProcess;
  readonly pid: number | undefined;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Complete stdout lines so far. */
  lines(): string[];
  /** Complete stdout lines parsed as JSON (NDJSON output). */
  json<T = unknown>(): T[];
  /**
   * Resolve once `pattern` appears on the stream (default stdout); resolves with the text
   * matched (or the whole output for a string). Rejects on timeout or if the process exits first.
   */
  waitFor(pattern: string | RegExp, opts?: { stream?: "stdout" | "stderr"; timeoutMs?: number }): Promise<string>;
  /** Resolve once at least `n` complete stdout lines exist. */
  waitForLines(n: number, timeoutMs?: number): Promise<string[]>;
  /** Resolves when the process exits (never rejects). */
  readonly exited: Promise<CliResult>;
  /** Send a signal (default SIGTERM). */
  signal(sig?: NodeJS.Signals): void;
  /** SIGTERM, wait up to `graceMs` (default 5s), then SIGKILL; resolves with the result. */
  stop(graceMs?: number): Promise<CliResult>;
  [Symbol.asyncDispose](): Promise<void>;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", () => {
      for (const c of running) {
        try {
          c.kill("SIGKILL");
        } catch {
          // gone
        }
      }
    });
  }
  running.add(child);
  child.once("exit", () => running.delete(child));
  child.once("error", () => running.delete(child));
}

/**
 * Start the CLI and return at once, for long-running commands (workers, `events tail`).
 * The process is not killed on a timeout unless `timeoutMs` is given.
 */
export function spawnCli(args: string[], opts: CliOptions = {}): SpawnedCli {
  const started = performance.now();
  const child = spawnNaq(args, opts);
  trackChild(child);
  let out = "";
  let err = "";
  let timedOut = false;
  let done = false;
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of [...listeners]) l();
  };
  child.stdout?.setEncoding("utf8");
  child.stderr?.setEncoding("utf8");
  child.stdout?.on("data", (d: string) => {
    out += d;
    notify();
  });
  child.stderr?.on("data", (d: string) => {
    err += d;
    notify();
  });

  let killTimer: NodeJS.Timeout | undefined;
  let hardKillTimer: NodeJS.Timeout | undefined;
  if (opts.timeoutMs !== undefined) {
    killTimer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGTERM");
      hardKillTimer = setTimeout(() => child.kill("SIGKILL"), 2000);
    }, opts.timeoutMs);
  }

  const exited = new Promise<CliResult>((resolve) => {
    let spawnError: Error | undefined;
    child.once("error", (e) => {
      spawnError = e;
    });
    // 'close' fires after the stdio streams are drained, so stdout/stderr are complete.
    child.once("close", (code, sig) => {
      done = true;
      clearTimeout(killTimer);
      clearTimeout(hardKillTimer);
      if (spawnError) err += `\n[runCli] spawn failed: ${spawnError.message}`;
      notify();
      resolve({
        code,
        signal: sig,
        stdout: out,
        stderr: err,
        durationMs: Math.round(performance.now() - started),
        timedOut,
      });
    });
  });

  const lines = () => {
    const parts = out.split("\n");
    parts.pop(); // incomplete last line (or "" after a trailing newline)
    return parts;
  };

  const waitUntil = <T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const finish = (fn: () => void) => {
        listeners.delete(listener);
        clearTimeout(timer);
        fn();
      };
      const listener = () => {
        const value = check();
        if (value !== undefined) return finish(() => resolve(value));
        if (done) {
          finish(() =>
            reject(
              new Error(
                `${showCommand(args)} exited (code ${child.exitCode}, signal ${child.signalCode}) before ${what}\n` +
                  `--- stdout\n${out.slice(-2000)}\n--- stderr\n${err.slice(-2000)}`,
              ),
            ),
          );
        }
      };
      const timer = setTimeout(
        () =>
          finish(() =>
            reject(
              new Error(
                `${showCommand(args)}: timed out after ${timeoutMs} ms waiting for ${what}\n` +
                  `--- stdout\n${out.slice(-2000)}\n--- stderr\n${err.slice(-2000)}`,
              ),
            ),
          ),
        timeoutMs,
      );
      listeners.add(listener);
      listener();
    });

  const signal = (sig: NodeJS.Signals = "SIGTERM") => {
    if (!done) child.kill(sig);
  };

  const stop = async (graceMs = 5000): Promise<CliResult> => {
    if (!done) {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(t);
      }
    }
    return exited;
  };

  return {
    child,
    get pid() {
      return child.pid;
    },
    stdout: () => out,
    stderr: () => err,
    lines,
    json<T = unknown>(): T[] {
      return lines()
        .filter((l) => l.trim() !== "")
        .map((l) => JSON.parse(l) as T);
    },
    waitFor(pattern, o = {}) {
      const stream = o.stream ?? "stdout";
      return waitUntil(
        () => {
          const text = stream === "stdout" ? out : err;
          if (typeof pattern === "string") return text.includes(pattern) ? text : undefined;
          const m = pattern.exec(text);
          return m ? m[0] : undefined;
        },
        `${String(pattern)} on ${stream}`,
        o.timeoutMs ?? 15_000,
      );
    },
    waitForLines(n, timeoutMs = 15_000) {
      return waitUntil(
        () => {
          const l = lines();
          return l.length >= n ? l : undefined;
        },
        `${n} stdout line(s)`,
        timeoutMs,
      );
    },
    exited,
    signal,
    stop,
    async [Symbol.asyncDispose]() {
      await stop(2000);
    },
  };
}

/** Run the CLI to completion and collect its output. Never rejects on a non-zero exit. */
export async function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return spawnCli(args, { ...opts, timeoutMs: opts.timeoutMs ?? 30_000 }).exited;
}

/**
 * Run the CLI with `--json` (prepended: it is a global option), require exit 0 and parse
 * stdout as one JSON document. Throws with the exit status, stdout and stderr otherwise.
 */
export async function runCliJson<T = unknown>(args: string[], opts: CliOptions = {}): Promise<T> {
  const fullArgs = args.includes("--json") ? args : ["--json", ...args];
  const res = await runCli(fullArgs, opts);
  const where = `${showCommand(fullArgs)} (exit ${res.code}${res.signal ? `, signal ${res.signal}` : ""}${
    res.timedOut ? ", timed out" : ""
  })`;
  if (res.code !== 0) {
    throw new Error(`${where} failed\n--- stderr\n${res.stderr}\n--- stdout\n${res.stdout}`);
  }
  try {
    return JSON.parse(res.stdout) as T;
  } catch (e) {
    throw new Error(
      `${where}: stdout is not one JSON document (${(e as Error).message})\n--- stdout\n${res.stdout}\n--- stderr\n${res.stderr}`,
    );
  }
}

/**
 * runCli that keeps every result, for tests that grep all of a run's output for secrets.
 * `cwd` is read at each call (test dirs are made in beforeAll).
 */
export function recordingCli(cwd: () => string | undefined = () => undefined): {
  outputs: CliResult[];
  naq(args: string[], env?: Record<string, string>, timeoutMs?: number): Promise<CliResult>;
} {
  const outputs: CliResult[] = [];
  return {
    outputs,
    async naq(args, env = {}, timeoutMs = 30_000) {
      const r = await runCli(args, { env, cwd: cwd(), timeoutMs });
      outputs.push(r);
      return r;
    },
  };
}
