/**
 * The worker's per-delivery logic (`execute`) with fake deps and a fake delivery that
 * record every call in order, and the SlotPool that bounds a worker's concurrency.
 * No server: everything NATS-facing comes in through ExecDeps / Delivery.
 */
import { describe, expect, it } from "vitest";
import { UnrecoverableError } from "../../src/model/errors.js";
import { createEnvelope, encodeEnvelope, type EnqueueInput, type JobRecord, type JsonValue } from "../../src/model/job.js";
import type { EventInput } from "../../src/services/events.js";
import type { DeadLetter } from "../../src/services/jobs.js";
import type { Delivery } from "../../src/services/queues.js";
import {
  execute,
  JobCancelledError,
  JobTimeoutError,
  RunningJob,
  WorkerStoppingError,
  type ExecDeps,
} from "../../src/worker/execute.js";
import type { Handler, JobContext } from "../../src/worker/handlers.js";
import { SlotPool } from "../../src/worker/slots.js";

type Call =
  | { op: "ack" }
  | { op: "nak"; delayMs?: number }
  | { op: "term"; reason?: string }
  | { op: "working" }
  | { op: "writeRecord"; record: JobRecord }
  | { op: "deadLetter"; entry: DeadLetter; msgId: string }
  | { op: "recordWait"; id: string; count: number };

interface Fixture {
  calls: Call[];
  events: EventInput[];
  deps: ExecDeps;
  delivery: Delivery;
  run: RunningJob;
  /** Operation names in call order. */
  ops(): string[];
  /** Job ids whose skipped-delivery counts were read. */
  skippedReads: string[];
}

function fakeDelivery(data: Uint8Array, calls: Call[], opts: { seq?: number; deliveryCount?: number; queue?: string } = {}): Delivery {
  return {
    queue: opts.queue ?? "default",
    data,
    subject: `naq.queue.${opts.queue ?? "default"}`,
    seq: opts.seq ?? 7,
    deliveryCount: opts.deliveryCount ?? 1,
    ack: () => void calls.push({ op: "ack" }),
    nak: (delayMs?: number) => void calls.push(delayMs === undefined ? { op: "nak" } : { op: "nak", delayMs }),
    term: (reason?: string) => void calls.push({ op: "term", reason }),
    working: () => void calls.push({ op: "working" }),
  };
}

interface FixtureOptions {
  handlers?: Record<string, Handler>;
  deliveryCount?: number;
  seq?: number;
  records?: Record<string, JobRecord>;
  waits?: Record<string, number>;
  /** Deliveries handed back unrun, by job id (SkippedDeliveries.released). */
  released?: Record<string, number>;
  cancelled?: string[];
  /** Ids that have events (exist) though they have no record. */
  known?: string[];
  random?: () => number;
  now?: () => number;
}

function fixture(data: Uint8Array, o: FixtureOptions = {}): Fixture {
  const calls: Call[] = [];
  const events: EventInput[] = [];
  const skippedReads: string[] = [];
  const waits = { ...o.waits };
  const cancelled = new Set(o.cancelled);
  const deps: ExecDeps = {
    workerId: "w1",
    handlers: new Map(Object.entries(o.handlers ?? {})),
    writeRecord: async (record) => void calls.push({ op: "writeRecord", record }),
    deadLetter: async (entry, msgId) => void calls.push({ op: "deadLetter", entry, msgId }),
    getRecord: async (id) => o.records?.[id],
    jobExists: async (id) => (o.known ?? []).includes(id) || o.records?.[id] !== undefined,
    skipped: async (id) => {
      skippedReads.push(id);
      return { waits: waits[id] ?? 0, released: o.released?.[id] ?? 0 };
    },
    recordWait: async (id, skipped) => {
      waits[id] = skipped.waits;
      calls.push({ op: "recordWait", id, count: skipped.waits });
    },
    isCancelled: (id) => cancelled.has(id),
    emit: (e) => void events.push(e),
    now: o.now,
    random: o.random,
  };
  const delivery = fakeDelivery(data, calls, { seq: o.seq, deliveryCount: o.deliveryCount });
  return { calls, events, deps, delivery, run: new RunningJob(delivery), ops: () => calls.map((c) => c.op), skippedReads };
}

