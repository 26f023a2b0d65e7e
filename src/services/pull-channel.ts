/**
 * PullChannel: one queue's pull requests for one worker, over one long-lived subscription.
 *
 * A worker asks for exactly as many jobs as it has free slots (so no delivered job waits in
 * a client buffer while its ack_wait runs out). nats.js's `fetch()` does that, but every
 * fetch is a new inbox subscription (SUB + pull + UNSUB), a status listener, timers and an
 * async iterator; at one slot that is paid per job. Here a pull request is one PUB to
 * `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>` with its own reply token
 * (`<inbox>.<token>`) on a wildcard subscription that lives as long as the worker, and
 * deliveries are handed to a callback as they arrive.
 *
 * Accounting. `outstanding` = jobs asked for and neither delivered nor given back. The
 * server delivers a job with the message's own subject (not the token), so deliveries are
 * counted, not matched; a request that ends short says so on its own token: 408 Request
 * Timeout (or a 409) with `Nats-Pending-Messages: <k>`, the jobs it will not deliver.
 * A request refused outright (409 without that header: max waiting, max batch...) gives
 * back its whole batch. A fully served request sends nothing, which is why only the total
 * is exact: when it reaches 0 every request is over. Requests lost with a connection are
 * given back on `disconnect`; a last resort gives back whatever is still outstanding once
 * every request is past its expiry by a grace period.
 *
 * Cancelling (pause, stop): the subscription is drained (UNSUB, then a PING round trip, so
 * every job the server sent before the UNSUB still arrives and is handed over); the server
 * drops requests nobody listens to. Later pulls use a fresh inbox.
 */
import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Status, type Subscription } from "@nats-io/transport-node";
import { NotFoundError, NaqError } from "../model/errors.js";
import { toNaqError } from "./nats-errors.js";
import type { Delivery } from "./queues.js";

export interface PullListener {
  /** A job arrived. `expected`: a pull asked for it (false only when a pull given up on still delivers). */
  delivery(d: Delivery, expected: boolean): void;
  /** `n` jobs asked for will not come (a pull expired, was cancelled or lost); `empty`: it was a pull that delivered nothing. */
  returned(n: number, empty: boolean): void;
  /** Pulling failed (refused, the consumer is gone, a permission is missing), or acking was denied; `n` jobs asked for will not come. */
  error(err: Error, n: number): void;
}

export interface PullChannelOptions {
  queue: string;
  stream: string;
  consumer: string;
  /** The server honours `+TERM <reason>` (2.10.4+); older ones would redeliver such a term. */
  termReason: boolean;
  /** Called once the channel is closed. */
  onClose?: () => void;
}

/**
 * After the last request's expiry, how long its 408 may take before its jobs count as lost.
 * Long: on a starved machine a 408 can be seconds late, and a request given up on too early
 * may still deliver (the worker then runs such a job if it has a free slot, else NAKs it).
 */
const LOST_GRACE_MS = 10_000;
/** A drain (UNSUB + PING round trip) that takes longer than this is cut short (the connection is down). */
const DRAIN_LIMIT_MS = 5_000;

const encoder = new TextEncoder();
const ACK = encoder.encode("+ACK");
const NAK = encoder.encode("-NAK");
const WPI = encoder.encode("+WPI");
const TERM = encoder.encode("+TERM");

class ChannelDelivery implements Delivery {
  private done = false;
  private seqNo = 0;
  private count = 0;

  constructor(
    readonly queue: string,
    private readonly m: Msg,
    private readonly termReason: boolean,
  ) {}

  get data(): Uint8Array {
    return this.m.data;
  }
  get subject(): string {
    return this.m.subject;
  }
  get seq(): number {
    if (this.seqNo === 0) this.parse();
    return this.seqNo;
  }
  get deliveryCount(): number {
    if (this.count === 0) this.parse();
    return this.count;
  }

  /** `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>`, or with `<domain>.<account hash>.` after `$JS.ACK.` and a token at the end. */
  private parse(): void {
    const t = (this.m.reply ?? "").split(".");
    const at = t.length === 9 ? 4 : 6;
    if (t.length < 9 || t[0] !== "$JS" || t[1] !== "ACK") throw new NaqError(`not a JetStream delivery (reply subject "${this.m.reply ?? ""}")`);
    this.count = Number(t[at]);
    this.seqNo = Number(t[at + 1]);
  }

  ack(): void {
    this.respond(ACK, true);
  }
  nak(delayMs?: number): void {
    this.respond(delayMs && delayMs > 0 ? encoder.encode(`-NAK {"delay":${Math.round(delayMs) * 1_000_000}}`) : NAK, true);
  }
  term(reason?: string): void {
    // nats-server < 2.10.4 ignores "+TERM <reason>" entirely: the job would come back after ack_wait.
    this.respond(this.termReason && reason ? encoder.encode(`+TERM ${reason}`) : TERM, true);
  }
  working(): void {
    this.respond(WPI, false);
  }

