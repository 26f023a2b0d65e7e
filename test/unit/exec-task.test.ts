/**
 * The exec task's runner with real child processes but no server: output to the log and
 * the result tails, exit codes, the AbortSignal killing the whole process group, and the
 * worker's refusal hook in `execute` (a refused job is dead-lettered without starting).
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecResult } from "../../src/model/exec.js";
import { createEnvelope, encodeEnvelope, type JobRecord, type JsonValue } from "../../src/model/job.js";
import type { EventInput } from "../../src/services/events.js";
import type { Delivery } from "../../src/services/queues.js";
import { ExecRunner } from "../../src/worker/exec-task.js";
import { execute, JobTimeoutError, RunningJob } from "../../src/worker/execute.js";
import { fakeExecDeps } from "../support/exec-deps.js";
import type { JobContext } from "../../src/worker/handlers.js";
import { alive } from "../support/index.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "naq-exec-unit-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function context(argv: string[], logs: string[], signal = new AbortController().signal): { ctx: JobContext; payload: JsonValue } {
  const job = createEnvelope({ task: "exec", id: "j1", queue: "ops", payload: { argv } });
  return { payload: job.payload, ctx: { job, id: job.id, attempt: 2, signal, progress() {}, log: (l) => void logs.push(l) } };
}

describe("ExecRunner", () => {
  const runner = new ExecRunner({ allow: ["sh", "echo"], killGraceMs: 300, tailBytes: 16 });

  it("runs argv without a shell, logs both streams, keeps the tails and the exit code", async () => {
    const logs: string[] = [];
    const { ctx, payload } = context(["sh", "-c", 'echo "job $NAQ_JOB_ID attempt $NAQ_JOB_ATTEMPT"; echo err >&2; printf "%040d\\n" 0'], logs);
    const r = (await runner.handler(payload, ctx)) as ExecResult;
    expect(r.exitCode).toBe(0);
    expect(r.signal).toBeNull();
    expect(r.stdout).toBe("0000000000000000\n".slice(-16)); // the last 16 bytes only
    expect(r.truncated?.stdout).toBeGreaterThan(0);
    expect(r.stderr).toBe("err\n");
    // (stdout and stderr are two pipes: their lines interleave in no fixed order)
    expect(logs.join("\n").split("\n").sort()).toEqual(["0".repeat(40), "err", "job j1 attempt 2"]);
    const noShell = (await runner.handler(context(["echo", "$HOME", "a;b"], []).payload, context(["echo", "$HOME", "a;b"], []).ctx)) as ExecResult;
    expect(noShell.stdout).toBe("$HOME a;b\n");
  });

  it("a non-zero exit rejects with the code and the end of stderr", async () => {
    const { ctx, payload } = context(["sh", "-c", "echo first >&2; echo last >&2; exit 7"], []);
    await expect(Promise.resolve(runner.handler(payload, ctx))).rejects.toThrow(/command sh exited with code 7: first \| last/);
  });

  it("abort kills the whole process group: TERM, then KILL for what ignores it", async () => {
    const ac = new AbortController();
    const pidFile = path.join(dir, "pids");
    const { ctx, payload } = context(["sh", "-c", `(trap '' TERM; while :; do sleep 0.05; done) & echo $! > ${pidFile}; sleep 30`], [], ac.signal);
    const running = Promise.resolve(runner.handler(payload, ctx));
    let pid = 0;
    for (let i = 0; i < 100 && !pid; i++) {
      await new Promise((r) => setTimeout(r, 20));
      pid = Number((await readFile(pidFile, "utf8").catch(() => "")).trim());
    }
    expect(alive(pid)).toBe(true);
    ac.abort(new JobTimeoutError("timed out"));
    await expect(running).rejects.toThrow(/timed out/);
    await new Promise((r) => setTimeout(r, 600)); // past the 300ms kill grace
    expect(alive(pid)).toBe(false);
    await runner.settle(1_000);
    expect(runner.liveGroups).toBe(0);
  });

  it("a missing working directory is a clear failure", async () => {
    const job = createEnvelope({ task: "exec", payload: { argv: ["echo"], cwd: "/no/such/dir" } });
    const ctx: JobContext = { job, id: job.id, attempt: 1, signal: new AbortController().signal, progress() {}, log() {} };
    await expect(Promise.resolve(runner.handler(job.payload, ctx))).rejects.toThrow(/cannot start echo: ENOENT \(does the working directory \/no\/such\/dir exist\?\)/);
  });
});

describe("execute: refused jobs", () => {
  it("are dead-lettered with the reason, without starting (attempt 0), then termed", async () => {
    const calls: string[] = [];
    const events: EventInput[] = [];
    const records: JobRecord[] = [];
    const env = createEnvelope({ task: "exec", id: "r1", payload: { argv: ["touch", "/tmp/x"] } });
    const d: Delivery = {
      queue: "default",
      data: encodeEnvelope(env),
      subject: "naq.queue.default",
      seq: 3,
      deliveryCount: 1,
      ack: () => void calls.push("ack"),
      nak: () => void calls.push("nak"),
      term: () => void calls.push("term"),
      working: () => undefined,
    };
    const runner = new ExecRunner({ allow: ["echo"] });
    const deps = fakeExecDeps({
      handlers: new Map([["exec", () => calls.push("handler")]]),
      writeRecord: async (r) => void records.push(r),
      deadLetter: async () => void calls.push("deadLetter"),
      refuse: (job) => runner.refuse(job),
      emit: (e) => void events.push(e),
    });
    const outcome = await execute(new RunningJob(d), deps);
    expect(outcome).toMatchObject({ kind: "failed", attempt: 0, reason: 'exec: command "touch" is not allowed on this worker (--allow-exec: echo)' });
    expect(calls).toEqual(["deadLetter", "term"]);
    expect(records[0]).toMatchObject({ status: "failed", attempts: 0, reason: expect.stringContaining("not allowed") });
    expect(events.map((e) => e.type)).toEqual(["failed", "dead_lettered"]);
  });
});