const jobBytes = (input: Partial<EnqueueInput> = {}) => {
  const env = createEnvelope({ task: "work", id: "job1", retries: 2, backoff: { type: "fixed", delayMs: 1_500 }, ...input });
  return { env, data: encodeEnvelope(env) };
};

function callOf<K extends Call["op"]>(f: Fixture, op: K): Extract<Call, { op: K }> {
  const c = f.calls.find((x) => x.op === op);
  if (!c) throw new Error(`no ${op} call; calls: ${f.ops().join(", ")}`);
  return c as Extract<Call, { op: K }>;
}

const eventTypes = (f: Fixture) => f.events.map((e) => e.type);

describe("execute: a job that completes", () => {
  it("runs the handler with payload and context, writes the completed record, THEN acks", async () => {
    let seen: { payload: JsonValue; ctx: JobContext } | undefined;
    const { env, data } = jobBytes({ payload: { a: 1, b: 2 }, labels: { team: "x" } });
    let t = 1_000;
    const f = fixture(data, {
      now: () => (t += 10),
      handlers: {
        work: (payload, ctx) => {
          seen = { payload, ctx };
          return (payload as { a: number; b: number }).a + (payload as { a: number; b: number }).b;
        },
      },
    });
    const outcome = await execute(f.run, f.deps);
    expect(outcome).toMatchObject({ kind: "completed", attempt: 1, result: 3 });
    expect(seen?.payload).toEqual({ a: 1, b: 2 });
    expect(seen?.ctx).toMatchObject({ id: "job1", attempt: 1, job: env });
    expect(seen?.ctx.signal.aborted).toBe(false);

    expect(f.ops()).toEqual(["writeRecord", "ack"]);
    const { record } = callOf(f, "writeRecord");
    expect(record).toMatchObject({
      v: 1,
      id: "job1",
      queue: "default",
      task: "work",
      status: "completed",
      attempts: 1,
      maxAttempts: 3,
      worker: "w1",
      result: 3,
      labels: { team: "x" },
      enqueuedAt: env.enqueuedAt,
    });
    expect(record.durationMs).toBeGreaterThan(0);
    expect(Date.parse(record.finishedAt)).toBeGreaterThanOrEqual(Date.parse(record.startedAt as string));
    expect(eventTypes(f)).toEqual(["started", "completed"]);
  });

  it("does not ack when the record cannot be written (the error propagates; the job comes back)", async () => {
    const { data } = jobBytes();
    const f = fixture(data, { handlers: { work: () => "ok" } });
    f.deps.writeRecord = async () => {
      throw new Error("KV down");
    };
    await expect(execute(f.run, f.deps)).rejects.toThrow("KV down");
    expect(f.ops()).not.toContain("ack");
  });

  it("stores undefined as null, and awaits async handlers", async () => {
    const { data } = jobBytes();
    const f = fixture(data, { handlers: { work: async () => undefined } });
    expect(await execute(f.run, f.deps)).toMatchObject({ kind: "completed", result: null });
    expect(callOf(f, "writeRecord").record.result).toBeNull();
  });

  it("reports progress and log lines as progress events", async () => {
    const { data } = jobBytes();
    const f = fixture(data, {
      handlers: {
        work: (_p, ctx) => {
          ctx.progress(50);
          ctx.log("half way");
          return 1;
        },
      },
    });
    await execute(f.run, f.deps);
    const progress = f.events.filter((e) => e.type === "progress");
    expect(progress).toEqual([
      expect.objectContaining({ jobId: "job1", attempt: 1, progress: 50 }),
      expect.objectContaining({ jobId: "job1", attempt: 1, log: "half way" }),
    ]);
  });

  it("the context may be destructured: progress, log and signal work without `ctx.`", async () => {
    const { data } = jobBytes();
    let aborted: boolean | undefined;
    const f = fixture(data, {
      handlers: {
        work: (_p, { id, attempt, progress, log, signal }) => {
          progress(10);
          log(`${id} attempt ${attempt}`);
          aborted = signal.aborted;
          return 1;
        },
      },
    });
    expect(await execute(f.run, f.deps)).toMatchObject({ kind: "completed" });
    expect(aborted).toBe(false);
    expect(f.events.filter((e) => e.type === "progress")).toEqual([
      expect.objectContaining({ progress: 10 }),
      expect.objectContaining({ log: "job1 attempt 1" }),
    ]);
  });

  it("every job's context has the same shape (no per-job getter: see RunContext)", async () => {
    const contexts: JobContext[] = [];
    for (const id of ["a1", "a2"]) {
      const { data } = jobBytes({ id });
      const f = fixture(data, { handlers: { work: (_p, ctx) => void contexts.push(ctx) } });
      await execute(f.run, f.deps);
    }
    const [a, b] = contexts;
    expect(Object.getPrototypeOf(a)).toBe(Object.getPrototypeOf(b));
    expect(Object.getOwnPropertyDescriptor(a, "signal")).toBeUndefined();
  });

  it("a result that is not JSON fails the attempt", async () => {
    const { data } = jobBytes();
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const f = fixture(data, { handlers: { work: () => circular } });
    expect(await execute(f.run, f.deps)).toMatchObject({ kind: "retrying", attempt: 1 });
    expect(f.ops()).toEqual(["nak"]);
  });
});

