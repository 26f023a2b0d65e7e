/**
 * The scheduler through the library API against a real nats-server (one per file, a fresh
 * namespace per test): delayed jobs fire on time and can be cancelled; three schedulers
 * fire an `every 1s` schedule exactly once per due time while the leader dies without
 * releasing its lease; pause/resume per misfire policy; the due index is swept clean.
 */
import { describe, expect, it } from "vitest";
import type { NaqConfigInput } from "../../src/config/schema.js";
import { Queue } from "../../src/queue.js";
import { Scheduler } from "../../src/scheduler/scheduler.js";
import { ServiceManager } from "../../src/services/base.js";
import { configSchema } from "../../src/config/schema.js";
import { KVStoreService } from "../../src/services/kv.js";
import { SchedulerService, type FireInfo } from "../../src/services/scheduler.js";
import { StreamService } from "../../src/services/streams.js";
import { Worker } from "../../src/worker/worker.js";
import { eventually, useLibraryFixture } from "../support/index.js";

const { freshConfig, cleanup } = useLibraryFixture("s");

async function scope(config: NaqConfigInput): Promise<ServiceManager> {
  const s = await ServiceManager.open(configSchema.parse(config), { longLived: true });
  cleanup(() => s.close());
  return s;
}

function startScheduler(config: NaqConfigInput, id: string, fired: FireInfo[] = []): Scheduler {
  const s = new Scheduler({ config, id, tickMs: 250 });
  s.on("fired", (f) => fired.push(f));
  cleanup(() => s.close());
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Every job id stored in the jobs stream (what was really enqueued, after Msg-Id dedup). */
async function storedJobIds(services: ServiceManager): Promise<string[]> {
  const streams = await services.get(StreamService);
  const names = services.ctx.names;
  const info = await streams.find(names.jobsStream);
  if (!info) return [];
  const ids: string[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await streams.bySequence(names.jobsStream, seq);
    if (m) ids.push((JSON.parse(new TextDecoder().decode(m.data)) as { id: string }).id);
  }
  return ids;
}

describe("Scheduler (library API, real nats-server)", () => {
  it("runs a job enqueued with a 2s delay between 2s and 3.5s later; a cancelled delayed job never runs", async () => {
    const config = freshConfig();
    const queue = new Queue("default", { config });
    cleanup(() => queue.close());
    const started = new Map<string, number>();
    const worker = new Worker({ config, handlers: { hello: (_p: unknown, ctx: { id: string }) => void started.set(ctx.id, Date.now()) }, graceMs: 1_000 });
    cleanup(() => worker.close({ force: true }));
    await worker.start();
    await startScheduler(config, "one").start();

    const t0 = Date.now();
    const job = await queue.enqueueIn("2s", "hello", { n: 1 });
    const doomed = await queue.enqueueIn(1_500, "hello", { n: 2 });
    expect(job.scheduled).toBe(true);
    expect((await queue.getJob(job.id)).status).toBe("scheduled");
    await queue.cancel(doomed.id, "not needed");
    await eventually(() => expect(started.has(job.id)).toBe(true), { timeoutMs: 6_000, intervalMs: 20 });
    const after = (started.get(job.id) as number) - t0;
    expect(after).toBeGreaterThanOrEqual(2_000);
    expect(after).toBeLessThanOrEqual(3_500);
    await sleep(1_000);
    expect(started.has(doomed.id)).toBe(false);
    expect((await queue.getJob(doomed.id)).status).toBe("cancelled");
    // Idempotent by id: the same id again is a duplicate, not a second job.
    const again = await queue.enqueueIn("1h", "hello", null, { id: "fixed-id" });
    const twice = await queue.enqueueIn("1h", "hello", null, { id: "fixed-id" });
    expect([again.duplicate, twice.duplicate]).toEqual([false, true]);
  });

  it("three schedulers fire an every-1s schedule once per due time, also when the leader dies without releasing", { timeout: 45_000 }, async () => {
    const config = freshConfig({ kv: { leaderTtl: "2s" } });
    const services = await scope(config);
    const svc = await services.get(SchedulerService);
    await svc.add({ name: "tick", task: "noop", every: "1s", misfire: "catch-up" });
    const fired: FireInfo[] = [];
    const schedulers = ["a", "b", "c"].map((id) => startScheduler(config, id, fired));
    await Promise.all(schedulers.map((s) => s.start()));
    await eventually(() => expect(schedulers.filter((s) => s.isLeader)).toHaveLength(1), { timeoutMs: 5_000 });
    await sleep(5_000);
    const leader = schedulers.find((s) => s.isLeader) as Scheduler;
    const killedAt = Date.now();
    await leader.close({ release: false }); // dies: the lease stays until its TTL runs out
    await eventually(() => expect(schedulers.filter((s) => s !== leader && s.isLeader)).toHaveLength(1), { timeoutMs: 5_000, intervalMs: 50 });
    const takeover = Date.now() - killedAt;
    expect(takeover).toBeLessThanOrEqual(2_000 + 1_500);
    await sleep(5_000);
    for (const s of schedulers) await s.close();

    const ids = await storedJobIds(services);
    expect(new Set(ids).size).toBe(ids.length);
    const dues = ids.map((id) => Number(id.slice("tick-".length))).sort((a, b) => a - b);
    // catch-up: every due time from the first to the last fired, none missing, none twice.
    for (let i = 1; i < dues.length; i++) expect((dues[i] as number) - (dues[i - 1] as number)).toBe(1_000);
    expect(dues.length).toBeGreaterThanOrEqual(10);
    // What the schedulers reported matches what was stored (no fire reported twice).
    const reported = fired.filter((f) => !f.duplicate).map((f) => f.jobId);
    expect(new Set(reported).size).toBe(reported.length);
    expect([...reported].sort()).toEqual([...ids].sort());
    const info = await svc.get("tick");
    expect(info.runs).toBe(ids.length);
  });

  it("a paused schedule does not fire; resume continues from the next due time (skip) or fires the missed runs (catch-up)", { timeout: 30_000 }, async () => {
    const config = freshConfig();
    const services = await scope(config);
    const svc = await services.get(SchedulerService);
    await svc.add({ name: "skipper", task: "noop", every: "1s", misfire: "skip" });
    await svc.add({ name: "catcher", task: "noop", every: "1s", misfire: "catch-up" });
    const fired: FireInfo[] = [];
    await startScheduler(config, "solo", fired).start();
    await eventually(() => expect(new Set(fired.map((f) => f.name))).toEqual(new Set(["skipper", "catcher"])), { timeoutMs: 5_000 });

    await svc.pause("skipper");
    await svc.pause("catcher");
    const pausedAt = Date.now();
    await sleep(500); // a run claimed just before the pause may still be on its way
    const before = fired.length;
    await sleep(3_000);
    expect(fired.length).toBe(before);
    expect((await svc.get("skipper")).status).toBe("paused");

    const resumedAt = Date.now();
    const skip = await svc.resume("skipper");
    expect(Date.parse(skip.nextRunAt as string)).toBeGreaterThan(resumedAt);
    expect(skip.skipped).toBeGreaterThanOrEqual(3);
    const catchUp = await svc.resume("catcher");
    expect(Date.parse(catchUp.nextRunAt as string)).toBeLessThan(resumedAt);
    await sleep(2_000);

    const after = fired.slice(before);
    const skipperDues = after.filter((f) => f.name === "skipper").map((f) => Date.parse(f.dueAt));
    const catcherDues = after.filter((f) => f.name === "catcher").map((f) => Date.parse(f.dueAt));
    // skip: nothing due during the pause fired.
    expect(skipperDues.every((d) => d > resumedAt)).toBe(true);
    expect(skipperDues.length).toBeGreaterThanOrEqual(1);
    // catch-up: every run due during the pause fired after the resume.
    const missed = catcherDues.filter((d) => d > pausedAt + 500 && d < resumedAt);
    expect(missed.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < catcherDues.length; i++) expect((catcherDues[i] as number) - (catcherDues[i - 1] as number)).toBe(1_000);
  });

  it("a cron schedule with a time zone fires, trigger runs it now, remove stops it, and swept slots leave no keys behind", { timeout: 30_000 }, async () => {
    const config = freshConfig();
    const services = await scope(config);
    const svc = await services.get(SchedulerService);
    const cron = await svc.add({ name: "secs", task: "noop", cron: "*/2 * * * * *", tz: "Europe/Berlin", misfire: "skip" });
    expect(cron.created).toBe(true);
    expect(Date.parse(cron.nextRunAt as string) % 2_000).toBe(0);
    const manual = await svc.trigger("secs");
    expect(manual.jobId).toMatch(/^secs-t\d+$/);
    const fired: FireInfo[] = [];
    await startScheduler(config, "cron", fired).start();
    await eventually(() => expect(fired.filter((f) => f.name === "secs").length).toBeGreaterThanOrEqual(2), { timeoutMs: 8_000 });
    for (const f of fired) expect(Date.parse(f.dueAt) % 2_000).toBe(0);
    await svc.remove("secs");
    const n = fired.length;
    await sleep(2_500);
    expect(fired.length).toBeLessThanOrEqual(n + 1); // at most one run already claimed
    await expect(svc.get("secs")).rejects.toThrow(/not found/);
    // Wait for the slots to be swept (10 s each), then only the cursor is left.
    await sleep(11_000);
    const kv = await services.get(KVStoreService);
    const keys = await kv.keys(services.ctx.names.buckets.schedules);
    expect(keys.filter((k) => k.startsWith("due.") || k.startsWith("delayed.") || k.startsWith("sched."))).toEqual([]);
    expect(keys.filter((k) => k.startsWith("slot.")).length).toBeLessThanOrEqual(2);
  });
});
