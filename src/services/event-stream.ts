/**
 * EventStream: one read of the events stream through a nats.js ordered consumer (an
 * ephemeral, memory-backed, unacknowledged consumer that the client recreates from the
 * last sequence it saw on a gap or a lost consumer). Reading never consumes anything.
 *
 * States: created -> opening (start sequence resolved, consumer created) -> reading ->
 * closed (consumer deleted, so nothing is left on the server; the consumer's
 * inactive_threshold removes it anyway if the process dies first).
 *
 * The start is always given to the server as a stream sequence (`opt_start_seq`), never
 * as "new" or a start time: when nats.js recreates an ordered consumer before it has
 * delivered anything, it restarts from its start sequence, and with "new" or a time
 * that would be sequence 1, replaying the whole stream. A time is turned into a
 * sequence by a probe consumer created with `opt_start_time` and deleted at once.
 *
 * A finite read (`follow: false`) stops at the stream's last sequence when it began, or
 * earlier when the consumer reports nothing pending; it never waits for new events.
 */
import { randomBytes } from "node:crypto";
import {
  AckPolicy,
  DeliverPolicy,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { msToNanos } from "../model/duration.js";
import { NotFoundError } from "../model/errors.js";
import { decodeEvent, matchesEvent, type EventFilter, type EventReadPlan } from "../model/event-filter.js";
import { expandFolded, type NaqEvent } from "../model/events.js";
import type { Names } from "../model/naming.js";
import type { Logger } from "./base.js";
import { ApiCode, apiErrorCode, toNaqError } from "./nats-errors.js";

export interface EventStreamDeps {
  nc: NatsConnection;
  js: () => Promise<JetStreamClient>;
  jsm: () => Promise<JetStreamManager>;
  names: Names;
  logger: Logger;
  /** ConnectionService.onPermissionDenied: ends the read when the server denies its pulls. */
  onDenied?: (match: (subject: string) => boolean, fn: (err: Error) => void) => () => void;
}

export interface EventStreamOptions {
  /** Keep following new events (tail); false: end at the last event stored when the read began. */
  follow: boolean;
  signal?: AbortSignal;
}

/** A consumer left by a reader that died is removed by the server after this long without pulls. */
const INACTIVE_THRESHOLD_MS = 30_000;
/** Pull requests are renewed at least this often, well inside the inactive threshold. */
const PULL_EXPIRES_MS = 10_000;
/** A finite read that got nothing for this long asks the server whether anything is left. */
const IDLE_CHECK_MS = 1_000;

export class EventStream implements AsyncIterable<NaqEvent>, AsyncDisposable {
  /** Stream sequence the read starts at (known after ready()). */
  startSeq?: number;
  /** Finite reads: the stream's last sequence when the read began. */
  endSeq?: number;
  /** The consumer's current name (ordered consumers get a new one when recreated). */
  consumerName?: string;
  /** Messages the server delivered (all matched its filter subjects), and the events read from them that passed the client-side checks (a folded `started` is one more). */
  delivered = 0;
  matched = 0;
  /** Delivered messages that were not events (not JSON objects), skipped. */
  skipped = 0;

  private consumer?: Consumer;
  private messages?: ConsumerMessages;
  private opening?: Promise<void>;
  private closing?: Promise<void>;
  private iterated = false;
  private lastMessageAt = 0;
  private idleTimer?: NodeJS.Timeout;
  private checkingIdle = false;
  private stopped = false;
  private denied?: Error;
  private offDenied?: () => void;
  private readonly onAbort = () => this.stop();

  constructor(
    private readonly deps: EventStreamDeps,
    readonly filter: EventFilter,
    readonly plan: EventReadPlan,
    private readonly opts: EventStreamOptions,
    private readonly onClosed: (s: EventStream) => void = () => undefined,
  ) {
    if (opts.signal?.aborted) this.stopped = true;
    else opts.signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  /** The consumer's filter subjects: the server-side part of the filter. */
  get subjects(): readonly string[] {
    return this.plan.subjects;
  }

  get follow(): boolean {
    return this.opts.follow;
  }

  private get streamName(): string {
    return this.deps.names.eventsStream;
  }

  /** Resolves the start and creates the consumer; iteration calls it too. Idempotent. */
  ready(): Promise<void> {
    this.opening ??= this.open();
    return this.opening;
  }

  /** Ends an iteration in progress (it finishes normally). */
  stop(): void {
    this.stopped = true;
    this.messages?.stop();
  }

  private async open(): Promise<void> {
    if (this.stopped) return;
    const [js, jsm] = await Promise.all([this.deps.js(), this.deps.jsm()]);
    const stream = this.streamName;
    let state: { first_seq: number; last_seq: number };
    try {
      state = (await jsm.streams.info(stream)).state;
    } catch (err) {
      if (apiErrorCode(err) === ApiCode.StreamNotFound) {
        throw new NotFoundError(`the events stream ${stream} does not exist: run \`naq stream init\` (workers and producers create it too)`, { cause: err });
      }
      throw toNaqError(err, `reading ${stream}`);
    }
    const since = this.filter.since ?? (this.opts.follow ? "new" : "all");
    const start =
      since === "all" ? Math.max(1, state.first_seq) : since === "new" ? state.last_seq + 1 : await this.sequenceAt(since);
    this.startSeq = start;
    if (!this.opts.follow) {
      this.endSeq = state.last_seq;
      if (start > state.last_seq) return;
    }
    if (this.stopped) return;
    const subjects = this.plan.subjects;
    // A denied pull is not an error nats.js gives the reader: without this it waits forever.
    this.offDenied ??= this.deps.onDenied?.(
      (subject) => subject.startsWith("$JS.API.CONSUMER.") && subject.includes(`.${stream}.`),
      (err) => {
        this.denied ??= err;
        this.messages?.stop(err);
      },
    );
    try {
      this.consumer = await js.consumers.get(stream, {
        name_prefix: this.namePrefix(),
        filter_subjects: subjects.length === 1 ? (subjects[0] as string) : subjects,
        opt_start_seq: start,
        inactive_threshold: INACTIVE_THRESHOLD_MS,
      });
      const ci = await this.consumer.info(true);
      this.consumerName = ci.name;
      if ((!this.opts.follow && ci.num_pending === 0) || this.stopped) return;
      this.messages = await this.consumer.consume({
        max_messages: this.opts.follow ? 256 : 1_024,
        expires: PULL_EXPIRES_MS,
      });
      if (this.denied) this.messages.stop(this.denied);
    } catch (err) {
      await this.deleteConsumer();
      throw toNaqError(err, `reading ${stream}`);
    }
    void this.watch(this.messages);
  }

  /** `<ns>_ev_<random>`: recognisable in `naq stream info <ns>_events`. */
  private namePrefix(): string {
    return `${this.deps.names.namespace}_ev_${randomBytes(6).toString("hex")}`;
  }

  /** The first stream sequence stored at or after `at` (last + 1 when there is none). */
  private async sequenceAt(at: Date): Promise<number> {
    const jsm = await this.deps.jsm();
    const name = `${this.namePrefix()}_at`;
    try {
      const ci = await jsm.consumers.add(this.streamName, {
        name,
        ack_policy: AckPolicy.None,
        deliver_policy: DeliverPolicy.StartTime,
        opt_start_time: at.toISOString(),
        mem_storage: true,
        num_replicas: 1,
        inactive_threshold: msToNanos(INACTIVE_THRESHOLD_MS),
      });
      // The server places a new consumer just before its first message.
      return ci.delivered.stream_seq + 1;
    } catch (err) {
      throw toNaqError(err, `finding where ${at.toISOString()} starts in ${this.streamName}`);
    } finally {
      await jsm.consumers.delete(this.streamName, name).catch(() => undefined);
    }
  }

  private async watch(messages: ConsumerMessages): Promise<void> {
    let warned = false;
    try {
      for await (const s of messages.status()) {
        if (s.type === "ordered_consumer_recreated") {
          this.consumerName = s.name;
          this.deps.logger.debug(`events: consumer recreated as ${s.name} (gap or lost consumer); reading on from the last event seen`);
        } else if (s.type === "heartbeats_missed") {
          this.deps.logger.debug(`events: ${s.count} heartbeats missed`);
        } else if (s.type === "stream_not_found" && !warned) {
          warned = true;
          this.deps.logger.warn(`events: stream ${this.streamName} not found; waiting for it`);
        }
      }
    } catch {
      // the status iterator ends with the messages
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<NaqEvent> {
    if (this.iterated) throw new Error("an EventStream can be iterated only once; open another read");
    this.iterated = true;
    return this.iterate();
  }

  private async *iterate(): AsyncGenerator<NaqEvent, void, undefined> {
    try {
      await this.ready();
      const messages = this.messages;
      if (!messages) return;
      const follow = this.opts.follow;
      const end = this.endSeq ?? Number.POSITIVE_INFINITY;
      if (!follow) this.watchIdle();
      for await (const m of messages) {
        this.lastMessageAt = Date.now();
        if (!follow && m.seq > end) break;
        this.delivered++;
        const ev = decodeEvent(this.deps.names, m.subject, m.data, m.time);
        if (ev === undefined) {
          this.skipped++;
          this.deps.logger.debug(`events: skipped message ${m.seq} on ${m.subject}: not a JSON event`);
        } else {
          for (const e of expandFolded(ev)) {
            if (!matchesEvent(e, this.filter)) continue;
            this.matched++;
            yield e;
          }
        }
        if (this.stopped || (!follow && (m.seq >= end || m.info.pending === 0))) break;
      }
    } catch (err) {
      if (!this.stopped) throw toNaqError(err, `reading ${this.streamName}`);
    } finally {
      clearInterval(this.idleTimer);
      await this.close();
    }
  }

  /**
   * A finite read ends on the message at its end sequence or the one with nothing
   * pending after it. If those vanish while it reads (max age, a purge), nothing more
   * comes: after a quiet second, ask the server whether anything is left.
   */
  private watchIdle(): void {
    this.lastMessageAt = Date.now();
    this.idleTimer = setInterval(() => {
      if (this.checkingIdle || Date.now() - this.lastMessageAt < IDLE_CHECK_MS) return;
      this.checkingIdle = true;
      this.consumer
        ?.info()
        .then((ci) => {
          if (ci.num_pending === 0) this.stop();
        })
        .catch(() => undefined)
        .finally(() => (this.checkingIdle = false));
    }, IDLE_CHECK_MS);
    this.idleTimer.unref();
  }

  /** All matching events of a finite read, in stream order. */
  async toArray(): Promise<NaqEvent[]> {
    const out: NaqEvent[] = [];
    for await (const ev of this) out.push(ev);
    return out;
  }

  /** Stops reading and deletes the consumer. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stop();
      this.offDenied?.();
      this.opts.signal?.removeEventListener("abort", this.onAbort);
      await this.opening?.catch(() => undefined);
      this.messages?.stop();
      await this.deleteConsumer();
      this.onClosed(this);
    })();
    return this.closing;
  }

  private async deleteConsumer(): Promise<void> {
    const consumer = this.consumer;
    this.consumer = undefined;
    const nc = this.deps.nc;
    if (!consumer || nc.isClosed() || nc.isDraining()) return;
    await consumer.delete().catch((err: unknown) => {
      this.deps.logger.debug(`events: could not delete consumer ${this.consumerName ?? "?"}: ${String(err)}`);
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