describe("execute: failures and retries", () => {
  it("a failed attempt with attempts left NAKs with the backoff delay and writes nothing", async () => {
    const { data } = jobBytes({ retries: 2, backoff: { type: "fixed", delayMs: 1_500 } });
    const f = fixture(data, {
      handlers: {
        work: () => {
          throw new Error("boom");
        },
      },
    });
    const outcome = await execute(f.run, f.deps);
    expect(outcome).toMatchObject({ kind: "retrying", attempt: 1, delayMs: 1_500, error: { name: "Error", message: "boom" } });
    expect(f.calls).toEqual([{ op: "nak", delayMs: 1_500 }]);
    expect(eventTypes(f)).toEqual(["started", "retrying"]);
    expect(f.events[1]).toMatchObject({ attempt: 1, maxAttempts: 3, delayMs: 1_500, error: { message: "boom" } });
  });

  it("the NAK delay follows the backoff for the attempt, with jitter from the injected random source", async () => {
    const { data } = jobBytes({ retries: 5, backoff: { type: "exponential", baseMs: 1_000, maxMs: 60_000, jitter: 0.5 } });
    const f = fixture(data, {
      deliveryCount: 3,
      random: () => 0,
      handlers: {
        work: () => Promise.reject(new Error("again")),
      },
    });
    // Attempt 3 failed: the delay before attempt 4 is base * 2^2 = 4000, jitter -50% -> 2000.
    expect(await execute(f.run, f.deps)).toMatchObject({ kind: "retrying", attempt: 3, delayMs: 2_000 });
    expect(f.calls).toEqual([{ op: "nak", delayMs: 2_000 }]);
  });

  it("the last attempt dead-letters, writes a failed record, then terms", async () => {
    const { env, data } = jobBytes({ retries: 2 });
    const f = fixture(data, {
      deliveryCount: 3,
      seq: 99,
      handlers: {
        work: (_p, ctx) => {
          throw new Error(`failure on attempt ${ctx.attempt}`);
        },
      },
    });
    const outcome = await execute(f.run, f.deps);
    expect(outcome).toMatchObject({ kind: "failed", attempt: 3, reason: "failed after 3 attempts" });
    expect(f.ops()).toEqual(["deadLetter", "writeRecord", "term"]);

    const dl = callOf(f, "deadLetter");
    expect(dl.msgId).toBe("job1.dlq.99");
    expect(dl.entry).toMatchObject({
      v: 1,
      id: "job1",
      queue: "default",
      task: "work",
      reason: "failed after 3 attempts",
      attempts: 3,
      worker: "w1",
      error: { name: "Error", message: "failure on attempt 3" },
      job: env,
    });
    expect(dl.entry.raw).toBeUndefined();

    expect(callOf(f, "writeRecord").record).toMatchObject({
      status: "failed",
      attempts: 3,
      maxAttempts: 3,
      reason: "failed after 3 attempts",
      error: { message: "failure on attempt 3" },
    });
    expect(callOf(f, "term").reason).toBe("failed after 3 attempts");
    expect(eventTypes(f)).toEqual(["started", "failed", "dead_lettered"]);
  });

  it("a job with no retries dead-letters on its first failure", async () => {
    const { data } = jobBytes({ retries: 0 });
    const f = fixture(data, { handlers: { work: () => Promise.reject(new Error("nope")) } });
    expect(await execute(f.run, f.deps)).toMatchObject({ kind: "failed", attempt: 1, reason: "failed after 1 attempt" });
    expect(f.ops()).toEqual(["deadLetter", "writeRecord", "term"]);
  });

  it("a thrown non-Error becomes a JobError", async () => {
    const { data } = jobBytes({ retries: 0 });
    const f = fixture(data, {
      handlers: {
        work: () => {
          throw "plain string";
        },
      },
    });
    expect(await execute(f.run, f.deps)).toMatchObject({ kind: "failed", error: { name: "Error", message: "plain string" } });
  });

  it("UnrecoverableError skips the remaining attempts", async () => {
    const { data } = jobBytes({ retries: 5 });
    const f = fixture(data, {
      handlers: {
        work: () => {
          throw new UnrecoverableError("bad input, never retry");
        },
      },
    });
    expect(await execute(f.run, f.deps)).toMatchObject({
      kind: "failed",
      attempt: 1,
      reason: "unrecoverable error",
      error: { name: "UnrecoverableError", message: "bad input, never retry" },
    });
    expect(f.ops()).toEqual(["deadLetter", "writeRecord", "term"]);
    expect(callOf(f, "writeRecord").record).toMatchObject({ status: "failed", attempts: 1, maxAttempts: 6 });
  });

  it("an error named UnrecoverableError from another copy of naq counts too", async () => {
    const { data } = jobBytes({ retries: 5 });
    const foreign = Object.assign(new Error("from a bundled copy"), { name: "UnrecoverableError" });
    const f = fixture(data, { handlers: { work: () => Promise.reject(foreign) } });
    expect(await execute(f.run, f.deps)).toMatchObject({ kind: "failed", reason: "unrecoverable error" });
  });
});

