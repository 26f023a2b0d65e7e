/**
 * SchedulerService: delayed jobs, recurring schedules, the due-time index and the
 * leader lease, all in KV (`<ns>_schedules`, `<ns>_leader`). Storage layout and the
 * protocol are described in src/model/schedule.ts and docs/scheduler.md.
 *
 * Exactly once per due time: a run is claimed with a compare-and-set on the schedule's
 * (or delayed job's) revision before it is published, the fired job's id is derived from
 * the schedule name and due time (Msg-Id dedup absorbs a second publish), and the caller's
 * LeaseGuard is checked right before each claim and each publish.
 */
import { hostname } from "node:os";
import { ConflictError, NotFoundError, ValidationError } from "../model/errors.js";
import { JobEventType, ScheduleEventType, SCHEDULE_EVENTS_QUEUE } from "../model/events.js";
import { createEnvelope, type EnqueueInput } from "../model/job.js";
import {
  buildSchedule,
  CURSOR_KEY,
  delayedKey,
  dueKey,
  envelopeFor,
  fireAtOf,
  LEASE_KEY,
  planStep,
  resumeNext,
  SCHEDULE_PREFIX,
  SCHEDULE_VERSION,
  scheduleJobId,
  scheduleKey,
  scheduleStatus,
  slotCounterKey,
  slotOf,
  triggerJobId,
  validateScheduleName,
  type CursorDoc,
  type DelayedDoc,
  type IndexEntry,
  type LeaseDoc,
  type ScheduleDoc,
  type ScheduleInput,
  type ScheduleStatus,
  type SlotCounter,
} from "../model/schedule.js";
import { kvStreamName, topology } from "../model/topology.js";
import { BaseService, type ServiceContext } from "./base.js";
import { ConnectionService } from "./connection.js";
import { EventService } from "./events.js";
import { JobService, type EnqueueResult } from "./jobs.js";
import { KVStoreService } from "./kv.js";
import { toNaqError } from "./nats-errors.js";
import { StreamService } from "./streams.js";

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

export type ProcessResult = "done" | "wait" | "again";

/** The index I/O a due scan needs (see src/scheduler/due-scan.ts). */
export interface DueIndexIO {
  loadCursor(initial: number): Promise<number>;
  saveCursor(slot: number): Promise<void>;
  slotCount(slot: number): Promise<number>;
  readEntries(slot: number, indexes: readonly number[]): Promise<Array<IndexEntry | undefined>>;
  process(key: string, entry: IndexEntry, nowMs: number): Promise<ProcessResult>;
  /** Re-indexes entries found in an already swept slot after the cursor, and drops the old keys. */
  moveForward(slot: number, entries: ReadonlyArray<{ index: number; entry: IndexEntry }>): Promise<void>;
  dropSlot(slot: number): Promise<void>;
}

/** Something that runs one due scan over an index (a DueScan from src/scheduler/). */
export interface DueScanner {
  tick(nowMs: number, io: DueIndexIO): Promise<{ processed: number; nextWakeAt?: number; more: boolean }>;
}

const CAS_ATTEMPTS = 20;
/** Runs fired for one schedule in one go before other entries get their turn. */
const MAX_RUNS_PER_ENTRY = 100;

