/**
 * EventService: one event per job transition onto the events stream (publish side), and
 * reading them back (read side): tail, finite reads, one job's history, statistics.
 *
 * Publish side.
 *
 * Events never slow the job path: `emit` only buffers; a flush on the next macrotask
 * publishes the batch with core NATS publishes (the stream captures them; no per-event
 * round trip), and `flush()`/cleanup waits until the server has them, so nothing buffered
 * is lost on a clean shutdown. A `started` event is held for `streams.events.foldStarted`
 * first: an attempt that ends sooner stores it inside its end event (see event-fold.ts).
 * The terminal record in KV, not the event, is the truth a job's status is read from;
 * events are the audit trail.
 *
 * Read side: every read is an EventStream (ordered consumer; see event-stream.ts) with
 * the server filtering on the subject's queue, job id and type, and this process on
 * task and worker. Reads never consume or delete; cleanup closes any still open, which
 * deletes their consumers.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { orderJobHistory, planEventRead, type EventFilter, type EventStart } from "../model/event-filter.js";
import { coerceError, ServiceError } from "../model/errors.js";
import { boundedError, truncateText } from "../model/limits.js";
import { isoTime } from "../model/clock.js";
import { EVENT_VERSION, type EventType, type NaqEvent } from "../model/events.js";
import { validateToken } from "../model/naming.js";
import { EventStatsBuilder, type EventStats, type StatsGroupBy } from "../model/stats.js";
import { BaseService, type ServiceContext } from "./base.js";
import { ConnectionService, FEATURES, versionAtLeast } from "./connection.js";
import { StartedFold } from "./event-fold.js";
import { EventStream, type EventStreamOptions } from "./event-stream.js";
import { describeDenial, permissionDenial } from "./nats-errors.js";

export type EventInput = Omit<NaqEvent, "v" | "at"> & { at?: string };

export interface ReadOptions {
  /** Aborting ends the read normally (the iteration just finishes). */
  signal?: AbortSignal;
}

export interface StatsOptions extends ReadOptions {
  /** Start of the window (default: one hour ago). */
  since?: EventStart;
  by?: StatsGroupBy;
  /** End of the window for throughput (default: now). */
  now?: Date;
}

export interface StatsResult extends EventStats {
  /** How the stream was read: start sequence and messages read (proves a window is not a full scan). */
  read: { startSeq: number | null; endSeq: number | null; delivered: number };
}

const HOUR_MS = 3_600_000;

const encoder = new TextEncoder();

/**
 * An event as bytes that fit `maxPayload`: a progress value that is not JSON (BigInt,
 * circular) or that makes the event too large is replaced by a note, and a huge log line,
 * error or reason is cut. Such an event used to stay at the head of the buffer for ever.
 */
function encodeEvent(e: NaqEvent, maxPayload: number): Uint8Array {
  let data: Uint8Array | undefined;
  try {
    data = encoder.encode(JSON.stringify(e));
  } catch {
    data = undefined;
  }
  if (data !== undefined && data.length <= maxPayload) return data;
  const { progress, log, error, reason, ...rest } = e;
  const note = data === undefined ? "not JSON" : `${data.length} bytes, over max_payload`;
  return encoder.encode(
    JSON.stringify({
      ...rest,
      ...(progress !== undefined ? { progress: `(progress left out: ${note})` } : {}),
      ...(log !== undefined ? { log: truncateText(String(log), 8 * 1024) } : {}),
      ...(error ? { error: boundedError({ name: String(error.name), message: String(error.message) }, 1024) } : {}),
      ...(reason !== undefined ? { reason: truncateText(String(reason), 1024) } : {}),
    }),
  );
}
const MAX_BUFFER = 10_000;