describe("execute: attempts are deliveries that ran", () => {
  it("a redelivery subtracts the deliveries handed back unrun (stopping worker, no free slot)", async () => {
    const { data } = jobBytes();
    const f = fixture(data, { deliveryCount: 3, released: { job1: 2 }, handlers: { work: () => 1 } });
    expect(await execute(f.run, f.deps)).toMatchObject({ kind: "completed", attempt: 1 });
    expect(callOf(f, "writeRecord").record.attempts).toBe(1);
    expect(f.events.find((e) => e.type === "started")).toMatchObject({ attempt: 1 });
  });

  it("a failure after hand-backs still has its retries: attempt 1 of 3 is retried", async () => {
    const { data } = jobBytes(); // retries: 2 -> 3 attempts
    const f = fixture(data, { deliveryCount: 3, released: { job1: 2 }, handlers: { work: () => { throw new Error("boom"); } } });
    expect(await execute(f.run, f.deps)).toMatchObject({ kind: "retrying", attempt: 1 });
  });

  it("when the count cannot be read the job runs anyway, its deliveries counted as attempts", async () => {
    const { data } = jobBytes();
    const f = fixture(data, { deliveryCount: 2, handlers: { work: () => 1 } });
    f.deps.skipped = () => Promise.reject(new Error("timed out waiting for the server"));
    expect(await execute(f.run, f.deps)).toMatchObject({ kind: "completed", attempt: 2 });
  });

  it("a first delivery does not read the count (no KV read on the hot path)", async () => {
    const { data } = jobBytes();
    const f = fixture(data, { handlers: { work: () => 1 } });
    await execute(f.run, f.deps);
    expect(f.skippedReads).toEqual([]);
  });
});

