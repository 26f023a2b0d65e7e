/**
 * SchedulerService: delayed jobs and recurring schedules in KV (`<ns>_schedules`), the
 * user-facing side: schedule a job for later, add/get/list/pause/resume/remove/trigger a
 * schedule, cancel. Storage layout and the protocol are described in src/model/schedule.ts,
 * src/model/due-slots.ts and docs/scheduler.md.
 *
 * Its helpers, over the same scope's services (one NATS connection):
 *   DueIndex       src/services/due-index.ts       the due-time index and its cursor
 *   ScheduleFiring src/services/scheduler-fire.ts  the leader's due scan: fires due runs
 *   LeaseStore     src/services/scheduler-lease.ts the leader lease (`<ns>_leader`)
 * The service keeps their entry points (triggerDue, the lease calls, the index calls), so
 * the Scheduler component and library callers need only this service.
 */
import { ConflictError, NotFoundError, ValidationError } from "../model/errors.js";
import { JobEventType, ScheduleEventType } from "../model/events.js";
import { slotOf, type IndexEntry } from "../model/due-slots.js";
import { createEnvelope, type EnqueueInput } from "../model/job.js";
import {
  buildSchedule,
  delayedKey,
  envelopeFor,
  SCHEDULE_PREFIX,
  SCHEDULE_VERSION,
  scheduleKey,
  scheduleStatus,
  triggerJobId,
  validateScheduleName,
  type DelayedDoc,
  type LeaseDoc,
  type ScheduleDoc,
  type ScheduleInput,
  type ScheduleStatus,
} from "../model/schedule.js";
import { fireAtOf, resumeNext } from "../model/schedule-timing.js";
import { checkDelayedDoc, checkScheduleDoc } from "../model/records.js";
import { topology } from "../model/topology.js";
import { BaseService, type ServiceContext } from "./base.js";
import { ConnectionService } from "./connection.js";
import { CAS_ATTEMPTS, DueIndex, type DueScanner } from "./due-index.js";
import { EventService } from "./events.js";
import { JobService, type EnqueueResult } from "./jobs.js";
import { KVStoreService } from "./kv.js";
import { emitScheduleEvent, ScheduleFiring, type FireInfo, type LeaseGuard, type TickReport } from "./scheduler-fire.js";
import { LeaseStore } from "./scheduler-lease.js";
import { StreamService } from "./streams.js";

export type { FireInfo, LeaseGuard, SkipInfo, TickReport } from "./scheduler-fire.js";

export interface ScheduledJob {
  id: string;
  queue: string;
  dueAt: string;
  /** False when the due time had already passed: the job was enqueued at once. */
  scheduled: boolean;
  /** True when a job with this id was already scheduled (or enqueued within the duplicate window). */
  duplicate: boolean;
}

export interface ScheduleInfo extends ScheduleDoc {
  status: ScheduleStatus;
  revision: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();

export class SchedulerService extends BaseService {
  static readonly deps = [ConnectionService, StreamService, KVStoreService, EventService, JobService] as const;
  private readonly dueIndex: DueIndex;
  private readonly firing: ScheduleFiring;
  private readonly lease: LeaseStore;

  constructor(
    ctx: ServiceContext,
    connection: ConnectionService,
    private readonly streams: StreamService,
    private readonly kv: KVStoreService,
    private readonly events: EventService,
    private readonly jobs: JobService,
  ) {
    super(ctx);
    this.dueIndex = new DueIndex(connection, kv, ctx.names.buckets.schedules);
    this.firing = new ScheduleFiring(ctx, kv, events, jobs, this.dueIndex);
    this.lease = new LeaseStore(ctx, streams, kv);
  }

  private get bucket(): string {
    return this.names.buckets.schedules;
  }

  protected override async onInitialize(): Promise<void> {
    await this.kv.bucket(this.bucket); // created on first use, so purges find its stream
  }

  // -------------------------------------------------------------------------------------
  // Delayed jobs.

  /** Enqueues a job to run at `atMs` (at once if that has passed). Idempotent by job id. */
  async scheduleJob(input: EnqueueInput, atMs: number): Promise<ScheduledJob> {
    const [r] = await this.scheduleJobs([{ input, atMs }]);
    if (r instanceof Error) throw r;
    return r as ScheduledJob;
  }

  private streamsReady?: Promise<void>;
  /** A delayed job's `scheduled` event needs the events stream before anything is published on a fresh server. */
  private ensureStreams(): Promise<void> {
    this.streamsReady ??= (async () => {
      const specs = topology(this.config, this.names).streams;
      const present = await Promise.all(specs.map((spec) => this.streams.find(spec.name)));
      for (const [i, spec] of specs.entries()) if (!present[i]) await this.streams.ensure(spec);
    })();
    this.streamsReady.catch(() => (this.streamsReady = undefined));
    return this.streamsReady;
  }

  /** The seed's name for scheduleJob: a job to run at `atMs`. */
  schedule(input: EnqueueInput, atMs: number): Promise<ScheduledJob> {
    return this.scheduleJob(input, atMs);
  }

