/**
 * ScheduleFiring: the leader's side of the scheduler. One due scan (a DueScan from
 * src/scheduler/) walks the due-time index; each due entry fires its delayed job or the
 * due runs of its recurring schedule. A plain helper of SchedulerService.
 *
 * Exactly once per due time: a run is claimed with a compare-and-set on the schedule's
 * (or delayed job's) revision before it is published, the fired job's id is derived from
 * the schedule name and due time (Msg-Id dedup absorbs a second publish), and the caller's
 * LeaseGuard is checked right before each claim and each publish. A run claimed but not
 * published (a crash in between) is published again by the next leader.
 */
import type { IndexEntry } from "../model/due-slots.js";
import { ConflictError, NotFoundError, ValidationError } from "../model/errors.js";
import { ScheduleEventType, SCHEDULE_EVENTS_QUEUE } from "../model/events.js";
import { JobStatus } from "../model/job.js";
import { delayedKey, envelopeFor, scheduleJobId, scheduleKey, type DelayedDoc, type ScheduleDoc } from "../model/schedule.js";
import { fireAtOf, planStep } from "../model/schedule-timing.js";
import { checkDelayedDoc, checkScheduleDoc } from "../model/records.js";
import type { ServiceContext } from "./base.js";
import { CAS_ATTEMPTS, type DueIndex, type DueIndexIO, type DueScanner, type ProcessResult } from "./due-index.js";
import type { EventService } from "./events.js";
import type { JobService } from "./jobs.js";
import type { KVStoreService } from "./kv.js";

export interface FireInfo {
  kind: "schedule" | "delayed" | "trigger";
  /** Schedule name (recurring) or job id (delayed). */
  name: string;
  jobId: string;
  queue: string;
  task: string;
  dueAt: string;
  firedAt: string;
  lateMs: number;
  /** Re-published after a crash between claim and publish. */
  recovered?: boolean;
  /** JetStream already had this job id (a second publish, absorbed). */
  duplicate: boolean;
}

export interface SkipInfo {
  name: string;
  count: number;
  /** The count is a lower bound (too many runs to count). */
  capped: boolean;
  firstDueAt: string;
  lastDueAt: string;
  reason: string;
}

export interface TickReport {
  fired: FireInfo[];
  skipped: SkipInfo[];
  /** Index entries handled (fired, skipped, dropped as stale). */
  processed: number;
  /** Earliest known fire time still ahead, if any. */
  nextWakeAt?: number;
  /** More due work is left than one tick takes. */
  more: boolean;
}

/** Checked right before every claim and publish: throws when this process may no longer fire. */
export interface LeaseGuard {
  readonly id: string;
  check(): void;
}

/** Runs fired for one schedule in one go before other entries get their turn. */
const MAX_RUNS_PER_ENTRY = 100;

const iso = (ms: number): string => new Date(ms).toISOString();

/** Emits a schedule event (its queue is `_schedules`, its job id the schedule name). */
export function emitScheduleEvent(
  events: EventService,
  type: ScheduleEventType,
  doc: Pick<ScheduleDoc, "name" | "job">,
  extra: { dueAt?: string; firedJob?: string; count?: number; reason?: string },
): void {
  events.emit({ type, queue: SCHEDULE_EVENTS_QUEUE, jobId: doc.name, task: doc.job.task, ...extra });
}

