/**
 * The built-in `exec` task: runs a command from a job's argv, without a shell.
 *
 * - Only commands allowed by the worker's `--allow-exec` run (see src/model/exec.ts); a
 *   job for any other command is refused before it starts and dead-lettered.
 * - The command runs in its own process group (`detached`), so a timeout, a cancel or a
 *   forced stop kills the whole group: SIGTERM, then SIGKILL after `killGraceMs`. When the
 *   command itself exits, whatever it left running in its group is sent SIGTERM too: a
 *   job leaves no processes behind (like systemd's KillMode=control-group).
 * - stdout and stderr lines go to the job's log (batched `progress` events); the last
 *   64 KiB of each is kept for the result `{exitCode, signal, stdout, stderr, durationMs}`.
 * - Exit code 0 completes the job; anything else fails the attempt (retried per policy).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants as fsConstants, statSync } from "node:fs";
import path from "node:path";
import { UsageError } from "../model/errors.js";
import { describeAllowList, EXEC_TASK, matchAllowed, parseAllowList, validateExecPayload, type AllowRule, type ExecResult } from "../model/exec.js";
import type { JobEnvelope } from "../model/job.js";
import type { Handler, JobContext } from "./handlers.js";
import { DEFAULT_TAIL_BYTES, LineSplitter, LogBatcher, TailBuffer } from "./output-tail.js";

export const DEFAULT_KILL_GRACE_MS = 5_000;

/** naq's own secrets are not handed to commands. */
const SECRET_ENV = /^(NAQ_(TOKEN|PASSWORD|NKEY|CREDS|USER)|NATS_(TOKEN|PASSWORD|NKEY|CREDS|USER))$/;

export class ExecFailedError extends Error {
  override name = "ExecFailedError";
}

export interface ExecRunnerOptions {
  /** `--allow-exec` entries; undefined or empty: exec jobs are refused. */
  allow?: readonly string[];
  killGraceMs?: number;
  tailBytes?: number;
  /** Base environment of commands (default process.env). */
  env?: NodeJS.ProcessEnv;
}

function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, fsConstants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** The file `name` resolves to on `PATH`, or undefined. */
export function whichSync(name: string, pathEnv = process.env.PATH ?? ""): string | undefined {
  for (const dir of pathEnv.split(path.delimiter)) {
    if (!dir || !path.isAbsolute(dir)) continue; // never resolve through "" or "." entries
    const file = path.join(dir, name);
    if (isExecutableFile(file)) return file;
  }
  return undefined;
}

/** Whether any process of group `pid` is left (zombies count: they are gone once reaped). */
function groupExists(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone
  }
}

export class ExecRunner {
  readonly rules: AllowRule[];
  /** argv[0] as a job writes it -> the file run. */
  private readonly resolved = new Map<string, string>();
  private readonly live = new Set<number>();
  private readonly killGraceMs: number;
  private readonly tailBytes: number;
  private readonly baseEnv: NodeJS.ProcessEnv;
  private exitHook?: () => void;