const iso = (ms: number): string => new Date(ms).toISOString();
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class SchedulerService extends BaseService {
  static readonly deps = [ConnectionService, StreamService, KVStoreService, EventService, JobService] as const;

  constructor(
    ctx: ServiceContext,
    private readonly connection: ConnectionService,
    private readonly streams: StreamService,
    private readonly kv: KVStoreService,
    private readonly events: EventService,
    private readonly jobs: JobService,
  ) {
    super(ctx);
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
              const had = await this.kv.getJson<DelayedDoc>(this.bucket, delayedKey(env.id));
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
      if (entries.length > 0) await this.index(entries);
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
    return (await this.kv.getJson<DelayedDoc>(this.bucket, delayedKey(id)))?.value;
  }

  /** Cancels a job; a delayed one is also removed from the schedule, so it can never fire. */
  async cancel(id: string, reason?: string) {
    const record = await this.jobs.cancel(id, reason);
    await this.purgeKey(delayedKey(id));
    return record;
  }

  // -------------------------------------------------------------------------------------
  // Recurring schedules.

  /** Creates or updates (by name) a recurring schedule. */
  async add(input: ScheduleInput): Promise<ScheduleInfo & { created: boolean }> {
    for (let attempt = 0; ; attempt++) {
      const now = Date.now();
      const existing = await this.kv.getJson<ScheduleDoc>(this.bucket, scheduleKey(validateScheduleName(input.name)));
      const doc = buildSchedule(input, now, existing?.value);
      if (doc.nextRunAt && !doc.paused && doc.nextRunAt !== existing?.value.nextRunAt) {
        await this.index([{ k: "s", id: doc.name, at: fireAtOf(doc, Date.parse(doc.nextRunAt)) }]);
      }
      try {
        const revision = existing
          ? await this.kv.updateJson(this.bucket, scheduleKey(doc.name), doc, existing.revision)
          : await this.kv.createJson(this.bucket, scheduleKey(doc.name), doc);
        this.emitSchedule(existing ? ScheduleEventType.updated : ScheduleEventType.added, doc, { dueAt: doc.nextRunAt });
        return { ...doc, status: scheduleStatus(doc), revision, created: !existing };
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= CAS_ATTEMPTS) throw err;
      }
    }
  }

  async get(name: string): Promise<ScheduleInfo> {
    const e = await this.kv.getJson<ScheduleDoc>(this.bucket, scheduleKey(validateScheduleName(name)));
    if (!e) throw new NotFoundError(`schedule ${name} not found (see naq scheduler list)`);
    return { ...e.value, status: scheduleStatus(e.value), revision: e.revision };
  }

  /** Every recurring schedule, by name. */
  async list(): Promise<ScheduleInfo[]> {
    const keys = await this.kv.keys(this.bucket, `${SCHEDULE_PREFIX}>`);
    const docs = await Promise.all(keys.map((k) => this.kv.getJson<ScheduleDoc>(this.bucket, k)));
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
        await this.index([{ k: "s", id: doc.name, at: fireAtOf(doc, r.nextMs) }]);
      }
      return next;
    }, ScheduleEventType.resumed);
    if (skipped > 0) this.emitSchedule(ScheduleEventType.misfireSkipped, info, { count: skipped, reason: "missed while paused (policy skip)" });
    return { ...info, skipped };
  }

  async remove(name: string): Promise<ScheduleInfo> {
    const info = await this.get(name);
    await this.purgeKey(scheduleKey(info.name));
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
    this.events.emit({ type, queue: SCHEDULE_EVENTS_QUEUE, jobId: doc.name, task: doc.job.task, ...extra });
  }

  // -------------------------------------------------------------------------------------
  // The due-time index.

  /**
   * Adds index entries. Each slot hands out entry numbers with a compare-and-set counter;
   * after writing, the cursor is read: an entry in a slot the scheduler has already swept
   * is written again after the cursor (so it is never left behind, whatever the clocks say).
   */
  async index(entries: ReadonlyArray<Omit<IndexEntry, "v">>, attempt = 0): Promise<void> {
    const bySlot = new Map<number, Array<Omit<IndexEntry, "v">>>();
    for (const e of entries) {
      const s = slotOf(e.at);
      bySlot.set(s, [...(bySlot.get(s) ?? []), e]);
    }
    return this.indexInto(bySlot, attempt);
  }

  private async indexInto(bySlot: Map<number, Array<Omit<IndexEntry, "v">>>, attempt: number): Promise<void> {
    const written: Array<{ slot: number; key: string; entry: Omit<IndexEntry, "v"> }> = [];
    await Promise.all(
      [...bySlot].map(async ([slot, list]) => {
        const first = await this.allocate(slot, list.length);
        await Promise.all(
          list.map((entry, j) => {
            const key = dueKey(slot, first + j);
            written.push({ slot, key, entry });
            return this.kv.putJson<IndexEntry>(this.bucket, key, { v: SCHEDULE_VERSION, ...entry });
          }),
        );
      }),
    );
    const cursor = await this.loadCursor(slotOf(Date.now()) - 1);
    const behind = written.filter((w) => w.slot <= cursor);
    if (behind.length === 0) return;
    if (attempt >= 10) throw new ConflictError("could not index a due time: the scheduler's cursor kept moving past it");
    await this.indexInto(new Map([[cursor + 1, behind.map((b) => b.entry)]]), attempt + 1);
    await Promise.all(behind.map((b) => this.purgeKey(b.key)));
  }

  /** Reserves `count` entry numbers in `slot`; returns the first. */
  private async allocate(slot: number, count: number): Promise<number> {
    const key = slotCounterKey(slot);
    for (let attempt = 0; ; attempt++) {
      const cur = await this.kv.getJson<SlotCounter>(this.bucket, key);
      try {
        if (!cur) {
          await this.kv.createJson<SlotCounter>(this.bucket, key, { v: SCHEDULE_VERSION, n: count });
          return 0;
        }
        await this.kv.updateJson<SlotCounter>(this.bucket, key, { v: SCHEDULE_VERSION, n: cur.value.n + count }, cur.revision);
        return cur.value.n;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= 100) throw err;
        await pause(Math.random() * Math.min(50, 2 ** attempt));
      }
    }
  }

  /** The cursor (every slot <= it has been swept), created at `initial` when there is none. */
  async loadCursor(initial: number): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const cur = await this.kv.getJson<CursorDoc>(this.bucket, CURSOR_KEY);
      if (cur) return cur.value.slot;
      try {
        await this.kv.createJson<CursorDoc>(this.bucket, CURSOR_KEY, { v: SCHEDULE_VERSION, slot: initial, at: iso(Date.now()) });
        return initial;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= CAS_ATTEMPTS) throw err;
      }
    }
  }

  /** Moves the cursor forward (never back), with compare-and-set. */
  async saveCursor(slot: number, by?: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const cur = await this.kv.getJson<CursorDoc>(this.bucket, CURSOR_KEY);
      if (cur && cur.value.slot >= slot) return;
      const doc: CursorDoc = { v: SCHEDULE_VERSION, slot, at: iso(Date.now()), ...(by ? { by } : {}) };
      try {
        if (cur) await this.kv.updateJson(this.bucket, CURSOR_KEY, doc, cur.revision);
        else await this.kv.createJson(this.bucket, CURSOR_KEY, doc);
        return;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= CAS_ATTEMPTS) throw err;
      }
    }
  }

  /** Removes a key and its history without leaving a delete marker (a literal-subject purge). */
  async purgeKey(key: string, upToRevision?: number): Promise<void> {
    const jsm = await this.connection.manager();
    const filter = `$KV.${this.bucket}.${key}`;
    try {
      await jsm.streams.purge(kvStreamName(this.bucket), upToRevision !== undefined ? { filter, seq: upToRevision + 1 } : { filter });
    } catch (err) {
      throw toNaqError(err, `removing ${this.bucket}/${key}`);
    }
  }

  /** Runs one due scan as the process holding `guard`. */
  async triggerDue(scan: DueScanner, guard: LeaseGuard, nowMs = Date.now()): Promise<TickReport> {
    const report: TickReport = { fired: [], skipped: [], processed: 0, more: false };
    const r = await scan.tick(nowMs, this.dueIO(guard, report));
    return { ...report, processed: r.processed, nextWakeAt: r.nextWakeAt, more: r.more };
  }

  private dueIO(guard: LeaseGuard, report: TickReport): DueIndexIO {
    return {
      loadCursor: (initial) => this.loadCursor(initial),
      saveCursor: (slot) => this.saveCursor(slot, guard.id),
      slotCount: async (slot) => (await this.kv.getJson<SlotCounter>(this.bucket, slotCounterKey(slot)))?.value.n ?? 0,
      readEntries: (slot, indexes) =>
        Promise.all(indexes.map(async (i) => (await this.kv.getJson<IndexEntry>(this.bucket, dueKey(slot, i)))?.value)),
      process: (key, entry, now) => (entry.k === "d" ? this.fireDelayed(key, entry, now, guard, report) : this.fireSchedule(key, entry, now, guard, report)),
      moveForward: async (slot, list) => {
        await this.index(list.map((l) => ({ k: l.entry.k, id: l.entry.id, at: l.entry.at })));
        await Promise.all(list.map((l) => this.purgeKey(dueKey(slot, l.index))));
      },
      dropSlot: (slot) => this.purgeKey(slotCounterKey(slot)),
    };
  }

  // -------------------------------------------------------------------------------------
  // Firing.

  /** Republishing a claimed run is safe (Msg-Id dedup) this long after the claim. */
  private get dedupSafeMs(): number {
    return Math.floor(this.config.streams.jobs.duplicateWindow * 0.75);
  }

  /** Whether a claimed job made it out: within the dedup window we just publish again. */
  private async mayRepublish(jobId: string, claimedAt: string, now: number): Promise<boolean> {
    if (now - Date.parse(claimedAt) <= this.dedupSafeMs) return true;
    try {
      await this.jobs.status(jobId);
      return false; // it has events or a record: it was published
    } catch (err) {
      if (err instanceof NotFoundError) return true;
      throw err;
    }
  }

  private async isCancelled(id: string): Promise<boolean> {
    return (await this.kv.get(this.names.buckets.cancels, id)) !== undefined;
  }

  private async fireDelayed(key: string, e: IndexEntry, now: number, guard: LeaseGuard, report: TickReport): Promise<ProcessResult> {
    if (e.at > now) return "wait";
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const cur = await this.kv.getJson<DelayedDoc>(this.bucket, delayedKey(e.id));
      if (!cur) break; // fired, cancelled, or never completed: nothing to do
      const doc = cur.value;
      if (await this.isCancelled(e.id)) {
        await this.purgeKey(delayedKey(e.id), cur.revision);
        break;
      }
      let revision = cur.revision;
      let recovered = false;
      if (doc.firing) {
        recovered = true;
        if (!(await this.mayRepublish(doc.job.id, doc.firing.at, now))) {
          await this.purgeKey(delayedKey(e.id), revision);
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
      await this.purgeKey(delayedKey(e.id), revision);
      if (!recovered || !r.duplicate) {
        const due = Date.parse(doc.dueAt);
        report.fired.push({ kind: "delayed", name: doc.job.id, jobId: doc.job.id, queue: doc.job.queue, task: doc.job.task, dueAt: doc.dueAt, firedAt: iso(now), lateMs: Math.max(0, now - due), recovered, duplicate: r.duplicate });
      }
      break;
    }
    await this.purgeKey(key);
    return "done";
  }

  private async fireSchedule(key: string, e: IndexEntry, now: number, guard: LeaseGuard, report: TickReport): Promise<ProcessResult> {
    if (e.at > now) return "wait";
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const cur = await this.kv.getJson<ScheduleDoc>(this.bucket, scheduleKey(e.id));
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
        if (nextFire !== undefined && nextFire > now) await this.index([{ k: "s", id: doc.name, at: nextFire }]);
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
          this.emitSchedule(ScheduleEventType.misfireSkipped, doc, { count: step.count, dueAt: skip.firstDueAt, reason: `${step.capped ? "at least " : ""}${step.count} missed run(s) up to ${skip.lastDueAt} skipped (policy ${doc.misfire})` });
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
    await this.purgeKey(key);
    return "done";
  }

  private recordFire(doc: ScheduleDoc, dueMs: number, jobId: string, now: number, recovered: boolean, duplicate: boolean, report: TickReport): void {
    report.fired.push({ kind: "schedule", name: doc.name, jobId, queue: doc.job.queue, task: doc.job.task, dueAt: iso(dueMs), firedAt: iso(now), lateMs: Math.max(0, now - dueMs), recovered, duplicate });
    if (!duplicate) this.emitSchedule(ScheduleEventType.fired, doc, { firedJob: jobId, dueAt: iso(dueMs), ...(recovered ? { reason: "published again after a crash" } : {}) });
  }

  // -------------------------------------------------------------------------------------
  // Leader lease (`<ns>_leader`, key `leader`, TTL = the bucket's max age).

  /** The lease TTL the server enforces (the leader bucket's max age), else the configured one. */
  async leaseTtlMs(): Promise<number> {
    await this.kv.bucket(this.names.buckets.leader);
    const si = await this.streams.find(kvStreamName(this.names.buckets.leader));
    const maxAge = si ? Math.round(si.config.max_age / 1_000_000) : 0;
    return maxAge > 0 ? maxAge : this.config.kv.leaderTtl;
  }

  leaseDoc(id: string, since: number, ttlMs: number, now = Date.now()): LeaseDoc {
    return { v: SCHEDULE_VERSION, id, host: hostname(), pid: process.pid, since: iso(since), renewedAt: iso(now), expiresAt: iso(now + ttlMs) };
  }

  /** Takes the lease if nobody holds it (insert-only create): its revision, or undefined when held. */
  async acquireLease(doc: LeaseDoc): Promise<number | undefined> {
    try {
      return await this.kv.createJson(this.names.buckets.leader, LEASE_KEY, doc);
    } catch (err) {
      if (err instanceof ConflictError) return undefined;
      throw err;
    }
  }

  /** Renews a held lease (compare-and-set on its revision); ConflictError when it was lost. */
  async renewLease(doc: LeaseDoc, revision: number): Promise<number> {
    return this.kv.updateJson(this.names.buckets.leader, LEASE_KEY, doc, revision);
  }

  /** Gives the lease up at once, if it is still ours. */
  async releaseLease(revision: number): Promise<void> {
    try {
      await this.kv.delete(this.names.buckets.leader, LEASE_KEY, revision);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
  }

  async leaseHolder(): Promise<LeaseDoc | undefined> {
    return (await this.kv.getJson<LeaseDoc>(this.names.buckets.leader, LEASE_KEY))?.value;
  }
}
