/**
 * EventService, publish side: one event per job transition onto the events stream.
 *
 * Events never slow the job path: `emit` only buffers; a flush on the next macrotask
 * publishes the batch with core NATS publishes (the stream captures them; no per-event
 * round trip), and `flush()`/cleanup waits until the server has them, so nothing buffered
 * is lost on a clean shutdown. The terminal record in KV, not the event, is the truth a
 * job's status is read from; events are the audit trail.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { EVENT_VERSION, type EventType, type NaqEvent } from "../model/events.js";
import { BaseService, type ServiceContext } from "./base.js";
import { ConnectionService } from "./connection.js";

export type EventInput = Omit<NaqEvent, "v" | "at"> & { at?: string };

const encoder = new TextEncoder();
const MAX_BUFFER = 10_000;

export class EventService extends BaseService {
  static readonly deps = [ConnectionService] as const;
  private nc?: NatsConnection;
  private buffer: NaqEvent[] = [];
  private scheduled = false;
  private dropped = 0;

  constructor(
    ctx: ServiceContext,
    private readonly connection: ConnectionService,
  ) {
    super(ctx);
  }

  protected override async onInitialize(): Promise<void> {
    this.nc = await this.connection.connection();
  }

  protected override async onCleanup(): Promise<void> {
    await this.flush();
  }

  /** Queues an event for publishing; returns at once. */
  emit(input: EventInput): void {
    const event: NaqEvent = { v: EVENT_VERSION, at: new Date().toISOString(), ...input } as NaqEvent;
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
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i] as NaqEvent;
      try {
        nc.publish(this.subjectOf(e), encoder.encode(JSON.stringify(e)));
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

  /** Publishes everything buffered and waits until the server has received it. */
  async flush(): Promise<void> {
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
}
