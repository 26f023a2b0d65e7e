/**
 * JobService: the producer and record side of jobs.
 *
 * Hot path: enqueue is one awaited JetStream publish with `Nats-Msg-Id = job id` (the
 * same id twice inside the duplicate window is one job); the `enqueued` event is
 * buffered, never awaited. A job's end is one awaited KV write of its terminal record
 * (status + result/error). Status before that is derived from events (docs/wire-format.md).
 */
import type { JetStreamClient, MsgRequest } from "@nats-io/jetstream";
import { coerceError, ConflictError, NotFoundError, TimeoutError, ValidationError } from "../model/errors.js";
import { JobEventType, type NaqEvent } from "../model/events.js";
import {
  createEnvelope,
  decodeEnvelope,
  encodeEnvelope,
  JOB_VERSION,
  TERMINAL_STATUSES,
  validateJobId,
  type EnqueueInput,
  type JobEnvelope,
  type JobError,
  type JobRecord,
  type JobStatus,
} from "../model/job.js";
import { BaseService, type ServiceContext } from "./base.js";
import { ConnectionService } from "./connection.js";
import { EventService } from "./events.js";
import { decodeJson, KVStoreService } from "./kv.js";
import { apiErrorCode, ApiCode, isNoStreamForSubject, toNaqError } from "./nats-errors.js";
import { readStream } from "./stream-reader.js";
import { StreamService } from "./streams.js";
import { WorkerService } from "./workers.js";

export interface EnqueueResult {
  id: string;
  queue: string;
  /** Jobs-stream sequence of the stored message. */
  seq: number;
  /** True when a job with this id was already enqueued within the duplicate window. */
  duplicate: boolean;
}

export interface JobState {
  id: string;
  status: JobStatus;
  queue?: string;
  task?: string;
  record?: JobRecord;
  lastEvent?: NaqEvent;
}

/** A dead-letter entry (`<ns>.dlq.<queue>.<id>`): the original job, why it ended there, and the last error. */
export interface DeadLetter {
  v: typeof JOB_VERSION;
  id: string;
  queue: string;
  task?: string;
  reason: string;
  error?: JobError;
  attempts: number;
  failedAt: string;
  worker?: string;
  /** The original job; absent when the message could not be decoded. */
  job?: JobEnvelope;
  /** The original bytes, base64, when the message could not be decoded. */
  raw?: string;
}

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
}

/** How one job of `retry --all` went. */
export type RetryOutcome = { id: string; queue: string; ok: true; result: EnqueueResult } | { id: string; queue: string; ok: false; error: Error };

/** Event types after which a job's log has nothing more to say (until it is retried). */
const FINAL_EVENTS: ReadonlySet<string> = new Set([JobEventType.completed, JobEventType.deadLettered, JobEventType.cancelled]);

/** Active jobs scanned at most for one `list` (each is a round trip). */
const MAX_SCAN = 5_000;

const DEFAULT_WINDOW = 256;

/** Dependency-wait counter of a job, kept beside its record (same TTL). */
interface WaitDoc {
  v: typeof JOB_VERSION;
  id: string;
  waits: number;
  at: string;
}
const waitKey = (id: string): string => `wait.${id}`;

export class JobService extends BaseService {
  static readonly deps = [ConnectionService, StreamService, KVStoreService, EventService, WorkerService] as const;
  private js?: JetStreamClient;
  private maxPayload = Number.POSITIVE_INFINITY;

  constructor(
    ctx: ServiceContext,
    private readonly connection: ConnectionService,
    private readonly streams: StreamService,
    private readonly kv: KVStoreService,
    private readonly events: EventService,
    private readonly workers: WorkerService,
  ) {
    super(ctx);
  }

  protected override async onInitialize(): Promise<void> {
    this.js = await this.connection.jetstream();
    this.maxPayload = (await this.connection.server()).maxPayload;
  }

  private get jsc(): JetStreamClient {
    if (!this.js) throw new Error("JobService used before initialize()");
    return this.js;
  }

  private checkSize(env: JobEnvelope, data: Uint8Array): void {
    // Leave room for headers (Nats-Msg-Id etc.).
    if (data.length + 256 > this.maxPayload) {
      throw new ValidationError(
        `job ${env.id} is ${data.length} bytes, over the server's max_payload of ${this.maxPayload} bytes: store large data elsewhere and pass a reference`,
        "payload",
      );
    }
  }

