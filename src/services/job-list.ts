/**
 * JobListing: what `naq job list` and `naq job logs` read. Jobs not yet ended are read from
 * the jobs stream one message at a time (a work-queue stream admits no second consumer),
 * with their status from a live worker's heartbeat or their newest event; ended jobs are
 * their terminal records in `<ns>_results`, newest first; a job's log is its events, read
 * in order from the events stream. A plain helper of JobService.
 */
import type { MsgRequest } from "@nats-io/jetstream";
import { expandFolded, FINAL_JOB_EVENTS, statusFromEvent, type NaqEvent } from "../model/events.js";
import { decodeEnvelope, validateJobId, TERMINAL_STATUSES, type JobEnvelope, type JobError, type JobRecord, type JobStatus } from "../model/job.js";
import { validateQueueName, type Names } from "../model/naming.js";
import { NotFoundError, ValidationError } from "../model/errors.js";
import { checkDelayedDoc, checkEvent, checkJobRecord } from "../model/records.js";
import { delayedKey, type DelayedDoc } from "../model/schedule.js";
import type { ConnectionService } from "./connection.js";
import { decodeJson, type KVStoreService } from "./kv.js";
import { apiErrorCode, ApiCode, toNaqError } from "./nats-errors.js";
import { readStream } from "./stream-reader.js";
import type { WorkerService } from "./workers.js";

export interface ListOptions {
  queue?: string;
  status?: JobStatus;
  limit?: number;
}

/** One row of `naq job list`: a job waiting or running (from the jobs stream), or ended (its record). */
export interface JobSummary {
  id: string;
  queue: string;
  task: string;
  status: JobStatus;
  /** The attempt running or that ended it (0: none started). */
  attempts: number;
  maxAttempts: number;
  enqueuedAt: string;
  startedAt?: string;
  finishedAt?: string;
  durationMs?: number;
  worker?: string;
  reason?: string;
  error?: JobError;
  /** A delayed job (`scheduled`): when the scheduler enqueues it. */
  dueAt?: string;
}

/** What the listing uses of JobService. */
export interface JobListingHost {
  /** The newest event of a job, if any. */
  lastEvent(id: string): Promise<NaqEvent | undefined>;
  /** The terminal record of a job, if it has ended. */
  getRecord(id: string): Promise<JobRecord | undefined>;
}

/** Active jobs scanned at most for one `list` (each is a round trip). */
const MAX_SCAN = 5_000;

export class JobListing {
  constructor(
    private readonly names: Names,
    private readonly connection: ConnectionService,
    private readonly kv: KVStoreService,
    private readonly workers: WorkerService,
    private readonly host: JobListingHost,
  ) {}

  /** Ended jobs (terminal records), newest first, filtered, at most `limit`. */
  async ended(opts: ListOptions = {}): Promise<JobRecord[]> {
    const limit = opts.limit ?? 100;
    // Keys with a dot are naq's bookkeeping (wait.<id>), not job records.
    const keys = (await this.kv.keys(this.names.buckets.results, ">", 10_000)).filter((k) => !k.includes("."));
    const out: JobRecord[] = [];
    // ULIDs sort by time: newest first without reading every record.
    for (const key of keys.sort().reverse()) {
      // An unreadable record (corrupted) is left out of the list, like an undecodable job below.
      const rec = (await this.kv.getJson<JobRecord>(this.names.buckets.results, key, checkJobRecord).catch((err: unknown) => {
        if (err instanceof ValidationError) return undefined;
        throw err;
      }))?.value;
      if (!rec || (opts.queue !== undefined && rec.queue !== opts.queue) || (opts.status && rec.status !== opts.status)) continue;
      out.push(rec);
      if (out.length >= limit) break;
    }
    return out;
  }

  /**
   * Delayed jobs not yet due (`--delay`, `--at`): the scheduler's `delayed.<id>` entries in
   * `<ns>_schedules`, soonest first. A recurring schedule is not a job until it fires
   * (`naq scheduler list` shows those).
   */
  async scheduled(opts: { queue?: string; limit?: number } = {}): Promise<JobSummary[]> {
    const limit = opts.limit ?? 100;
    const bucket = this.names.buckets.schedules;
    const keys = await this.kv.keys(bucket, `${delayedKey("")}>`, MAX_SCAN).catch((err: unknown) => {
      // No schedules bucket yet: nothing was ever delayed.
      if (err instanceof NotFoundError || apiErrorCode(err) === ApiCode.StreamNotFound) return [];
      throw err;
    });
    const docs: DelayedDoc[] = [];
    for (const key of keys) {
      // An unreadable entry is left out, as an undecodable job below (the scheduler reports it).
      const doc = (await this.kv.getJson<DelayedDoc>(bucket, key, checkDelayedDoc).catch((err: unknown) => {
        if (err instanceof ValidationError) return undefined;
        throw err;
      }))?.value;
      if (doc && (opts.queue === undefined || doc.job.queue === opts.queue)) docs.push(doc);
    }
    docs.sort((a, b) => Date.parse(a.dueAt) - Date.parse(b.dueAt));
    return docs.slice(0, limit).map((d) => ({
      id: d.job.id,
      queue: d.job.queue,
      task: d.job.task,
      status: "scheduled",
      attempts: 0,
      maxAttempts: d.job.attempts,
      enqueuedAt: d.job.enqueuedAt,
      dueAt: d.dueAt,
    }));
  }