export class EventService extends BaseService {
  static readonly deps = [ConnectionService] as const;
  private nc?: NatsConnection;
  private buffer: NaqEvent[] = [];
  private scheduled = false;
  private dropped = 0;
  private offDenied?: () => void;
  private readonly reads = new Set<EventStream>();
  /** Holds `started` events to fold them into their attempt's end (streams.events.foldStarted; none when 0). */
  private readonly fold?: StartedFold;
  private foldTimer?: NodeJS.Timeout;

  constructor(
    ctx: ServiceContext,
    private readonly connection: ConnectionService,
  ) {
    super(ctx);
    const holdMs = ctx.config.streams.events.foldStarted;
    if (holdMs > 0) this.fold = new StartedFold(holdMs);
  }

  protected override async onInitialize(): Promise<void> {
    this.nc = await this.connection.connection();
    // Events are plain publishes: a denied one is only reported on the connection. Say so
    // once, naming the subject, rather than losing this user's events without a word.
    let warned = false;
    this.offDenied = this.connection.onPermissionDenied(
      (subject) => subject.startsWith(`${this.names.namespace}.events.`),
      (err) => {
        const denial = permissionDenial(err);
        if (warned || !denial) return;
        warned = true;
        this.ctx.logger.warn(`events: ${describeDenial(denial)}; events this user publishes are not stored`);
      },
    );
  }

  protected override async onCleanup(): Promise<void> {
    await Promise.allSettled([...this.reads].map((r) => r.close()));
    clearTimeout(this.foldTimer);
    this.foldTimer = undefined;
    await this.flush();
    // The server's -ERR for a denied event comes before the flush's PONG, but reaches the
    // denial listener a few microtasks after it: give it one turn of the event loop.
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.offDenied?.();
  }

  /** Queues an event for publishing; returns at once. */
  emit(input: EventInput): void {
    const now = Date.now();
    const event: NaqEvent = { v: EVENT_VERSION, at: input.at ?? isoTime(now), ...input } as NaqEvent;
    const fold = this.fold;
    if (!fold) {
      this.enqueue(event);
      return;
    }
    fold.accept(event, now, this.enqueueEvent);
    this.armFold();
  }

  private readonly enqueueEvent = (event: NaqEvent): void => this.enqueue(event);