export class ScheduleFiring {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly kv: KVStoreService,
    private readonly events: EventService,
    private readonly jobs: JobService,
    private readonly dueIndex: DueIndex,
  ) {}

  private get bucket(): string {
    return this.dueIndex.bucket;
  }

  /** Runs one due scan as the process holding `guard`. */
  async triggerDue(scan: DueScanner, guard: LeaseGuard, nowMs = Date.now()): Promise<TickReport> {
    const report: TickReport = { fired: [], skipped: [], processed: 0, more: false };
    const r = await scan.tick(nowMs, this.dueIO(guard, report));
    return { ...report, processed: r.processed, nextWakeAt: r.nextWakeAt, more: r.more };
  }

  private dueIO(guard: LeaseGuard, report: TickReport): DueIndexIO {
    const index = this.dueIndex;
    return {
      loadCursor: (initial) => index.loadCursor(initial),
      saveCursor: (slot) => index.saveCursor(slot, guard.id),
      slotCount: (slot) => index.slotCount(slot),
      readEntries: (slot, indexes) => index.readEntries(slot, indexes),
      process: (key, entry, now) =>
        (entry.k === "d" ? this.fireDelayed(key, entry, now, guard, report) : this.fireSchedule(key, entry, now, guard, report)).catch((err: unknown) =>
          this.poisoned(key, entry, err),
        ),
      moveForward: (slot, list) => index.moveForward(slot, list),
      dropSlot: (slot) => index.dropSlot(slot),
    };
  }

  /**
   * A due entry whose document is not valid (corrupted, written by something else) or whose
   * job can never be published (e.g. over max_payload): it is dropped with a warning, so one
   * bad document never stops the scan for every other schedule. The document is left for an
   * operator to inspect (`naq scheduler show`, `nats kv get`).
   */
  private async poisoned(key: string, entry: IndexEntry, err: unknown): Promise<ProcessResult> {
    if (!(err instanceof ValidationError)) throw err;
    this.ctx.logger.warn(`scheduler: ${entry.k === "d" ? "delayed job" : "schedule"} ${entry.id} cannot fire: ${err.message}; its due entry is dropped`);
    await this.dueIndex.purgeKey(key);
    return "done";
  }

  /** Republishing a claimed run is safe (Msg-Id dedup) this long after the claim. */
  private get dedupSafeMs(): number {
    return Math.floor(this.ctx.config.streams.jobs.duplicateWindow * 0.75);
  }

  /** Whether a claimed job made it out: within the dedup window we just publish again. */
  private async mayRepublish(jobId: string, claimedAt: string, now: number): Promise<boolean> {
    if (now - Date.parse(claimedAt) <= this.dedupSafeMs) return true;
    try {
      // A record or an event of its run says it was published. A delayed job's own
      // `scheduled` event (written when it was scheduled) does not: it would drop the job.
      return (await this.jobs.status(jobId)).status === JobStatus.scheduled;
    } catch (err) {
      if (err instanceof NotFoundError) return true;
      throw err;
    }
  }

  private async isCancelled(id: string): Promise<boolean> {
    return (await this.kv.get(this.ctx.names.buckets.cancels, id)) !== undefined;
  }

  private async fireDelayed(key: string, e: IndexEntry, now: number, guard: LeaseGuard, report: TickReport): Promise<ProcessResult> {
    if (e.at > now) return "wait";
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const cur = await this.kv.getJson<DelayedDoc>(this.bucket, delayedKey(e.id), checkDelayedDoc);
      if (!cur) break; // fired, cancelled, or never completed: nothing to do
      const doc = cur.value;
      if (await this.isCancelled(e.id)) {
        await this.dueIndex.purgeKey(delayedKey(e.id), cur.revision);
        break;
      }
      let revision = cur.revision;
      let recovered = false;
      if (doc.firing) {
        recovered = true;
        if (!(await this.mayRepublish(doc.job.id, doc.firing.at, now))) {
          await this.dueIndex.purgeKey(delayedKey(e.id), revision);
          break;
        }
      } else {
        guard.check();
        try {
          revision = await this.kv.updateJson<DelayedDoc>(this.bucket, delayedKey(e.id), { ...doc, firing: { at: iso(now), by: guard.id } }, revision);
        } catch (err) {
          if (err instanceof ConflictError) continue; // changed under us: look again
          throw err;
        }
      }
      guard.check();
      const r = await this.jobs.publish({ ...doc.job, enqueuedAt: iso(now) }, doc.job.id);
      await this.dueIndex.purgeKey(delayedKey(e.id), revision);
      if (!recovered || !r.duplicate) {
        const due = Date.parse(doc.dueAt);
        report.fired.push({ kind: "delayed", name: doc.job.id, jobId: doc.job.id, queue: doc.job.queue, task: doc.job.task, dueAt: doc.dueAt, firedAt: iso(now), lateMs: Math.max(0, now - due), recovered, duplicate: r.duplicate });
      }
      break;
    }
    await this.dueIndex.purgeKey(key);
    return "done";
  }

  private async fireSchedule(key: string, e: IndexEntry, now: number, guard: LeaseGuard, report: TickReport): Promise<ProcessResult> {
    if (e.at > now) return "wait";
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const cur = await this.kv.getJson<ScheduleDoc>(this.bucket, scheduleKey(e.id), checkScheduleDoc);
      if (!cur) break;
      let doc = cur.value;
      let revision = cur.revision;
      // A run claimed through this very entry may not have been published (crash in between).
      if (doc.inflight && doc.inflight.entry === key && (await this.mayRepublish(doc.inflight.jobId, doc.inflight.at, now))) {
        const due = Date.parse(doc.inflight.dueAt);
        guard.check();
        const r = await this.jobs.publish(envelopeFor(doc, due, now, doc.inflight.jobId));
        if (!r.duplicate) this.recordFire(doc, due, doc.inflight.jobId, now, true, false, report);
      }
      if (doc.paused || !doc.nextRunAt || fireAtOf(doc, Date.parse(doc.nextRunAt)) > now) break; // stale entry
      let fired = 0;
      let conflict = false;
      for (;;) {
        const step = planStep(doc, now);
        if (step.kind === "wait" || step.kind === "ended") break;
        if (fired >= MAX_RUNS_PER_ENTRY) return "again";
        const next: ScheduleDoc = { ...doc, updatedAt: iso(now) };
        if (step.nextMs === undefined) delete next.nextRunAt;
        else next.nextRunAt = iso(step.nextMs);
        if (step.kind === "fire") {
          const jobId = scheduleJobId(doc.name, step.dueMs);
          Object.assign(next, { runs: doc.runs + 1, lastRunAt: iso(step.dueMs), lastJobId: jobId, lastFiredAt: iso(now) });
          next.inflight = { jobId, dueAt: iso(step.dueMs), entry: key, at: iso(now) };
        }
        const nextFire = step.nextMs !== undefined ? fireAtOf(doc, step.nextMs) : undefined;
        // The next run gets its index entry before the document points at it.
        if (nextFire !== undefined && nextFire > now) await this.dueIndex.index([{ k: "s", id: doc.name, at: nextFire }]);
        guard.check();
        try {
          revision = await this.kv.updateJson(this.bucket, scheduleKey(doc.name), next, revision);
        } catch (err) {
          if (!(err instanceof ConflictError)) throw err;
          conflict = true;
          break;
        }
        if (step.kind === "skip") {
          const skip: SkipInfo = { name: doc.name, count: step.count, capped: step.capped, firstDueAt: iso(step.firstMs), lastDueAt: iso(step.lastMs), reason: `missed (policy ${doc.misfire})` };
          report.skipped.push(skip);
          emitScheduleEvent(this.events, ScheduleEventType.misfireSkipped, doc, { count: step.count, dueAt: skip.firstDueAt, reason: `${step.capped ? "at least " : ""}${step.count} missed run(s) up to ${skip.lastDueAt} skipped (policy ${doc.misfire})` });
        } else {
          guard.check();
          const r = await this.jobs.publish(envelopeFor(doc, step.dueMs, now));
          this.recordFire(doc, step.dueMs, next.lastJobId as string, now, false, r.duplicate, report);
          fired++;
        }
        doc = next;
      }
      if (!conflict) break;
    }
    await this.dueIndex.purgeKey(key);
    return "done";
  }

  private recordFire(doc: ScheduleDoc, dueMs: number, jobId: string, now: number, recovered: boolean, duplicate: boolean, report: TickReport): void {
    report.fired.push({ kind: "schedule", name: doc.name, jobId, queue: doc.job.queue, task: doc.job.task, dueAt: iso(dueMs), firedAt: iso(now), lateMs: Math.max(0, now - dueMs), recovered, duplicate });
    if (!duplicate) emitScheduleEvent(this.events, ScheduleEventType.fired, doc, { firedJob: jobId, dueAt: iso(dueMs), ...(recovered ? { reason: "published again after a crash" } : {}) });
  }
}
