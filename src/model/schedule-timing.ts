/**
 * When a schedule's runs are due, and what the scheduler does about a due run, pure:
 * recurrence (cron with a time zone, or a fixed interval) with start, end and limit, the
 * per-run jitter every scheduler agrees on, and the misfire policies (fire, skip missed
 * runs, wait; and where a schedule goes on after a pause). See docs/scheduler.md.
 */
import { compileCron } from "./cron.js";
import type { Recurrence, ScheduleDoc } from "./schedule.js";

/** A deterministic offset in [0, jitterMs) for one run, so every scheduler agrees on it. */
export function jitterOffset(name: string, dueMs: number, jitterMs: number | undefined): number {
  if (!jitterMs || jitterMs <= 0) return 0;
  let h = 0x811c9dc5;
  for (const ch of `${name}@${dueMs}`) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % Math.floor(jitterMs);
}

export const fireAtOf = (doc: Pick<ScheduleDoc, "name" | "jitterMs">, dueMs: number): number => dueMs + jitterOffset(doc.name, dueMs, doc.jitterMs);

// ---------------------------------------------------------------------------------------
// Recurrence.

/** The first run of `rec` strictly after `afterMs` (no start/end/limit applied). */
export function nextOf(rec: Recurrence, afterMs: number): number | undefined {
  if (rec.kind === "every") {
    if (afterMs < rec.anchorMs) return rec.anchorMs;
    return rec.anchorMs + (Math.floor((afterMs - rec.anchorMs) / rec.everyMs) + 1) * rec.everyMs;
  }
  return compileCron(rec.cron, rec.tz).next(afterMs);
}

/** The next run of a schedule strictly after `afterMs`, honouring start, end and limit (runs so far = `runs`). */
export function nextRun(doc: Pick<ScheduleDoc, "recurrence" | "startAt" | "endAt" | "limit">, afterMs: number, runs: number): number | undefined {
  if (doc.limit !== undefined && runs >= doc.limit) return undefined;
  const start = doc.startAt ? Date.parse(doc.startAt) : undefined;
  const from = start !== undefined && afterMs < start ? start - 1 : afterMs;
  const next = nextOf(doc.recurrence, from);
  if (next === undefined || (doc.endAt && next > Date.parse(doc.endAt))) return undefined;
  return next;
}

/** The typical gap between two runs around `dueMs` (for the misfire grace). */
function periodAt(rec: Recurrence, dueMs: number): number {
  if (rec.kind === "every") return rec.everyMs;
  const after = nextOf(rec, dueMs);
  return after === undefined ? 60_000 : after - dueMs;
}

/** How late a run may fire and still count as on time: half its period, from 1s to 60s. */
export function misfireGraceMs(rec: Recurrence, dueMs: number): number {
  return Math.min(60_000, Math.max(1_000, Math.floor(periodAt(rec, dueMs) / 2)));
}

/** The next `count` due times from the schedule's next run on (for `show`). */
export function upcoming(doc: ScheduleDoc, count: number): number[] {
  const out: number[] = [];
  if (!doc.nextRunAt) return out;
  let t: number | undefined = Date.parse(doc.nextRunAt);
  let runs = doc.runs;
  while (t !== undefined && out.length < count) {
    out.push(t);
    runs++;
    t = nextRun(doc, t, runs);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Decisions about due runs.

export type Step =
  | { kind: "wait"; fireAt: number }
  | { kind: "ended" }
  | { kind: "fire"; dueMs: number; late: boolean; nextMs: number | undefined }
  | { kind: "skip"; count: number; capped: boolean; firstMs: number; lastMs: number; nextMs: number | undefined };

/** Counting missed runs stops here (a cron with seconds over a long outage); counts are then "at least". */
const MAX_COUNT = 100_000;

/**
 * What to do now about a schedule's next run (`doc.nextRunAt`), one step at a time:
 * wait (not due), fire it, or skip a run of missed ones. A run is missed when it is
 * later than its grace (half the period, 1s..60s). Missed runs: `catch-up` fires each,
 * `skip` drops them, `fire-once` drops all but the newest, which fires.
 */
export function planStep(doc: ScheduleDoc, nowMs: number): Step {
  if (!doc.nextRunAt) return { kind: "ended" };
  const due = Date.parse(doc.nextRunAt);
  const fireAt = fireAtOf(doc, due);
  if (fireAt > nowMs) return { kind: "wait", fireAt };
  const grace = misfireGraceMs(doc.recurrence, due);
  const missed = (d: number) => fireAtOf(doc, d) < nowMs - grace;
  const next = (d: number, runs: number) => nextRun(doc, d, runs);
  if (!missed(due) || doc.misfire === "catch-up") {
    return { kind: "fire", dueMs: due, late: missed(due), nextMs: next(due, doc.runs + 1) };
  }
  // Walk the missed runs (skipping fires nothing, so the run count does not move).
  let last = due;
  let prev = due;
  let count = 1;
  const rec = doc.recurrence;
  if (rec.kind === "every") {
    // Jump over the runs that are missed for sure (even with the largest jitter).
    const bound = Math.min(nowMs - grace - (doc.jitterMs ?? 0) - 1, doc.endAt ? Date.parse(doc.endAt) : Number.POSITIVE_INFINITY);
    if (bound > due) {
      const steps = Math.floor((bound - due) / rec.everyMs);
      count += steps;
      last = due + steps * rec.everyMs;
      prev = last - rec.everyMs;
    }
  }
  let after = next(last, doc.runs);
  while (after !== undefined && missed(after) && count < MAX_COUNT) {
    prev = last;
    last = after;
    count++;
    after = next(after, doc.runs);
  }
  const capped = after !== undefined && missed(after);
  if (doc.misfire === "fire-once" && !capped) {
    if (count === 1) return { kind: "fire", dueMs: due, late: true, nextMs: next(due, doc.runs + 1) };
    // Drop all missed runs but the newest; the next step fires that one.
    return { kind: "skip", count: count - 1, capped, firstMs: due, lastMs: prev, nextMs: last };
  }
  return { kind: "skip", count, capped, firstMs: due, lastMs: last, nextMs: after };
}

/**
 * Where a schedule goes on when resumed at `nowMs` after a pause: `skip` continues with the
 * first run after now, `catch-up` keeps the missed runs (the scheduler fires them), and
 * `fire-once` fires the newest missed run once.
 */
export function resumeNext(doc: ScheduleDoc, nowMs: number): { nextMs: number | undefined; skipped: number } {
  if (!doc.nextRunAt) return { nextMs: undefined, skipped: 0 };
  let due: number | undefined = Date.parse(doc.nextRunAt);
  if (due > nowMs || doc.misfire === "catch-up") return { nextMs: due, skipped: 0 };
  let skipped = 0;
  let prev = due;
  while (due !== undefined && due <= nowMs && skipped < MAX_COUNT) {
    prev = due;
    skipped++;
    due = nextRun(doc, due, doc.runs);
  }
  if (doc.misfire === "fire-once") return { nextMs: prev, skipped: skipped - 1 };
  return { nextMs: due, skipped };
}
