/**
 * RecurringSchedules: the user-facing side of recurring schedules, stored in
 * `<ns>_schedules` under `schedule.<name>` (layout in src/model/schedule.ts): add (create
 * or update by name), get, list, pause, resume, remove, and trigger a run by hand. Every
 * change is a compare-and-set on the schedule's revision, retried on conflict, and emits
 * its schedule event; a new due time goes into the due-time index before the schedule is
 * written. A plain helper of SchedulerService.
 */
import { ConflictError, NotFoundError, ValidationError } from "../model/errors.js";
import { ScheduleEventType } from "../model/events.js";
import {
  buildSchedule,
  envelopeFor,
  SCHEDULE_PREFIX,
  scheduleKey,
  scheduleStatus,
  triggerJobId,
  validateScheduleName,
  type ScheduleDoc,
  type ScheduleInput,
  type ScheduleStatus,
} from "../model/schedule.js";
import { fireAtOf, resumeNext } from "../model/schedule-timing.js";
import { checkScheduleDoc } from "../model/records.js";
import type { ServiceContext } from "./base.js";
import { CAS_ATTEMPTS, type DueIndex } from "./due-index.js";
import type { EventService } from "./events.js";
import type { JobService } from "./jobs.js";
import type { KVStoreService } from "./kv.js";
import { emitScheduleEvent, type FireInfo } from "./scheduler-fire.js";

export interface ScheduleInfo extends ScheduleDoc {
  status: ScheduleStatus;
  revision: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();

export class RecurringSchedules {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly kv: KVStoreService,
    private readonly events: EventService,
    private readonly jobs: JobService,
    private readonly dueIndex: DueIndex,
  ) {}

  private get bucket(): string {
    return this.ctx.names.buckets.schedules;
  }

