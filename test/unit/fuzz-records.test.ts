/**
 * Fuzzing the decoders of what naq reads back from KV buckets and streams: job records,
 * events, schedules, delayed jobs, the due-time index, leases, heartbeats, pause flags, stop
 * requests and dead-letter entries. Anyone with access to the account can put any bytes
 * there; every decoder either returns a document whose fields have the types naq relies on,
 * or throws a ValidationError naming where: never a TypeError later on.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/model/errors.js";
import { decodeEvent } from "../../src/model/event-filter.js";
import { namesFor } from "../../src/model/naming.js";
import {
  checkCursorDoc,
  checkDelayedDoc,
  checkEvent,
  checkIndexEntry,
  checkJobRecord,
  checkLeaseDoc,
  checkScheduleDoc,
  checkSlotCounter,
  type DocCheck,
} from "../../src/model/records.js";
import { buildSchedule, envelopeFor } from "../../src/model/schedule.js";
import { nextRun, planStep } from "../../src/model/schedule-timing.js";
import { checkPauseFlag, checkStopRequest } from "../../src/services/control.js";
import { checkDeadLetter } from "../../src/services/dead-letters.js";
import { decodeJson } from "../../src/services/kv.js";
import { checkWorkerInfo } from "../../src/services/workers.js";
import { mutateText, nastyJson, prototypeIsClean, RUNS, typedOutcome } from "../support/fuzz.js";

const NOW = Date.parse("2025-06-01T12:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();
const envelope = envelopeFor({ name: "nightly", job: { task: "report", queue: "reports", payload: { a: [1, 2] } } }, NOW, NOW);
const schedule = buildSchedule({ name: "nightly", task: "report", queue: "reports", cron: "0 9 * * 1-5", tz: "Europe/Berlin", limit: 5, jitterMs: 1_000 }, NOW);

/** One valid document of each kind, and the decoder that reads it. */
const KINDS: Array<{ name: string; check: DocCheck<unknown>; valid: Record<string, unknown>; use?: (doc: never) => void }> = [
  {
    name: "job record",
    check: checkJobRecord,
    valid: { v: 1, id: "a", queue: "q", task: "t", status: "failed", attempts: 2, maxAttempts: 3, enqueuedAt: iso(NOW), finishedAt: iso(NOW), error: { name: "Error", message: "x" }, labels: { k: "v" } },
  },
  { name: "event", check: checkEvent, valid: { v: 1, type: "retrying", at: iso(NOW), queue: "q", jobId: "a", attempt: 1, error: { name: "E", message: "m" } } },
  {
    name: "schedule",
    check: checkScheduleDoc,
    valid: JSON.parse(JSON.stringify(schedule)) as Record<string, unknown>,
    // What the scheduler does with a schedule it read: plan the next step and the run after.
    use: (doc: never) => {
      planStep(doc, NOW + 86_400_000);
      nextRun(doc, NOW, 0);
      envelopeFor(doc, NOW, NOW);
    },
  },
  { name: "delayed job", check: checkDelayedDoc, valid: { v: 1, job: JSON.parse(JSON.stringify(envelope)) as unknown, dueAt: iso(NOW + 60_000), createdAt: iso(NOW) } },
  { name: "lease", check: checkLeaseDoc, valid: { v: 1, id: "s1", host: "h", pid: 1, since: iso(NOW), renewedAt: iso(NOW), expiresAt: iso(NOW + 10_000) } },
  { name: "index entry", check: checkIndexEntry, valid: { v: 1, k: "s", id: "nightly", at: NOW } },
  { name: "slot counter", check: checkSlotCounter, valid: { v: 1, n: 3 } },
  { name: "cursor", check: checkCursorDoc, valid: { v: 1, slot: 174_000_000, at: iso(NOW) } },
  {
    name: "worker heartbeat",
    check: checkWorkerInfo,
    valid: {
      v: 1,
      id: "w-1-abc",
      host: "h",
      pid: 1,
      queues: ["q"],
      concurrency: 2,
      status: "running",
      running: ["a"],
      runningByQueue: { q: 1 },
      processed: 1,
      failed: 0,
      startedAt: iso(NOW),
      lastHeartbeat: iso(NOW),
      version: "0.1.0",
    },
  },
  { name: "pause flag", check: checkPauseFlag, valid: { v: 1, queue: "q", at: iso(NOW), reason: "r", by: "h-1" } },
  { name: "stop request", check: checkStopRequest, valid: { v: 1, worker: "w", at: iso(NOW), graceMs: 1_000 } },
  {
    name: "dead letter",
    check: checkDeadLetter,
    valid: { v: 1, id: "a", queue: "q", task: "t", reason: "failed after 1 attempt", attempts: 1, failedAt: iso(NOW), job: JSON.parse(JSON.stringify(envelope)) as unknown },
  },
];

