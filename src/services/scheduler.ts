/**
 * SchedulerService: delayed jobs and recurring schedules in KV (`<ns>_schedules`), the
 * user-facing side: schedule a job for later, add/get/list/pause/resume/remove/trigger a
 * schedule, cancel. Storage layout and the protocol are described in src/model/schedule.ts,
 * src/model/due-slots.ts and docs/scheduler.md.
 *
 * Its helpers, over the same scope's services (one NATS connection):
 *   RecurringSchedules src/services/scheduler-schedules.ts  add/get/list/pause/resume/remove/trigger
 *   DueIndex           src/services/due-index.ts            the due-time index and its cursor
 *   ScheduleFiring     src/services/scheduler-fire.ts       the leader's due scan: fires due runs
 *   LeaseStore         src/services/scheduler-lease.ts      the leader lease (`<ns>_leader`)
 * The service keeps their entry points (the schedule calls, triggerDue, the lease calls,
 * the index calls), so the Scheduler component and library callers need only this service.
 */
import { ConflictError, ValidationError } from "../model/errors.js";
import { JobEventType } from "../model/events.js";
import { slotOf, type IndexEntry } from "../model/due-slots.js";
import { createEnvelope, type EnqueueInput } from "../model/job.js";
import { delayedKey, SCHEDULE_VERSION, type DelayedDoc, type LeaseDoc, type ScheduleInput } from "../model/schedule.js";
import { checkDelayedDoc } from "../model/records.js";
import { topology } from "../model/topology.js";
import { BaseService, type ServiceContext } from "./base.js";
import { ConnectionService } from "./connection.js";
import { DueIndex, type DueScanner } from "./due-index.js";
import { EventService } from "./events.js";
import { JobService, type EnqueueResult } from "./jobs.js";
import { KVStoreService } from "./kv.js";
import { ScheduleFiring, type FireInfo, type LeaseGuard, type TickReport } from "./scheduler-fire.js";
import { LeaseStore } from "./scheduler-lease.js";
import { RecurringSchedules, type ScheduleInfo } from "./scheduler-schedules.js";
import { StreamService } from "./streams.js";

export type { FireInfo, LeaseGuard, SkipInfo, TickReport } from "./scheduler-fire.js";
export type { ScheduleInfo } from "./scheduler-schedules.js";

export interface ScheduledJob {
  id: string;
  queue: string;
  dueAt: string;
  /** False when the due time had already passed: the job was enqueued at once. */
  scheduled: boolean;
  /** True when a job with this id was already scheduled (or enqueued within the duplicate window). */
  duplicate: boolean;
}

const iso = (ms: number): string => new Date(ms).toISOString();

export class SchedulerService extends BaseService {
  static readonly deps = [ConnectionService, StreamService, KVStoreService, EventService, JobService] as const;
  private readonly dueIndex: DueIndex;
  private readonly recurring: RecurringSchedules;
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
    this.recurring = new RecurringSchedules(ctx, kv, events, jobs, this.dueIndex);
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
  // Recurring schedules (src/services/scheduler-schedules.ts).

  /** Creates or updates (by name) a recurring schedule. */
  add(input: ScheduleInput): Promise<ScheduleInfo & { created: boolean }> {
    return this.recurring.add(input);
  }

  get(name: string): Promise<ScheduleInfo> {
    return this.recurring.get(name);
  }

  /** Every recurring schedule, by name. */
  list(): Promise<ScheduleInfo[]> {
    return this.recurring.list();
  }

  pause(name: string): Promise<ScheduleInfo> {
    return this.recurring.pause(name);
  }

  /** Resumes a paused schedule: from the next due time (skip), with every missed run (catch-up), or one run now (fire-once). */
  resume(name: string): Promise<ScheduleInfo & { skipped: number }> {
    return this.recurring.resume(name);
  }

  remove(name: string): Promise<ScheduleInfo> {
    return this.recurring.remove(name);
  }

  /** Runs a schedule's job now, outside its timing (its next run is not moved). */
  trigger(name: string): Promise<FireInfo> {
    return this.recurring.trigger(name);
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