describe("execute: poison input", () => {
  it("bad JSON is dead-lettered with the raw bytes and a reason, then termed; it never throws", async () => {
    const raw = new TextEncoder().encode("not json");
    const f = fixture(raw, { seq: 12, deliveryCount: 1 });
    const outcome = await execute(f.run, f.deps);
    expect(outcome).toMatchObject({ kind: "failed", id: "_seq12" });
    expect(f.ops()).toEqual(["deadLetter", "term"]);
    const dl = callOf(f, "deadLetter");
    expect(dl.msgId).toBe("_seq12.dlq");
    expect(dl.entry).toMatchObject({ id: "_seq12", queue: "default", worker: "w1" });
    expect(dl.entry.reason).toMatch(/^invalid job: .*not valid JSON/);
    expect(Buffer.from(dl.entry.raw as string, "base64").toString()).toBe("not json");
    expect(dl.entry.job).toBeUndefined();
    expect(callOf(f, "term").reason).toBe(dl.entry.reason);
    expect(f.events).toEqual([expect.objectContaining({ type: "dead_lettered", jobId: "_seq12", reason: dl.entry.reason })]);
  });

  it.each([
    ["an unknown version", { v: 9 }, /job\.v: unsupported version 9/],
    ["a bad id", { id: "a.b" }, /id "a\.b" is not valid/],
    ["a bad attempts", { attempts: 0 }, /job\.attempts/],
  ])("a job with %s is dead-lettered naming the field", async (_what, patch, reason) => {
    const { env } = jobBytes();
    const f = fixture(new TextEncoder().encode(JSON.stringify({ ...env, ...patch })));
    expect(await execute(f.run, f.deps)).toMatchObject({ kind: "failed" });
    expect(callOf(f, "deadLetter").entry.reason).toMatch(reason);
    expect(f.ops()).toEqual(["deadLetter", "term"]);
  });

  it("binary garbage does not throw either", async () => {
    const f = fixture(new Uint8Array([0xff, 0xfe, 0x00, 0x80]));
    await expect(execute(f.run, f.deps)).resolves.toMatchObject({ kind: "failed" });
    expect([...Buffer.from(callOf(f, "deadLetter").entry.raw as string, "base64")]).toEqual([0xff, 0xfe, 0x00, 0x80]);
  });

  it("an unknown task is dead-lettered with a failed record naming the task and the known ones", async () => {
    const { env } = jobBytes({ task: "mystery" });
    const f = fixture(encodeEnvelope(env), { handlers: { work: () => 1, other: () => 2 } });
    const outcome = await execute(f.run, f.deps);
    expect(outcome).toMatchObject({ kind: "failed", id: "job1" });
    expect(f.ops()).toEqual(["deadLetter", "writeRecord", "term"]);
    const reason = callOf(f, "deadLetter").entry.reason;
    expect(reason).toContain('unknown task "mystery"');
    expect(reason).toContain("work, other");
    expect(callOf(f, "deadLetter").entry.job).toEqual(env);
    expect(callOf(f, "writeRecord").record).toMatchObject({ status: "failed", reason });
  });
});

