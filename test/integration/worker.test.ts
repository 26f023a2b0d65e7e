/**
 * Workers and jobs through the library API against a real nats-server (one per file,
 * a fresh namespace per test): exactly-once completion when nothing fails, retries with
 * backoff, dead-lettering, in-progress acks for long jobs, poison input, idempotent
 * enqueue, dependencies, and graceful close.
 */
import { describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { jetstream, type JsMsg } from "@nats-io/jetstream";
import type { NaqConfigInput } from "../../src/config/schema.js";
import { JobService } from "../../src/services/jobs.js";
import { QueueService } from "../../src/services/queues.js";
import { Queue } from "../../src/queue.js";
import { Worker, type JobEventInfo, type WorkerOptions } from "../../src/worker/worker.js";
import { HandBacks } from "../../src/worker/hand-back.js";
import type { EnqueueResult } from "../../src/services/jobs.js";
import { eventually, useLibraryFixture } from "../support/index.js";

// Leak guard: every worker and queue a test opened is closed (cleanup), even when it failed.
const lib = useLibraryFixture("t");
const { freshConfig, cleanup } = lib;

function openQueue(config: NaqConfigInput, name?: string): Queue {
  const q = new Queue(name, { config });
  cleanup(() => q.close());
  return q;
}

async function startWorker(opts: Omit<WorkerOptions, "config"> & { config: NaqConfigInput }): Promise<{ worker: Worker; jobs: JobEventInfo[] }> {
  const worker = new Worker({ graceMs: 5_000, ...opts });
  const jobs: JobEventInfo[] = [];
  const errors: Error[] = [];
  worker.on("job", (j) => jobs.push(j));
  worker.on("error", (e) => errors.push(e));
  cleanup(() => worker.close({ force: true }));
  await worker.start();
  return { worker, jobs };
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      reject(signal.reason as Error);
    });
  });

function ok(r: EnqueueResult | Error | undefined): EnqueueResult {
  if (!r || r instanceof Error) throw r ?? new Error("no enqueue result");
  return r;
}

/** Counts handler invocations per job id. */
class Invocations {
  readonly byId = new Map<string, number>();
  readonly starts = new Map<string, number[]>();
  hit(id: string): number {
    const n = (this.byId.get(id) ?? 0) + 1;
    this.byId.set(id, n);
    this.starts.set(id, [...(this.starts.get(id) ?? []), performance.now()]);
    return n;
  }
  count(id: string): number {
    return this.byId.get(id) ?? 0;
  }
  get total(): number {
    return [...this.byId.values()].reduce((a, b) => a + b, 0);
  }
}

