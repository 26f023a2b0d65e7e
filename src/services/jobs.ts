/**
 * JobService: the producer and record side of jobs.
 *
 * Hot path: enqueue is one awaited JetStream publish with `Nats-Msg-Id = job id` (the
 * same id twice inside the duplicate window is one job); the `enqueued` event is
 * buffered, never awaited. A job's end is one awaited KV write of its terminal record
 * (status + result/error). Status before that is derived from events (docs/wire-format.md).
 *
 * Its helpers, over the same scope's services (one NATS connection), keep their entry
 * points here:
 *   JobRecords     src/services/job-records.ts       terminal records, wait counters, a job's status
 *   DeadLetters    src/services/dead-letters.ts      dead-lettering, listing and retrying
 *   JobListing     src/services/job-list.ts          `naq job list` and `naq job logs`
 *   publishMany,   src/services/enqueue-pipeline.ts  the pipelining of enqueueMany and
 *   publishStream                                     enqueueStream (over this.publish)
 */
import { ConflictError, NotFoundError, PayloadTooLargeError } from "../model/errors.js";
import { HEADER_ROOM } from "../model/limits.js";
import { JobEventType, type NaqEvent } from "../model/events.js";
import {
  createEnvelope,
  decodeEnvelope,
  encodeEnvelope,
  JOB_VERSION,
  validateJobId,
  type EnqueueInput,
  type JobEnvelope,
  type JobRecord,
  type JobStatus,
  type SkippedDeliveries,
} from "../model/job.js";
import type { AckedPublisher, PubAck } from "./acked-publish.js";
import { BaseService, type ServiceContext } from "./base.js";
import { ConnectionService } from "./connection.js";
import { DeadLetters, type DeadLetter, type RetryOutcome } from "./dead-letters.js";
import { publishMany, publishStream } from "./enqueue-pipeline.js";
import { EventService } from "./events.js";
import { JobListing, type JobSummary, type ListOptions } from "./job-list.js";
import { JobRecords, type JobState } from "./job-records.js";
import { KVStoreService } from "./kv.js";
import { isNoStreamForSubject, toNaqError } from "./nats-errors.js";
import { StreamService } from "./streams.js";
import { WorkerService } from "./workers.js";

export type { DeadLetter, RetryOutcome } from "./dead-letters.js";
export type { JobSummary, ListOptions } from "./job-list.js";
export type { JobState } from "./job-records.js";

export interface EnqueueResult {
  id: string;
  queue: string;
  /** Jobs-stream sequence of the stored message. */
  seq: number;
  /** True when a job with this id was already enqueued within the duplicate window. */
  duplicate: boolean;
}

export class JobService extends BaseService {
  static readonly deps = [ConnectionService, StreamService, KVStoreService, EventService, WorkerService] as const;
  private maxPayload = Number.POSITIVE_INFINITY;
  private readonly records: JobRecords;
  private readonly dlq: DeadLetters;
  private readonly listing: JobListing;

  constructor(
    ctx: ServiceContext,
    private readonly connection: ConnectionService,
    private readonly streams: StreamService,
    private readonly kv: KVStoreService,
    private readonly events: EventService,
    workers: WorkerService,
  ) {
    super(ctx);
    this.records = new JobRecords(ctx.names, kv, streams, () => this.maxMessageBytes);
    this.dlq = new DeadLetters(ctx.names, connection, streams, {
      publish: (env, msgId) => this.publish(env, msgId),
      ensureStreams: () => this.ensureStreams(),
      forgetRecord: (id) => this.records.forget(id),
    });
    this.listing = new JobListing(ctx.names, connection, kv, workers, { lastEvent: (id) => this.lastEvent(id), getRecord: (id) => this.getRecord(id) });
  }

  protected override async onInitialize(): Promise<void> {
    this.maxPayload = (await this.connection.server()).maxPayload;
  }

  /** The server's max_payload, in bytes. */
  get maxPayloadBytes(): number {
    return this.maxPayload;
  }

  /** The most bytes a job (or record) may take: the server's max_payload less room for headers. */
  get maxMessageBytes(): number {
    return this.maxPayload - HEADER_ROOM;
  }

  private checkSize(env: JobEnvelope, data: Uint8Array): void {
    // Leave room for headers (Nats-Msg-Id etc.).
    if (data.length > this.maxMessageBytes) {
      throw new PayloadTooLargeError(
        `job ${env.id} is ${data.length} bytes, over the limit of ${this.maxMessageBytes} bytes (the server's max_payload of ${this.maxPayload} bytes, less ${HEADER_ROOM} for headers): store large data elsewhere and pass a reference`,
        data.length,
        this.maxMessageBytes,
      );
    }
  }

  /** Checks that a job can be published (valid, and within max_payload) without publishing it: PayloadTooLargeError / ValidationError. */
  assertPublishable(env: JobEnvelope): void {
    this.checkSize(env, encodeEnvelope(env));
  }

  /** Publishes a complete envelope (idempotent by id). */
  async publish(env: JobEnvelope, msgId: string = env.id): Promise<EnqueueResult> {
    const data = encodeEnvelope(env);
    this.checkSize(env, data);
    let ack;
    try {
      ack = await this.publishAcked(this.names.queueSubject(env.queue), data, msgId);
    } catch (err) {
      if (isNoStreamForSubject(err)) {
        await this.ensureStreams();
        ack = await this.publishAcked(this.names.queueSubject(env.queue), data, msgId);
      } else {
        throw toNaqError(err, `enqueueing job ${env.id} on ${env.queue}`);
      }
    }
    if (!ack.duplicate) {
      this.events.emit({ type: JobEventType.enqueued, queue: env.queue, jobId: env.id, task: env.task, maxAttempts: env.attempts });
    }
    return { id: env.id, queue: env.queue, seq: ack.seq, duplicate: ack.duplicate };
  }

