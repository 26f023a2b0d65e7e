/**
 * AckedPublisher: JetStream publishes whose PubAck is awaited, without nats.js's
 * per-request machinery. Used where a worker writes once per job (the terminal KV record)
 * and by KV puts in general.
 *
 * nats.js v3 makes every `js.publish` a request of its own: a random token, a deferred,
 * a timer, headers even when there are none (HPUB with an empty header block), and a
 * RequestError with a stack trace, built even on success (RequestOne.cancel). On a bare
 * consume + KV put + ack loop at 100 in flight that is ~40% of the client's CPU. Here every
 * publish shares one wildcard reply subscription (`<inbox>.<token>`, tokens are a
 * counter), one timer watches deadlines (all publishes share one timeout, so the oldest is
 * always first in the map), and a plain PUB carries the data when there are no headers.
 *
 * Failures look like nats.js's to `toNaqError` / `isNoStreamForSubject`: a JetStreamApiError
 * for an error PubAck, a NoRespondersError cause when no stream takes the subject, a
 * TimeoutError after the timeout. A disconnect rejects what is pending at once (a reply
 * would be lost with the old connection): the caller sees a ConnectionError and, on the
 * worker, the job is NAKed and comes back (at-least-once; the write is idempotent).
 */
import { createInbox, errors as natsErrors, headers as natsHeaders, type Msg, type NatsConnection, type Status, type Subscription } from "@nats-io/transport-node";
import { JetStreamApiError, type ApiError } from "@nats-io/jetstream";
import { ConnectionError } from "../model/errors.js";

export interface PubAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

export interface AckedPublishOptions {
  /** Nats-Msg-Id: the stream drops a second message with the same id inside its duplicate window. */
  msgId?: string;
}

interface Pending {
  subject: string;
  deadline: number;
  resolve(ack: PubAck): void;
  reject(err: Error): void;
}

const decoder = new TextDecoder();

export class AckedPublisher {
  private sub?: Subscription;
  private prefix = "";
  private counter = 0;
  private readonly pending = new Map<string, Pending>();
  private timer?: NodeJS.Timeout;
  private statuses?: AsyncIterable<Status>;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly timeoutMs: number,
  ) {}

  /** Publishes `data` to `subject` and resolves with the stream's PubAck. */
  publish(subject: string, data: Uint8Array, opts?: AckedPublishOptions): Promise<PubAck> {
    if (this.closed) return Promise.reject(new natsErrors.ClosedConnectionError());
    if (!this.sub) this.start();
    const token = (this.counter++).toString(36);
    return new Promise<PubAck>((resolve, reject) => {
      const p: Pending = { subject, deadline: Date.now() + this.timeoutMs, resolve, reject };
      this.pending.set(token, p);
      try {
        if (opts?.msgId !== undefined) {
          const h = natsHeaders();
          h.set("Nats-Msg-Id", opts.msgId);
          this.nc.publish(subject, data, { reply: this.prefix + token, headers: h });
        } else {
          this.nc.publish(subject, data, { reply: this.prefix + token });
        }
      } catch (err) {
        this.pending.delete(token);
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      this.timer ??= this.arm(this.timeoutMs);
    });
  }

  /** Publishes still waiting for their PubAck. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Stops listening; whatever is still pending is rejected. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.sub && !this.sub.isClosed()) this.sub.unsubscribe();
    (this.statuses as { stop?: () => void } | undefined)?.stop?.();
    this.failAll(() => new natsErrors.ClosedConnectionError());
  }

  private start(): void {
    (this.statuses as { stop?: () => void } | undefined)?.stop?.();
    const inbox = createInbox();
    this.prefix = `${inbox}.`;
    this.sub = this.nc.subscribe(`${inbox}.*`, { callback: (err, m) => (err ? this.onSubError(err) : this.onReply(m)) });
    const statuses = this.nc.status();
    this.statuses = statuses;
    void (async () => {
      for await (const s of statuses) {
        if (s.type === "disconnect") {
          this.failAll(() => new ConnectionError("NATS connection lost while waiting for the server to store a write"));
        } else if (s.type === "error" && s.error instanceof natsErrors.PermissionViolationError) {
          this.onPermissionError(s.error);
        }
      }
    })().catch(() => undefined);
  }

  private onReply(m: Msg): void {
    const token = m.subject.slice(this.prefix.length);
    const p = this.pending.get(token);
    if (!p) return; // timed out before, or a stray reply
    this.pending.delete(token);
    if (m.data.length === 0) {
      // A status without a body: 503 = no responders (no stream takes this subject).
      const code = m.headers?.code ?? 0;
      p.reject(
        code === 503
          ? new natsErrors.NoRespondersError(p.subject)
          : new Error(`unexpected reply to a publish on ${p.subject}: ${code} ${m.headers?.description ?? ""}`.trim()),
      );
      return;
    }
    let ack: { stream?: string; seq?: number; duplicate?: boolean; error?: ApiError };
    try {
      ack = JSON.parse(decoder.decode(m.data)) as typeof ack;
    } catch (err) {
      p.reject(new Error(`invalid PubAck for ${p.subject}`, { cause: err }));
      return;
    }
    if (ack.error) p.reject(new JetStreamApiError(ack.error));
    else if (typeof ack.stream !== "string" || ack.stream === "" || typeof ack.seq !== "number") p.reject(new Error(`invalid PubAck for ${p.subject}`));
    else p.resolve({ stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate === true });
  }

  private onSubError(err: Error): void {
    // The reply subscription itself was refused (permissions): nothing pending can succeed.
    this.failAll(() => err);
    this.sub = undefined;
  }

  private onPermissionError(err: InstanceType<typeof natsErrors.PermissionViolationError>): void {
    if (err.operation !== "publish") return;
    for (const [token, p] of this.pending) {
      if (p.subject === err.subject) {
        this.pending.delete(token);
        p.reject(err);
      }
    }
  }

  private failAll(errorOf: () => Error): void {
    if (this.pending.size === 0) return;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(errorOf());
  }

  private arm(ms: number): NodeJS.Timeout {
    const t = setTimeout(() => this.sweep(), Math.max(1, ms));
    t.unref();
    return t;
  }

  /** Rejects the publishes past their deadline (the oldest come first) and re-arms for the next. */
  private sweep(): void {
    this.timer = undefined;
    const now = Date.now();
    for (const [token, p] of this.pending) {
      if (p.deadline > now) {
        this.timer = this.arm(p.deadline - now);
        return;
      }
      this.pending.delete(token);
      p.reject(new natsErrors.TimeoutError());
    }
  }
}
