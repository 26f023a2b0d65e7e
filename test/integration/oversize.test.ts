/**
 * Oversized input against a real nats-server whose max_payload is 64 KiB, through the
 * library API: an enqueue over the limit is a PayloadTooLargeError naming the size and the
 * limit (nothing stored); and a worker given something that cannot be stored whole (a job
 * near the limit whose dead-letter entry would be larger, a poison message whose base64 copy
 * would be larger, a result too large for the results bucket, a huge error, a huge or
 * non-JSON progress value) dead-letters it with a clear reason, cutting what it must and
 * saying so, sets its status to failed, and never crashes or loops on it.
 */
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { NaqConfigInput } from "../../src/config/schema.js";
import { PayloadTooLargeError } from "../../src/model/errors.js";
import { Queue } from "../../src/queue.js";
import { JobService } from "../../src/services/jobs.js";
import { QueueService } from "../../src/services/queues.js";
import { Worker, type JobEventInfo } from "../../src/worker/worker.js";
import { eventually, startServer, type NatsServer } from "../support/index.js";

const MAX_PAYLOAD = 65_536;
let server: NatsServer | undefined;
let count = 0;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  server = await startServer({ config: `max_payload: ${MAX_PAYLOAD}` });
});
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
});
afterAll(async () => {
  await server?.[Symbol.asyncDispose]();
});

function fresh(): { config: NaqConfigInput; queue: Queue; jobs: () => Promise<JobService> } {
  const config: NaqConfigInput = { connection: { servers: [(server as NatsServer).url] }, namespace: `big${++count}` };
  const queue = new Queue("default", { config });
  cleanups.push(() => queue.close());
  return { config, queue, jobs: async () => (await queue.services()).get(JobService) };
}

async function startWorker(config: NaqConfigInput, handlers: Record<string, (p: unknown, ctx: { progress(v: unknown): void }) => unknown>) {
  const worker = new Worker({ config, handlers, graceMs: 2_000 });
  const seen: JobEventInfo[] = [];
  const errors: Error[] = [];
  worker.on("job", (j) => seen.push(j));
  worker.on("error", (e) => errors.push(e));
  cleanups.push(() => worker.close({ force: true }));
  await worker.start();
  return { worker, seen, errors };
}

async function deadLetterOf(jobs: JobService, id: string) {
  return eventually(
    async () => {
      const dl = await jobs.getDeadLetter(id);
      if (!dl) throw new Error(`${id} not dead-lettered yet`);
      return dl;
    },
    { timeoutMs: 15_000 },
  );
}

