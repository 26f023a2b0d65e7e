/**
 * The pure job model: envelope creation and decoding (every bad field named), backoff
 * parsing and delays (jitter with an injected random source), and job ids.
 */
import { describe, expect, it } from "vitest";
import { backoffDelay, DEFAULT_BACKOFF, parseBackoff, type Backoff } from "../../src/model/backoff.js";
import { newJobId } from "../../src/model/ids.js";
import {
  createEnvelope,
  decodeEnvelope,
  DEFAULT_QUEUE,
  DEFAULT_RETRIES,
  encodeEnvelope,
  JOB_VERSION,
  MAX_ATTEMPTS,
  validateEnvelope,
  type JobEnvelope,
} from "../../src/model/job.js";
import { validationErrorOf } from "../support/assertions.js";


const ULID = /^[0-9A-HJKMNP-TV-Z]{26}$/;
const NOW = new Date("2025-01-02T03:04:05.678Z");

function validJob(): Record<string, unknown> {
  return {
    v: 1,
    id: "job-1",
    queue: "emails",
    task: "send-welcome",
    payload: { user: 42 },
    enqueuedAt: NOW.toISOString(),
    attempts: 3,
    backoff: { type: "fixed", delayMs: 1000 },
  };
}

const bytes = (value: unknown): Uint8Array => new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));
const decodeWith = (patch: Record<string, unknown>): JobEnvelope => decodeEnvelope(bytes({ ...validJob(), ...patch }));

describe("createEnvelope", () => {
  it("fills in defaults: new ULID, default queue, null payload, retries 3, default backoff", () => {
    const env = createEnvelope({ task: "report" }, NOW);
    expect(env).toEqual({
      v: JOB_VERSION,
      id: expect.stringMatching(ULID),
      queue: DEFAULT_QUEUE,
      task: "report",
      payload: null,
      enqueuedAt: NOW.toISOString(),
      attempts: DEFAULT_RETRIES + 1,
      backoff: DEFAULT_BACKOFF,
    });
    // Optional fields are absent, not undefined: the wire format stays minimal.
    expect(Object.keys(env)).not.toContain("timeoutMs");
    expect(Object.keys(env)).not.toContain("dependsOn");
    expect(Object.keys(env)).not.toContain("labels");
  });

  it("what it makes itself (id, time, attempts, default backoff) passes the worker's full check", () => {
    // createEnvelope checks only the caller's fields; this is what lets it skip the rest.
    for (const t of [0, 1, NOW.getTime(), 2 ** 47 - 1]) {
      for (let i = 0; i < 300; i++) {
        const env = createEnvelope({ task: "t", retries: i % 10 }, t, "q");
        expect(validateEnvelope(JSON.parse(JSON.stringify(env)))).toEqual(env);
      }
    }
    expect(createEnvelope({ task: "t" }, 5, "mine").queue).toBe("mine");
    expect(createEnvelope({ task: "t", queue: "theirs" }, 5, "mine").queue).toBe("theirs");
  });

  it("the id's time part is the enqueue time", () => {
    const a = createEnvelope({ task: "t" }, new Date(1_000_000));
    const b = createEnvelope({ task: "t" }, new Date(2_000_000));
    expect(a.id.slice(0, 10) < b.id.slice(0, 10)).toBe(true);
  });

  it("keeps what the caller gave", () => {
    const backoff: Backoff = { type: "list", delaysMs: [100, 200] };
    const env = createEnvelope(
      {
        task: "t",
        id: "my_id-1",
        queue: "emails",
        payload: [1, "two", { three: 3 }],
        retries: 0,
        backoff,
        timeoutMs: 5_000,
        dependsOn: ["a", "b"],
        labels: { team: "x" },
      },
      NOW,
    );
    expect(env).toMatchObject({
      id: "my_id-1",
      queue: "emails",
      payload: [1, "two", { three: 3 }],
      attempts: 1,
      backoff,
      timeoutMs: 5_000,
      dependsOn: ["a", "b"],
      labels: { team: "x" },
    });
  });

  it("copies dependsOn and labels (later changes by the caller do not leak in) and drops empty ones", () => {
    const dependsOn = ["a"];
    const labels = { k: "v" };
    const env = createEnvelope({ task: "t", dependsOn, labels });
    dependsOn.push("b");
    labels.k = "changed";
    expect(env.dependsOn).toEqual(["a"]);
    expect(env.labels).toEqual({ k: "v" });
    const empty = createEnvelope({ task: "t", dependsOn: [], labels: {} });
    expect("dependsOn" in empty).toBe(false);
    expect("labels" in empty).toBe(false);
  });

  it("round-trips through encode/decode", () => {
    const env = createEnvelope({ task: "t", payload: { a: [1, 2, null] }, timeoutMs: 10, dependsOn: ["x"] });
    expect(decodeEnvelope(encodeEnvelope(env))).toEqual(env);
  });

  it.each([-1, 1.5, MAX_ATTEMPTS, Number.NaN])("rejects retries %s", (retries) => {
    const err = validationErrorOf(() => createEnvelope({ task: "t", retries }));
    expect(err.field).toBe("retries");
    expect(err.message).toContain("retries");
  });

  it("accepts retries up to MAX_ATTEMPTS - 1", () => {
    expect(createEnvelope({ task: "t", retries: MAX_ATTEMPTS - 1 }).attempts).toBe(MAX_ATTEMPTS);
  });

  it.each([
    [{ task: "" }, "task"],
    [{ task: "has space" }, "task"],
    [{ task: "x".repeat(129) }, "task"],
    [{ task: "t", queue: "a.b" }, "queue"],
    [{ task: "t", queue: "_reserved" }, "queue"],
    [{ task: "t", id: "a.b" }, "id"],
    [{ task: "t", timeoutMs: 0 }, "timeoutMs"],
    [{ task: "t", backoff: { type: "fixed", delayMs: -1 } as Backoff }, "backoff.delayMs"],
  ])("rejects %j (field %s)", (input, field) => {
    expect(validationErrorOf(() => createEnvelope(input)).field).toBe(field);
  });
});

