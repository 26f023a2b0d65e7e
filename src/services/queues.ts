/**
 * QueueService: the consumer side of queues. One durable pull consumer per queue, shared
 * by every worker of that queue (its max_ack_pending is the queue's global concurrency);
 * pulls sized by the caller to its free slots; deliveries wrapped so the worker runtime
 * never sees a NATS type.
 */
import { AckPolicy, DeliverPolicy, ReplayPolicy, type Consumer, type ConsumerConfig, type ConsumerInfo, type MsgRequest } from "@nats-io/jetstream";
import { queueSettings } from "../config/schema.js";
import { msToNanos, nanosToMs } from "../model/duration.js";
import { NotFoundError } from "../model/errors.js";
import { validateQueueName } from "../model/naming.js";
import { BaseService, type ServiceContext } from "./base.js";
import { ConnectionService } from "./connection.js";
import { ControlService, type PauseFlag } from "./control.js";
import { WorkerService, type WorkerInfo } from "./workers.js";
import { apiErrorCode, ApiCode, permissionDenial, toNaqError } from "./nats-errors.js";
import { StreamService } from "./streams.js";
import { PullChannel, type PullListener } from "./pull-channel.js";
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

/** One row of `naq queue list`. */
export interface QueueSummary {
  name: string;
  /** Jobs stored on the queue and not running: not yet taken, or waiting for a retry. */
  waiting: number;
  /** Jobs live workers report running (from heartbeats, up to one heartbeat old). */
  running: number;
  paused: boolean;
  /** Live workers serving the queue. */
  workers: number;
  /** Jobs in the dead-letter stream. */
  failed: number;
}

/** `naq queue info`: the summary plus consumer state and the oldest job not yet taken. */
export interface QueueDetails extends QueueSummary {
  /** Messages on the queue's subject (waiting + running). */
  stored: number;
  /** Not yet delivered to any worker. */
  undelivered: number;
  /** Delivered, not yet acknowledged (running, or waiting for a retry). */
  ackPending: number;
  redelivered: number;
  consumer: { name: string; maxAckPending: number; ackWaitMs: number } | null;
  /** The oldest job no worker has taken yet. */
  oldest: { seq: number; enqueuedAt: string; ageMs: number } | null;
  pause: PauseFlag | null;
  workerIds: string[];
}

export class QueueService extends BaseService {
  static readonly deps = [ConnectionService, StreamService, WorkerService, ControlService] as const;
  private readonly consumers = new Map<string, Promise<Consumer>>();