  /** Publishes a complete envelope (idempotent by id). */
  async publish(env: JobEnvelope, msgId: string = env.id): Promise<EnqueueResult> {
    const data = encodeEnvelope(env);
    this.checkSize(env, data);
    let ack;
    try {
      ack = await this.jsc.publish(this.names.queueSubject(env.queue), data, { msgID: msgId });
    } catch (err) {
      if (isNoStreamForSubject(err)) {
        await this.ensureStreams();
        ack = await this.jsc.publish(this.names.queueSubject(env.queue), data, { msgID: msgId });
      } else {
        throw toNaqError(err, `enqueueing job ${env.id} on ${env.queue}`);
      }
    }
    if (!ack.duplicate) {
      this.events.emit({ type: JobEventType.enqueued, queue: env.queue, jobId: env.id, task: env.task, maxAttempts: env.attempts });
    }
    return { id: env.id, queue: env.queue, seq: ack.seq, duplicate: ack.duplicate };
  }

  private ensuring?: Promise<void>;
  /** First enqueue on a fresh server: create naq's streams rather than fail. */
  private ensureStreams(): Promise<void> {
    if (!this.ensuring) {
      const ensuring = (async () => {
        const { topology } = await import("../model/topology.js");
        for (const spec of topology(this.config, this.names).streams) await this.streams.ensure(spec);
      })();
      this.ensuring = ensuring;
      // A failed attempt (e.g. no permission yet) is not remembered: the next call tries again.
      ensuring.catch(() => {
        if (this.ensuring === ensuring) this.ensuring = undefined;
      });
    }
    return this.ensuring;
  }

  enqueue(input: EnqueueInput): Promise<EnqueueResult> {
    return this.publish(createEnvelope(input));
  }