describe("decodeEnvelope", () => {
  it("decodes a valid job", () => {
    expect(decodeWith({})).toEqual(validJob());
  });

  it.each(["not json", "", "{", "{'single': 'quotes'}"])("rejects bad JSON %j", (text) => {
    const err = validationErrorOf(() => decodeEnvelope(bytes(text)));
    expect(err.message).toMatch(/not valid JSON/);
  });

  it.each([[null], [[1, 2]], ["a string"], [42]])("rejects a JSON value that is not an object: %j", (value) => {
    expect(validationErrorOf(() => decodeEnvelope(bytes(JSON.stringify(value)))).message).toMatch(/JSON object/);
  });

  it.each([2, 0, "1", null, undefined])("rejects version %j, naming field v", (v) => {
    const err = validationErrorOf(() => decodeWith({ v }));
    expect(err.field).toBe("v");
    expect(err.message).toMatch(/job\.v: unsupported version/);
  });

  it.each([
    ["dots", "a.b"],
    ["spaces", "a b"],
    ["star", "*"],
    ["gt", ">"],
    ["empty", ""],
    ["300 chars", "x".repeat(300)],
  ])("rejects an id with %s, naming field id", (_what, id) => {
    const err = validationErrorOf(() => decodeWith({ id }));
    expect(err.field).toBe("id");
    expect(err.message).toMatch(/^id /);
    expect(err.message).toContain("not valid");
  });

  it("shows a long bad id shortened", () => {
    const err = validationErrorOf(() => decodeWith({ id: `${"y".repeat(300)}.` }));
    expect(err.message.length).toBeLessThan(250);
  });

  it("rejects a non-string id", () => {
    expect(validationErrorOf(() => decodeWith({ id: 12 })).field).toBe("id");
  });

  it.each([["a.b"], ["*"], [""], ["_internal"], [7]])("rejects queue %j, naming field queue", (queue) => {
    expect(validationErrorOf(() => decodeWith({ queue })).field).toBe("queue");
  });

  it.each([["has space"], [""], ["x".repeat(129)], ["a/b"], [null]])("rejects task %j, naming field task", (task) => {
    expect(validationErrorOf(() => decodeWith({ task })).field).toBe("task");
  });

  it("requires a payload (null is fine)", () => {
    const job = validJob();
    delete job.payload;
    expect(validationErrorOf(() => decodeEnvelope(bytes(job))).field).toBe("payload");
    expect(decodeWith({ payload: null }).payload).toBeNull();
  });

  it.each([["yesterday"], [123], [undefined]])("rejects enqueuedAt %j", (enqueuedAt) => {
    expect(validationErrorOf(() => decodeWith({ enqueuedAt })).field).toBe("enqueuedAt");
  });

  it.each([[0], [-1], [1.5], ["3"], [MAX_ATTEMPTS + 1], [null]])("rejects attempts %j, naming field attempts", (attempts) => {
    const err = validationErrorOf(() => decodeWith({ attempts }));
    expect(err.field).toBe("attempts");
    expect(err.message).toMatch(/^job\.attempts: /);
  });

  it.each([
    [null, "backoff"],
    ["fixed:1s", "backoff"],
    [{ type: "linear", delayMs: 1 }, "backoff.type"],
    [{ type: "fixed" }, "backoff.delayMs"],
    [{ type: "fixed", delayMs: -5 }, "backoff.delayMs"],
    [{ type: "fixed", delayMs: "1s" }, "backoff.delayMs"],
    [{ type: "exponential", baseMs: 1000 }, "backoff.maxMs"],
    [{ type: "exponential", maxMs: 1000 }, "backoff.baseMs"],
    [{ type: "list", delaysMs: [] }, "backoff.delaysMs"],
    [{ type: "list", delaysMs: [1, -1] }, "backoff.delaysMs"],
    [{ type: "list", delaysMs: "1,2" }, "backoff.delaysMs"],
    [{ type: "fixed", delayMs: 1, jitter: 2 }, "backoff.jitter"],
    [{ type: "fixed", delayMs: 1, jitter: -0.1 }, "backoff.jitter"],
    [{ type: "fixed", delayMs: 1, jitter: "0.2" }, "backoff.jitter"],
  ])("rejects backoff %j, naming field %s", (backoff, field) => {
    const err = validationErrorOf(() => decodeWith({ backoff }));
    expect(err.field).toBe(field);
    expect(err.message).toContain(`job.${field}`);
  });

  it.each([[0], [-1], ["10s"]])("rejects timeoutMs %j", (timeoutMs) => {
    expect(validationErrorOf(() => decodeWith({ timeoutMs })).field).toBe("timeoutMs");
  });

  it("rejects dependsOn that is not a list of valid ids, naming the entry", () => {
    expect(validationErrorOf(() => decodeWith({ dependsOn: "a" })).field).toBe("dependsOn");
    expect(validationErrorOf(() => decodeWith({ dependsOn: ["ok", 5] })).field).toBe("dependsOn[1]");
    const err = validationErrorOf(() => decodeWith({ dependsOn: ["ok", "not.ok"] }));
    expect(err.field).toBe("dependsOn[1]");
    expect(err.message).toContain("dependsOn[1]");
    expect(err.message).toContain('"not.ok"');
  });

  it("rejects labels that are not an object of strings", () => {
    expect(validationErrorOf(() => decodeWith({ labels: ["a"] })).field).toBe("labels");
    expect(validationErrorOf(() => decodeWith({ labels: { a: 1 } })).field).toBe("labels");
    expect(decodeWith({ labels: { a: "1" } }).labels).toEqual({ a: "1" });
  });
});

