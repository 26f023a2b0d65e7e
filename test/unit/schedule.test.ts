/**
 * The scheduler's pure parts, with fixed dates: cron with time zones across DST changes,
 * ISO 8601 times with and without zones, slots and keys, schedule building and upserts,
 * misfire policies, resume, the due scan (with an in-memory index) and the leader lease
 * (with a fake clock).
 */
import { describe, expect, it } from "vitest";
import { compileCron, parseTime, validateTimeZone, zonedTimeToUtc } from "../../src/model/cron.js";
import { ConflictError, ValidationError } from "../../src/model/errors.js";
import { dueKey, slotCounterKey, slotOf, SLOT_MS, type IndexEntry } from "../../src/model/due-slots.js";
import { buildSchedule, scheduleJobId, type ScheduleDoc } from "../../src/model/schedule.js";
import { jitterOffset, misfireGraceMs, nextRun, planStep, resumeNext, upcoming } from "../../src/model/schedule-timing.js";
import { DueScan } from "../../src/scheduler/due-scan.js";
import { LeaderLease, LeaseLostError, type LeaseIO } from "../../src/scheduler/lease.js";
import type { DueIndexIO, ProcessResult } from "../../src/services/due-index.js";

const T = (iso: string) => Date.parse(iso);
const runs = (expr: string, tz: string | undefined, from: string, n: number) => {
  const c = compileCron(expr, tz);
  const out: string[] = [];
  let t = T(from);
  for (let i = 0; i < n; i++) {
    t = c.next(t) as number;
    out.push(new Date(t).toISOString());
  }
  return out;
};

describe("cron with a time zone", () => {
  it("keeps 09:00 local on weekdays across the spring change (Europe/Berlin, 2025-03-30)", () => {
    expect(runs("0 9 * * 1-5", "Europe/Berlin", "2025-03-27T12:00:00Z", 4)).toEqual([
      "2025-03-28T08:00:00.000Z", // Friday, CET (+01:00)
      "2025-03-31T07:00:00.000Z", // Monday, CEST (+02:00)
      "2025-04-01T07:00:00.000Z",
      "2025-04-02T07:00:00.000Z",
    ]);
  });

  it("runs a fixed-time job inside the spring gap at the first valid time after it, once", () => {
    // 02:30 does not exist in Berlin on 2025-03-30 (02:00 -> 03:00).
    expect(runs("30 2 * * *", "Europe/Berlin", "2025-03-29T00:00:00Z", 3)).toEqual([
      "2025-03-29T01:30:00.000Z",
      "2025-03-30T01:00:00.000Z", // 03:00 CEST
      "2025-03-31T00:30:00.000Z",
    ]);
  });

  it("runs a fixed-time job once when its local time occurs twice (fall back, 2025-10-26)", () => {
    expect(runs("30 2 * * *", "Europe/Berlin", "2025-10-25T00:00:00Z", 3)).toEqual([
      "2025-10-25T00:30:00.000Z",
      "2025-10-26T00:30:00.000Z", // the first 02:30 (CEST); not again at 01:30Z
      "2025-10-27T01:30:00.000Z", // CET
    ]);
  });

  it("runs an interval job on both occurrences of a repeated hour and skips the gap", () => {
    expect(runs("*/30 * * * *", "Europe/Berlin", "2025-10-26T00:00:00Z", 4)).toEqual([
      "2025-10-26T00:30:00.000Z", // 02:30 CEST
      "2025-10-26T01:00:00.000Z", // 02:00 CET
      "2025-10-26T01:30:00.000Z", // 02:30 CET
      "2025-10-26T02:00:00.000Z",
    ]);
    expect(runs("*/30 * * * *", "Europe/Berlin", "2025-03-30T00:00:00Z", 3)).toEqual([
      "2025-03-30T00:30:00.000Z", // 01:30 CET
      "2025-03-30T01:00:00.000Z", // 03:00 CEST (02:00 and 02:30 do not exist)
      "2025-03-30T01:30:00.000Z",
    ]);
  });

  it("follows the US change on its own date (America/New_York, 2025-03-09)", () => {
    expect(runs("0 9 * * *", "America/New_York", "2025-03-08T00:00:00Z", 2)).toEqual(["2025-03-08T14:00:00.000Z", "2025-03-09T13:00:00.000Z"]);
  });

  it("is UTC without a zone and takes an optional seconds field", () => {
    expect(runs("0 9 * * *", undefined, "2025-03-30T00:00:00Z", 1)).toEqual(["2025-03-30T09:00:00.000Z"]);
    expect(runs("*/15 * * * * *", undefined, "2025-01-01T00:00:07Z", 2)).toEqual(["2025-01-01T00:00:15.000Z", "2025-01-01T00:00:30.000Z"]);
  });

  it("rejects bad expressions and zones with a clear message", () => {
    expect(() => compileCron("bad")).toThrow(/has 1 field.*5 fields/);
    expect(() => compileCron("0 0 * * * * 2030")).toThrow(ValidationError);
    expect(() => compileCron("61 * * * *")).toThrow(/not valid/);
    expect(() => compileCron("0 9 * * *", "Mars/Olympus")).toThrow(/not a time zone/);
    expect(validateTimeZone("UTC")).toBe("UTC");
    expect(compileCron("0 0 31 2 *").next(T("2025-01-01T00:00:00Z"))).toBeUndefined();
  });
});

