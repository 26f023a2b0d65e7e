/**
 * StartedFold: which events a worker publishes when, with `started` held for folding.
 * Pure (no timers): time is passed in.
 */
import { describe, expect, it } from "vitest";
import { EVENT_VERSION, type EventType, type NaqEvent } from "../../src/model/events.js";
import { StartedFold } from "../../src/services/event-fold.js";

const T0 = Date.parse("2025-01-15T09:00:00.000Z");

function ev(type: EventType, jobId = "j1", extra: Partial<NaqEvent> = {}): NaqEvent {
  return { v: EVENT_VERSION, type, at: new Date(T0).toISOString(), queue: "q", jobId, task: "t", worker: "w1", attempt: 1, ...extra };
}

/** Feeds events at the given times; returns what was published, as "jobId:type" (+ "*" when folded). */
function run(fold: StartedFold, steps: Array<[number, NaqEvent]>): string[] {
  const out: string[] = [];
  const publish = (e: NaqEvent) => out.push(`${e.jobId}:${e.type}${e.startedAt ? "*" : ""}`);
  for (const [t, e] of steps) {
    for (const d of fold.due(t)) publish(d);
    fold.accept(e, t, publish);
  }
  return out;
}

describe("StartedFold", () => {
  it("an attempt that ends within the hold publishes one end event with startedAt", () => {
    const fold = new StartedFold(100);
    const started = ev("started");
    const out: NaqEvent[] = [];
    fold.accept(started, T0, (e) => out.push(e));
    expect(out).toEqual([]);
    expect(fold.size).toBe(1);
    fold.accept(ev("completed", "j1", { durationMs: 5 }), T0 + 5, (e) => out.push(e));
    expect(out).toEqual([{ ...ev("completed", "j1", { durationMs: 5 }), startedAt: started.at }]);
    expect(fold.size).toBe(0);
    expect(run(new StartedFold(100), [[0, ev("started")], [3, ev("failed")]])).toEqual(["j1:failed*"]);
    expect(run(new StartedFold(100), [[0, ev("started")], [3, ev("retrying")]])).toEqual(["j1:retrying*"]);
  });

  it("a longer attempt's started is due when the hold is over, oldest first", () => {
    const fold = new StartedFold(100);
    run(fold, [[0, ev("started", "a")], [40, ev("started", "b")]]);
    expect(fold.nextDue()).toBe(100);
    expect(fold.due(99)).toEqual([]);
    expect(fold.due(100).map((e) => e.jobId)).toEqual(["a"]);
    expect(fold.nextDue()).toBe(140);
    expect(fold.due(500).map((e) => e.jobId)).toEqual(["b"]);
    expect(fold.nextDue()).toBeUndefined();
    // its end event then carries nothing
    expect(run(fold, [[600, ev("completed", "a")]])).toEqual(["a:completed"]);
  });

  it("anything else about a held job lets its started go first, so the job's events keep their order", () => {
    expect(run(new StartedFold(100), [[0, ev("started")], [1, ev("progress")], [2, ev("completed")]])).toEqual(["j1:started", "j1:progress", "j1:completed"]);
    // an end of another attempt does not fold
    expect(run(new StartedFold(100), [[0, ev("started")], [1, ev("retrying", "j1", { attempt: 2 })]])).toEqual(["j1:started", "j1:retrying"]);
    // a new started of the same job (a second attempt) lets the first go
    const fold = new StartedFold(100);
    expect(run(fold, [[0, ev("started")], [1, ev("started", "j1", { attempt: 2 })], [2, ev("completed", "j1", { attempt: 2 })]])).toEqual(["j1:started", "j1:completed*"]);
    // other jobs' events pass straight through
    expect(run(new StartedFold(100), [[0, ev("started", "a")], [1, ev("enqueued", "b")], [2, ev("completed", "a")]])).toEqual(["b:enqueued", "a:completed*"]);
  });

  it("the same job id on two queues is two jobs: no fold, the held started goes first", () => {
    expect(run(new StartedFold(100), [[0, ev("started")], [1, ev("completed", "j1", { queue: "other" })]])).toEqual(["j1:started", "j1:completed"]);
  });

  it("drain hands over everything held (a flush)", () => {
    const fold = new StartedFold(100);
    run(fold, [[0, ev("started", "a")], [1, ev("started", "b")]]);
    expect(fold.drain().map((e) => e.jobId)).toEqual(["a", "b"]);
    expect(fold.size).toBe(0);
  });
});