describe("parseBackoff", () => {
  it.each<[string, Backoff]>([
    ["fixed:5s", { type: "fixed", delayMs: 5_000 }],
    ["fixed:250ms", { type: "fixed", delayMs: 250 }],
    ["fixed:0", { type: "fixed", delayMs: 0 }],
    ["exp:1s:5m", { type: "exponential", baseMs: 1_000, maxMs: 300_000 }],
    ["exponential:500ms:10s", { type: "exponential", baseMs: 500, maxMs: 10_000 }],
    ["exp:1s:1s", { type: "exponential", baseMs: 1_000, maxMs: 1_000 }],
    ["list:1s,5s,30s", { type: "list", delaysMs: [1_000, 5_000, 30_000] }],
    ["list:2s", { type: "list", delaysMs: [2_000] }],
    ["fixed:5s~0.2", { type: "fixed", delayMs: 5_000, jitter: 0.2 }],
    ["exp:1s:5m~0.2", { type: "exponential", baseMs: 1_000, maxMs: 300_000, jitter: 0.2 }],
    ["list:1s,5s,30s~0.2", { type: "list", delaysMs: [1_000, 5_000, 30_000], jitter: 0.2 }],
    ["fixed:1s~0", { type: "fixed", delayMs: 1_000, jitter: 0 }],
    ["fixed:1s~1", { type: "fixed", delayMs: 1_000, jitter: 1 }],
    [" fixed:1s ", { type: "fixed", delayMs: 1_000 }],
  ])("parses %j", (text, want) => {
    expect(parseBackoff(text)).toEqual(want);
  });

  it.each([
    "",
    "fixed",
    "fixed:",
    "fixed:abc",
    "fixed:1s:2s",
    "exp:1s",
    "exp:5m:1s",
    "exp:1s:5m:10m",
    "list:",
    "list:1s,,5s",
    "list:1s,x",
    "linear:1s",
    "5s",
    "fixed:1s~2",
    "fixed:1s~-0.1",
    "fixed:1s~x",
    "fixed:1s~",
    "fixed:1s~0.2~0.3",
  ])("rejects %j with a message naming the accepted forms", (text) => {
    const err = validationErrorOf(() => parseBackoff(text));
    expect(err.field).toBe("backoff");
    expect(err.message).toMatch(/^backoff/);
    if (!text.includes("~") || /~(0\.2~|$)/.test(text)) expect(err.message).toContain("fixed:<delay>");
  });

  it("says why an exponential max below its base is wrong", () => {
    expect(validationErrorOf(() => parseBackoff("exp:5m:1s")).message).toContain("max must be >= base");
  });

  it("says which jitter is wrong", () => {
    expect(validationErrorOf(() => parseBackoff("fixed:1s~2")).message).toContain("jitter");
  });
});