describe("parseTime", () => {
  it("reads times with Z or an offset exactly", () => {
    expect(parseTime("2026-12-01T09:00:00Z")).toBe(T("2026-12-01T09:00:00Z"));
    expect(parseTime("2026-12-01T10:00:00+01:00")).toBe(T("2026-12-01T09:00:00Z"));
    expect(parseTime("2026-12-01T04:30:00-04:30")).toBe(T("2026-12-01T09:00:00Z"));
    expect(parseTime("2026-12-01 09:00Z")).toBe(T("2026-12-01T09:00:00Z"));
  });

  it("rejects a time without a zone unless one is given, and reads it in that zone", () => {
    expect(() => parseTime("2026-12-01T09:00:00", { field: "--at" })).toThrow(/--at "2026-12-01T09:00:00" has no time zone: add Z or an offset.*--tz/);
    expect(parseTime("2026-12-01T09:00:00", { tz: "Europe/Berlin" })).toBe(T("2026-12-01T08:00:00Z"));
    expect(parseTime("2026-07-01T09:00:00", { tz: "Europe/Berlin" })).toBe(T("2026-07-01T07:00:00Z"));
    expect(parseTime("2026-12-01", { tz: "UTC" })).toBe(T("2026-12-01T00:00:00Z"));
  });

  it("moves a local time in a DST gap forward and takes the first of a repeated one", () => {
    expect(parseTime("2025-03-30T02:30:00", { tz: "Europe/Berlin" })).toBe(T("2025-03-30T01:30:00Z")); // = 03:30 CEST
    expect(parseTime("2025-10-26T02:30:00", { tz: "Europe/Berlin" })).toBe(T("2025-10-26T00:30:00Z")); // first 02:30 (CEST)
    expect(zonedTimeToUtc({ year: 2025, month: 1, day: 1, hour: 0, minute: 0, second: 0, ms: 0 }, "Asia/Kolkata")).toBe(T("2024-12-31T18:30:00Z"));
  });

  it("rejects what is not a time", () => {
    expect(() => parseTime("tomorrow")).toThrow(/is not an ISO 8601 time/);
    expect(() => parseTime("2026-02-30T09:00:00Z")).toThrow(/not a real date/);
    expect(() => parseTime("2026-12-01T09:00:00", { tz: "Nowhere/Land" })).toThrow(/not a time zone/);
  });
});

