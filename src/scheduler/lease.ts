/**
 * LeaderLease: one scheduler process leads; the others wait to take over.
 *
 *   follower ──create(leader) ok──> leader ──update(leader, rev) ok──> leader (renewed)
 *      ^  └─ exists: stay follower        │
 *      └──────── conflict, or no renewal before the lease ran out ───┘   (lost)
 *
 * The lease is the key `leader` in the `<ns>_leader` bucket, whose max age is the TTL:
 * taken with an insert-only create, renewed with compare-and-set on its revision, given
 * up with a delete on that revision. A leader counts its lease from the moment it sent
 * the write that took or renewed it (the server keeps the key at least TTL from when it
 * received that write), minus a safety margin; past that, `check()` throws and nothing
 * more is fired, even if the process was paused and has not noticed yet.
 */
import { ConflictError, NaqError } from "../model/errors.js";
import type { LeaseDoc } from "../model/schedule.js";

export interface LeaseIO {
  doc(id: string, since: number, ttlMs: number, now: number): LeaseDoc;
  acquire(doc: LeaseDoc): Promise<number | undefined>;
  renew(doc: LeaseDoc, revision: number): Promise<number>;
  release(revision: number): Promise<void>;
}

export class LeaseLostError extends NaqError {
  override name = "LeaseLostError";
}

export type LeaseStep = "acquired" | "renewed" | "lost" | "follower";

export class LeaderLease {
  private leading = false;
  private revision = 0;
  private since = 0;
  private validUntil = 0;
  private readonly marginMs: number;

  constructor(
    private readonly io: LeaseIO,
    readonly id: string,
    readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.marginMs = Math.max(50, Math.floor(ttlMs * 0.05));
  }

  get isLeader(): boolean {
    return this.leading && this.now() < this.validUntil;
  }

  /** When this process became leader (ms), if it leads. */
  get leaderSince(): number | undefined {
    return this.leading ? this.since : undefined;
  }

  /** Throws LeaseLostError unless the lease is held and has not run out. */
  check(): void {
    if (!this.isLeader) throw new LeaseLostError(`scheduler ${this.id} does not hold the leader lease (any more)`);
  }

  /** One turn of the lease loop: take the lease, or renew it. */
  async step(): Promise<LeaseStep> {
    const sentAt = this.now();
    if (!this.leading) {
      const rev = await this.io.acquire(this.io.doc(this.id, sentAt, this.ttlMs, sentAt));
      if (rev === undefined) return "follower";
      this.leading = true;
      this.revision = rev;
      this.since = sentAt;
      this.validUntil = sentAt + this.ttlMs - this.marginMs;
      return "acquired";
    }
    try {
      this.revision = await this.io.renew(this.io.doc(this.id, this.since, this.ttlMs, sentAt), this.revision);
      this.validUntil = sentAt + this.ttlMs - this.marginMs;
      return "renewed";
    } catch (err) {
      if (err instanceof ConflictError || this.now() >= this.validUntil) {
        this.leading = false;
        return "lost";
      }
      throw err; // a transient failure: the lease still runs until validUntil
    }
  }

  /** Gives the lease up at once (a follower takes over without waiting for the TTL). */
  async release(): Promise<void> {
    if (!this.leading) return;
    this.leading = false;
    await this.io.release(this.revision);
  }

  /** Stops leading without telling anyone (for tests of a leader that dies). */
  abandon(): void {
    this.leading = false;
  }
}