describe("backoffDelay", () => {
  it("fixed: the same delay before every retry", () => {
    const b: Backoff = { type: "fixed", delayMs: 5_000 };
    expect([2, 3, 4, 10].map((n) => backoffDelay(b, n))).toEqual([5_000, 5_000, 5_000, 5_000]);
  });

  it("exponential: base doubling per retry, capped at max", () => {
    const b: Backoff = { type: "exponential", baseMs: 1_000, maxMs: 10_000 };
    expect([2, 3, 4, 5, 6, 7, 100].map((n) => backoffDelay(b, n))).toEqual([1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000]);
  });

  it("exponential: stays finite at the attempt limit", () => {
    const b: Backoff = { type: "exponential", baseMs: 1_000, maxMs: 60_000 };
    expect(backoffDelay(b, MAX_ATTEMPTS)).toBe(60_000);
    expect(backoffDelay({ type: "exponential", baseMs: 0, maxMs: 0 }, MAX_ATTEMPTS)).toBe(0);
  });

  it("list: one delay per retry, the last one repeated", () => {
    const b: Backoff = { type: "list", delaysMs: [1_000, 5_000, 30_000] };
    expect([2, 3, 4, 5, 50].map((n) => backoffDelay(b, n))).toEqual([1_000, 5_000, 30_000, 30_000, 30_000]);
  });

  it("treats attempt 1 (or less) like the first retry", () => {
    expect(backoffDelay({ type: "list", delaysMs: [7, 8] }, 1)).toBe(7);
    expect(backoffDelay({ type: "exponential", baseMs: 100, maxMs: 1_000 }, 0)).toBe(100);
  });

  it("jitter spreads the delay by ±jitter, using the injected random source", () => {
    const b: Backoff = { type: "fixed", delayMs: 1_000, jitter: 0.2 };
    expect(backoffDelay(b, 2, () => 0)).toBe(800);
    expect(backoffDelay(b, 2, () => 0.5)).toBe(1_000);
    expect(backoffDelay(b, 2, () => 0.75)).toBe(1_100);
    expect(backoffDelay(b, 2, () => 0.999_999)).toBe(1_200);
  });

  it("jitter stays within bounds for any random value, for every kind", () => {
    const kinds: Backoff[] = [
      { type: "fixed", delayMs: 3_000, jitter: 0.3 },
      { type: "exponential", baseMs: 1_000, maxMs: 8_000, jitter: 0.5 },
      { type: "list", delaysMs: [100, 900], jitter: 1 },
    ];
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (const b of kinds) {
      for (let attempt = 2; attempt <= 6; attempt++) {
        const base = backoffDelay({ ...b, jitter: 0 }, attempt);
        const spread = base * (b.jitter ?? 0);
        for (let i = 0; i < 500; i++) {
          const d = backoffDelay(b, attempt, random);
          expect(Number.isInteger(d)).toBe(true);
          expect(d).toBeGreaterThanOrEqual(Math.max(0, Math.floor(base - spread)));
          expect(d).toBeLessThanOrEqual(Math.ceil(base + spread));
        }
      }
    }
  });

  it("jitter 1 never gives a negative delay", () => {
    expect(backoffDelay({ type: "fixed", delayMs: 100, jitter: 1 }, 2, () => 0)).toBe(0);
  });

  it("uses Math.random by default, within bounds", () => {
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay({ type: "fixed", delayMs: 1_000, jitter: 0.1 }, 2);
      expect(d).toBeGreaterThanOrEqual(900);
      expect(d).toBeLessThanOrEqual(1_100);
    }
  });
});

describe("newJobId", () => {
  it("is 26 Crockford base32 characters", () => {
    expect(newJobId()).toMatch(ULID);
  });

  it("sorts by time", () => {
    const ids = [1, 1_000, 1_700_000_000_000, 1_700_000_000_001, 2 ** 47].map((t) => newJobId(t));
    expect([...ids].sort()).toEqual(ids);
  });

  it("10k ids made in a row are unique and sort in the order they were made", () => {
    const ids = Array.from({ length: 10_000 }, () => newJobId());
    expect(new Set(ids).size).toBe(10_000);
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) expect(id).toMatch(ULID);
  });

  it("stays monotonic within one millisecond", () => {
    const ids = Array.from({ length: 1_000 }, () => newJobId(1_234_567));
    expect(new Set(ids).size).toBe(1_000);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids.map((id) => id.slice(0, 10))).size).toBe(1);
  });
});