  private respond(payload: Uint8Array, final: boolean): void {
    if (this.done) return;
    if (final) this.done = true;
    this.m.respond(payload);
  }
}

/** One subscription and the requests sent on it. */
interface Generation {
  sub: Subscription;
  prefix: string;
  /** Open requests by token: batch size and expiry (for refusals without a count, and the lost-request sweep). */
  reqs: Map<string, { n: number; deadline: number }>;
  outstanding: number;
  lastDeadline: number;
  retired: boolean;
  /** Settles when a retired subscription has delivered all it will and its rest was given back. */
  done?: Promise<void>;
}

export class PullChannel {
  private current?: Generation;
  private readonly retiring = new Set<Generation>();
  /** Asked for while disconnected: sent as one pull on reconnect. */
  private held = 0;
  private connected = true;
  private closed = false;
  private counter = 0;
  private expiresMs = 2_000;
  private sweepTimer?: NodeJS.Timeout;
  private readonly statuses: AsyncIterable<Status>;
  private readonly nextSubject: string;

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: PullChannelOptions,
    private readonly listener: PullListener,
  ) {
    this.nextSubject = `$JS.API.CONSUMER.MSG.NEXT.${opts.stream}.${opts.consumer}`;
    this.statuses = nc.status();
    void this.watchStatus();
  }

  /** Jobs asked for and not yet delivered or given back. */
  get outstanding(): number {
    let n = this.held;
    if (this.current) n += this.current.outstanding;
    for (const g of this.retiring) n += g.outstanding;
    return n;
  }

  /** Pull requests that may still be open (at most one per outstanding job). */
  get openPulls(): number {
    let n = this.held > 0 ? 1 : 0;
    if (this.current) n += Math.min(this.current.reqs.size, this.current.outstanding);
    for (const g of this.retiring) n += Math.min(g.reqs.size, g.outstanding);
    return n;
  }

  /** Asks for up to `n` jobs, waiting up to `expiresMs` for them. Throws if the request cannot be sent. */
  pull(n: number, expiresMs: number): void {
    if (this.closed) throw new NaqError(`pulling from queue ${this.opts.queue}: the worker is closing`);
    if (n <= 0) return;
    this.expiresMs = expiresMs;
    if (!this.connected) {
      this.held += n;
      return;
    }
    this.send(n, expiresMs);
  }

  private send(n: number, expiresMs: number): void {
    const g = (this.current ??= this.open());
    const token = (this.counter++).toString(36);
    const deadline = Date.now() + expiresMs;
    const body = encoder.encode(`{"batch":${n},"expires":${Math.round(expiresMs) * 1_000_000}}`);
    this.nc.publish(this.nextSubject, body, { reply: g.prefix + token }); // throws when the connection is closed
    g.reqs.set(token, { n, deadline });
    g.outstanding += n;
    g.lastDeadline = Math.max(g.lastDeadline, deadline);
    this.armSweep(deadline + LOST_GRACE_MS);
  }

  private open(): Generation {
    const inbox = createInbox();
    const g: Generation = { sub: undefined as unknown as Subscription, prefix: `${inbox}.`, reqs: new Map(), outstanding: 0, lastDeadline: 0, retired: false };
    g.sub = this.nc.subscribe(`${inbox}.*`, {
      callback: (err, m) => {
        if (err) this.onSubscriptionError(g, err);
        else if (m.reply) this.onDelivery(g, m);
        else this.onStatus(g, m);
      },
    });
    return g;
  }

  private onDelivery(g: Generation, m: Msg): void {
    const expected = g.outstanding > 0;
    if (expected) {
      g.outstanding--;
      // Nothing outstanding: every request of this subscription has been served in full.
      if (g.outstanding === 0) g.reqs.clear();
    }
    this.listener.delivery(new ChannelDelivery(this.opts.queue, m, this.opts.termReason), expected);
  }

  private onStatus(g: Generation, m: Msg): void {
    const h = m.headers;
    const code = h?.code ?? 0;
    if (code === 100) return; // idle heartbeat / flow control: not asked for
    const req = g.reqs.get(m.subject.slice(g.prefix.length));
    if (!req) return; // a request already given up on
    g.reqs.delete(m.subject.slice(g.prefix.length));
    const left = pendingOf(h);
    const k = Math.min(g.outstanding, left ?? req.n);
    g.outstanding -= k;
    if (g.outstanding === 0) g.reqs.clear();
    const what = `pulling from queue ${this.opts.queue}`;
    const description = h?.description || "no description";
    if (code === 404 || code === 408 || (code === 409 && /server shutdown|leadership change/i.test(description))) {
      // No messages / the request expired: normal. Shutdown, leadership change: the requests
      // are gone with that server; the next pull (after reconnecting) goes on.
      if (k > 0) this.listener.returned(k, k === req.n);
    } else if (code === 503) {
      this.listener.error(new NotFoundError(`${what}: no consumer answers (the queue's consumer or the jobs stream was deleted?)`), k);
    } else {
      this.listener.error(new NaqError(`${what}: the server refused a pull (${code} ${description})`), k);
    }
  }

  private onSubscriptionError(g: Generation, err: Error): void {
    // The inbox subscription was refused (permissions): nothing it asked for will come.
    this.listener.error(toNaqError(err, `pulling from queue ${this.opts.queue}`), this.takeAll(g));
  }

  /**
   * Ends the current subscription's requests: drained (when connected) so that what the
   * server already sent still arrives; what never came is given back when the drain ends.
   */
  private retire(g: Generation, drain: boolean): Promise<void> {
    if (g.done) return g.done;
    g.retired = true;
    if (this.current === g) this.current = undefined;
    this.retiring.add(g);
    const finish = (): void => {
      this.retiring.delete(g);
      const k = g.outstanding;
      g.outstanding = 0;
      g.reqs.clear();
      if (k > 0) this.listener.returned(k, false);
    };
    const cut = (): void => {
      if (!g.sub.isClosed()) g.sub.unsubscribe();
      finish();
    };
    if (!drain || g.sub.isClosed()) {
      cut();
      g.done = Promise.resolve();
      return g.done;
    }
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, DRAIN_LIMIT_MS)));
    g.done = Promise.race([g.sub.drain().catch(() => undefined), limit]).then(() => {
      clearTimeout(timer);
      cut();
    });
    return g.done;
  }

  /** The server refused a pull request (permissions): it gets no reply, so give back what this subscription asked for. */
  denied(err: Error): void {
    this.listener.error(err, this.current ? this.takeAll(this.current) : 0);
  }

  /** Something the worker must hear that is not the pulls' own failure (a denied ack): no jobs are given back. */
  reportError(err: Error): void {
    this.listener.error(err, 0);
  }

  /** Retires `g` at once (no drain) and returns how many jobs it still had asked for, without reporting them. */
  private takeAll(g: Generation): number {
    const k = g.outstanding;
    g.outstanding = 0;
    g.reqs.clear();
    void this.retire(g, false);
    return k;
  }

  /** Cancels every open pull (pause); jobs already on the way are still handed over. */
  stop(): void {
    if (this.current) void this.retire(this.current, this.connected);
    if (this.held > 0) {
      const k = this.held;
      this.held = 0;
      this.listener.returned(k, false);
    }
  }

  /** Cancels every open pull and stops listening; resolves when nothing more can arrive. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    if (this.current) void this.retire(this.current, this.connected && !this.nc.isClosed());
    await Promise.all([...this.retiring].map((g) => g.done));
    if (this.held > 0) {
      const k = this.held;
      this.held = 0;
      this.listener.returned(k, false);
    }
    (this.statuses as { stop?: () => void }).stop?.();
    this.opts.onClose?.();
  }

  private async watchStatus(): Promise<void> {
    try {
      for await (const s of this.statuses) {
        if (this.closed) break;
        if (s.type === "disconnect") {
          this.connected = false;
          // Requests die with the connection; a fresh inbox after reconnect ignores any late delivery.
          if (this.current) void this.retire(this.current, false);
        } else if (s.type === "reconnect") {
          this.connected = true;
          if (this.held > 0) {
            const k = this.held;
            this.held = 0;
            try {
              this.send(k, this.expiresMs);
            } catch (err) {
              this.listener.error(toNaqError(err, `pulling from queue ${this.opts.queue}`), k);
            }
          }
        }
      }
    } catch {
      // the status iterator ends with the connection
    }
  }

  private armSweep(at: number): void {
    if (this.sweepTimer) return;
    this.sweepTimer = setTimeout(() => this.sweep(), Math.max(1, at - Date.now()));
    this.sweepTimer.unref();
  }

  /** Last resort: a request long past its expiry with jobs still counted was lost; give them back. */
  private sweep(): void {
    this.sweepTimer = undefined;
    const g = this.current;
    if (!g || g.outstanding === 0) return;
    const due = g.lastDeadline + LOST_GRACE_MS;
    if (due > Date.now()) {
      this.armSweep(due);
      return;
    }
    const k = g.outstanding;
    g.outstanding = 0;
    g.reqs.clear();
    this.listener.returned(k, false);
  }
}

/** `Nats-Pending-Messages` of a pull status: the jobs that request will not deliver. */
function pendingOf(h: MsgHdrs | undefined): number | undefined {
  const v = h?.get("Nats-Pending-Messages");
  if (!v) return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}
