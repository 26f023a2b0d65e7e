/**
 * JobService: the producer and record side of jobs.
 *
 * Hot path: enqueue is one awaited JetStream publish with `Nats-Msg-Id = job id` (the
 * same id twice inside the duplicate window is one job); the `enqueued` event is
 * buffered, never awaited. A job's end is one awaited KV write of its terminal record
 * (status + result/error). Status before that is derived from events (docs/wire-format.md).
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import { ConflictError, NotFoundError, TimeoutError, ValidationError } from "../model/errors.js";
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
import { isNoStreamForSubject, toNaqError } from "./nats-errors.js";
import { StreamService } from "./streams.js";

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
  static readonly deps = [ConnectionService, StreamService, KVStoreService, EventService] as const;
  private js?: JetStreamClient;
  private maxPayload = Number.POSITIVE_INFINITY;

  constructor(
    ctx: ServiceContext,
    private readonly connection: ConnectionService,
    private readonly streams: StreamService,
    private readonly kv: KVStoreService,
    private readonly events: EventService,
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

  /** Where a job is: from its terminal record, else its newest event. NotFoundError if neither. */
  async status(id: string): Promise<JobState> {
    const record = await this.getRecord(id);
    if (record) return { id, status: record.status, queue: record.queue, task: record.task, record };
    const ev = await this.lastEvent(id);
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
    if (!dl.job) throw new ValidationError(`job ${id} cannot be retried: it was dead-lettered because it could not be decoded (${dl.reason})`, "id");
    // A distinct Msg-Id: the original id may still be inside the duplicate window.
    const result = await this.publish({ ...dl.job, enqueuedAt: new Date().toISOString() }, `${id}.retry.${dl.seq}`);
    await this.kv.purge(this.names.buckets.results, id).catch(() => undefined);
    await this.streams.deleteMessage(this.names.deadLetterStream, dl.seq);
    return result;
  }

  /** Ended jobs (terminal records), newest first, filtered, at most `limit`. */
  async list(opts: ListOptions = {}): Promise<JobRecord[]> {
    const limit = opts.limit ?? 100;
    // Keys with a dot are naq's bookkeeping (wait.<id>), not job records.
    const keys = (await this.kv.keys(this.names.buckets.results, ">", 10_000)).filter((k) => !k.includes("."));
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

  /** Decodes a raw job message (exposed for tools that read the jobs stream). */
  decode(data: Uint8Array): JobEnvelope {
    return decodeEnvelope(data);
  }
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
