/**
 * Reading events, pure parts: --since and --type parsing, which filter subjects serve a
 * filter (one per consumer on nats-server 2.9, several on 2.10+), client-side matching,
 * decoding stored messages, and the human renderings of events and histories.
 */
import { describe, expect, it } from "vitest";
import { Chalk } from "chalk";
import { ValidationError } from "../../src/model/errors.js";
import { decodeEvent, matchesEvent, orderJobHistory, parseEventTypes, parseSince, planEventRead } from "../../src/model/event-filter.js";
import { EVENT_VERSION, expandFolded, type NaqEvent } from "../../src/model/events.js";
import { namesFor } from "../../src/model/naming.js";
import { eventDetail, formatEventLine, summarizeHistory } from "../../src/cli/render-events.js";

const names = namesFor("app");
const NOW = Date.parse("2025-01-15T10:00:00.000Z");

function ev(extra: Partial<NaqEvent> = {}): NaqEvent {
  return { v: EVENT_VERSION, type: "started", at: "2025-01-15T09:00:00.000Z", queue: "emails", jobId: "j1", ...extra };
}

describe("parseSince", () => {
  it("takes durations back from now, ISO times, all and new", () => {
    expect(parseSince("10m", NOW)).toEqual(new Date(NOW - 600_000));
    expect(parseSince("1h30m", NOW)).toEqual(new Date(NOW - 5_400_000));
    expect(parseSince("2025-01-15T09:00:00Z", NOW)).toEqual(new Date("2025-01-15T09:00:00Z"));
    expect(parseSince("2025-01-15", NOW)).toEqual(new Date("2025-01-15T00:00:00Z"));
    expect(parseSince("all", NOW)).toBe("all");
    expect(parseSince("ALL", NOW)).toBe("all");
    expect(parseSince("new", NOW)).toBe("new");
    expect(parseSince("now", NOW)).toBe("new");
  });

  it("rejects anything else with one line naming the flag and what is accepted", () => {
    for (const bad of ["", "yesterday", "10", "2025-13-45", "10 minutes", "-5m"]) {
      let err: unknown;
      try {
        parseSince(bad, NOW);
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(ValidationError);
      expect((err as Error).message).toMatch(/^--since ".*" is not valid: use a duration .* ISO 8601 .* "all"/);
    }
  });
});

describe("parseEventTypes", () => {
  it("normalizes, de-duplicates and keeps order", () => {
    expect(parseEventTypes(["failed", "Dead-Lettered", "failed", "worker_started"])).toEqual(["failed", "dead_lettered", "worker_started"]);
  });

  it("names the bad type and lists the good ones", () => {
    expect(() => parseEventTypes(["fail"])).toThrow(/--type "fail" is not an event type: use one or more of enqueued, .*worker_stopped/);
  });
});

describe("planEventRead", () => {
  it("puts queue, job id and one type in a single subject", () => {
    expect(planEventRead(names, {}, false)).toEqual({ subjects: ["app.events.*.*.*"], server: [], client: [] });
    expect(planEventRead(names, { queue: "emails", jobId: "j1" }, false)).toEqual({
      subjects: ["app.events.emails.j1.*"],
      server: ["queue", "jobId"],
      client: [],
    });
    expect(planEventRead(names, { queue: "emails", types: ["failed"], task: "t", worker: "w" }, false)).toEqual({
      subjects: ["app.events.emails.*.failed"],
      server: ["queue", "type"],
      client: ["task", "worker"],
    });
  });

  it("several types: one subject per type on 2.10+, a type wildcard plus a client-side check on 2.9", () => {
    const filter = { queue: "emails", types: ["failed", "retrying"] as const };
    expect(planEventRead(names, { ...filter, types: [...filter.types] }, true)).toEqual({
      subjects: ["app.events.emails.*.failed", "app.events.emails.*.retrying"],
      server: ["queue", "type"],
      client: [],
    });
    expect(planEventRead(names, { ...filter, types: [...filter.types] }, false)).toEqual({
      subjects: ["app.events.emails.*.*"],
      server: ["queue"],
      client: ["type"],
    });
  });

  it("reading `started` also reads the end events a started may be folded into, and checks the type here", () => {
    expect(planEventRead(names, { queue: "emails", types: ["started"] }, false)).toEqual({
      subjects: ["app.events.emails.*.*"],
      server: ["queue"],
      client: ["type"],
    });
    expect(planEventRead(names, { jobId: "j1", types: ["started", "failed"] }, true)).toEqual({
      subjects: ["app.events.*.j1.started", "app.events.*.j1.failed", "app.events.*.j1.completed", "app.events.*.j1.retrying"],
      server: ["jobId", "type"],
      client: ["type"],
    });
  });

  it("reaches worker lifecycle events through the reserved _worker queue", () => {
    expect(planEventRead(names, { queue: "_worker", types: ["worker_started"] }, false).subjects).toEqual(["app.events._worker.*.worker_started"]);
  });

  it("refuses tokens that would widen the subject", () => {
    expect(() => planEventRead(names, { queue: "a.b" }, false)).toThrow(ValidationError);
    expect(() => planEventRead(names, { jobId: "*" }, false)).toThrow(ValidationError);
    expect(() => planEventRead(names, { jobId: ">" }, false)).toThrow(ValidationError);
  });
});

describe("matchesEvent", () => {
  it("checks every given field", () => {
    const e = ev({ task: "send", worker: "w1", type: "failed" });
    expect(matchesEvent(e, {})).toBe(true);
    expect(matchesEvent(e, { queue: "emails", jobId: "j1", types: ["failed", "completed"], task: "send", worker: "w1" })).toBe(true);
    expect(matchesEvent(e, { queue: "sms" })).toBe(false);
    expect(matchesEvent(e, { jobId: "j2" })).toBe(false);
    expect(matchesEvent(e, { types: ["completed"] })).toBe(false);
    expect(matchesEvent(e, { task: "other" })).toBe(false);
    expect(matchesEvent(e, { worker: "w2" })).toBe(false);
    expect(matchesEvent(ev(), { task: "send" })).toBe(false); // no task: does not match a task filter
  });
});

describe("decodeEvent", () => {
  const enc = (v: unknown) => new TextEncoder().encode(typeof v === "string" ? v : JSON.stringify(v));

  it("takes queue, job id and type from the subject, keeps the rest of the body", () => {
    const body = { v: 1, type: "completed", at: "2025-01-15T09:00:01.000Z", queue: "x", jobId: "y", durationMs: 5, extra: true };
    expect(decodeEvent(names, "app.events.emails.j1.completed", enc(body))).toEqual({
      ...body,
      queue: "emails",
      jobId: "j1",
    });
  });

  it("fills `at` from the stored time and `v` when missing; skips what is not an event", () => {
    const stored = new Date("2025-01-15T09:00:02.000Z");
    expect(decodeEvent(names, "app.events.emails.j1.started", enc({}), stored)).toEqual({
      v: 1,
      type: "started",
      at: stored.toISOString(),
      queue: "emails",
      jobId: "j1",
    });
    expect(decodeEvent(names, "app.events.emails.j1.started", enc("not json"))).toBeUndefined();
    expect(decodeEvent(names, "app.events.emails.j1.started", enc("[1]"))).toBeUndefined();
    expect(decodeEvent(names, "app.events.emails.j1.started", enc("null"))).toBeUndefined();
    expect(decodeEvent(names, "other.events.emails.j1.started", enc({}))).toBeUndefined();
    expect(decodeEvent(names, "app.events.emails.started", enc({}))).toBeUndefined();
  });
});

describe("orderJobHistory", () => {
  const life = (...types: NaqEvent["type"][]) => types.map((type, i) => ev({ type, attempt: i }));
  const types = (list: NaqEvent[]) => list.map((e) => e.type);

  it("keeps the stream's order when it is already the job's", () => {
    const normal = life("enqueued", "started", "retrying", "started", "completed");
    expect(orderJobHistory(normal)).toEqual(normal);
  });

  it("puts an enqueued event that was stored after the run's first events before them", () => {
    const raced = life("started", "retrying", "enqueued", "started", "completed");
    expect(types(orderJobHistory(raced))).toEqual(["enqueued", "started", "retrying", "started", "completed"]);
    expect(orderJobHistory(raced)[1]).toBe(raced[0]); // the same objects, stable otherwise
  });

  it("never moves an enqueue across the end of an earlier run (a job retried from the dead-letter stream)", () => {
    const retried = life("enqueued", "started", "failed", "dead_lettered", "enqueued", "started", "completed");
    expect(orderJobHistory(retried)).toEqual(retried);
    const racedRetry = life("enqueued", "started", "failed", "dead_lettered", "started", "enqueued", "completed");
    expect(types(orderJobHistory(racedRetry))).toEqual(["enqueued", "started", "failed", "dead_lettered", "enqueued", "started", "completed"]);
  });
});

describe("rendering", () => {
  const plain = new Chalk({ level: 0 });

  it("a tail line has time, type, queue, task, job id, worker, duration and what went wrong", () => {
    const line = formatEventLine(
      ev({ type: "retrying", task: "send", worker: "w1", attempt: 1, maxAttempts: 3, durationMs: 12, delayMs: 1_000, error: { name: "Error", message: "SMTP 451" } }),
      plain,
    );
    expect(line.split(/\s{2,}/)).toEqual([
      "2025-01-15T09:00:00.000Z",
      "retrying",
      "emails",
      "send",
      "j1",
      "w1",
      "12ms",
      "attempt 1/3 failed: SMTP 451; retry in 1s",
    ]);
  });

  it("details name the error class unless it is a plain Error", () => {
    expect(eventDetail(ev({ type: "failed", attempt: 3, maxAttempts: 3, reason: "failed after 3 attempts", error: { name: "TypeError", message: "x is undefined" } }))).toBe(
      "attempt 3/3; failed after 3 attempts; TypeError: x is undefined",
    );
    expect(eventDetail(ev({ type: "progress", attempt: 1, log: "halfway" }))).toBe("log: halfway");
    expect(eventDetail(ev({ type: "waiting", reason: "waiting for a", delayMs: 500 }))).toBe("waiting for a; check again in 500ms");
  });

  it("a history's status is its last terminal event, and attempts count the starts", () => {
    const life = [
      ev({ type: "enqueued", task: "t" }),
      ev({ type: "started", attempt: 1 }),
      ev({ type: "retrying", attempt: 1 }),
      ev({ type: "started", attempt: 2 }),
      ev({ type: "completed", attempt: 2 }),
    ];
    expect(summarizeHistory("j1", life)).toMatchObject({ jobId: "j1", queue: "emails", task: "t", status: "completed", attempts: 2 });
    expect(summarizeHistory("j1", life.slice(0, 3)).status).toBe("retrying");
    expect(summarizeHistory("j1", [ev({ type: "dead_lettered" })]).status).toBe("failed");
  });
});

describe("expandFolded", () => {
  const end = ev({ type: "completed", at: "2025-01-15T09:00:00.250Z", task: "send", worker: "w1", attempt: 2, maxAttempts: 3, durationMs: 250 });

  it("gives a folded end event's started back before it, from its own fields", () => {
    const folded = { ...end, startedAt: "2025-01-15T09:00:00.000Z" };
    expect(expandFolded(folded)).toEqual([
      { v: EVENT_VERSION, type: "started", at: "2025-01-15T09:00:00.000Z", queue: "emails", jobId: "j1", task: "send", worker: "w1", attempt: 2, maxAttempts: 3 },
      folded,
    ]);
    expect(expandFolded({ ...folded, type: "retrying" }).map((e) => e.type)).toEqual(["started", "retrying"]);
  });

  it("leaves every other event alone", () => {
    expect(expandFolded(end)).toEqual([end]);
    const odd = ev({ type: "progress", startedAt: "2025-01-15T09:00:00.000Z" });
    expect(expandFolded(odd)).toEqual([odd]);
  });
});
