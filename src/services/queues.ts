/**
 * QueueService: the consumer side of queues. One durable pull consumer per queue, shared
 * by every worker of that queue (its max_ack_pending is the queue's global concurrency);
 * pulls sized by the caller to its free slots; deliveries wrapped so the worker runtime
 * never sees a NATS type.
 */
import { AckPolicy, DeliverPolicy, ReplayPolicy, type Consumer, type ConsumerConfig, type JsMsg } from "@nats-io/jetstream";
import { queueSettings } from "../config/schema.js";
import { msToNanos, nanosToMs } from "../model/duration.js";
import { validateQueueName } from "../model/naming.js";
import { BaseService, type ServiceContext } from "./base.js";
import { ConnectionService } from "./connection.js";
import { apiErrorCode, ApiCode, toNaqError } from "./nats-errors.js";
import { StreamService } from "./streams.js";
import { topology } from "../model/topology.js";

/** One delivered job message. Acks are fire-and-forget: at-least-once allows a lost ack. */
export interface Delivery {
  readonly queue: string;
  readonly data: Uint8Array;
  readonly subject: string;
  /** Stream sequence: unique per enqueued message. */
  readonly seq: number;
  /** 1 on first delivery; counts NAKs and redeliveries after ack_wait. */
  readonly deliveryCount: number;
  ack(): void;
  /** Redeliver after `delayMs` (0 = at once). */
  nak(delayMs?: number): void;
  /** Never redeliver. */
  term(reason?: string): void;
  /** In progress: resets the ack_wait timer. */
  working(): void;
}

export interface FetchBatch extends AsyncIterable<Delivery> {
  /** Ends the pull early; messages already on the way still arrive and must be handled. */
  stop(): void;
}

class JsDelivery implements Delivery {
  constructor(
    readonly queue: string,
    private readonly m: JsMsg,
    private readonly termReason: boolean,
  ) {}
  get data() {
    return this.m.data;
  }
  get subject() {
    return this.m.subject;
  }
  get seq() {
    return this.m.seq;
  }
  get deliveryCount() {
    return this.m.info.deliveryCount;
  }
  ack() {
    this.m.ack();
  }
  nak(delayMs?: number) {
    this.m.nak(delayMs && delayMs > 0 ? Math.round(delayMs) : undefined);
  }
  term(reason?: string) {
    // nats-server < 2.10.4 ignores "+TERM <reason>" entirely: the job would come back after ack_wait.
    this.m.term(this.termReason ? reason : undefined);
  }
  working() {
    this.m.working();
  }
}

export class QueueService extends BaseService {
  static readonly deps = [ConnectionService, StreamService] as const;
  private readonly consumers = new Map<string, Promise<Consumer>>();

  constructor(
    ctx: ServiceContext,
    private readonly connection: ConnectionService,
    private readonly streams: StreamService,
  ) {
    super(ctx);
  }

  /**
   * Creates naq's streams that are missing (workers may start before `naq stream init`):
   * the jobs stream to consume from, and the events and dead-letter streams a worker
   * writes to (without them its events would be lost and dead-lettering would fail).
   */
  async ensureJobsStream(): Promise<void> {
    for (const spec of topology(this.config, this.names).streams) {
      if (!(await this.streams.find(spec.name))) await this.streams.ensure(spec);
    }
  }

  consumerConfig(queue: string): Partial<ConsumerConfig> & { durable_name: string } {
    const settings = queueSettings(this.config, queue);
    return {
      durable_name: this.names.queueConsumer(queue),
      filter_subject: this.names.queueSubject(queue),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      replay_policy: ReplayPolicy.Instant,
      ack_wait: msToNanos(settings.ackWait),
      max_ack_pending: settings.maxAckPending,
      // naq counts attempts itself and dead-letters; the server must never drop a job.
      max_deliver: -1,
      max_waiting: 512,
      num_replicas: 0,
    };
  }

  /** The queue's durable consumer, created or brought in line with config. */
  consumer(queue: string): Promise<Consumer> {
    validateQueueName(queue);
    let c = this.consumers.get(queue);
    if (!c) {
      c = this.ensureConsumer(queue);
      this.consumers.set(queue, c);
      c.catch(() => this.consumers.delete(queue));
    }
    return c;
  }

  private async ensureConsumer(queue: string): Promise<Consumer> {
    const jsm = await this.connection.manager();
    const js = await this.connection.jetstream();
    const stream = this.names.jobsStream;
    const want = this.consumerConfig(queue);
    try {
      await this.ensureJobsStream();
      try {
        const have = await jsm.consumers.info(stream, want.durable_name);
        if (have.config.max_ack_pending !== want.max_ack_pending || nanosToMs(have.config.ack_wait ?? 0) !== nanosToMs(want.ack_wait ?? 0)) {
          await jsm.consumers.update(stream, want.durable_name, {
            max_ack_pending: want.max_ack_pending,
            ack_wait: want.ack_wait,
          });
        }
      } catch (err) {
        if (apiErrorCode(err) !== ApiCode.ConsumerNotFound) throw err;
        try {
          await jsm.consumers.add(stream, want);
        } catch (addErr) {
          // Another worker created it first: fine.
          const code = apiErrorCode(addErr);
          if (code !== ApiCode.ConsumerExists && code !== ApiCode.ConsumerNameExists) throw addErr;
        }
      }
      return await js.consumers.get(stream, want.durable_name);
    } catch (err) {
      throw toNaqError(err, `consumer for queue ${queue}`);
    }
  }

  /** Pulls up to `max` jobs, waiting up to `expiresMs` (>= 1000) for them to arrive. */
  async fetch(queue: string, max: number, expiresMs: number): Promise<FetchBatch> {
    const consumer = await this.consumer(queue);
    const termReason = await this.connection.supports("term-reason");
    let it: Awaited<ReturnType<Consumer["fetch"]>>;
    try {
      it = await consumer.fetch({ max_messages: max, expires: Math.max(1_000, expiresMs) });
    } catch (err) {
      throw toNaqError(err, `pulling from queue ${queue}`);
    }
    return {
      stop: () => void it.stop(),
      async *[Symbol.asyncIterator]() {
        for await (const m of it) yield new JsDelivery(queue, m, termReason);
      },
    };
  }

  /** Jobs waiting in a queue (not yet delivered), and delivered but unacknowledged. */
  async depth(queue: string): Promise<{ waiting: number; inFlight: number; consumers: number }> {
    const jsm = await this.connection.manager();
    try {
      const ci = await jsm.consumers.info(this.names.jobsStream, this.names.queueConsumer(queue));
      return { waiting: ci.num_pending, inFlight: ci.num_ack_pending, consumers: 1 };
    } catch (err) {
      if (apiErrorCode(err) === ApiCode.ConsumerNotFound || apiErrorCode(err) === ApiCode.StreamNotFound) {
        const waiting = (await this.streams.find(this.names.jobsStream))
          ? await this.streams.countSubject(this.names.jobsStream, this.names.queueSubject(queue))
          : 0;
        return { waiting, inFlight: 0, consumers: 0 };
      }
      throw toNaqError(err, `queue ${queue}`);
    }
  }
}