  private acked?: AckedPublisher;
  /** A JetStream publish and its PubAck through the scope's AckedPublisher (no nats.js request object per job). */
  private async publishAcked(subject: string, data: Uint8Array, msgId: string): Promise<PubAck> {
    this.acked ??= await this.connection.publisher();
    return this.acked.publish(subject, data, { msgId });
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

  // -------------------------------------------------------------------------------------
  // Bulk enqueue: see src/services/enqueue-pipeline.ts.

  /**
   * Enqueues many jobs with pipelined publishes, at most `window` awaiting their ack at
   * once. Results are in input order; a failed job is an Error in its slot. `queue`: where
   * jobs that name none go (default: `default`).
   */
  enqueueMany(
    inputs: Iterable<EnqueueInput | JobEnvelope>,
    opts: { window?: number; queue?: string } = {},
  ): Promise<Array<EnqueueResult | Error>> {
    return publishMany((env) => this.publish(env), inputs, opts);
  }

  /**
   * Enqueues a stream of jobs with pipelined publishes, at most `window` awaiting their
   * ack at once, and yields each item with its result (an Error where it failed) in input
   * order. `envelopeOf` may throw: that item's result is the error, nothing is published.
   */
  enqueueStream<T>(
    items: AsyncIterable<T> | Iterable<T>,
    envelopeOf: (item: T) => JobEnvelope,
    opts: { window?: number } = {},
  ): AsyncGenerator<[T, EnqueueResult | Error]> {
    return publishStream((env) => this.publish(env), items, envelopeOf, opts);
  }

  // -------------------------------------------------------------------------------------
  // Records and state: see src/services/job-records.ts.

  /** The terminal record of a job, if it has ended (and the record has not expired). */
  getRecord(id: string): Promise<JobRecord | undefined> {
    return this.records.get(id);
  }

  /**
   * Writes a job's terminal record: the one awaited write at the end of a job. Its error
   * and reason are cut to naq's limits; a record still over max_payload (a result too
   * large) is a PayloadTooLargeError, never a retry loop.
   */
  writeRecord(record: JobRecord): Promise<void> {
    return this.records.write(record);
  }

  /** A job's deliveries that were not attempts: dependency waits and unrun hand-backs. */
  skippedDeliveries(id: string): Promise<SkippedDeliveries> {
    return this.records.skipped(id);
  }

  /** Stores a job's skipped-delivery counts after one more dependency wait. */
  recordWait(id: string, skipped: SkippedDeliveries): Promise<void> {
    return this.records.recordWait(id, skipped);
  }

  /** Counts one more delivery of a job handed back without running (before its NAK). */
  recordRelease(id: string): Promise<void> {
    return this.records.recordRelease(id);
  }

  /** The newest event of a job, if any (one direct read by subject). */
  lastEvent(id: string): Promise<NaqEvent | undefined> {
    return this.records.lastEvent(id);
  }

  /** The event that tells where a job is (see JobRecords.stateEvent). */
  stateEvent(id: string): Promise<NaqEvent | undefined> {
    return this.records.stateEvent(id);
  }

  /** Where a job is: from its terminal record, else its newest event. NotFoundError if neither. */
  status(id: string): Promise<JobState> {
    return this.records.status(id);
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
    return this.records.waitFor(id, opts);
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

  // -------------------------------------------------------------------------------------
  // Dead letters: see src/services/dead-letters.ts.

  /** Stores a job in the dead-letter stream (awaited); `msgId` makes a second dead-lettering a no-op. */
  deadLetter(entry: DeadLetter, msgId?: string): Promise<void> {
    return this.dlq.write(entry, msgId);
  }
  getDeadLetter(id: string, queue?: string): Promise<(DeadLetter & { seq: number }) | undefined> {
    return this.dlq.get(id, queue);
  }
  retry(id: string): Promise<EnqueueResult> {
    return this.dlq.retry(id);
  }
  retryEntry(dl: DeadLetter & { seq: number }): Promise<EnqueueResult> {
    return this.dlq.retryEntry(dl);
  }
  retryAll(opts: { queue?: string; concurrency?: number } = {}): Promise<RetryOutcome[]> {
    return this.dlq.retryAll(opts);
  }
  deadLetters(opts: { queue?: string; limit?: number } = {}): Promise<Array<DeadLetter & { seq: number }>> {
    return this.dlq.list(opts);
  }

  // -------------------------------------------------------------------------------------
  // Listing and logs: see src/services/job-list.ts.

  /** Ended jobs (terminal records), newest first. */
  list(opts: ListOptions = {}): Promise<JobRecord[]> {
    return this.listing.ended(opts);
  }
  /** Jobs not yet ended, in queue order. */
  activeJobs(opts: { queue?: string; status?: JobStatus; limit?: number } = {}): Promise<JobSummary[]> {
    return this.listing.active(opts);
  }
  /** `naq job list`: jobs not yet ended, then ended jobs. */
  listJobs(opts: ListOptions = {}): Promise<JobSummary[]> {
    return this.listing.list(opts);
  }
  /** A job's events in order (its log); with `follow`, until the job ends. */
  jobEvents(id: string, opts: { follow?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<NaqEvent> {
    return this.listing.events(id, opts);
  }

  /** Decodes a raw job message (exposed for tools that read the jobs stream). */
  decode(data: Uint8Array): JobEnvelope {
    return decodeEnvelope(data);
  }
}