const encoder = new TextEncoder();

function decodeWith(kind: (typeof KINDS)[number], text: string): void {
  const r = typedOutcome(() => decodeJson(encoder.encode(text), "naq_bucket/key", kind.check));
  if (!r.ok) {
    expect(r.error).toBeInstanceOf(ValidationError);
    expect(r.error.message).toMatch(/^naq_bucket\/key/);
    return;
  }
  // A document that passed is safe to use the way naq uses it.
  if (kind.use) {
    const used = typedOutcome(() => kind.use?.(r.value as never));
    expect(used.ok || used.error instanceof ValidationError).toBe(true);
  }
}

describe("KV and stream documents under fuzzing", () => {
  for (const kind of KINDS) {
    it(`${kind.name}: the valid document passes; random bytes, random JSON and mutations give a ValidationError or a usable document (500 runs)`, () => {
      expect(() => kind.check(kind.valid, "here")).not.toThrow();
      const fields = Object.keys(kind.valid);
      fc.assert(
        fc.property(
          fc.oneof(
            fc.uint8Array({ maxLength: 100 }).map((b) => new TextDecoder().decode(b)),
            fc.json({ maxDepth: 3 }),
            fc.tuple(fc.constantFrom(...fields), fc.oneof(nastyJson, fc.constant(undefined))).map(([field, value]) => {
              const copy: Record<string, unknown> = { ...kind.valid };
              if (value === undefined) delete copy[field];
              else copy[field] = value;
              return JSON.stringify(copy);
            }),
            fc.tuple(fc.nat(), fc.integer(), fc.string({ maxLength: 10 })).map(([how, at, insert]) => mutateText(JSON.stringify(kind.valid), how, at, insert)),
          ),
          (text) => decodeWith(kind, text),
        ),
        RUNS(500),
      );
      expect(prototypeIsClean()).toBe(true);
    });
  }

  it("nested fields of a schedule (job template, recurrence, inflight) retyped (800 runs)", () => {
    const kind = KINDS.find((k) => k.name === "schedule") as (typeof KINDS)[number];
    const paths = [
      ["job", "task"],
      ["job", "queue"],
      ["job", "payload"],
      ["job", "retries"],
      ["job", "backoff"],
      ["job", "timeoutMs"],
      ["job", "labels"],
      ["recurrence", "kind"],
      ["recurrence", "cron"],
      ["recurrence", "tz"],
      ["recurrence", "everyMs"],
      ["recurrence", "anchorMs"],
    ] as const;
    fc.assert(
      fc.property(fc.constantFrom(...paths), nastyJson, ([outer, inner], value) => {
        const doc = JSON.parse(JSON.stringify(kind.valid)) as Record<string, Record<string, unknown>>;
        (doc[outer] as Record<string, unknown>)[inner] = value;
        decodeWith(kind, JSON.stringify(doc));
      }),
      RUNS(800),
    );
  });

  it("a document with an unknown version is refused by name", () => {
    for (const kind of KINDS.filter((k) => k.name !== "event")) {
      expect(() => kind.check({ ...kind.valid, v: 2 }, "b/k"), kind.name).toThrow(/unsupported version 2/);
      expect(() => kind.check(null, "b/k"), kind.name).toThrow(/not a naq document/);
    }
  });

  it("decodeEvent: random subjects and bodies give an event with string queue/jobId/type, or undefined (800 runs)", () => {
    const names = namesFor("naq");
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.constantFrom("naq.events.q.a.started", "naq.events.q.a", "naq.events.a.b.c.d", "naq.events...", "other.events.q.a.x")),
        fc.oneof(fc.json({ maxDepth: 3 }), fc.string(), fc.constant(JSON.stringify(KINDS[1]?.valid))),
        (subject, body) => {
          const ev = decodeEvent(names, subject, encoder.encode(body), new Date(NOW));
          if (ev) {
            for (const k of ["queue", "jobId", "type", "at"] as const) expect(typeof ev[k]).toBe("string");
            if (ev.error) expect(typeof ev.error.message).toBe("string");
            if (ev.log !== undefined) expect(typeof ev.log).toBe("string");
          }
        },
      ),
      RUNS(800),
    );
  });
});