describe("execute: timeouts", () => {
  it("aborts the handler's signal and counts as a failed attempt (retried)", async () => {
    const { data } = jobBytes({ timeoutMs: 30, retries: 1, backoff: { type: "fixed", delayMs: 10 } });
    let signal: AbortSignal | undefined;
    const f = fixture(data, {
      handlers: {
        work: (_p, ctx) => {
          signal = ctx.signal;
          return new Promise((_resolve, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)));
        },
      },
    });
    const outcome = await execute(f.run, f.deps);
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBeInstanceOf(JobTimeoutError);
    expect(outcome).toMatchObject({ kind: "retrying", attempt: 1, delayMs: 10, error: { name: "JobTimeoutError", message: "timed out after 30ms" } });
    expect(f.calls).toEqual([{ op: "nak", delayMs: 10 }]);
  });

  it("a handler that ignores its signal still times out; on the last attempt the job fails", async () => {
    const { data } = jobBytes({ timeoutMs: 30, retries: 0 });
    const started = Date.now();
    const f = fixture(data, { handlers: { work: () => new Promise(() => undefined) } });
    const outcome = await execute(f.run, f.deps);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(outcome).toMatchObject({ kind: "failed", error: { name: "JobTimeoutError" } });
    expect(f.ops()).toEqual(["deadLetter", "writeRecord", "term"]);
  });

  it("a job that finishes in time is not affected by its timeout", async () => {
    const { data } = jobBytes({ timeoutMs: 1_000 });
    let signal: AbortSignal | undefined;
    const f = fixture(data, {
      handlers: {
        work: async (_p, ctx) => {
          signal = ctx.signal;
          return "fast";
        },
      },
    });
    expect(await execute(f.run, f.deps)).toMatchObject({ kind: "completed", result: "fast" });
    await new Promise((r) => setTimeout(r, 20));
    expect(signal?.aborted).toBe(false);
  });
});

describe("execute: cancel and shutdown", () => {
  it("a cancelled job is acked without running", async () => {
    const { data } = jobBytes();
    let ran = false;
    const f = fixture(data, { cancelled: ["job1"], handlers: { work: () => (ran = true) } });
    expect(await execute(f.run, f.deps)).toMatchObject({ kind: "cancelled" });
    expect(ran).toBe(false);
    expect(f.ops()).toEqual(["ack"]);
    expect(f.events).toEqual([]);
  });

  it("a job cancelled while running is acked; its cancelled record is not overwritten", async () => {
    const { data } = jobBytes();
    const f = fixture(data, {
      handlers: {
        work: (_p, ctx) =>
          new Promise((_resolve, reject) => {
            ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
            setTimeout(() => f.run.controller.abort(new JobCancelledError("cancelled by request")), 10);
          }),
      },
    });
    expect(await execute(f.run, f.deps)).toMatchObject({ kind: "cancelled" });
    expect(f.ops()).toEqual(["ack"]);
  });

  it("a job cancelled after its handler returned is acked without writing a completed record", async () => {
    const { data } = jobBytes();
    const cancelled = new Set<string>();
    const f = fixture(data, {
      handlers: {
        work: () => {
          cancelled.add("job1");
          return "done anyway";
        },
      },
    });
    f.deps.isCancelled = (id) => cancelled.has(id);
    expect(await execute(f.run, f.deps)).toMatchObject({ kind: "cancelled" });
    expect(f.ops()).toEqual(["ack"]);
  });

  it("a forced worker stop releases the job with an immediate NAK", async () => {
    const { data } = jobBytes();
    const f = fixture(data, {
      handlers: {
        work: () => {
          setTimeout(() => f.run.controller.abort(new WorkerStoppingError("worker stopping")), 10);
          return new Promise(() => undefined);
        },
      },
    });
    expect(await execute(f.run, f.deps)).toMatchObject({ kind: "released" });
    expect(f.calls).toEqual([{ op: "nak" }]);
  });
});

