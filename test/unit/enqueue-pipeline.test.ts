/**
 * The pipelining of bulk enqueue (src/services/enqueue-pipeline.ts) over a fake publish
 * whose acks the test releases by hand: input order, the window, errors in their slot.
 * No server.
 */
import { describe, expect, it } from "vitest";
import { createEnvelope, type JobEnvelope } from "../../src/model/job.js";
import { publishMany, publishStream, type Publish } from "../../src/services/enqueue-pipeline.js";
import type { EnqueueResult } from "../../src/services/jobs.js";

/** A publish whose acks wait until acked; records the envelopes and the most in flight. */
function fakePublish(fail: (env: JobEnvelope) => unknown = () => undefined) {
  const published: JobEnvelope[] = [];
  const waiting: Array<() => void> = [];
  let inflight = 0;
  let maxInflight = 0;
  const publish: Publish = (env) => {
    published.push(env);
    inflight++;
    maxInflight = Math.max(maxInflight, inflight);
    return new Promise<EnqueueResult>((resolve, reject) => {
      waiting.push(() => {
        inflight--;
        const err = fail(env);
        if (err !== undefined) reject(err);
        else resolve({ id: env.id, queue: env.queue, seq: published.indexOf(env) + 1, duplicate: false });
      });
    });
  };
  return {
    publish,
    published,
    get maxInflight() {
      return maxInflight;
    },
    /** Acks publishes as they come, newest first, until `done` settles. */
    async ackUntil<T>(done: Promise<T>): Promise<T> {
      let finished = false;
      void done.finally(() => (finished = true)).catch(() => undefined);
      while (!finished) {
        await new Promise((r) => setImmediate(r));
        waiting.pop()?.();
      }
      return done;
    },
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("publishMany", () => {
  it("keeps results in input order with at most `window` in flight", async () => {
    const f = fakePublish();
    const inputs = Array.from({ length: 20 }, (_, i) => ({ task: "t", id: `j${i}` }));
    const results = await f.ackUntil(publishMany(f.publish, inputs, { window: 4 }));
    expect(results.map((r) => (r instanceof Error ? r : r.id))).toEqual(inputs.map((i) => i.id));
    expect(f.maxInflight).toBe(4);
  });

  it("takes window 1 for a window under 1, and 256 by default", async () => {
    const one = fakePublish();
    await one.ackUntil(publishMany(one.publish, [{ task: "a" }, { task: "b" }, { task: "c" }], { window: 0 }));
    expect(one.maxInflight).toBe(1);

    const many = fakePublish();
    await many.ackUntil(publishMany(many.publish, Array.from({ length: 300 }, () => ({ task: "t" }))));
    expect(many.maxInflight).toBe(256);
  });

  it("puts an invalid input's error in its slot without publishing it", async () => {
    const f = fakePublish();
    const results = await f.ackUntil(publishMany(f.publish, [{ task: "ok" }, { task: "" }, { task: "ok2" }]));
    expect(results[0]).toMatchObject({ queue: "default" });
    expect(results[1]).toBeInstanceOf(Error);
    expect(results[2]).toMatchObject({ queue: "default" });
    expect(f.published.map((e) => e.task)).toEqual(["ok", "ok2"]);
  });

  it("an input that is not an object gets createEnvelope's one-line error; a publish that throws at once fails only its slot", async () => {
    const f = fakePublish();
    const results = await f.ackUntil(publishMany(f.publish, [null, "job"] as unknown as Array<{ task: string }>));
    for (const r of results) expect((r as Error).message).toBe("a job must be an object such as { task, payload }");
    const throwing = await publishMany(() => {
      throw new Error("closed");
    }, [{ task: "a" }, { task: "b" }]);
    expect(throwing.map((r) => (r as Error).message)).toEqual(["closed", "closed"]);
  });

  it("sends inputs that name no queue to `queue`, and takes envelopes as they are", async () => {
    const f = fakePublish();
    const env = createEnvelope({ task: "t", queue: "mine" });
    const results = await f.ackUntil(publishMany(f.publish, [{ task: "t" }, { task: "t", queue: "named" }, env], { queue: "other" }));
    expect(results.map((r) => (r as EnqueueResult).queue)).toEqual(["other", "named", "mine"]);
    expect(f.published[2]).toBe(env);
  });

  it("puts a failed publish's error in its slot (a non-Error becomes one)", async () => {
    const f = fakePublish((env) => (env.task === "boom" ? new Error("nope") : env.task === "odd" ? "odd failure" : undefined));
    const results = await f.ackUntil(publishMany(f.publish, [{ task: "boom" }, { task: "fine" }, { task: "odd" }], { window: 2 }));
    expect((results[0] as Error).message).toBe("nope");
    expect(results[1]).toMatchObject({ duplicate: false });
    expect(results[2]).toBeInstanceOf(Error);
    expect((results[2] as Error).message).toBe("odd failure");
  });
});

describe("publishStream", () => {
  async function collect<T>(gen: AsyncGenerator<[T, EnqueueResult | Error]>, f: ReturnType<typeof fakePublish>) {
    const out: Array<[T, EnqueueResult | Error]> = [];
    const done = (async () => {
      for await (const pair of gen) out.push(pair);
    })();
    await f.ackUntil(done);
    return out;
  }

  it("yields each item with its result in input order, at most `window` in flight", async () => {
    const f = fakePublish();
    async function* items() {
      for (let i = 0; i < 10; i++) {
        await tick();
        yield i;
      }
    }
    const out = await collect(publishStream(f.publish, items(), (i) => createEnvelope({ task: "t", id: `j${i}` }), { window: 3 }), f);
    expect(out.map(([i, r]) => [i, (r as EnqueueResult).id])).toEqual(Array.from({ length: 10 }, (_, i) => [i, `j${i}`]));
    expect(f.maxInflight).toBeLessThanOrEqual(3);
  });

  it("gives an item whose envelope throws, or whose publish fails, its error", async () => {
    const f = fakePublish((env) => (env.task === "bad" ? new Error("rejected") : undefined));
    const envelopeOf = (s: string): JobEnvelope => {
      if (s === "throw") throw new Error("no envelope");
      return createEnvelope({ task: s });
    };
    const out = await collect(publishStream(f.publish, ["a", "throw", "bad", "b"], envelopeOf, { window: 0 }), f);
    expect(out.map(([s, r]) => [s, r instanceof Error ? r.message : r.queue])).toEqual([
      ["a", "default"],
      ["throw", "no envelope"],
      ["bad", "rejected"],
      ["b", "default"],
    ]);
    expect(f.published.map((e) => e.task)).toEqual(["a", "bad", "b"]);
    expect(f.maxInflight).toBe(1);
  });
});