  /** Many delayed jobs, pipelined `window` at a time; results in input order (an Error where one failed). */
  async scheduleJobs(items: ReadonlyArray<{ input: EnqueueInput; atMs: number }>, opts: { window?: number } = {}): Promise<Array<ScheduledJob | Error>> {
    const window = Math.max(1, opts.window ?? 256);
    await this.ensureStreams();
    const out: Array<ScheduledJob | Error> = [];
    for (let i = 0; i < items.length; i += window) {
      const chunk = items.slice(i, i + window);
      const now = Date.now();
      const created: Array<{ slot: number; entry: Omit<IndexEntry, "v"> }> = [];
      const results = await Promise.all(
        chunk.map(async ({ input, atMs }, k): Promise<ScheduledJob | Error> => {
          try {
            if (!Number.isFinite(atMs)) throw new ValidationError("the due time is not a valid time", "at");
            const env = createEnvelope(input, new Date(now));
            if (atMs <= now) {
              const r: EnqueueResult = await this.jobs.publish(env);
              return { id: r.id, queue: r.queue, dueAt: iso(atMs), scheduled: false, duplicate: r.duplicate };
            }
            const doc: DelayedDoc = { v: SCHEDULE_VERSION, job: env, dueAt: iso(atMs), createdAt: iso(now) };
            try {
              await this.kv.createJson(this.bucket, delayedKey(env.id), doc);
            } catch (err) {
              if (!(err instanceof ConflictError)) throw err;
              const had = await this.kv.getJson<DelayedDoc>(this.bucket, delayedKey(env.id), checkDelayedDoc).catch(() => undefined);
              return { id: env.id, queue: env.queue, dueAt: had?.value.dueAt ?? iso(atMs), scheduled: true, duplicate: true };
            }
            created[k] = { slot: slotOf(atMs), entry: { k: "d", id: env.id, at: atMs } };
            return { id: env.id, queue: env.queue, dueAt: doc.dueAt, scheduled: true, duplicate: false };
          } catch (err) {
            return err instanceof Error ? err : new Error(String(err));
          }
        }),
      );
      const entries = created.filter(Boolean).map((c) => c.entry);
      if (entries.length > 0) await this.dueIndex.index(entries);
      results.forEach((r, k) => {
        if (r instanceof Error || !r.scheduled || r.duplicate) return;
        const item = chunk[k] as { input: EnqueueInput; atMs: number };
        this.events.emit({ type: JobEventType.scheduled, queue: r.queue, jobId: r.id, task: item.input.task, dueAt: r.dueAt, delayMs: item.atMs - now });
      });
      out.push(...results);
    }
    return out;
  }

  /** The stored delayed job, if it has not fired (or been cancelled) yet. */
  async getDelayed(id: string): Promise<DelayedDoc | undefined> {
    return (await this.kv.getJson<DelayedDoc>(this.bucket, delayedKey(id), checkDelayedDoc))?.value;
  }

  /** Cancels a job; a delayed one is also removed from the schedule, so it can never fire. */
  async cancel(id: string, reason?: string) {
    const record = await this.jobs.cancel(id, reason);
    await this.dueIndex.purgeKey(delayedKey(id));
    return record;
  }

  // -------------------------------------------------------------------------------------
  // Recurring schedules.

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

  // -------------------------------------------------------------------------------------
  // The due-time index (src/services/due-index.ts).

  /** Adds index entries (see DueIndex.index). */
  index(entries: ReadonlyArray<Omit<IndexEntry, "v">>, attempt = 0): Promise<void> {
    return this.dueIndex.index(entries, attempt);
  }

  /** The cursor (every slot <= it has been swept), created at `initial` when there is none. */
  loadCursor(initial: number): Promise<number> {
    return this.dueIndex.loadCursor(initial);
  }

  /** Moves the cursor forward (never back), with compare-and-set. */
  saveCursor(slot: number, by?: string): Promise<void> {
    return this.dueIndex.saveCursor(slot, by);
  }

  /** Removes a key and its history without leaving a delete marker (a literal-subject purge). */
  purgeKey(key: string, upToRevision?: number): Promise<void> {
    return this.dueIndex.purgeKey(key, upToRevision);
  }

  // -------------------------------------------------------------------------------------
  // Firing (src/services/scheduler-fire.ts).

  /** Runs one due scan as the process holding `guard`. */
  triggerDue(scan: DueScanner, guard: LeaseGuard, nowMs = Date.now()): Promise<TickReport> {
    return this.firing.triggerDue(scan, guard, nowMs);
  }

  // -------------------------------------------------------------------------------------
  // Leader lease (src/services/scheduler-lease.ts).

  /** The lease TTL the server enforces (the leader bucket's max age), else the configured one. */
  leaseTtlMs(): Promise<number> {
    return this.lease.ttlMs();
  }

  leaseDoc(id: string, since: number, ttlMs: number, now = Date.now()): LeaseDoc {
    return this.lease.doc(id, since, ttlMs, now);
  }

  /** Takes the lease if nobody holds it (insert-only create): its revision, or undefined when held. */
  acquireLease(doc: LeaseDoc): Promise<number | undefined> {
    return this.lease.acquire(doc);
  }

  /** Renews a held lease (compare-and-set on its revision); ConflictError when it was lost. */
  renewLease(doc: LeaseDoc, revision: number): Promise<number> {
    return this.lease.renew(doc, revision);
  }

  /** Gives the lease up at once, if it is still ours. */
  releaseLease(revision: number): Promise<void> {
    return this.lease.release(revision);
  }

  leaseHolder(): Promise<LeaseDoc | undefined> {
    return this.lease.holder();
  }
}