  /**
   * Enqueues many jobs with pipelined publishes, at most `window` awaiting their ack at
   * once. Results are in input order; a failed job is an Error in its slot.
   */
  async enqueueMany(inputs: Iterable<EnqueueInput | JobEnvelope>, opts: { window?: number } = {}): Promise<Array<EnqueueResult | Error>> {
    const window = Math.max(1, opts.window ?? DEFAULT_WINDOW);
    const results: Array<EnqueueResult | Error> = [];
    const inflight = new Set<Promise<void>>();
    let i = 0;
    for (const input of inputs) {
      const slot = i++;
      let env: JobEnvelope;
      try {
        env = "v" in input ? input : createEnvelope(input);
      } catch (err) {
        results[slot] = err as Error;
        continue;
      }
      const p: Promise<void> = this.publish(env).then(
        (r) => void (results[slot] = r),
        (err: unknown) => void (results[slot] = err instanceof Error ? err : new Error(String(err))),
      );
      inflight.add(p);
      void p.finally(() => inflight.delete(p));
      if (inflight.size >= window) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    return results;
  }

  /**
   * Enqueues a stream of jobs with pipelined publishes, at most `window` awaiting their
   * ack at once, and yields each item with its result (an Error where it failed) in input
   * order. `envelopeOf` may throw: that item's result is the error, nothing is published.
   */
  async *enqueueStream<T>(
    items: AsyncIterable<T> | Iterable<T>,
    envelopeOf: (item: T) => JobEnvelope,
    opts: { window?: number } = {},
  ): AsyncGenerator<[T, EnqueueResult | Error]> {
    const window = Math.max(1, opts.window ?? DEFAULT_WINDOW);
    const pending: Array<{ item: T; done: Promise<EnqueueResult | Error> }> = [];
    for await (const item of items) {
      let done: Promise<EnqueueResult | Error>;
      try {
        done = this.publish(envelopeOf(item)).catch((err: unknown) => coerceError(err));
      } catch (err) {
        done = Promise.resolve(coerceError(err));
      }
      pending.push({ item, done });
      while (pending.length >= window) {
        const head = pending.shift() as (typeof pending)[number];
        yield [head.item, await head.done];
      }
    }
    for (const p of pending) yield [p.item, await p.done];
  }

  /** The terminal record of a job, if it has ended (and the record has not expired). */
  async getRecord(id: string): Promise<JobRecord | undefined> {
    validateJobId(id);
    return (await this.kv.getJson<JobRecord>(this.names.buckets.results, id))?.value;
  }

  /** Writes a job's terminal record: the one awaited write at the end of a job. */
  async writeRecord(record: JobRecord): Promise<void> {
    await this.kv.putJson(this.names.buckets.results, record.id, record);
  }

  /** How many times a job was put back to wait for its dependencies (these are not attempts). */
  async waitCount(id: string): Promise<number> {
    const doc = await this.kv.getJson<WaitDoc>(this.names.buckets.results, waitKey(id));
    return doc?.value.waits ?? 0;
  }

  async recordWait(id: string, waits: number): Promise<void> {
    await this.kv.putJson<WaitDoc>(this.names.buckets.results, waitKey(id), { v: JOB_VERSION, id, waits, at: new Date().toISOString() });
  }

  /** The newest event of a job, if any (one direct read by subject). */
  async lastEvent(id: string): Promise<NaqEvent | undefined> {
    validateJobId(id);
    const m = await this.streams.lastBySubject(this.names.eventsStream, this.names.eventFilter({ jobId: id }));
    return m ? decodeJson<NaqEvent>(m.data, `event ${m.seq}`) : undefined;
  }

  /**
   * The event that tells where a job is. Usually its newest event; but the producer
   * publishes `enqueued` after its PubAck, so a fast worker's `started` (or `retrying`...)
   * can be stored before it. When the newest is `enqueued`, the newest event of each
   * worker type is read (in parallel, one round trip): if one of them is newer than every
   * end (`completed`, `dead_lettered`, `cancelled`), it is the job's real state; if the
   * job had ended before, `enqueued` is a re-enqueue (`retry`) and stands.
   */
  async stateEvent(id: string): Promise<NaqEvent | undefined> {
    const newest = await this.streams.lastBySubject(this.names.eventsStream, this.names.eventFilter({ jobId: validateJobId(id) }));
    if (!newest) return undefined;
    const ev = decodeJson<NaqEvent>(newest.data, `event ${newest.seq}`);
    if (ev.type !== JobEventType.enqueued) return ev;
    const types = [
      JobEventType.started,
      JobEventType.progress,
      JobEventType.retrying,
      JobEventType.waiting,
      JobEventType.completed,
      JobEventType.deadLettered,
      JobEventType.cancelled,
    ];
    const found = await Promise.all(
      types.map((type) => this.streams.lastBySubject(this.names.eventsStream, this.names.eventFilter({ jobId: id, type }))),
    );
    let best: { seq: number; ev: NaqEvent } | undefined;
    for (const m of found) {
      if (m && (!best || m.seq > best.seq)) best = { seq: m.seq, ev: decodeJson<NaqEvent>(m.data, `event ${m.seq}`) };
    }
    if (!best || FINAL_EVENTS.has(best.ev.type)) return ev;
    return best.ev;
  }

  /** Where a job is: from its terminal record, else its newest event. NotFoundError if neither. */
  async status(id: string): Promise<JobState> {
    const record = await this.getRecord(id);
    if (record) return { id, status: record.status, queue: record.queue, task: record.task, record };
    const ev = await this.stateEvent(id);
    if (!ev) throw new NotFoundError(`job ${id} not found (no record and no events; records expire after the result TTL)`);
    return { id, status: statusFromEvent(ev), queue: ev.queue, task: ev.task, lastEvent: ev };
  }

  /** The terminal record; with `wait`, waits (KV watch, no polling) until there is one. */
  async result(id: string, opts: { wait?: boolean; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<JobRecord> {
    validateJobId(id);
    if (!opts.wait) {
      const record = await this.getRecord(id);
      if (!record) {
        await this.status(id); // NotFoundError when the job is unknown
        throw new NotFoundError(`job ${id} has not finished yet`);
      }
      return record;
    }
    const watcher = await this.kv.watchJson<JobRecord>(this.names.buckets.results, { key: id });
    const timer =
      opts.timeoutMs !== undefined && Number.isFinite(opts.timeoutMs) ? setTimeout(() => watcher.stop(), opts.timeoutMs) : undefined;
    const onAbort = () => watcher.stop();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const e of watcher) {
        if (e.value && TERMINAL_STATUSES.has(e.value.status)) return e.value;
      }
    } finally {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      watcher.stop();
    }
    throw new TimeoutError(`timed out waiting for job ${id} to finish`);
  }

  /**
   * Cancels a job that has not ended: it will not start if still queued; if running, its
   * AbortSignal fires. Status becomes `cancelled` at once.
   */
  async cancel(id: string, reason = "cancelled by request"): Promise<JobRecord> {
    const state = await this.status(id);
    if (state.record) throw new ConflictError(`job ${id} already ${state.record.status}; nothing to cancel`);
    const now = new Date().toISOString();
    await this.kv.putJson(this.names.buckets.cancels, id, { v: JOB_VERSION, id, at: now, reason });
    const record: JobRecord = {
      v: JOB_VERSION,
      id,
      queue: state.queue ?? "",
      task: state.task ?? "",
      status: "cancelled",
      attempts: state.lastEvent?.attempt ?? 0,
      maxAttempts: state.lastEvent?.maxAttempts ?? 0,
      enqueuedAt: state.lastEvent?.at ?? now,
      finishedAt: now,
      reason,
    };
    await this.writeRecord(record);
    this.events.emit({ type: JobEventType.cancelled, queue: record.queue, jobId: id, task: record.task, reason });
    return record;
  }

  /**
   * Stores a job in the dead-letter stream (awaited: it must not be lost). `msgId` makes a
   * redelivered attempt's second dead-lettering a no-op.
   */
  async deadLetter(entry: DeadLetter, msgId?: string): Promise<void> {
    const send = () =>
      this.jsc.publish(
        this.names.deadLetterSubject(entry.queue, entry.id),
        new TextEncoder().encode(JSON.stringify(entry)),
        msgId ? { msgID: msgId } : undefined,
      );
    try {
      try {
        await send();
      } catch (err) {
        // A worker may have started on a fresh server (it creates only the jobs stream).
        if (!isNoStreamForSubject(err)) throw err;
        await this.ensureStreams();
        await send();
      }
    } catch (err) {
      throw toNaqError(err, `dead-lettering job ${entry.id}`);
    }
  }

  /** The dead-letter entry of a job, if any. */
  async getDeadLetter(id: string, queue?: string): Promise<(DeadLetter & { seq: number }) | undefined> {
    validateJobId(id);
    const m = await this.streams.lastBySubject(this.names.deadLetterStream, this.names.deadLetterFilter({ queue, jobId: id }));
    return m ? { ...decodeJson<DeadLetter>(m.data, `dead letter ${m.seq}`), seq: m.seq } : undefined;
  }

  /** Re-enqueues a dead-lettered job as it was first sent, with fresh attempts. */
  async retry(id: string): Promise<EnqueueResult> {
    const dl = await this.getDeadLetter(id);
    if (!dl) throw new NotFoundError(`job ${id} is not in the dead-letter stream`);
    return this.retryEntry(dl);
  }

  /**
   * Re-enqueues one dead-letter entry: the record is removed first (so a fast worker's new
   * record is never the one removed), then the original job is published with a fresh
   * Msg-Id, then every dead-letter entry of the job is purged.
   */
  async retryEntry(dl: DeadLetter & { seq: number }): Promise<EnqueueResult> {
    if (!dl.job) throw new ValidationError(`job ${dl.id} cannot be retried: it was dead-lettered because it could not be decoded (${dl.reason})`, "id");
    await this.kv.purge(this.names.buckets.results, dl.id).catch(() => undefined);
    await this.kv.purge(this.names.buckets.results, waitKey(dl.id)).catch(() => undefined);
    // A distinct Msg-Id: the original id may still be inside the duplicate window.
    const result = await this.publish({ ...dl.job, enqueuedAt: new Date().toISOString() }, `${dl.id}.retry.${dl.seq}`);
    await this.streams.purge(this.names.deadLetterStream, { subject: this.names.deadLetterSubject(dl.queue, dl.id) });
    return result;
  }

  /** Re-enqueues every dead-lettered job (of `queue`), at most `concurrency` at once. */
  async retryAll(opts: { queue?: string; concurrency?: number } = {}): Promise<RetryOutcome[]> {
    const entries = await this.deadLetters({ queue: opts.queue });
    const out: RetryOutcome[] = [];
    const concurrency = Math.max(1, opts.concurrency ?? 32);
    for (let i = 0; i < entries.length; i += concurrency) {
      const chunk = entries.slice(i, i + concurrency);
      const done = await Promise.all(
        chunk.map(async (dl): Promise<RetryOutcome> => {
          try {
            return { id: dl.id, queue: dl.queue, ok: true, result: await this.retryEntry(dl) };
          } catch (err) {
            return { id: dl.id, queue: dl.queue, ok: false, error: coerceError(err) };
          }
        }),
      );
      out.push(...done);
    }
    return out;
  }

  /**
   * Dead-letter entries (the newest per job), newest first, at most `limit` (default all).
   * Reads the entries of the queue (or all queues) in one ordered pass.
   */
  async deadLetters(opts: { queue?: string; limit?: number } = {}): Promise<Array<DeadLetter & { seq: number }>> {
    const [js, jsm] = [this.jsc, await this.connection.manager()];
    const out: Array<DeadLetter & { seq: number }> = [];
    const filter = this.names.deadLetterFilter({ queue: opts.queue });
    for await (const m of readStream(js, jsm, this.names.deadLetterStream, { filter, deliver: "last_per_subject" })) {
      try {
        out.push({ ...decodeJson<DeadLetter>(m.data, `dead letter ${m.seq}`), seq: m.seq });
      } catch {
        // not naq's: skip
      }
    }
    out.sort((a, b) => b.seq - a.seq);
    return opts.limit !== undefined ? out.slice(0, opts.limit) : out;
  }

  /**
   * A job's events in order (its log lines are `progress` events with `log`). With
   * `follow`, keeps reading until the job ends: right after the history when it already
   * has a terminal record, else at its next completed / dead_lettered / cancelled event.
   */
  async *jobEvents(id: string, opts: { follow?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<NaqEvent> {
    validateJobId(id);
    const jsm = await this.connection.manager();
    let caughtUp = false;
    const reader = readStream(this.jsc, jsm, this.names.eventsStream, {
      filter: this.names.eventFilter({ jobId: id }),
      follow: opts.follow,
      signal: opts.signal,
      // History read: a job that has its record already has nothing more to log.
      onCaughtUp: async () => {
        caughtUp = true;
        return opts.follow === true && (await this.getRecord(id)) !== undefined;
      },
    });
    for await (const m of reader) {
      let ev: NaqEvent;
      try {
        ev = decodeJson<NaqEvent>(m.data, `event ${m.seq}`);
      } catch {
        continue;
      }
      yield ev;
      if (opts.follow && caughtUp && FINAL_EVENTS.has(ev.type)) break;
    }
  }

  /** Ended jobs (terminal records), newest first, filtered, at most `limit`. */
  async list(opts: ListOptions = {}): Promise<JobRecord[]> {
    const limit = opts.limit ?? 100;
    // Keys with a dot are naq's bookkeeping (wait.<id>), not job records.
    // (A key rewritten while the listing runs can be listed twice.)
    const keys = [...new Set(await this.kv.keys(this.names.buckets.results, ">", 10_000))].filter((k) => !k.includes("."));
    const out: JobRecord[] = [];
    // ULIDs sort by time: newest first without reading every record.
    for (const key of keys.sort().reverse()) {
      const rec = (await this.kv.getJson<JobRecord>(this.names.buckets.results, key))?.value;
      if (!rec || (opts.queue && rec.queue !== opts.queue) || (opts.status && rec.status !== opts.status)) continue;
      out.push(rec);
      if (out.length >= limit) break;
    }
    return out;
  }

  /**
   * Jobs not yet ended, in queue order (oldest first), read from the jobs stream one
   * message at a time (a work-queue stream admits no second consumer). Status: `running`
   * when a live worker's heartbeat lists it, else from its newest event.
   */
  async activeJobs(opts: { queue?: string; status?: JobStatus; limit?: number } = {}): Promise<JobSummary[]> {
    const limit = opts.limit ?? 100;
    const jsm = await this.connection.manager();
    const filter = opts.queue ? this.names.queueSubject(opts.queue) : this.names.allQueuesSubject;
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
      const ev = worker ? undefined : await this.lastEvent(env.id);
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
   * `naq job list`: jobs not yet ended (queue order), then ended jobs (newest first),
   * filtered by queue and status, at most `limit` (default 100) in all.
   */
  async listJobs(opts: ListOptions = {}): Promise<JobSummary[]> {
    const limit = opts.limit ?? 100;
    const wantActive = !opts.status || !TERMINAL_STATUSES.has(opts.status);
    const wantEnded = !opts.status || TERMINAL_STATUSES.has(opts.status);
    const active = wantActive ? await this.activeJobs({ ...opts, limit }) : [];
    const ended = wantEnded && active.length < limit ? await this.list({ ...opts, limit: limit - active.length }) : [];
    return [...active, ...ended.map(summaryOfRecord)];
  }

  /** Decodes a raw job message (exposed for tools that read the jobs stream). */
  decode(data: Uint8Array): JobEnvelope {
    return decodeEnvelope(data);
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

export function statusFromEvent(ev: NaqEvent): JobStatus {
  switch (ev.type) {
    case JobEventType.started:
    case JobEventType.progress:
      return "running";
    case JobEventType.retrying:
      return "retrying";
    case JobEventType.waiting:
      return "waiting";
    case JobEventType.scheduled:
      return "scheduled";
    case JobEventType.completed:
      return "completed";
    case JobEventType.failed:
    case JobEventType.deadLettered:
      return "failed";
    case JobEventType.cancelled:
      return "cancelled";
    default:
      return "queued";
  }
}