describe("slots, keys and ids", () => {
  it("buckets fire times into 10 s slots with zero-padded keys", () => {
    expect(SLOT_MS).toBe(10_000);
    expect(slotOf(T("2026-01-01T00:00:09.999Z"))).toBe(slotOf(T("2026-01-01T00:00:00Z")));
    expect(slotOf(T("2026-01-01T00:00:10Z"))).toBe(slotOf(T("2026-01-01T00:00:00Z")) + 1);
    expect(dueKey(176_700_000, 3)).toBe("due.0176700000.3");
    expect(slotCounterKey(5)).toBe("slot.0000000005");
    expect(scheduleJobId("nightly", 1_767_225_600_000)).toBe("nightly-1767225600000");
  });

  it("jitters each run by a deterministic offset within the jitter", () => {
    const a = jitterOffset("sync", 1_000_000, 30_000);
    expect(a).toBe(jitterOffset("sync", 1_000_000, 30_000));
    expect(a).toBeGreaterThanOrEqual(0);
    expect(a).toBeLessThan(30_000);
    expect(jitterOffset("sync", 1_000_000, undefined)).toBe(0);
    const spread = new Set(Array.from({ length: 50 }, (_, i) => jitterOffset("sync", i * 60_000, 30_000)));
    expect(spread.size).toBeGreaterThan(40);
  });
});

const NOW = T("2026-03-02T12:00:00Z");

describe("buildSchedule", () => {
  it("anchors --every at creation (first run one interval later) or at --start-at", () => {
    const s = buildSchedule({ name: "s", task: "t", every: "15m" }, NOW);
    expect(s.nextRunAt).toBe("2026-03-02T12:15:00.000Z");
    expect(s).toMatchObject({ misfire: "skip", runs: 0, paused: false, job: { task: "t", queue: "default", payload: null } });
    const later = buildSchedule({ name: "s", task: "t", every: "1h", startAt: T("2026-03-03T00:00:00Z") }, NOW);
    expect(upcoming(later, 2).map((t) => new Date(t).toISOString())).toEqual(["2026-03-03T00:00:00.000Z", "2026-03-03T01:00:00.000Z"]);
  });

  it("honours start, end and limit", () => {
    const s = buildSchedule({ name: "s", task: "t", cron: "0 9 * * *", tz: "Europe/Berlin", startAt: T("2026-03-05T00:00:00Z"), endAt: T("2026-03-07T12:00:00Z") }, NOW);
    expect(upcoming(s, 5).map((t) => new Date(t).toISOString())).toEqual(["2026-03-05T08:00:00.000Z", "2026-03-06T08:00:00.000Z", "2026-03-07T08:00:00.000Z"]);
    const limited = buildSchedule({ name: "s", task: "t", every: "1m", limit: 2 }, NOW);
    expect(upcoming(limited, 5)).toHaveLength(2);
    expect(nextRun(limited, NOW, 2)).toBeUndefined();
  });

  it("an upsert keeps runs, history and the phase; a timing change recomputes the next run", () => {
    const first = buildSchedule({ name: "s", task: "t", every: "10m" }, NOW);
    const ran: ScheduleDoc = { ...first, runs: 7, lastRunAt: "2026-03-02T12:10:00.000Z", nextRunAt: "2026-03-02T13:25:00.000Z" };
    const same = buildSchedule({ name: "s", task: "t2", every: "10m", queue: "q" }, NOW + 60_000, ran);
    expect(same).toMatchObject({ runs: 7, lastRunAt: ran.lastRunAt, nextRunAt: ran.nextRunAt, job: { task: "t2", queue: "q" }, createdAt: first.createdAt });
    const changed = buildSchedule({ name: "s", task: "t", cron: "0 * * * *" }, NOW, ran);
    expect(changed.nextRunAt).toBe("2026-03-02T13:00:00.000Z");
  });

  it("rejects bad definitions with a message naming what is wrong", () => {
    expect(() => buildSchedule({ name: "_x", task: "t", every: "1m" }, NOW)).toThrow(/reserved/);
    expect(() => buildSchedule({ name: "a.b", task: "t", every: "1m" }, NOW)).toThrow(/schedule name/);
    expect(() => buildSchedule({ name: "s", task: "t" }, NOW)).toThrow(/exactly one of --cron or --every/);
    expect(() => buildSchedule({ name: "s", task: "t", every: "1m", cron: "* * * * *" }, NOW)).toThrow(/exactly one/);
    expect(() => buildSchedule({ name: "s", task: "t", every: "500ms" }, NOW)).toThrow(/shortest interval is 1s/);
    expect(() => buildSchedule({ name: "s", task: "t", every: "1m", tz: "UTC" }, NOW)).toThrow(/--tz applies to --cron/);
    expect(() => buildSchedule({ name: "s", task: "t", cron: "0 0 31 2 *" }, NOW)).toThrow(/would never run/);
    expect(() => buildSchedule({ name: "s", task: "t", every: "1m", endAt: NOW - 1 }, NOW)).toThrow(/would never run/);
    expect(() => buildSchedule({ name: "s", task: "bad task", every: "1m" }, NOW)).toThrow(/task/);
  });
});

