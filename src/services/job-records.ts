/**
 * JobRecords: the record side of JobService, i.e. where a job is. A job's end is its
 * terminal record in `<ns>_results` (status + result/error), written once and awaited;
 * beside it, with the same TTL, the count of its deliveries that were not attempts
 * (`wait.<id>`: dependency waits, and hand-backs of a job that never ran). Before its end,
 * its status is derived from its newest event in the events stream (docs/wire-format.md).
 * A plain helper of JobService, over the same scope's services.
 */
import { timerDelay } from "../model/duration.js";
import { coerceError, NotFoundError, PayloadTooLargeError, TimeoutError, ValidationError } from "../model/errors.js";
import { FINAL_JOB_EVENTS, JobEventType, statusFromEvent, type NaqEvent } from "../model/events.js";
import { JOB_VERSION, TERMINAL_STATUSES, validateJobId, type JobRecord, type JobStatus, type SkippedDeliveries } from "../model/job.js";
import { boundedError, truncateText } from "../model/limits.js";
import type { Names } from "../model/naming.js";
import { checkEvent, checkJobRecord, versionedDoc } from "../model/records.js";
import { decodeJson, type KVStoreService } from "./kv.js";
import type { StreamService } from "./streams.js";

export interface JobState {
  id: string;
  status: JobStatus;
  queue?: string;
  task?: string;
  record?: JobRecord;
  lastEvent?: NaqEvent;
}

const recordEncoder = new TextEncoder();

/**
 * A job's deliveries that were not attempts, kept beside its record (same TTL): `waits`
 * (put back to wait for its dependencies) and `released` (handed back unrun by a stopping
 * or full worker; absent = 0, as written before naq counted them).
 */
interface WaitDoc {
  v: typeof JOB_VERSION;
  id: string;
  waits: number;
  released?: number;
  at: string;
}
const waitKey = (id: string): string => `wait.${id}`;
const checkWaitDoc = (value: unknown, where: string): WaitDoc => {
  const f = versionedDoc(value, where);
  f.str("id");
  if (!(f.num("waits") >= 0)) f.fail("waits", "a number >= 0");
  if (f.doc.released !== undefined && !(f.num("released") >= 0)) f.fail("released", "a number >= 0");
  return f.doc as unknown as WaitDoc;
};

export class JobRecords {
  constructor(
    private readonly names: Names,
    private readonly kv: KVStoreService,
    private readonly streams: StreamService,
    /** The most bytes a record may take (JobService.maxMessageBytes: known once the service is initialized). */
    private readonly maxMessageBytes: () => number,
  ) {}

  /** The terminal record of a job, if it has ended (and the record has not expired). */
  async get(id: string): Promise<JobRecord | undefined> {
    validateJobId(id);
    return (await this.kv.getJson<JobRecord>(this.names.buckets.results, id, checkJobRecord))?.value;
  }

  /**
   * Writes a job's terminal record: the one awaited write at the end of a job. Its error
   * and reason are cut to naq's limits; a record still over max_payload (a result too
   * large) is a PayloadTooLargeError, never a retry loop.
   */
  async write(record: JobRecord): Promise<void> {
    const limit = this.maxMessageBytes();
    // A completed job's record (no error, no reason: one per job on the worker's hot path) is written as it is, not copied.
    let bounded: JobRecord =
      record.error === undefined && record.reason === undefined
        ? record
        : {
            ...record,
            ...(record.error ? { error: boundedError(record.error) } : {}),
            ...(record.reason !== undefined ? { reason: truncateText(record.reason, 8 * 1024) } : {}),
          };
    const encode = (r: JobRecord): Uint8Array => {
      try {
        return recordEncoder.encode(JSON.stringify(r));
      } catch (err) {
        throw new ValidationError(`the record of job ${record.id} cannot be written as JSON (${coerceError(err).message})`, "result", { cause: err });
      }
    };
    let data = encode(bounded);
    if (data.length > limit && bounded.labels) {
      // Huge labels (copied from the job) are what is left out first, and the record says so.
      const { labels: _labels, ...rest } = bounded;
      bounded = { ...rest, reason: `${rest.reason ? `${rest.reason}; ` : ""}labels left out: the record was over max_payload` };
      data = encode(bounded);
    }
    if (data.length > limit) {
      const what = record.result !== undefined ? "its result is too large" : "it is too large";
      throw new PayloadTooLargeError(
        `the record of job ${record.id} is ${data.length} bytes, over the limit of ${limit} bytes (the server's max_payload): ${what}`,
        data.length,
        limit,
        "result",
      );
    }
    await this.kv.put(this.names.buckets.results, record.id, data);
  }