  /**
   * Jobs not yet ended, in queue order (oldest first), read from the jobs stream one
   * message at a time (a work-queue stream admits no second consumer). Status: `running`
   * when a live worker's heartbeat lists it, else from its newest event.
   */
  async active(opts: { queue?: string; status?: JobStatus; limit?: number } = {}): Promise<JobSummary[]> {
    const limit = opts.limit ?? 100;
    const jsm = await this.connection.manager();
    const filter = opts.queue !== undefined ? this.names.queueSubject(opts.queue) : this.names.allQueuesSubject;
    const running = new Map<string, string>();
    for (const w of await this.workers.list()) for (const id of w.running) running.set(id, w.id);
    const out: JobSummary[] = [];
    let seq = 0;
    for (let scanned = 0; scanned < MAX_SCAN && out.length < limit; scanned++) {
      let m;
      try {
        // STREAM.MSG.GET takes next_by_subj (nats-server 2.9+); the client's type lists only seq/last_by_subj.
        m = await jsm.streams.getMessage(this.names.jobsStream, { seq: seq + 1, next_by_subj: filter } as unknown as MsgRequest);
      } catch (err) {
        if (apiErrorCode(err) === ApiCode.StreamNotFound) break;
        throw toNaqError(err, `reading ${this.names.jobsStream}`);
      }
      if (!m) break;
      seq = m.seq;
      let env: JobEnvelope;
      try {
        env = decodeEnvelope(m.data);
      } catch {
        continue; // undecodable: a worker will dead-letter it
      }
      const worker = running.get(env.id);
      const ev = worker ? undefined : await this.host.lastEvent(env.id);
      const status: JobStatus = worker ? "running" : ev ? statusFromEvent(ev) : "queued";
      // Ended (e.g. cancelled while queued) but not yet removed by a worker: listed with the ended jobs.
      if (TERMINAL_STATUSES.has(status)) continue;
      if (opts.status && status !== opts.status) continue;
      out.push({
        id: env.id,
        queue: env.queue,
        task: env.task,
        status,
        attempts: ev?.attempt ?? 0,
        maxAttempts: env.attempts,
        enqueuedAt: env.enqueuedAt,
        ...(worker || ev?.worker ? { worker: worker ?? ev?.worker } : {}),
        ...(ev?.error ? { error: ev.error } : {}),
        ...(ev?.reason ? { reason: ev.reason } : {}),
      });
    }
    return out;
  }

  /**
   * `naq job list`: jobs in queues not yet ended (queue order), then delayed jobs not yet
   * due (soonest first), then ended jobs (newest first), filtered by queue and status, at
   * most `limit` (default 100) in all.
   */
  async list(opts: ListOptions = {}): Promise<JobSummary[]> {
    if (opts.queue !== undefined) validateQueueName(opts.queue); // a bad name is an error, never "every queue"
    const limit = opts.limit ?? 100;
    const status = opts.status;
    const wantActive = !status || (!TERMINAL_STATUSES.has(status) && status !== "scheduled");
    const wantScheduled = !status || status === "scheduled";
    const wantEnded = !status || TERMINAL_STATUSES.has(status);
    const out: JobSummary[] = wantActive ? await this.active({ ...opts, limit }) : [];
    if (wantScheduled && out.length < limit) out.push(...(await this.scheduled({ queue: opts.queue, limit: limit - out.length })));
    if (wantEnded && out.length < limit) out.push(...(await this.ended({ ...opts, limit: limit - out.length })).map(summaryOfRecord));
    return out;
  }

  /**
   * A job's events in order (its log lines are `progress` events with `log`). With
   * `follow`, keeps reading until the job ends: right after the history when it already
   * has a terminal record, else at its next completed / dead_lettered / cancelled event.
   */
  async *events(id: string, opts: { follow?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<NaqEvent> {
    validateJobId(id);
    const jsm = await this.connection.manager();
    let caughtUp = false;
    const reader = readStream(await this.connection.jetstream(), jsm, this.names.eventsStream, {
      filter: this.names.eventFilter({ jobId: id }),
      follow: opts.follow,
      signal: opts.signal,
      onDenied: (match, fn) => this.connection.onPermissionDenied(match, fn),
      // History read: a job that has its record already has nothing more to log.
      onCaughtUp: async () => {
        caughtUp = true;
        return opts.follow === true && (await this.host.getRecord(id)) !== undefined;
      },
    });
    for await (const m of reader) {
      let ev: NaqEvent;
      try {
        ev = decodeJson<NaqEvent>(m.data, `event ${m.seq}`, checkEvent);
      } catch {
        continue;
      }
      // A short attempt's `started` is stored inside its end event: give it back first.
      for (const e of expandFolded(ev)) yield e;
      if (opts.follow && caughtUp && FINAL_JOB_EVENTS.has(ev.type)) break;
    }
  }
}

export function summaryOfRecord(r: JobRecord): JobSummary {
  return {
    id: r.id,
    queue: r.queue,
    task: r.task,
    status: r.status,
    attempts: r.attempts,
    maxAttempts: r.maxAttempts,
    enqueuedAt: r.enqueuedAt,
    ...(r.startedAt ? { startedAt: r.startedAt } : {}),
    finishedAt: r.finishedAt,
    ...(r.durationMs !== undefined ? { durationMs: r.durationMs } : {}),
    ...(r.worker ? { worker: r.worker } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    ...(r.error ? { error: r.error } : {}),
  };
}