  constructor(
    ctx: ServiceContext,
    private readonly connection: ConnectionService,
    private readonly streams: StreamService,
    private readonly workers: WorkerService,
    private readonly control: ControlService,
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

  /**
   * A long-lived pull channel on the queue's consumer: one subscription for all of this
   * worker's pulls, deliveries handed to `listener` as they arrive (see pull-channel.ts).
   */
  async channel(queue: string, listener: PullListener): Promise<PullChannel> {
    await this.consumer(queue);
    const [nc, termReason] = await Promise.all([this.connection.connection("pulls"), this.connection.supports("term-reason")]);
    // A denied pull request gets no reply: the channel learns of it from the connection's status.
    const pullSubject = `$JS.API.CONSUMER.MSG.NEXT.${this.names.jobsStream}.${this.names.queueConsumer(queue)}`;
    const channel = new PullChannel(
      nc,
      { queue, stream: this.names.jobsStream, consumer: this.names.queueConsumer(queue), termReason, onClose: () => offDenied() },
      listener,
    );
    // A denied ack is only reported on the connection too, and silently turns every job
    // into one that runs again after ack_wait: said once per channel, with the fix.
    const ackPrefix = `$JS.ACK.${this.names.jobsStream}.${this.names.queueConsumer(queue)}.`;
    let ackDenialSaid = false;
    const offDenied = this.connection.onPermissionDenied(
      (subject) => subject === pullSubject || subject.startsWith(ackPrefix),
      (err) => {
        if (permissionDenial(err)?.subject !== pullSubject) {
          if (ackDenialSaid) return;
          ackDenialSaid = true;
          const e = toNaqError(err, `acknowledging jobs of queue ${queue}`);
          e.message += `; jobs are not acknowledged and run again after ack_wait: allow this user to publish to "$JS.ACK.${this.names.jobsStream}.>"`;
          channel.reportError(e);
          return;
        }
        channel.denied(toNaqError(err, `pulling from queue ${queue}`));
      },
    );
    return channel;
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

  /**
   * Removes a queue from the jobs stream: its durable consumer and every job stored for it.
   * For throwaway queues (`naq bench`); a queue in use by workers would lose its jobs.
   */
  async discard(queue: string): Promise<{ consumer: boolean; jobs: number }> {
    validateQueueName(queue);
    this.consumers.delete(queue);
    const jsm = await this.connection.manager();
    let consumer = false;
    try {
      consumer = await jsm.consumers.delete(this.names.jobsStream, this.names.queueConsumer(queue));
    } catch (err) {
      const code = apiErrorCode(err);
      if (code !== ApiCode.ConsumerNotFound && code !== ApiCode.StreamNotFound) throw toNaqError(err, `deleting the consumer of queue ${queue}`);
    }
    const jobs = (await this.streams.find(this.names.jobsStream)) ? await this.streams.purge(this.names.jobsStream, { subject: this.names.queueSubject(queue) }) : 0;
    return { consumer, jobs };
  }

  /** Message counts per subject matching `filter` (empty when the stream does not exist). */
  private async subjectCounts(stream: string, filter: string): Promise<Record<string, number>> {
    const jsm = await this.connection.manager();
    try {
      return (await jsm.streams.info(stream, { subjects_filter: filter })).state.subjects ?? {};
    } catch (err) {
      if (apiErrorCode(err) === ApiCode.StreamNotFound) return {};
      throw toNaqError(err, `reading ${stream}`);
    }
  }

  /** The queue consumers' states, by queue. */
  private async consumerInfos(): Promise<Map<string, ConsumerInfo>> {
    const jsm = await this.connection.manager();
    const out = new Map<string, ConsumerInfo>();
    try {
      for await (const ci of jsm.consumers.list(this.names.jobsStream)) {
        const queue = this.names.queueFromSubject(ci.config.filter_subject ?? "");
        if (queue && ci.name === this.names.queueConsumer(queue)) out.set(queue, ci);
      }
    } catch (err) {
      if (apiErrorCode(err) === ApiCode.StreamNotFound) return out;
      throw toNaqError(err, "listing queue consumers");
    }
    return out;
  }

  /** Dead-lettered jobs per queue (distinct job ids). */
  private async failedCounts(queue?: string): Promise<Map<string, number>> {
    const subjects = await this.subjectCounts(this.names.deadLetterStream, this.names.deadLetterFilter({ queue }));
    const prefix = `${this.names.namespace}.dlq.`;
    const out = new Map<string, number>();
    for (const subject of Object.keys(subjects)) {
      const q = subject.slice(prefix.length).split(".")[0];
      if (q) out.set(q, (out.get(q) ?? 0) + 1);
    }
    return out;
  }

  private static running(workers: readonly WorkerInfo[], queue: string): number {
    let n = 0;
    for (const w of workers) {
      if (!w.queues.includes(queue)) continue;
      n += w.runningByQueue?.[queue] ?? (w.queues.length === 1 ? w.running.length : 0);
    }
    return n;
  }

  /**
   * Every queue naq knows of: with stored jobs, a consumer, a pause flag, a live worker or
   * dead-lettered jobs. Sorted by name.
   */
  async list(): Promise<QueueSummary[]> {
    const [stored, consumers, paused, workers, failed] = await Promise.all([
      this.subjectCounts(this.names.jobsStream, this.names.allQueuesSubject),
      this.consumerInfos(),
      this.control.paused(),
      this.workers.list(),
      this.failedCounts(),
    ]);
    const storedByQueue = new Map<string, number>();
    for (const [subject, n] of Object.entries(stored)) {
      const q = this.names.queueFromSubject(subject);
      if (q) storedByQueue.set(q, n);
    }
    const names = new Set<string>([...storedByQueue.keys(), ...consumers.keys(), ...paused.keys(), ...failed.keys(), ...workers.flatMap((w) => w.queues)]);
    return [...names].sort().map((name) => {
      const total = storedByQueue.get(name) ?? 0;
      const running = Math.min(total, QueueService.running(workers, name));
      return {
        name,
        waiting: total - running,
        running,
        paused: paused.has(name),
        workers: workers.filter((w) => w.queues.includes(name)).length,
        failed: failed.get(name) ?? 0,
      };
    });
  }

  /** One queue in detail; NotFoundError when naq has no trace of it. */
  async info(queue: string): Promise<QueueDetails> {
    validateQueueName(queue);
    const jsm = await this.connection.manager();
    const subject = this.names.queueSubject(queue);
    const [stored, ci, pause, workers, failed] = await Promise.all([
      this.subjectCounts(this.names.jobsStream, subject).then((c) => c[subject] ?? 0),
      jsm.consumers.info(this.names.jobsStream, this.names.queueConsumer(queue)).catch((err: unknown) => {
        const code = apiErrorCode(err);
        if (code === ApiCode.ConsumerNotFound || code === ApiCode.StreamNotFound) return undefined;
        throw toNaqError(err, `queue ${queue}`);
      }),
      this.control.pauseFlag(queue),
      this.workers.list().then((ws) => ws.filter((w) => w.queues.includes(queue))),
      this.failedCounts(queue).then((m) => m.get(queue) ?? 0),
    ]);
    if (stored === 0 && !ci && !pause && workers.length === 0 && failed === 0) {
      throw new NotFoundError(`queue ${queue} not found: no jobs, no consumer, no workers, no pause flag and no dead letters`);
    }
    // The oldest job not yet delivered: the first message after the consumer's delivered floor.
    let oldest: QueueDetails["oldest"] = null;
    if (stored > 0) {
      try {
        const from = (ci?.delivered.stream_seq ?? 0) + 1;
        const m = await jsm.streams.getMessage(this.names.jobsStream, { seq: from, next_by_subj: subject } as unknown as MsgRequest);
        if (m) oldest = { seq: m.seq, enqueuedAt: m.time.toISOString(), ageMs: Math.max(0, Date.now() - m.time.getTime()) };
      } catch (err) {
        if (apiErrorCode(err) !== ApiCode.NoMessageFound) throw toNaqError(err, `queue ${queue}`);
      }
    }
    const running = Math.min(stored, QueueService.running(workers, queue));
    return {
      name: queue,
      waiting: stored - running,
      running,
      paused: pause !== undefined,
      workers: workers.length,
      failed,
      stored,
      undelivered: ci?.num_pending ?? stored,
      ackPending: ci?.num_ack_pending ?? 0,
      redelivered: ci?.num_redelivered ?? 0,
      consumer: ci
        ? { name: ci.name, maxAckPending: ci.config.max_ack_pending ?? -1, ackWaitMs: nanosToMs(ci.config.ack_wait ?? 0) }
        : null,
      oldest,
      pause: pause ?? null,
      workerIds: workers.map((w) => w.id),
    };
  }
}