describe("oversized input (max_payload 64 KiB)", () => {
  it("enqueue over the limit: PayloadTooLargeError with the size and the limit; nothing is stored", async () => {
    const { queue, jobs } = fresh();
    const err = await queue.enqueue("t", { blob: "x".repeat(70_000) }, { id: "too-big" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadTooLargeError);
    const e = err as PayloadTooLargeError;
    expect(e.limit).toBe(MAX_PAYLOAD - 256);
    expect(e.bytes).toBeGreaterThan(70_000);
    expect(e.exitCode).toBe(2);
    expect(e.message).toMatch(new RegExp(`job too-big is ${e.bytes} bytes, over the limit of ${MAX_PAYLOAD - 256} bytes \\(the server's max_payload of ${MAX_PAYLOAD} bytes`));
    // A job just under the limit is fine; the one over it never reached the stream.
    const ok = await queue.enqueue("t", { blob: "x".repeat(60_000) });
    expect(ok.seq).toBe(1);
    const queues = await (await queue.services()).get(QueueService);
    expect(await queues.depth("default")).toMatchObject({ waiting: 1 });
    await expect((await jobs()).status("too-big")).rejects.toThrow(/not found/);
  });

  it("a job near the limit that fails: its dead-letter entry is cut to fit and says so; status failed; no loop", { timeout: 40_000 }, async () => {
    const { config, queue, jobs } = fresh();
    const { worker, seen } = await startWorker(config, {
      fail: () => {
        throw new Error(`upstream said no: ${"e".repeat(50_000)}`);
      },
      add: (p) => (p as { a: number; b: number }).a + (p as { a: number; b: number }).b,
    });
    // 64,000 bytes fit one message, but not beside a 50 KB error in one dead-letter entry.
    const big = await queue.enqueue("fail", { blob: "y".repeat(64_000) }, { retries: 0 });
    const unknown = await queue.enqueue("nope", { blob: "z".repeat(64_900) }, { retries: 0 });
    const js = await jobs();
    for (const id of [big.id, unknown.id]) {
      const record = await queue.getResult(id, { wait: true, timeoutMs: 15_000 });
      expect(record.status).toBe("failed");
      const dl = await deadLetterOf(js, id);
      expect(new TextEncoder().encode(JSON.stringify(dl)).length).toBeLessThanOrEqual(MAX_PAYLOAD);
      expect(dl.truncated).toBe(true);
      if (dl.job) {
        expect(dl.job.id).toBe(id); // the job was kept whole; the error was cut
        expect(dl.error?.message.length).toBeLessThan(2_000);
      } else {
        expect(dl.reason).toMatch(/dead-letter entry cut to fit max_payload \(\d+ bytes\): only the first bytes of the \d+-byte job are kept/);
        expect(dl.size).toBeGreaterThan(60_000);
        expect(Buffer.from(dl.raw as string, "base64").toString()).toMatch(/^\{"v":1,"id":/);
        await expect(js.retry(id)).rejects.toThrow(/cannot be retried/);
      }
    }
    // Each dead-lettered once, and the worker goes on with normal jobs.
    const r = await queue.enqueue("add", { a: 2, b: 3 });
    expect(await queue.getResult(r.id, { wait: true, timeoutMs: 10_000 })).toMatchObject({ status: "completed", result: 5 });
    expect(seen.filter((j) => j.outcome === "failed").map((j) => j.id).sort()).toEqual([big.id, unknown.id].sort());
    expect(worker.stats.failed).toBe(2);
  });

  it("a poison message near the limit: dead-lettered with as much of it as fits (base64), marked truncated", { timeout: 30_000 }, async () => {
    const { config, jobs } = fresh();
    const { seen } = await startWorker(config, { add: () => 1 });
    const nc = await connect({ servers: (server as NatsServer).url });
    let seq: number;
    try {
      seq = (await jetstream(nc).publish(`${config.namespace as string}.queue.default`, new TextEncoder().encode(`not json ${"#".repeat(60_000)}`))).seq;
    } finally {
      await nc.close();
    }
    const dl = await deadLetterOf(await jobs(), `_seq${seq}`);
    expect(dl.reason).toMatch(/^invalid job: .*not valid JSON/);
    expect(dl).toMatchObject({ truncated: true, size: 60_009 });
    expect(Buffer.from(dl.raw as string, "base64").toString()).toMatch(/^not json ###/);
    await eventually(() => expect(seen.filter((j) => j.outcome === "failed")).toHaveLength(1), { timeoutMs: 5_000 });
  });

  it("a result too large for the results bucket: the job fails at once with the sizes (no retries), the worker goes on", { timeout: 30_000 }, async () => {
    const { config, queue, jobs } = fresh();
    let runs = 0;
    const { errors } = await startWorker(config, {
      huge: () => {
        runs++;
        return "r".repeat(100_000);
      },
    });
    const { id } = await queue.enqueue("huge", null, { retries: 3 });
    const record = await queue.getResult(id, { wait: true, timeoutMs: 15_000 });
    expect(record, `${JSON.stringify({ ...record, error: undefined })} worker errors: ${errors.map((e) => e.message).join("; ")}`).toMatchObject({ status: "failed", error: { name: "PayloadTooLargeError" } });
    // Failed for good on the attempt that ran (the attempt number is the delivery count, which a
    // worker's prefetch hand-back can raise without running the job: `runs` below is the proof).
    expect(record.attempts).toBeLessThan(record.maxAttempts);
    expect(record.result).toBeUndefined();
    expect(record.reason).toMatch(/^result too large: the job's record is \d+ bytes, over the limit of 65280 bytes \(the server's max_payload\)/);
    expect((await deadLetterOf(await jobs(), id)).job?.id).toBe(id); // a small job: retryable as it was
    expect(runs, errors.map((e) => e.message).join("; ")).toBe(1);
  });

  it("huge and non-JSON progress values do not stall the job's events", { timeout: 30_000 }, async () => {
    const { config, queue, jobs } = fresh();
    await startWorker(config, {
      chatty: (_p, ctx) => {
        ctx.progress({ big: "p".repeat(100_000) });
        ctx.progress({ n: 10n });
        return "done";
      },
    });
    const { id } = await queue.enqueue("chatty");
    expect(await queue.getResult(id, { wait: true, timeoutMs: 15_000 })).toMatchObject({ status: "completed", result: "done" });
    const js = await jobs();
    const types = await eventually(
      async () => {
        const seen: string[] = [];
        for await (const ev of js.jobEvents(id)) seen.push(ev.type);
        if (!seen.includes("completed")) throw new Error(`events so far: ${seen.join(", ")}`);
        return seen;
      },
      { timeoutMs: 10_000 },
    );
    // (`enqueued` can be stored after `started`: the producer publishes it after its ack.)
    expect([...types].sort()).toEqual(["completed", "enqueued", "progress", "progress", "started"]);
  });
});