describe("Worker (library API, real nats-server)", () => {
  it("2,000 jobs over 2 workers x concurrency 10 each complete exactly once", { timeout: 60_000 }, async () => {
    const config = freshConfig();
    const queue = openQueue(config);
    const calls = new Invocations();
    const handlers = {
      double: (payload: unknown, ctx: { id: string }) => {
        calls.hit(ctx.id);
        return (payload as { i: number }).i * 2;
      },
    };
    const N = 2_000;
    const results = await queue.enqueueMany(Array.from({ length: N }, (_, i) => ({ task: "double", payload: { i } })));
    const ids = results.map((r) => ok(r).id);
    expect(new Set(ids).size).toBe(N);
    expect(results.every((r) => !(r instanceof Error) && !r.duplicate)).toBe(true);

    const a = await startWorker({ config, handlers, concurrency: 10 });
    const b = await startWorker({ config, handlers, concurrency: 10 });
    await eventually(
      () => {
        if (a.worker.stats.processed + b.worker.stats.processed < N) throw new Error(`${calls.total}/${N} done`);
      },
      { timeoutMs: 45_000, intervalMs: 50 },
    );
    // Give a wrongly redelivered job a moment to show up as a second run.
    await sleep(300);
    const twice = ids.filter((id) => calls.count(id) !== 1);
    expect(twice).toEqual([]);
    expect(calls.total).toBe(N);
    expect(a.worker.stats.processed + b.worker.stats.processed).toBe(N);
    expect(a.worker.stats.failed + b.worker.stats.failed).toBe(0);
    // Both workers shared the queue.
    expect(a.worker.stats.processed).toBeGreaterThan(0);
    expect(b.worker.stats.processed).toBeGreaterThan(0);

    for (let i = 0; i < N; i += 200) {
      const records = await Promise.all(ids.slice(i, i + 200).map((id) => queue.getResult(id)));
      records.forEach((r, k) => {
        expect(r.status).toBe("completed");
        expect(r.attempts).toBe(1);
        expect(r.result).toBe((i + k) * 2);
      });
    }
    // Acks are sent after the record is written and are not awaited: they land shortly after.
    const queues = await (await queue.services()).get(QueueService);
    await eventually(async () => expect(await queues.depth("default")).toMatchObject({ waiting: 0, inFlight: 0 }), { timeoutMs: 5_000 });
  });

  it("retries a failing job with the backoff delay until it completes on attempt 3", async () => {
    const config = freshConfig();
    const queue = openQueue(config);
    const calls = new Invocations();
    await startWorker({
      config,
      handlers: {
        flaky: (_p: unknown, ctx: { id: string; attempt: number }) => {
          calls.hit(ctx.id);
          if (ctx.attempt < 3) throw new Error(`flaky failure on attempt ${ctx.attempt}`);
          return { attempt: ctx.attempt };
        },
      },
    });
    const { id } = await queue.enqueue("flaky", null, { retries: 5, backoff: { type: "fixed", delayMs: 200 } });
    const record = await queue.getResult(id, { wait: true, timeoutMs: 15_000 });
    expect(record).toMatchObject({ status: "completed", attempts: 3, maxAttempts: 6, result: { attempt: 3 } });
    expect(calls.count(id)).toBe(3);
    const starts = calls.starts.get(id) ?? [];
    const gaps = starts.slice(1).map((t, i) => t - (starts[i] as number));
    expect(gaps).toHaveLength(2);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(200);
      expect(gap).toBeLessThan(1_500);
    }
  });

  it("deliveries handed back unrun (a stopping or full worker) do not use up attempts", async () => {
    const config = freshConfig();
    const queue = openQueue(config);
    const services = await queue.services();
    const [queues, jobs] = await Promise.all([services.get(QueueService), services.get(JobService)]);
    const names = services.ctx.names;
    await queues.consumer("default");
    // 1 retry: 2 attempts. Without the accounting, the two hand-backs below would make the
    // first real run "attempt 3" and its failure final.
    const { id } = await queue.enqueue("flaky", null, { retries: 1, backoff: { type: "fixed", delayMs: 100 } });
    const nc = await connect({ servers: lib.server.url });
    cleanup(() => nc.close());
    const consumer = await jetstream(nc).consumers.get(names.jobsStream, names.queueConsumer("default"));
    const handBacks = new HandBacks((jobId) => jobs.recordRelease(jobId));
    for (let i = 1; i <= 2; i++) {
      const m = await consumer.next({ expires: 5_000 });
      expect(m?.info.deliveryCount).toBe(i);
      handBacks.handBack({ queue: "default", data: (m as JsMsg).data, subject: (m as JsMsg).subject, seq: (m as JsMsg).seq, deliveryCount: i, ack: () => undefined, nak: () => (m as JsMsg).nak(), term: () => undefined, working: () => undefined });
      await handBacks.settle();
    }
    expect(await jobs.skippedDeliveries(id)).toEqual({ waits: 0, released: 2 });

    const attempts: number[] = [];
    await startWorker({
      config,
      handlers: {
        flaky: (_p: unknown, ctx: { attempt: number }) => {
          attempts.push(ctx.attempt);
          if (ctx.attempt === 1) throw new Error("first attempt fails");
          return "ok";
        },
      },
    });
    const record = await queue.getResult(id, { wait: true, timeoutMs: 10_000 });
    expect(record).toMatchObject({ status: "completed", attempts: 2, maxAttempts: 2 });
    expect(attempts).toEqual([1, 2]);
  });

  it("a job that always fails is dead-lettered after its attempts, with the last error", async () => {
    const config = freshConfig();
    const queue = openQueue(config);
    const calls = new Invocations();
    const { jobs: seen } = await startWorker({
      config,
      handlers: {
        broken: (_p: unknown, ctx: { id: string; attempt: number }) => {
          calls.hit(ctx.id);
          throw new Error(`broken on attempt ${ctx.attempt}`);
        },
      },
    });
    const { id } = await queue.enqueue("broken", { x: 1 }, { retries: 2, backoff: { type: "fixed", delayMs: 100 } });
    const record = await queue.getResult(id, { wait: true, timeoutMs: 15_000 });
    expect(record).toMatchObject({
      id,
      status: "failed",
      attempts: 3,
      maxAttempts: 3,
      reason: "failed after 3 attempts",
      error: { name: "Error", message: "broken on attempt 3" },
    });
    expect(calls.count(id)).toBe(3);

    const jobService = await (await queue.services()).get(JobService);
    const dl = await jobService.getDeadLetter(id);
    expect(dl).toMatchObject({
      id,
      queue: "default",
      task: "broken",
      reason: "failed after 3 attempts",
      attempts: 3,
      error: { message: "broken on attempt 3" },
      job: { id, task: "broken", payload: { x: 1 }, attempts: 3 },
    });
    expect((await jobService.status(id)).status).toBe("failed");
    await eventually(() => expect(seen.map((j) => j.outcome)).toEqual(["retrying", "retrying", "failed"]), { timeoutMs: 5_000 });
    // Terminated: gone from the queue at once (not waiting for ack_wait to be delivered again).
    const queues = await (await queue.services()).get(QueueService);
    await eventually(async () => expect(await queues.depth("default")).toMatchObject({ waiting: 0, inFlight: 0 }), { timeoutMs: 5_000 });
    expect(calls.count(id)).toBe(3);
  });

  it("a job running 3x ack_wait is not redelivered while it runs", { timeout: 20_000 }, async () => {
    const config = freshConfig({ queues: { defaults: { ackWait: "1s" } } });
    const queue = openQueue(config);
    const calls = new Invocations();
    await startWorker({
      config,
      concurrency: 4,
      handlers: {
        long: async (_p: unknown, ctx: { id: string; signal: AbortSignal }) => {
          calls.hit(ctx.id);
          await sleep(3_500, ctx.signal);
          return "done";
        },
      },
    });
    const { id } = await queue.enqueue("long", null, { retries: 3 });
    const record = await queue.getResult(id, { wait: true, timeoutMs: 10_000 });
    expect(record).toMatchObject({ status: "completed", attempts: 1, result: "done" });
    expect(record.durationMs).toBeGreaterThanOrEqual(3_400);
    expect(calls.count(id)).toBe(1);
  });

  it("a garbage message on a queue subject is dead-lettered with a reason; the worker keeps working", async () => {
    const config = freshConfig();
    const ns = config.namespace as string;
    const queue = openQueue(config);
    const { worker, jobs: seen } = await startWorker({ config, handlers: { add: (p: unknown) => (p as { a: number; b: number }).a + (p as { a: number; b: number }).b } });

    // A producer that is not naq (another language, a typo in a script) publishes raw bytes.
    const nc = await connect({ servers: lib.server.url });
    let seq: number;
    try {
      seq = (await jetstream(nc).publish(`${ns}.queue.default`, new TextEncoder().encode("not json"))).seq;
    } finally {
      await nc.close();
    }

    const jobService = await (await queue.services()).get(JobService);
    const dl = await eventually(
      async () => {
        const entry = await jobService.getDeadLetter(`_seq${seq}`);
        if (!entry) throw new Error("not dead-lettered yet");
        return entry;
      },
      { timeoutMs: 10_000 },
    );
    expect(dl.reason).toMatch(/^invalid job: .*not valid JSON/);
    expect(Buffer.from(dl.raw as string, "base64").toString()).toBe("not json");
    expect(dl.job).toBeUndefined();

    const { id } = await queue.enqueue("add", { a: 1, b: 2 });
    expect(await queue.getResult(id, { wait: true, timeoutMs: 10_000 })).toMatchObject({ status: "completed", result: 3 });
    expect(seen.filter((j) => j.outcome === "failed")).toHaveLength(1); // dead-lettered once, not looping
    // The worker counts a job after its ack, a moment after the record a reader sees.
    await eventually(() => expect(worker.stats).toMatchObject({ processed: 1, failed: 1 }), { timeoutMs: 5_000 });
    // Acks are sent after the record is written and are not awaited: they land shortly after.
    const queues = await (await queue.services()).get(QueueService);
    await eventually(async () => expect(await queues.depth("default")).toMatchObject({ waiting: 0, inFlight: 0 }), { timeoutMs: 5_000 });
  });

  it("the same id enqueued twice is one job", async () => {
    const config = freshConfig();
    const queue = openQueue(config);
    const calls = new Invocations();
    const first = await queue.enqueue("once", { n: 1 }, { id: "order-42" });
    const second = await queue.enqueue("once", { n: 2 }, { id: "order-42" });
    expect(first).toMatchObject({ id: "order-42", duplicate: false });
    expect(second).toMatchObject({ id: "order-42", duplicate: true, seq: first.seq });
    await startWorker({ config, handlers: { once: (p: unknown, ctx: { id: string }) => (calls.hit(ctx.id), p) } });
    expect(await queue.getResult("order-42", { wait: true, timeoutMs: 10_000 })).toMatchObject({ status: "completed", result: { n: 1 } });
    // And once more after it ran: still inside the duplicate window, still not a new job.
    expect(await queue.enqueue("once", { n: 3 }, { id: "order-42" })).toMatchObject({ duplicate: true });
    await sleep(300);
    expect(calls.count("order-42")).toBe(1);
  });

  it("a job waits for its dependency, then runs after it", { timeout: 20_000 }, async () => {
    const config = freshConfig();
    const queue = openQueue(config);
    const spans = new Map<string, { start: number; end?: number }>();
    const { jobs: seen } = await startWorker({
      config,
      handlers: {
        step: async (p: unknown, ctx: { id: string }) => {
          const span: { start: number; end?: number } = { start: Date.now() };
          spans.set(ctx.id, span);
          await sleep((p as { ms: number }).ms);
          span.end = Date.now();
          return ctx.id;
        },
      },
    });
    const slow = await queue.enqueue("step", { ms: 1_500 }, { id: "slow-1" });
    const after = await queue.enqueue("step", { ms: 0 }, { id: "after-1", dependsOn: [slow.id] });
    const rec = await queue.getResult(after.id, { wait: true, timeoutMs: 15_000 });
    expect(rec).toMatchObject({ status: "completed", attempts: 1, result: "after-1" });
    const slowSpan = spans.get("slow-1");
    const afterSpan = spans.get("after-1");
    expect(slowSpan?.end).toBeDefined();
    expect(afterSpan?.start).toBeGreaterThanOrEqual(slowSpan?.end as number);
    expect(seen.some((j) => j.id === "after-1" && j.outcome === "waiting" && j.reason?.includes("slow-1"))).toBe(true);
    expect(seen.filter((j) => j.id === "after-1" && j.outcome === "failed")).toEqual([]);
  });

  it("a job whose dependency failed for good fails with a reason naming it", async () => {
    const config = freshConfig();
    const queue = openQueue(config);
    let childRan = false;
    await startWorker({
      config,
      handlers: {
        doomed: () => {
          throw new Error("cannot");
        },
        child: () => (childRan = true),
      },
    });
    const parent = await queue.enqueue("doomed", null, { id: "parent-1", retries: 0 });
    const child = await queue.enqueue("child", null, { id: "child-1", dependsOn: [parent.id] });
    expect(await queue.getResult(parent.id, { wait: true, timeoutMs: 10_000 })).toMatchObject({ status: "failed" });
    const rec = await queue.getResult(child.id, { wait: true, timeoutMs: 10_000 });
    expect(rec.status).toBe("failed");
    expect(rec.reason).toContain("parent-1");
    expect(rec.reason).toMatch(/dependency parent-1 failed/);
    expect(childRan).toBe(false);
  });

  it("close() while a pull is still open waits for the jobs it delivered", { timeout: 20_000 }, async () => {
    // Concurrency 5, two jobs: the pull that delivered them is still waiting for three more.
    const config = freshConfig();
    const queue = openQueue(config);
    const calls = new Invocations();
    const { worker, jobs: seen } = await startWorker({
      config,
      concurrency: 5,
      graceMs: 10_000,
      handlers: {
        nap: async (_p: unknown, ctx: { id: string; signal: AbortSignal }) => {
          calls.hit(ctx.id);
          await sleep(1_000, ctx.signal);
          return "rested";
        },
      },
    });
    const a = await queue.enqueue("nap");
    const b = await queue.enqueue("nap");
    await eventually(() => expect(calls.total).toBe(2), { timeoutMs: 5_000, intervalMs: 20 });
    await worker.close();
    expect(seen.map((j) => j.outcome)).toEqual(["completed", "completed"]);
    for (const id of [a.id, b.id]) expect(await queue.getResult(id)).toMatchObject({ status: "completed", attempts: 1 });
  });

  it("close() lets running jobs finish within grace; queued jobs stay for the next worker", { timeout: 30_000 }, async () => {
    const config = freshConfig();
    const queue = openQueue(config);
    const calls = new Invocations();
    const handlers = {
      nap: async (_p: unknown, ctx: { id: string; signal: AbortSignal }) => {
        calls.hit(ctx.id);
        await sleep(1_000, ctx.signal);
        return "rested";
      },
    };
    const results = await queue.enqueueMany(Array.from({ length: 6 }, () => ({ task: "nap" })));
    const ids = results.map((r) => ok(r).id);
    const first = await startWorker({ config, handlers, concurrency: 2, graceMs: 10_000 });
    await eventually(() => expect(calls.total).toBe(2), { timeoutMs: 5_000, intervalMs: 20 });

    const closing = performance.now();
    await first.worker.close();
    const closeMs = performance.now() - closing;
    expect(closeMs).toBeLessThan(5_000);
    expect(first.worker.stats).toMatchObject({ processed: 2, running: 0 });
    const finished = [...calls.byId.keys()];
    for (const id of finished) {
      expect(await queue.getResult(id)).toMatchObject({ status: "completed", result: "rested" });
    }

    const queues = await (await queue.services()).get(QueueService);
    expect(await queues.depth("default")).toMatchObject({ waiting: 4, inFlight: 0 });

    const second = await startWorker({ config, handlers, concurrency: 4 });
    const records = await Promise.all(ids.map((id) => queue.getResult(id, { wait: true, timeoutMs: 10_000 })));
    expect(records.map((r) => r.status)).toEqual(Array(6).fill("completed"));
    await eventually(() => expect(second.worker.stats.processed).toBe(4), { timeoutMs: 5_000 });
    for (const id of ids) expect(calls.count(id)).toBe(1);
  });
});