  private enqueue(event: NaqEvent): void {
    if (this.buffer.length >= MAX_BUFFER) {
      // The connection is down for long: keep the newest, count what we drop.
      this.buffer.shift();
      this.dropped++;
    }
    this.buffer.push(event);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.publishBuffered());
    }
  }

  /** Events dropped because the buffer overflowed while NATS was unreachable. */
  get droppedCount(): number {
    return this.dropped;
  }

  private publishBuffered(): void {
    this.scheduled = false;
    const nc = this.nc;
    if (!nc || nc.isClosed()) return;
    const batch = this.buffer;
    this.buffer = [];
    const maxPayload = nc.info?.max_payload ?? Number.POSITIVE_INFINITY;
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i] as NaqEvent;
      let subject: string;
      let data: Uint8Array;
      try {
        subject = this.subjectOf(e);
        data = encodeEvent(e, maxPayload);
      } catch (err) {
        // This event can never be published (a bad name): dropped, so it cannot hold up the others.
        this.ctx.logger.warn(`events: ${e.type} event of ${e.jobId} dropped (${coerceError(err).message})`);
        continue;
      }
      try {
        nc.publish(subject, data);
      } catch (err) {
        // Draining or closed: keep the rest for a later flush.
        this.buffer = batch.slice(i).concat(this.buffer);
        this.ctx.logger.debug(`events: publish deferred (${(err as Error).message})`);
        return;
      }
    }
  }

  subjectOf(e: Pick<NaqEvent, "queue" | "jobId" | "type">): string {
    return this.names.eventSubject(e.queue, e.jobId, e.type as EventType);
  }

  /** Lets go of held `started` events when their hold is over. */
  private armFold(): void {
    const fold = this.fold;
    if (!fold || this.foldTimer || fold.size === 0) return;
    const next = fold.nextDue();
    if (next === undefined) return;
    this.foldTimer = setTimeout(
      () => {
        this.foldTimer = undefined;
        for (const e of fold.due(Date.now())) this.enqueue(e);
        this.armFold();
      },
      Math.max(1, next - Date.now()),
    );
    // A flush (cleanup) publishes whatever is held: the hold alone never keeps a process alive.
    this.foldTimer.unref();
  }

  /** Publishes everything buffered or held and waits until the server has received it. */
  async flush(): Promise<void> {
    if (this.fold) for (const e of this.fold.drain()) this.enqueue(e);
    this.publishBuffered();
    const nc = this.nc;
    if (nc && !nc.isClosed()) {
      try {
        await nc.flush();
      } catch (err) {
        this.ctx.logger.warn(`events: flush failed (${(err as Error).message})`);
      }
    }
  }

  // ---- read side -------------------------------------------------------------------

  /** Whether the server takes several filter subjects per consumer (2.10+). */
  private get multiFilter(): boolean {
    const version = this.nc?.info?.version;
    return version !== undefined && versionAtLeast(version, FEATURES["multi-filter"]);
  }

  /**
   * Follows events as they are stored (from `filter.since`, default: only new ones) until
   * the signal aborts, the caller breaks out, or stream.close():
   *
   *   for await (const ev of events.tail({ queue: "emails", types: ["failed"] })) ...
   *
   * Validates the filter at once (a ValidationError); the consumer is created on first
   * iteration, or by `await stream.ready()`.
   */
  tail(filter: EventFilter = {}, opts: ReadOptions = {}): EventStream {
    return this.open(filter, { follow: true, signal: opts.signal });
  }

  /** The events stored when the read begins (from `filter.since`, default: all), then ends. */
  read(filter: EventFilter = {}, opts: ReadOptions = {}): EventStream {
    return this.open({ since: "all", ...filter }, { follow: false, signal: opts.signal });
  }

  /**
   * Every event of one job still in the stream, in the order of its life: the stream's
   * order, with a producer's late-stored `enqueued` put back before the run it began
   * (see orderJobHistory).
   */
  async history(jobId: string, opts: ReadOptions = {}): Promise<NaqEvent[]> {
    return orderJobHistory(await this.read({ jobId: validateToken(jobId, "job id"), since: "all" }, opts).toArray());
  }

  /** Counts, failure rate, throughput and durations over a window, read from its start (not a full scan). */
  async stats(opts: StatsOptions = {}): Promise<StatsResult> {
    const since = opts.since ?? new Date(Date.now() - HOUR_MS);
    const builder = new EventStatsBuilder(opts.by ?? null);
    const stream = this.read({ since }, opts);
    let first: Date | undefined;
    for await (const ev of stream) {
      const at = Date.parse(ev.at);
      if (first === undefined && Number.isFinite(at)) first = new Date(at);
      builder.add(ev);
    }
    const now = opts.now ?? new Date();
    const from = since instanceof Date ? since : (first ?? now);
    return {
      ...builder.build(from, now),
      read: { startSeq: stream.startSeq ?? null, endSeq: stream.endSeq ?? null, delivered: stream.delivered },
    };
  }

  private open(filter: EventFilter, opts: EventStreamOptions): EventStream {
    const nc = this.nc;
    if (!nc) throw new ServiceError("EventService is not initialized: get it from a ServiceManager");
    const plan = planEventRead(this.names, filter, this.multiFilter);
    const deps = {
      nc,
      js: () => this.connection.jetstream(),
      jsm: () => this.connection.manager(),
      names: this.names,
      logger: this.ctx.logger,
      onDenied: (match: (subject: string) => boolean, fn: (err: Error) => void) => this.connection.onPermissionDenied(match, fn),
    };
    const stream = new EventStream(deps, filter, plan, opts, (s) => this.reads.delete(s));
    this.reads.add(stream);
    return stream;
  }
}