  /** A job's deliveries that were not attempts: dependency waits and unrun hand-backs. */
  async skipped(id: string): Promise<SkippedDeliveries> {
    const doc = await this.waitDoc(id);
    return { waits: doc?.waits ?? 0, released: doc?.released ?? 0 };
  }

  async recordWait(id: string, skipped: SkippedDeliveries): Promise<void> {
    const { waits, released } = skipped;
    await this.kv.putJson<WaitDoc>(this.names.buckets.results, waitKey(id), { v: JOB_VERSION, id, waits, ...(released > 0 ? { released } : {}), at: new Date().toISOString() });
  }

  /** Counts one more delivery of a job handed back without running. */
  async recordRelease(id: string): Promise<void> {
    const doc = await this.waitDoc(id);
    const released = (doc?.released ?? 0) + 1;
    await this.kv.putJson<WaitDoc>(this.names.buckets.results, waitKey(id), { v: JOB_VERSION, id, waits: doc?.waits ?? 0, released, at: new Date().toISOString() });
  }

  private async waitDoc(id: string): Promise<WaitDoc | undefined> {
    return (await this.kv.getJson<WaitDoc>(this.names.buckets.results, waitKey(id), checkWaitDoc))?.value;
  }

  /** Removes a job's terminal record and wait counter (before a retry), ignoring failures. */
  async forget(id: string): Promise<void> {
    await this.kv.purge(this.names.buckets.results, id).catch(() => undefined);
    await this.kv.purge(this.names.buckets.results, waitKey(id)).catch(() => undefined);
  }

  /** Waits (KV watch, no polling) until a job has a terminal record; TimeoutError after `timeoutMs`. */
  async waitFor(id: string, opts: { timeoutMs?: number; signal?: AbortSignal }): Promise<JobRecord> {
    const watcher = await this.kv.watchJson<JobRecord>(this.names.buckets.results, { key: id }, checkJobRecord);
    const timer =
      opts.timeoutMs !== undefined && Number.isFinite(opts.timeoutMs) ? setTimeout(() => watcher.stop(), timerDelay(opts.timeoutMs)) : undefined;
    const onAbort = () => watcher.stop();
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const e of watcher) {
        if (e.invalid) throw e.invalid;
        if (e.value && TERMINAL_STATUSES.has(e.value.status)) return e.value;
      }
    } finally {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
      watcher.stop();
    }
    throw new TimeoutError(`timed out waiting for job ${id} to finish`);
  }

  /** The newest event of a job, if any (one direct read by subject). */
  async lastEvent(id: string): Promise<NaqEvent | undefined> {
    validateJobId(id);
    const m = await this.streams.lastBySubject(this.names.eventsStream, this.names.eventFilter({ jobId: id }));
    return m ? decodeJson<NaqEvent>(m.data, `event ${m.seq}`, checkEvent) : undefined;
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
    const ev = decodeJson<NaqEvent>(newest.data, `event ${newest.seq}`, checkEvent);
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
      if (m && (!best || m.seq > best.seq)) best = { seq: m.seq, ev: decodeJson<NaqEvent>(m.data, `event ${m.seq}`, checkEvent) };
    }
    if (!best || FINAL_JOB_EVENTS.has(best.ev.type)) return ev;
    return best.ev;
  }

  /** Where a job is: from its terminal record, else its newest event. NotFoundError if neither. */
  async status(id: string): Promise<JobState> {
    const record = await this.get(id);
    if (record) return { id, status: record.status, queue: record.queue, task: record.task, record };
    const ev = await this.stateEvent(id);
    if (!ev) throw new NotFoundError(`job ${id} not found (no record and no events; records expire after the result TTL)`);
    return { id, status: statusFromEvent(ev), queue: ev.queue, task: ev.task, lastEvent: ev };
  }
}