const every = (overrides: Partial<ScheduleDoc> = {}): ScheduleDoc => ({
  ...buildSchedule({ name: "s", task: "t", every: "1s", startAt: NOW }, NOW),
  ...overrides,
});

describe("planStep (misfire policies)", () => {
  it("waits until due and fires an on-time run with the next one", () => {
    const doc = every({ nextRunAt: new Date(NOW + 500).toISOString() });
    expect(planStep(doc, NOW)).toEqual({ kind: "wait", fireAt: NOW + 500 });
    expect(planStep(doc, NOW + 600)).toEqual({ kind: "fire", dueMs: NOW + 500, late: false, nextMs: NOW + 1_000 }); // back on the grid
    expect(misfireGraceMs(doc.recurrence, NOW)).toBe(1_000);
    expect(misfireGraceMs({ kind: "cron", cron: "0 9 * * *" }, T("2026-03-02T09:00:00Z"))).toBe(60_000);
  });

  it("catch-up fires every missed run, one step at a time", () => {
    const doc = every({ misfire: "catch-up", nextRunAt: new Date(NOW).toISOString() });
    expect(planStep(doc, NOW + 10_400)).toMatchObject({ kind: "fire", dueMs: NOW, late: true, nextMs: NOW + 1_000 });
  });

  it("skip drops the runs later than the grace; runs within it still fire", () => {
    const doc = every({ misfire: "skip", nextRunAt: new Date(NOW).toISOString() });
    const step = planStep(doc, NOW + 10_400);
    // Due NOW .. NOW+9s are more than 1s late; NOW+10s is 0.4s late (on time).
    expect(step).toEqual({ kind: "skip", count: 10, capped: false, firstMs: NOW, lastMs: NOW + 9_000, nextMs: NOW + 10_000 });
    expect(planStep({ ...doc, nextRunAt: new Date(NOW + 10_000).toISOString() }, NOW + 10_400)).toMatchObject({ kind: "fire", dueMs: NOW + 10_000 });
  });

  it("fire-once drops all missed runs but the newest, which fires", () => {
    const doc = every({ misfire: "fire-once", nextRunAt: new Date(NOW).toISOString() });
    const step = planStep(doc, NOW + 10_400);
    expect(step).toEqual({ kind: "skip", count: 9, capped: false, firstMs: NOW, lastMs: NOW + 8_000, nextMs: NOW + 9_000 });
    expect(planStep({ ...doc, nextRunAt: new Date(NOW + 9_000).toISOString() }, NOW + 10_400)).toMatchObject({ kind: "fire", dueMs: NOW + 9_000, late: true });
  });

  it("counts missed cron runs up to a cap and stops at the end time", () => {
    const cron = buildSchedule({ name: "c", task: "t", cron: "* * * * * *" }, NOW);
    const step = planStep({ ...cron, nextRunAt: new Date(NOW).toISOString() }, NOW + 30 * 86_400_000);
    expect(step).toMatchObject({ kind: "skip", count: 100_000, capped: true });
    const ending = every({ misfire: "skip", nextRunAt: new Date(NOW).toISOString(), endAt: new Date(NOW + 4_000).toISOString() });
    expect(planStep(ending, NOW + 60_000)).toMatchObject({ kind: "skip", count: 5, nextMs: undefined });
    expect(planStep({ ...ending, nextRunAt: undefined }, NOW)).toEqual({ kind: "ended" });
  });
});