  /** Creates or updates (by name) a recurring schedule. */
  async add(input: ScheduleInput): Promise<ScheduleInfo & { created: boolean }> {
    for (let attempt = 0; ; attempt++) {
      const now = Date.now();
      const key = scheduleKey(validateScheduleName(input.name));
      // A stored value that is not a schedule (corrupted, or written by something else) is replaced.
      const raw = await this.kv.get(this.bucket, key);
      let existing: { value: ScheduleDoc; revision: number } | undefined;
      try {
        existing = raw ? { value: checkScheduleDoc(JSON.parse(new TextDecoder().decode(raw.value)), `${this.bucket}/${key}`), revision: raw.revision } : undefined;
      } catch (err) {
        if (!(err instanceof ValidationError || err instanceof SyntaxError)) throw err;
        this.ctx.logger.warn(`${this.bucket}/${key} did not hold a valid schedule (${err.message}); replacing it`);
      }
      const doc = buildSchedule(input, now, existing?.value);
      if (doc.nextRunAt && !doc.paused && doc.nextRunAt !== existing?.value.nextRunAt) {
        await this.dueIndex.index([{ k: "s", id: doc.name, at: fireAtOf(doc, Date.parse(doc.nextRunAt)) }]);
      }
      try {
        const revision = raw
          ? await this.kv.updateJson(this.bucket, scheduleKey(doc.name), doc, raw.revision)
          : await this.kv.createJson(this.bucket, scheduleKey(doc.name), doc);
        this.emitSchedule(existing ? ScheduleEventType.updated : ScheduleEventType.added, doc, { dueAt: doc.nextRunAt });
        return { ...doc, status: scheduleStatus(doc), revision, created: !existing };
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= CAS_ATTEMPTS) throw err;
      }
    }
  }

  async get(name: string): Promise<ScheduleInfo> {
    const e = await this.kv.getJson<ScheduleDoc>(this.bucket, scheduleKey(validateScheduleName(name)), checkScheduleDoc);
    if (!e) throw new NotFoundError(`schedule ${name} not found (see naq scheduler list)`);
    return { ...e.value, status: scheduleStatus(e.value), revision: e.revision };
  }

  /** Every recurring schedule, by name. */
  async list(): Promise<ScheduleInfo[]> {
    const keys = await this.kv.keys(this.bucket, `${SCHEDULE_PREFIX}>`);
    const docs = await Promise.all(
      keys.map((k) =>
        this.kv.getJson<ScheduleDoc>(this.bucket, k, checkScheduleDoc).catch((err: unknown) => {
          // One unreadable document does not hide the others; it is named on stderr.
          if (!(err instanceof ValidationError)) throw err;
          this.ctx.logger.warn(`${err.message}; skipped`);
          return undefined;
        }),
      ),
    );
    return docs
      .filter((e): e is NonNullable<typeof e> => e !== undefined)
      .map((e) => ({ ...e.value, status: scheduleStatus(e.value), revision: e.revision }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async pause(name: string): Promise<ScheduleInfo> {
    return this.change(name, (doc, now) => {
      if (doc.paused) return undefined;
      return { ...doc, paused: true, pausedAt: iso(now), updatedAt: iso(now) };
    }, ScheduleEventType.paused);
  }

  /** Resumes a paused schedule: from the next due time (skip), with every missed run (catch-up), or one run now (fire-once). */
  async resume(name: string): Promise<ScheduleInfo & { skipped: number }> {
    let skipped = 0;
    const info = await this.change(name, async (doc, now) => {
      if (!doc.paused) return undefined;
      const r = resumeNext(doc, now);
      skipped = r.skipped;
      const next: ScheduleDoc = { ...doc, paused: false, updatedAt: iso(now) };
      delete next.pausedAt;
      if (r.nextMs === undefined) delete next.nextRunAt;
      else {
        next.nextRunAt = iso(r.nextMs);
        await this.dueIndex.index([{ k: "s", id: doc.name, at: fireAtOf(doc, r.nextMs) }]);
      }
      return next;
    }, ScheduleEventType.resumed);
    if (skipped > 0) this.emitSchedule(ScheduleEventType.misfireSkipped, info, { count: skipped, reason: "missed while paused (policy skip)" });
    return { ...info, skipped };
  }

  async remove(name: string): Promise<ScheduleInfo> {
    const info = await this.get(name);
    await this.dueIndex.purgeKey(scheduleKey(info.name));
    this.emitSchedule(ScheduleEventType.removed, info, {});
    return info;
  }

  /** Runs a schedule's job now, outside its timing (its next run is not moved). */
  async trigger(name: string): Promise<FireInfo> {
    const info = await this.get(name);
    const now = Date.now();
    const env = envelopeFor(info, now, now, triggerJobId(info.name, now));
    const r = await this.jobs.publish(env);
    this.emitSchedule(ScheduleEventType.fired, info, { firedJob: env.id, dueAt: iso(now), reason: "triggered by hand" });
    return { kind: "trigger", name: info.name, jobId: env.id, queue: env.queue, task: env.task, dueAt: iso(now), firedAt: iso(now), lateMs: 0, duplicate: r.duplicate };
  }

  /** Read-modify-write of a schedule with compare-and-set; `fn` returns undefined for "nothing to change". */
  private async change(
    name: string,
    fn: (doc: ScheduleDoc, now: number) => ScheduleDoc | undefined | Promise<ScheduleDoc | undefined>,
    event: ScheduleEventType,
  ): Promise<ScheduleInfo> {
    for (let attempt = 0; ; attempt++) {
      const cur = await this.get(name);
      const { status: _s, revision, ...doc } = cur;
      const next = await fn(doc, Date.now());
      if (!next) return cur;
      try {
        const rev = await this.kv.updateJson(this.bucket, scheduleKey(doc.name), next, revision);
        this.emitSchedule(event, next, { dueAt: next.nextRunAt });
        return { ...next, status: scheduleStatus(next), revision: rev };
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= CAS_ATTEMPTS) throw err;
      }
    }
  }
  private emitSchedule(type: ScheduleEventType, doc: Pick<ScheduleDoc, "name" | "job">, extra: { dueAt?: string; firedJob?: string; count?: number; reason?: string }): void {
    emitScheduleEvent(this.events, type, doc, extra);
  }
}
