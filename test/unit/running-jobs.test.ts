/**
 * A worker's registry of running jobs (src/worker/running-jobs.ts) with fake deliveries
 * and ExecDeps: counts, slots, the job/error hooks, --max-jobs, cancel, and the drain on
 * stop. No server.
 */
import { describe, expect, it } from "vitest";
import { createEnvelope, encodeEnvelope, type JobRecord } from "../../src/model/job.js";
import type { Delivery } from "../../src/services/queues.js";
import { fakeExecDeps } from "../support/exec-deps.js";
import type { Handler } from "../../src/worker/handlers.js";
import type { JobEventInfo } from "../../src/worker/options.js";
import { RunningJobs } from "../../src/worker/running-jobs.js";
import { SlotPool } from "../../src/worker/slots.js";

interface FakeDelivery extends Delivery {
  calls: string[];
}

function delivery(task: string, id: string, opts: { queue?: string; seq?: number } = {}): FakeDelivery {
  const calls: string[] = [];
  const queue = opts.queue ?? "default";
  return {
    calls,
    queue,
    data: encodeEnvelope(createEnvelope({ task, id, retries: 0 }, Date.now(), queue)),
    subject: `naq.queue.${queue}`,
    seq: opts.seq ?? 1,
    deliveryCount: 1,
    ack: () => void calls.push("ack"),
    nak: (ms?: number) => void calls.push(`nak ${ms}`),
    term: () => void calls.push("term"),
    working: () => void calls.push("working"),
  };
}

/** Resolves once `cond` holds (checked every tick). */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  expect(cond()).toBe(true);
}

function setup(handlers: Record<string, Handler>, o: { capacity?: number; maxJobs?: number; writeRecord?: (r: JobRecord) => Promise<void> } = {}) {
  const jobs: JobEventInfo[] = [];
  const errors: Error[] = [];
  let limits = 0;
  const pool = new SlotPool(o.capacity ?? 4);
  const running = new RunningJobs({ job: (i) => void jobs.push(i), error: (e) => void errors.push(e), limitReached: () => void limits++ }, o.maxJobs);
  const deps = fakeExecDeps({
    handlers: new Map(Object.entries(handlers)),
    handlerSettled: (run) => running.releaseSlot(run),
    ...(o.writeRecord ? { writeRecord: o.writeRecord } : {}),
  });
  running.start(pool, deps);
  /** Reserves a slot as a pull does, then dispatches. */
  const take = async (d: Delivery): Promise<void> => {
    expect(await pool.reserve(0, 1)).toBe(1);
    running.dispatch(d);
  };
  return { running, pool, jobs, errors, take, limits: () => limits };
}

describe("RunningJobs", () => {
  it("runs a job, reports it, counts it, frees its slot and forgets it once acked", async () => {
    const s = setup({ ok: () => 1, bad: () => Promise.reject(new Error("no")) }, { capacity: 2 });
    const a = delivery("ok", "a");
    const b = delivery("bad", "b", { seq: 2 });
    await s.take(a);
    await s.take(b);
    expect(s.running.size).toBe(2);
    expect(s.running.taken).toBe(2);
    expect(s.running.idleFor(0)).toBe(false);
    await s.running.whenNone();
    expect(s.running.size).toBe(0);
    expect(s.pool.available).toBe(2);
    expect(a.calls).toEqual(["ack"]);
    expect(s.jobs.map((j) => [j.id, j.outcome])).toEqual([
      ["a", "completed"],
      ["b", "failed"],
    ]);
    expect(s.running.processed).toBe(1);
    expect(s.running.failed).toBe(1);
    expect(s.running.idleFor(0)).toBe(true);
    expect(s.running.idleFor(60_000)).toBe(false);
  });

  it("gives a job's slot back when its handler settles, before its outcome is stored", async () => {
    let store!: () => void;
    const s = setup({ ok: () => 1 }, { capacity: 1, writeRecord: () => new Promise<void>((r) => (store = r)) });
    await s.take(delivery("ok", "a"));
    await until(() => store !== undefined);
    expect(s.pool.available).toBe(1);
    expect(s.running.size).toBe(1);
    store();
    await s.running.whenNone();
    expect(s.pool.available).toBe(1); // released once only
  });

  it("NAKs a job whose outcome cannot be stored and reports the error", async () => {
    const s = setup({ ok: () => 1 }, { writeRecord: () => Promise.reject(new Error("kv down")) });
    const d = delivery("ok", "a");
    await s.take(d);
    await s.running.whenNone();
    expect(d.calls).toEqual(["nak 1000"]);
    expect(s.errors.map((e) => e.message)).toEqual(["job a: kv down"]);
    expect(s.jobs).toEqual([]);
    expect(s.pool.available).toBe(4);
  });

  it("tells when maxJobs jobs were taken, and counts open pulls in jobsLeft", async () => {
    const s = setup({ ok: () => 1 }, { maxJobs: 2 });
    expect(s.running.jobsLeft()).toBe(2);
    s.running.expect(2);
    expect(s.running.jobsLeft()).toBe(0);
    s.running.expect(-1);
    await s.take(delivery("ok", "a"));
    expect(s.running.jobsLeft()).toBe(0);
    expect(s.limits()).toBe(0);
    s.running.expect(-1);
    await s.take(delivery("ok", "b"));
    expect(s.limits()).toBe(1);
    await s.running.whenNone();
    expect(setup({}).running.jobsLeft()).toBeUndefined();
  });

  it("lists, touches and cancels running jobs", async () => {
    const s = setup({ wait: (_p, ctx) => new Promise((_r, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason))) });
    const a = delivery("wait", "a", { queue: "q1" });
    const b = delivery("wait", "b", { queue: "q2", seq: 2 });
    await s.take(a);
    await s.take(b);
    await until(() => [...s.running].every((r) => r.job !== undefined));
    expect(s.running.ids().sort()).toEqual(["a", "b"]);
    expect(s.running.byQueue()).toEqual({ q1: 1, q2: 1 });
    s.running.touch();
    expect(a.calls).toEqual(["working"]);
    s.running.cancel("a");
    await until(() => s.running.size === 1);
    expect(s.jobs.map((j) => [j.id, j.outcome])).toEqual([["a", "cancelled"]]);
    expect(s.running.ids()).toEqual(["b"]);
    s.running.cancel("b");
    await s.running.whenNone();
  });

  it("drain: grace, then the running jobs are aborted; hurry() cuts the grace short", async () => {
    const s = setup({ wait: (_p, ctx) => new Promise((_r, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason))) });
    await s.take(delivery("wait", "a"));
    await until(() => [...s.running].every((r) => r.job !== undefined));
    const started = Date.now();
    await s.running.drain(50);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(s.running.size).toBe(0);
    expect(s.jobs[0]).toMatchObject({ id: "a", outcome: "released" });

    await s.take(delivery("wait", "b", { seq: 2 }));
    await until(() => [...s.running].every((r) => r.job !== undefined));
    const t0 = Date.now();
    const drained = s.running.drain(60_000);
    s.running.hurry();
    await drained;
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(s.running.size).toBe(0);
  });

  it("drain with nothing running resolves at once", async () => {
    const s = setup({});
    await s.running.drain(60_000);
    expect(s.running.size).toBe(0);
  });
});