describe("execute: dependencies", () => {
  const completed = (id: string): JobRecord => ({
    v: 1,
    id,
    queue: "default",
    task: "work",
    status: "completed",
    attempts: 1,
    maxAttempts: 1,
    enqueuedAt: new Date().toISOString(),
    finishedAt: new Date().toISOString(),
    result: null,
  });

  it("a pending dependency puts the job back with a delay and a waiting event; it does not run", async () => {
    const { data } = jobBytes({ dependsOn: ["dep1", "dep2"] });
    let ran = false;
    const f = fixture(data, { records: { dep1: completed("dep1") }, handlers: { work: () => (ran = true) } });
    const outcome = await execute(f.run, f.deps);
    expect(outcome).toEqual({ kind: "waiting", job: expect.anything(), delayMs: 500, on: ["dep2"] });
    expect(ran).toBe(false);
    expect(f.calls).toEqual([
      { op: "recordWait", id: "job1", count: 1 },
      { op: "nak", delayMs: 500 },
    ]);
    expect(f.events).toEqual([expect.objectContaining({ type: "waiting", jobId: "job1", delayMs: 500, reason: "waiting for dep2" })]);
  });

  it("the wait delay grows with each wait, capped at 30s", async () => {
    const delays: number[] = [];
    for (const waits of [1, 2, 5, 6, 20]) {
      const { data } = jobBytes({ dependsOn: ["dep1"] });
      const f = fixture(data, { waits: { job1: waits }, deliveryCount: waits + 1, known: ["dep1"], handlers: { work: () => 1 } });
      const outcome = await execute(f.run, f.deps);
      if (outcome.kind !== "waiting") throw new Error(`expected waiting, got ${outcome.kind}`);
      delays.push(outcome.delayMs);
      expect(callOf(f, "recordWait").count).toBe(waits + 1);
    }
    expect(delays).toEqual([1_000, 2_000, 16_000, 30_000, 30_000]);
  });

  it("a dependency nobody has heard of fails the job after a few waits (it may be enqueued just after)", async () => {
    const { data } = jobBytes({ dependsOn: ["ghost"] });
    const early = fixture(data, { waits: { job1: 2 }, handlers: { work: () => 1 } });
    expect((await execute(early.run, early.deps)).kind).toBe("waiting");
    const late = fixture(data, { waits: { job1: 3 }, handlers: { work: () => 1 } });
    const outcome = await execute(late.run, late.deps);
    expect(outcome).toMatchObject({ kind: "failed", reason: "dependency ghost not found (never enqueued, or its record expired)" });
    expect(late.ops()).toEqual(["deadLetter", "writeRecord", "term"]);
  });

  it("a failed dependency fails the job with a reason naming it, without running it", async () => {
    const { data } = jobBytes({ dependsOn: ["dep1", "dep2"] });
    let ran = false;
    const failedDep: JobRecord = { ...completed("dep2"), status: "failed", error: { name: "Error", message: "disk full" } };
    const f = fixture(data, { records: { dep1: completed("dep1"), dep2: failedDep }, handlers: { work: () => (ran = true) } });
    const outcome = await execute(f.run, f.deps);
    expect(ran).toBe(false);
    expect(outcome).toMatchObject({ kind: "failed", reason: "dependency dep2 failed: disk full" });
    expect(f.ops()).toEqual(["deadLetter", "writeRecord", "term"]);
    const { record } = callOf(f, "writeRecord");
    expect(record).toMatchObject({ status: "failed", reason: "dependency dep2 failed: disk full", attempts: 0 });
    expect(record.startedAt).toBeUndefined();
    expect(eventTypes(f)).toEqual(["failed", "dead_lettered"]);
  });

  it("a cancelled dependency fails the job too", async () => {
    const { data } = jobBytes({ dependsOn: ["dep1"] });
    const f = fixture(data, { records: { dep1: { ...completed("dep1"), status: "cancelled" } }, handlers: { work: () => 1 } });
    expect(await execute(f.run, f.deps)).toMatchObject({ kind: "failed", reason: "dependency dep1 cancelled" });
  });

  it("once dependencies completed the job runs, and its attempt number does not count the waits", async () => {
    const { data } = jobBytes({ dependsOn: ["dep1"], retries: 1 });
    const attempts: number[] = [];
    const f = fixture(data, {
      deliveryCount: 5,
      waits: { job1: 4 },
      records: { dep1: completed("dep1") },
      handlers: {
        work: (_p, ctx) => {
          attempts.push(ctx.attempt);
          throw new Error("first real attempt fails");
        },
      },
    });
    // Delivery 5 after 4 waits is attempt 1 of 2: retried, not dead-lettered.
    expect(await execute(f.run, f.deps)).toMatchObject({ kind: "retrying", attempt: 1 });
    expect(attempts).toEqual([1]);

    const g = fixture(data, {
      deliveryCount: 6,
      waits: { job1: 4 },
      records: { dep1: completed("dep1") },
      handlers: {
        work: () => {
          throw new Error("second real attempt fails");
        },
      },
    });
    expect(await execute(g.run, g.deps)).toMatchObject({ kind: "failed", attempt: 2, reason: "failed after 2 attempts" });
    expect(callOf(g, "writeRecord").record).toMatchObject({ attempts: 2, maxAttempts: 2 });
  });
});