describe("resumeNext", () => {
  const paused = (misfire: ScheduleDoc["misfire"]) => every({ misfire, paused: true, nextRunAt: new Date(NOW).toISOString() });
  it("skip continues with the first run after now", () => {
    expect(resumeNext(paused("skip"), NOW + 5_500)).toEqual({ nextMs: NOW + 6_000, skipped: 6 });
  });
  it("catch-up keeps the missed runs", () => {
    expect(resumeNext(paused("catch-up"), NOW + 5_500)).toEqual({ nextMs: NOW, skipped: 0 });
  });
  it("fire-once fires the newest missed run", () => {
    expect(resumeNext(paused("fire-once"), NOW + 5_500)).toEqual({ nextMs: NOW + 5_000, skipped: 5 });
  });
  it("changes nothing when the next run is still ahead", () => {
    expect(resumeNext(paused("skip"), NOW - 1)).toEqual({ nextMs: NOW, skipped: 0 });
  });
});

/** An in-memory index with counters, entries and a cursor, recording what the scan did. */
class FakeIndex implements DueIndexIO {
  cursor?: number;
  counters = new Map<number, number>();
  entries = new Map<string, IndexEntry>();
  processed: string[] = [];
  moved: string[] = [];
  dropped: number[] = [];
  add(at: number, id: string, write = true): string {
    const slot = slotOf(at);
    const i = this.counters.get(slot) ?? 0;
    this.counters.set(slot, i + 1);
    const key = dueKey(slot, i);
    if (write) this.entries.set(key, { v: 1, k: "d", id, at });
    return key;
  }
  async loadCursor(initial: number) {
    this.cursor ??= initial;
    return this.cursor;
  }
  async saveCursor(slot: number) {
    this.cursor = Math.max(this.cursor ?? slot, slot);
  }
  async slotCount(slot: number) {
    return this.counters.get(slot) ?? 0;
  }
  async readEntries(slot: number, indexes: readonly number[]) {
    return indexes.map((i) => this.entries.get(dueKey(slot, i)));
  }
  async process(key: string, e: IndexEntry, now: number): Promise<ProcessResult> {
    if (e.at > now) return "wait";
    this.processed.push(e.id);
    this.entries.delete(key);
    return "done";
  }
  async moveForward(slot: number, list: ReadonlyArray<{ index: number; entry: IndexEntry }>) {
    for (const l of list) {
      this.entries.delete(dueKey(slot, l.index));
      this.moved.push(l.entry.id);
      this.add(((this.cursor as number) + 1) * SLOT_MS, l.entry.id);
    }
  }
  async dropSlot(slot: number) {
    this.dropped.push(slot);
    this.counters.delete(slot);
  }
}

