/**
 * Event statistics, pure: nearest-rank percentiles, duration summaries, failure rate,
 * throughput over a window, grouping, and worker lifecycle (open / lost workers).
 */
import { describe, expect, it } from "vitest";
import { EVENT_TYPES, EVENT_VERSION, type EventType, type NaqEvent } from "../../src/model/events.js";
import {
  EventStatsBuilder,
  failureRate,
  lostWorkers,
  NO_KEY,
  percentile,
  summarizeDurations,
} from "../../src/model/stats.js";

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function ev(type: EventType, extra: Partial<NaqEvent> = {}): NaqEvent {
  return { v: EVENT_VERSION, type, at: "2025-01-15T09:00:00.000Z", queue: "q", jobId: "j", ...extra };
}

describe("percentile (nearest rank)", () => {
  it("returns values that occurred, the smallest with p% at or below it", () => {
    const v = range(1, 100);
    expect(percentile(v, 50)).toBe(50);
    expect(percentile(v, 95)).toBe(95);
    expect(percentile(v, 99)).toBe(99);
    expect(percentile(v, 100)).toBe(100);
    expect(percentile(v, 0.5)).toBe(1);
  });

  it("handles small and uneven sets without interpolating", () => {
    expect(percentile([7], 50)).toBe(7);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([1, 2], 50)).toBe(1);
    expect(percentile([1, 2], 51)).toBe(2);
    expect(percentile([10, 20, 30, 40], 75)).toBe(30);
    expect(percentile([10, 20, 30, 40], 76)).toBe(40);
    const v = range(1, 270);
    expect(percentile(v, 50)).toBe(135);
    expect(percentile(v, 95)).toBe(257); // ceil(256.5)
    expect(percentile(v, 99)).toBe(268); // ceil(267.3)
  });

  it("is NaN for no values and rejects p outside (0, 100]", () => {
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile([1], 0)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });
});

describe("summarizeDurations", () => {
  it("sorts its input and reports min, mean, p50, p95, p99, max", () => {
    const shuffled = range(1, 200).sort((a, b) => ((a * 7919) % 200) - ((b * 7919) % 200));
    expect(summarizeDurations(shuffled)).toEqual({ count: 200, min: 1, mean: 100.5, p50: 100, p95: 190, p99: 198, max: 200 });
  });

  it("is null for nothing, ignores non-finite values, and does not mutate its input", () => {
    expect(summarizeDurations([])).toBeNull();
    expect(summarizeDurations([Number.NaN])).toBeNull();
    const input = [3, 1, 2, Number.POSITIVE_INFINITY];
    expect(summarizeDurations(input)).toMatchObject({ count: 3, min: 1, max: 3, p50: 2 });
    expect(input).toEqual([3, 1, 2, Number.POSITIVE_INFINITY]);
  });
});

describe("failureRate and lostWorkers", () => {
  it("failed / (completed + failed), null when nothing ended", () => {
    expect(failureRate(270, 30)).toBe(0.1);
    expect(failureRate(0, 5)).toBe(1);
    expect(failureRate(5, 0)).toBe(0);
    expect(failureRate(0, 0)).toBeNull();
  });

  it("a worker that started, never stopped and is not alive was lost", () => {
    expect(lostWorkers(["a", "b", "c"], ["b", "z"])).toEqual(["a", "c"]);
    expect(lostWorkers([], ["b"])).toEqual([]);
  });
});

