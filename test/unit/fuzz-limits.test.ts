/**
 * Size limits without a server: dead-letter entries are cut to fit max_payload (fuzzed with
 * random sizes), errors are bounded, and the worker's per-delivery logic dead-letters (never
 * retries, never loops on) a message over its server's max_payload, a result too large to
 * store, and a huge or unencodable error.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PayloadTooLargeError } from "../../src/model/errors.js";
import { createEnvelope, encodeEnvelope, type JobRecord } from "../../src/model/job.js";
import { boundedError, fitDeadLetter, MAX_ERROR_MESSAGE, truncateText } from "../../src/model/limits.js";
import type { DeadLetter } from "../../src/services/jobs.js";
import type { Delivery } from "../../src/services/queues.js";
import { execute, RunningJob, toJobError } from "../../src/worker/execute.js";
import { fakeExecDeps } from "../support/exec-deps.js";
import type { Handler } from "../../src/worker/handlers.js";
import { RUNS } from "../support/fuzz.js";

const bytesOf = (v: unknown) => new TextEncoder().encode(JSON.stringify(v)).length;

describe("fitDeadLetter", () => {
  it("any entry is cut to at most the limit, keeps what fits, and says so (400 runs)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 40_000 }),
        fc.integer({ min: 0, max: 20_000 }),
        fc.integer({ min: 2_048, max: 30_000 }),
        fc.boolean(),
        (payloadSize, messageSize, limit, poison) => {
          const job = createEnvelope({ id: "j1", task: "t", payload: "é".repeat(payloadSize) });
          const entry: DeadLetter = {
            v: 1,
            id: poison ? "_seq9" : "j1",
            queue: "default",
            reason: `failed: ${"r".repeat(messageSize)}`,
            error: { name: "Error", message: "m".repeat(messageSize), stack: "s".repeat(messageSize) },
            attempts: 1,
            failedAt: new Date(0).toISOString(),
            ...(poison ? { raw: Buffer.from(encodeEnvelope(job)).toString("base64") } : { job }),
          };
          const out = fitDeadLetter(entry, limit);
          expect(bytesOf(out)).toBeLessThanOrEqual(limit);
          if (bytesOf(entry) <= limit) {
            expect(out).toBe(entry);
            return;
          }
          expect(out.truncated).toBe(true);
          if (out.job) expect(out.job).toEqual(job); // the job is kept whole, or not at all
          else if (out.size === undefined) expect(out.raw).toBe(entry.raw); // a poison message kept whole
          else {
            expect(out.size).toBe(encodeEnvelope(job).length);
            expect(out.reason).toMatch(/cut to fit max_payload/);
            // raw holds a prefix of the original message
            const kept = Buffer.from(out.raw ?? "", "base64");
            expect(Buffer.from(encodeEnvelope(job)).subarray(0, kept.length).equals(kept)).toBe(true);
          }
        },
      ),
      RUNS(400),
    );
  });

  it("errors and texts are bounded and say how much was cut", () => {
    expect(truncateText("abcdef", 3)).toBe("abc… (3 more characters cut)");
    const e = boundedError({ name: "E", message: "x".repeat(MAX_ERROR_MESSAGE + 5) });
    expect(e.message).toMatch(/5 more characters cut\)$/);
    expect(toJobError(new Error("y".repeat(100_000))).message.length).toBeLessThan(MAX_ERROR_MESSAGE + 50);
    // Things thrown that are not errors, or have odd names and messages, still become a JobError of strings.
    for (const thrown of [undefined, null, 42, { message: 1 }, Object.assign(new Error("x"), { name: 7 })]) {
      const je = toJobError(thrown);
      expect(typeof je.name).toBe("string");
      expect(typeof je.message).toBe("string");
    }
  });
});

type Call = { op: string; record?: JobRecord; entry?: DeadLetter; delayMs?: number };

function run(data: Uint8Array, handlers: Record<string, Handler>, o: { maxJobBytes?: number; recordLimit?: number } = {}) {
  const calls: Call[] = [];
  const delivery: Delivery = {
    queue: "default",
    data,
    subject: "naq.queue.default",
    seq: 5,
    deliveryCount: 1,
    ack: () => void calls.push({ op: "ack" }),
    nak: (delayMs?: number) => void calls.push({ op: "nak", delayMs }),
    term: () => void calls.push({ op: "term" }),
    working: () => undefined,
  };
  const deps = fakeExecDeps({
    handlers: new Map(Object.entries(handlers)),
    writeRecord: async (record) => {
      // As JobService.writeRecord: a record over the limit is a PayloadTooLargeError.
      const size = bytesOf(record);
      if (o.recordLimit !== undefined && size > o.recordLimit) throw new PayloadTooLargeError(`record is ${size} bytes`, size, o.recordLimit, "result");
      calls.push({ op: "writeRecord", record });
    },
    deadLetter: async (entry) => void calls.push({ op: "deadLetter", entry }),
    ...(o.maxJobBytes !== undefined ? { maxJobBytes: o.maxJobBytes } : {}),
  });
  return { calls, go: () => execute(new RunningJob(delivery), deps) };
}

describe("execute: messages and results over the limit", () => {
  it("a valid job over the worker's max_payload is dead-lettered without running; its status is failed", async () => {
    let ran = false;
    const env = createEnvelope({ id: "big1", task: "work", payload: "x".repeat(5_000) });
    const r = run(encodeEnvelope(env), { work: () => void (ran = true) }, { maxJobBytes: 4_096 });
    const outcome = await r.go();
    expect(ran).toBe(false);
    expect(outcome).toMatchObject({ kind: "failed", id: "big1" });
    expect(r.calls.map((c) => c.op)).toEqual(["deadLetter", "writeRecord", "term"]);
    expect(r.calls[0]?.entry?.reason).toMatch(/oversized job: the message is \d+ bytes, over the max_payload of 4096 bytes/);
    expect(r.calls[1]?.record).toMatchObject({ id: "big1", status: "failed", attempts: 0 });
  });

  it("an undecodable message over the limit is dead-lettered as oversized (raw), never nak'ed", async () => {
    const r = run(new Uint8Array(10_000).fill(0x7b), {}, { maxJobBytes: 4_096 });
    await r.go();
    expect(r.calls.map((c) => c.op)).toEqual(["deadLetter", "term"]);
    expect(r.calls[0]?.entry).toMatchObject({ id: "_seq5", reason: expect.stringMatching(/oversized job/) as unknown });
  });

  it("a result too large to store fails the job for good with the sizes; nothing is retried", async () => {
    const env = createEnvelope({ id: "r1", task: "work", retries: 5 });
    const r = run(encodeEnvelope(env), { work: () => "z".repeat(20_000) }, { recordLimit: 10_000 });
    const outcome = await r.go();
    expect(outcome).toMatchObject({ kind: "failed", attempt: 1 });
    expect(r.calls.map((c) => c.op)).toEqual(["deadLetter", "writeRecord", "term"]);
    expect(r.calls[0]?.entry?.reason).toMatch(/result too large: the job's record is \d+ bytes, over the limit of 10000 bytes/);
    expect(r.calls[1]?.record).toMatchObject({ status: "failed", error: { name: "PayloadTooLargeError" } });
    expect(r.calls[1]?.record?.result).toBeUndefined();
  });

  it("a huge error message is bounded in the record and the dead-letter entry", async () => {
    const env = createEnvelope({ id: "e1", task: "work", retries: 0 });
    const r = run(encodeEnvelope(env), {
      work: () => {
        throw new Error("boom ".repeat(100_000));
      },
    });
    await r.go();
    const rec = r.calls.find((c) => c.op === "writeRecord")?.record;
    expect(rec?.error?.message.length).toBeLessThan(MAX_ERROR_MESSAGE + 50);
    expect(rec?.error?.message).toMatch(/more characters cut\)$/);
  });
});