describe("DueScan", () => {
  const base = slotOf(NOW) * SLOT_MS;
  it("fires what is due, wakes for what is not, and reads only the slots up to now", async () => {
    const io = new FakeIndex();
    const scan = new DueScan();
    io.add(base + 1_000, "a");
    io.add(base + 5_000, "b");
    io.add(base + 7 * 86_400_000, "next-week");
    const r = await scan.tick(base + 2_000, io);
    expect(io.processed).toEqual(["a"]);
    expect(r).toEqual({ processed: 1, nextWakeAt: base + 5_000, more: false });
    await scan.tick(base + 5_000, io);
    expect(io.processed).toEqual(["a", "b"]);
    expect(io.entries.size).toBe(1); // next week's entry was never read
  });

  it("stores the cursor over completed slots, then sweeps them: late entries move forward, counters are dropped", async () => {
    const io = new FakeIndex();
    const scan = new DueScan({ holeRereads: 0 }); // holes are left to the sweep
    io.add(base + 1_000, "a");
    await scan.tick(base + 2_000, io);
    const hole = io.add(base + 3_000, "late", false); // allocated, written only after the first read
    await scan.tick(base + 3_500, io);
    io.entries.set(hole, { v: 1, k: "d", id: "late", at: base + 3_000 });
    const r = await scan.tick(base + SLOT_MS + 100, io);
    expect(io.cursor).toBe(slotOf(base));
    expect(io.moved).toEqual(["late"]);
    expect(io.dropped).toEqual([slotOf(base)]);
    expect(r.more).toBe(true);
    await scan.tick(base + SLOT_MS + 200, io);
    expect(io.processed).toEqual(["a", "late"]);
  });

  it("bounds the work of one tick and says there is more", async () => {
    const io = new FakeIndex();
    const scan = new DueScan({ maxEntriesPerTick: 5 });
    for (let i = 0; i < 12; i++) io.add(base + 100 + i, `j${i}`);
    expect((await scan.tick(base + 1_000, io)).more).toBe(true);
    expect(io.processed).toHaveLength(5);
    await scan.tick(base + 1_000, io);
    await scan.tick(base + 1_000, io);
    expect(io.processed).toHaveLength(12);
  });

  it("after a reset (new leader) continues from the stored cursor", async () => {
    const io = new FakeIndex();
    io.cursor = slotOf(base) - 3;
    io.add(base - 2 * SLOT_MS + 10, "old");
    const scan = new DueScan();
    await scan.tick(base + 100, io);
    expect(io.processed).toEqual(["old"]);
    expect(io.cursor).toBe(slotOf(base) - 1);
  });
});

describe("LeaderLease", () => {
  function fake() {
    let now = 1_000_000;
    let holder: { id: string; rev: number; until: number } | undefined;
    let rev = 0;
    let failing = false;
    const io: LeaseIO = {
      doc: (id, since, ttlMs, at) => ({ v: 1, id, host: "h", pid: 1, since: String(since), renewedAt: String(at), expiresAt: String(at + ttlMs) }),
      acquire: async (doc) => {
        if (failing) throw new Error("connection lost");
        if (holder && holder.until > now) return undefined;
        holder = { id: doc.id, rev: ++rev, until: now + 3_000 };
        return holder.rev;
      },
      renew: async (doc, r) => {
        if (failing) throw new Error("connection lost");
        if (!holder || holder.until <= now || holder.rev !== r) throw new ConflictError("revision mismatch");
        holder = { id: doc.id, rev: ++rev, until: now + 3_000 };
        return holder.rev;
      },
      release: async (r) => {
        if (holder?.rev === r) holder = undefined;
      },
    };
    return { io, clock: () => now, advance: (ms: number) => (now += ms), fail: (f: boolean) => (failing = f) };
  }

  it("one leads; the other takes over only after the lease ran out, or at once after a release", async () => {
    const f = fake();
    const a = new LeaderLease(f.io, "a", 3_000, f.clock);
    const b = new LeaderLease(f.io, "b", 3_000, f.clock);
    expect(await a.step()).toBe("acquired");
    expect(await b.step()).toBe("follower");
    f.advance(1_000);
    expect(await a.step()).toBe("renewed");
    // a dies (no more renewals): b gets it once the TTL has passed.
    f.advance(2_900);
    expect(await b.step()).toBe("follower");
    f.advance(200);
    expect(a.isLeader).toBe(false); // its own clock says its lease ran out
    expect(() => a.check()).toThrow(LeaseLostError);
    expect(await b.step()).toBe("acquired");
    expect(await a.step()).toBe("lost");
    await b.release();
    expect(await a.step()).toBe("acquired");
  });

  it("a transient failure keeps the lease until it runs out, then it is lost", async () => {
    const f = fake();
    const a = new LeaderLease(f.io, "a", 3_000, f.clock);
    await a.step();
    f.fail(true);
    f.advance(1_000);
    await expect(a.step()).rejects.toThrow(/connection lost/);
    expect(a.isLeader).toBe(true);
    f.advance(2_000);
    expect(a.isLeader).toBe(false);
    expect(await a.step()).toBe("lost");
  });
});