describe("EventStatsBuilder", () => {
  /** 300 jobs over two queues and three tasks; jobs i % 10 === 0 fail (30), the rest complete in i ms. */
  function workload(): NaqEvent[] {
    const out: NaqEvent[] = [];
    for (let i = 1; i <= 300; i++) {
      const base = { queue: i % 3 === 0 ? "sms" : "emails", jobId: `j${i}`, task: `t${i % 3}` };
      out.push(ev("enqueued", base));
      out.push(ev("started", { ...base, worker: i % 2 ? "w1" : "w2", attempt: 1 }));
      if (i % 10 === 0) {
        out.push(ev("failed", { ...base, worker: i % 2 ? "w1" : "w2", reason: "boom" }));
        out.push(ev("dead_lettered", { ...base, worker: i % 2 ? "w1" : "w2", reason: "boom" }));
      } else {
        out.push(ev("completed", { ...base, worker: i % 2 ? "w1" : "w2", durationMs: i }));
      }
    }
    return out;
  }

  it("counts every type (zeros included), rates and percentiles for a known workload", () => {
    const b = new EventStatsBuilder();
    for (const e of workload()) b.add(e);
    const s = b.build(new Date("2025-01-15T09:00:00Z"), new Date("2025-01-15T09:01:00Z"));
    expect(Object.keys(s.total.counts).sort()).toEqual([...EVENT_TYPES].sort());
    expect(s.total.counts).toMatchObject({ enqueued: 300, started: 300, completed: 270, failed: 30, dead_lettered: 30, retrying: 0 });
    expect(s.total.events).toBe(930);
    expect(s.total.completed).toBe(270);
    expect(s.total.failed).toBe(30);
    expect(s.total.failureRate).toBeCloseTo(0.1, 12);
    expect(s.total.throughput).toEqual({ perSecond: 5, perMinute: 300 });
    // Durations are 1..300 without the multiples of 10: 270 values.
    const durations = range(1, 300).filter((i) => i % 10 !== 0);
    expect(s.total.durationMs).toEqual({
      count: 270,
      min: 1,
      mean: durations.reduce((a, c) => a + c, 0) / 270,
      p50: durations[134],
      p95: durations[256],
      p99: durations[267],
      max: 299,
    });
    expect(s.window).toEqual({ from: "2025-01-15T09:00:00.000Z", to: "2025-01-15T09:01:00.000Z", ms: 60_000 });
    expect(s.by).toBeNull();
    expect(s.groups).toEqual([]);
  });

  it("groups by queue, task or worker; events without the field go to (none)", () => {
    const byQueue = new EventStatsBuilder("queue");
    const byWorker = new EventStatsBuilder("worker");
    for (const e of workload()) {
      byQueue.add(e);
      byWorker.add(e);
    }
    const from = new Date(0);
    const to = new Date(1_000);
    const q = byQueue.build(from, to);
    expect(q.groups.map((g) => [g.key, g.counts.enqueued, g.completed, g.failed])).toEqual([
      ["emails", 200, 180, 20],
      ["sms", 100, 90, 10],
    ]);
    expect(q.groups.reduce((a, g) => a + g.events, 0)).toBe(q.total.events);
    const w = byWorker.build(from, to);
    expect(w.groups.map((g) => g.key)).toEqual([NO_KEY, "w1", "w2"]);
    expect(w.groups[0]?.counts.enqueued).toBe(300);
    expect(w.groups[0]?.failureRate).toBeNull();
  });

  it("keeps worker (and other '_' queue) events out of groups and tracks workers that did not stop", () => {
    const b = new EventStatsBuilder("queue");
    const wev = (type: EventType, id: string) => ev(type, { queue: "_worker", jobId: id, worker: id });
    b.add(wev("worker_started", "a"));
    b.add(wev("worker_started", "b"));
    b.add(ev("enqueued"));
    b.add(wev("worker_stopped", "a"));
    b.add(wev("worker_stopped", "z")); // started before the window
    b.add(ev("enqueued", { queue: "_schedule", jobId: "nightly" })); // naq's own queues are not job groups
    const s = b.build(new Date(0), new Date(0));
    expect(s.workers).toEqual({ started: 2, stopped: 2, open: ["b"] });
    expect(s.total.counts.worker_started).toBe(2);
    expect(s.groups.map((g) => g.key)).toEqual(["q"]);
    expect(s.total.throughput).toBeNull(); // empty window
    expect(s.total.durationMs).toBeNull();
  });
});