  /** Parses and resolves the allow list; UsageError for a refused entry or a command not found. */
  constructor(opts: ExecRunnerOptions = {}) {
    try {
      this.rules = parseAllowList(opts.allow ?? []);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    this.baseEnv = opts.env ?? process.env;
    this.killGraceMs = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    this.tailBytes = opts.tailBytes ?? DEFAULT_TAIL_BYTES;
    for (const r of this.rules) {
      if (r.kind === "name") {
        const file = whichSync(r.name, this.baseEnv.PATH);
        if (!file) throw new UsageError(`--allow-exec: command "${r.name}" not found on the worker's PATH`);
        this.resolved.set(r.name, file);
      } else {
        if (!isExecutableFile(r.path)) throw new UsageError(`--allow-exec: ${r.path} is not an executable file`);
        this.resolved.set(r.path, r.path);
      }
    }
  }

  get enabled(): boolean {
    return this.rules.length > 0;
  }

  /** Process groups still alive (commands running or being killed). */
  get liveGroups(): number {
    return this.live.size;
  }

  /** Why this worker will not run `job`, or undefined when it may. Only for exec jobs. */
  refuse(job: JobEnvelope): string | undefined {
    if (job.task !== EXEC_TASK) return undefined;
    if (!this.enabled) return "exec jobs are not allowed on this worker: start it with --allow-exec <command>[,<command>...]";
    let argv0: string;
    try {
      argv0 = validateExecPayload(job.payload).argv[0] as string;
    } catch (err) {
      return `invalid exec job: ${(err as Error).message}`;
    }
    if (!matchAllowed(argv0, this.rules)) {
      return `exec: command "${argv0}" is not allowed on this worker (--allow-exec: ${describeAllowList(this.rules)})`;
    }
    return undefined;
  }

  /** The task handler (call refuse() first: the handler re-checks and throws). */
  readonly handler: Handler = (payload, ctx) => this.run(payload, ctx);

  private run(payload: unknown, ctx: JobContext): Promise<ExecResult> {
    const p = validateExecPayload(payload);
    const argv0 = p.argv[0] as string;
    const rule = matchAllowed(argv0, this.rules);
    const file = rule ? this.resolved.get(rule.kind === "name" ? rule.name : rule.path) : undefined;
    if (!file) return Promise.reject(new ExecFailedError(`exec: command "${argv0}" is not allowed on this worker`));
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(this.baseEnv)) if (!SECRET_ENV.test(k)) env[k] = v;
    Object.assign(env, p.env, { NAQ_JOB_ID: ctx.id, NAQ_JOB_QUEUE: ctx.job.queue, NAQ_JOB_ATTEMPT: String(ctx.attempt) });

    return new Promise<ExecResult>((resolve, reject) => {
      const started = Date.now();
      const out = new TailBuffer(this.tailBytes);
      const err = new TailBuffer(this.tailBytes);
      const log = new LogBatcher((text) => ctx.log(text));
      const outLines = new LineSplitter();
      const errLines = new LineSplitter();
      let child: ChildProcess;
      try {
        child = spawn(file, p.argv.slice(1), {
          argv0,
          cwd: p.cwd,
          env,
          detached: true,
          stdio: ["ignore", "pipe", "pipe"],
        });
      } catch (e) {
        reject(new ExecFailedError(`exec: cannot start ${argv0}: ${(e as Error).message}`));
        return;
      }
      const pid = child.pid;
      let killTimer: NodeJS.Timeout | undefined;
      let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      let settled = false;

      const kill = () => {
        if (pid === undefined) return;
        killGroup(pid, "SIGTERM");
        killTimer ??= setTimeout(() => {
          killGroup(pid, "SIGKILL");
          this.live.delete(pid);
        }, this.killGraceMs);
        killTimer.unref();
      };
      const onAbort = () => kill();
      if (ctx.signal.aborted) kill();
      else ctx.signal.addEventListener("abort", onAbort, { once: true });

      if (pid !== undefined) {
        this.live.add(pid);
        this.installExitHook();
      }
      child.stdout?.on("data", (chunk: Buffer) => {
        out.push(chunk);
        for (const l of outLines.push(chunk)) log.add(l);
      });
      child.stderr?.on("data", (chunk: Buffer) => {
        err.push(chunk);
        for (const l of errLines.push(chunk)) log.add(l);
      });

      const finish = () => {
        if (settled) return;
        settled = true;
        ctx.signal.removeEventListener("abort", onAbort);
        for (const l of outLines.end()) log.add(l);
        for (const l of errLines.end()) log.add(l);
        log.flush();
        const code = exited?.code ?? null;
        const signal = exited?.signal ?? null;
        if (ctx.signal.aborted) {
          reject(ctx.signal.reason);
          return;
        }
        const result: ExecResult = {
          exitCode: code,
          signal,
          stdout: out.text(),
          stderr: err.text(),
          ...(out.dropped > 0 || err.dropped > 0 ? { truncated: { stdout: out.dropped, stderr: err.dropped } } : {}),
          durationMs: Date.now() - started,
        };
        if (code === 0) {
          resolve(result);
          return;
        }
        const lastErr = result.stderr.trimEnd().split("\n").slice(-3).join(" | ").slice(-500);
        const how = code !== null ? `exited with code ${code}` : `was killed by ${signal ?? "a signal"}`;
        reject(new ExecFailedError(`command ${argv0} ${how}${lastErr ? `: ${lastErr}` : ""}`));
      };

      child.once("error", (e: NodeJS.ErrnoException) => {
        if (pid !== undefined && !exited) {
          kill();
          return;
        }
        if (settled) return;
        settled = true;
        ctx.signal.removeEventListener("abort", onAbort);
        const where = e.code === "ENOENT" && p.cwd ? ` (does the working directory ${p.cwd} exist?)` : "";
        reject(new ExecFailedError(`exec: cannot start ${argv0}: ${e.code ?? e.message}${where}`));
      });
      child.once("exit", (code, signal) => {
        exited = { code, signal };
        // Output may still be buffered in the pipes; a background process that kept them
        // open must not hold the job: stop waiting for the streams shortly after the exit.
        const t = setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
          finish();
        }, 1_000);
        t.unref();
        child.once("close", () => {
          clearTimeout(t);
          finish();
        });
        // Leave nothing behind: what the command started in its group is stopped too.
        if (pid !== undefined && !killTimer) {
          if (groupExists(pid)) kill();
          else this.live.delete(pid);
        }
      });
    });
  }

  /** Waits until every process group has ended or been SIGKILLed, or `timeoutMs` passed. */
  async settle(timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.live.size > 0 && Date.now() < until) {
      for (const pid of [...this.live]) if (!groupExists(pid)) this.live.delete(pid);
      if (this.live.size > 0) await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Kills every process group still alive (SIGKILL by default). */
  killAll(signal: NodeJS.Signals = "SIGKILL"): void {
    for (const pid of this.live) killGroup(pid, signal);
    if (signal === "SIGKILL") this.live.clear();
  }

  /** On process exit, no command outlives the worker (a synchronous last resort). */
  private installExitHook(): void {
    if (this.exitHook) return;
    this.exitHook = () => this.killAll("SIGKILL");
    process.once("exit", this.exitHook);
  }

  dispose(): void {
    this.killAll("SIGKILL");
    if (this.exitHook) process.off("exit", this.exitHook);
    this.exitHook = undefined;
  }
}