describe("SlotPool", () => {
  it("rejects a capacity that is not a whole number >= 1", () => {
    expect(() => new SlotPool(0)).toThrow(RangeError);
    expect(() => new SlotPool(1.5)).toThrow(RangeError);
  });

  it("reserves up to max of the free slots at once", async () => {
    const pool = new SlotPool(5);
    expect(await pool.reserve(0, 3)).toBe(3);
    expect(pool.available).toBe(2);
    expect(pool.used).toBe(3);
    expect(await pool.reserve(0)).toBe(2);
    expect(pool.available).toBe(0);
  });

  it("a reservation waits until a slot is released", async () => {
    const pool = new SlotPool(2);
    await pool.reserve(0);
    let got: number | undefined;
    void pool.reserve(0, 5).then((n) => (got = n));
    await Promise.resolve();
    expect(got).toBeUndefined();
    pool.release(1);
    await Promise.resolve();
    expect(got).toBe(1);
    expect(pool.available).toBe(0);
  });

  it("serves waiters by priority (lowest number first), not arrival order", async () => {
    const pool = new SlotPool(1);
    await pool.reserve(0);
    const order: string[] = [];
    void pool.reserve(3).then(() => order.push("p3"));
    void pool.reserve(2).then(() => order.push("p2"));
    void pool.reserve(1).then(() => order.push("p1"));
    for (let i = 0; i < 3; i++) {
      pool.release(1);
      await new Promise((r) => setImmediate(r));
    }
    expect(order).toEqual(["p1", "p2", "p3"]);
  });

  it("one release can satisfy several waiters, each up to its max", async () => {
    const pool = new SlotPool(4);
    await pool.reserve(0);
    const got: number[] = [];
    const a = pool.reserve(0, 1).then((n) => got.push(n));
    const b = pool.reserve(1, 2).then((n) => got.push(n));
    pool.release(3);
    await Promise.all([a, b]);
    expect(got).toEqual([1, 2]);
    expect(pool.available).toBe(0);
  });

  it("release never goes above capacity", () => {
    const pool = new SlotPool(2);
    pool.release(5);
    expect(pool.available).toBe(2);
    expect(pool.used).toBe(0);
  });

  it("whenIdle resolves at once when idle, else once every slot is back", async () => {
    const pool = new SlotPool(2);
    await pool.whenIdle();
    await pool.reserve(0);
    let idle = false;
    void pool.whenIdle().then(() => (idle = true));
    pool.release(1);
    await Promise.resolve();
    expect(idle).toBe(false);
    pool.release(1);
    await Promise.resolve();
    expect(idle).toBe(true);
  });

  it("cancelWaiters wakes every waiting reservation with 0 slots", async () => {
    const pool = new SlotPool(1);
    await pool.reserve(0);
    const a = pool.reserve(0);
    const b = pool.reserve(1);
    pool.cancelWaiters();
    expect(await Promise.all([a, b])).toEqual([0, 0]);
    pool.release(1);
    expect(pool.available).toBe(1);
  });
});
