/**
 * LeaseStore: the storage of the scheduler leader lease, the key `leader` in the
 * `<ns>_leader` bucket, whose max age is the lease TTL (the protocol is in
 * src/scheduler/lease.ts). A plain helper of SchedulerService.
 */
import { hostname } from "node:os";
import { ConflictError } from "../model/errors.js";
import { LEASE_KEY, SCHEDULE_VERSION, type LeaseDoc } from "../model/schedule.js";
import { checkLeaseDoc } from "../model/records.js";
import { kvStreamName } from "../model/topology.js";
import type { ServiceContext } from "./base.js";
import type { KVStoreService } from "./kv.js";
import type { StreamService } from "./streams.js";

const iso = (ms: number): string => new Date(ms).toISOString();

export class LeaseStore {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly streams: StreamService,
    private readonly kv: KVStoreService,
  ) {}

  private get bucket(): string {
    return this.ctx.names.buckets.leader;
  }

  /** The lease TTL the server enforces (the leader bucket's max age), else the configured one. */
  async ttlMs(): Promise<number> {
    await this.kv.bucket(this.bucket);
    const si = await this.streams.find(kvStreamName(this.bucket));
    const maxAge = si ? Math.round(si.config.max_age / 1_000_000) : 0;
    return maxAge > 0 ? maxAge : this.ctx.config.kv.leaderTtl;
  }

  doc(id: string, since: number, ttlMs: number, now = Date.now()): LeaseDoc {
    return { v: SCHEDULE_VERSION, id, host: hostname(), pid: process.pid, since: iso(since), renewedAt: iso(now), expiresAt: iso(now + ttlMs) };
  }

  /** Takes the lease if nobody holds it (insert-only create): its revision, or undefined when held. */
  async acquire(doc: LeaseDoc): Promise<number | undefined> {
    try {
      return await this.kv.createJson(this.bucket, LEASE_KEY, doc);
    } catch (err) {
      if (err instanceof ConflictError) return undefined;
      throw err;
    }
  }

  /** Renews a held lease (compare-and-set on its revision); ConflictError when it was lost. */
  async renew(doc: LeaseDoc, revision: number): Promise<number> {
    return this.kv.updateJson(this.bucket, LEASE_KEY, doc, revision);
  }

  /** Gives the lease up at once, if it is still ours. */
  async release(revision: number): Promise<void> {
    try {
      await this.kv.delete(this.bucket, LEASE_KEY, revision);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
  }

  /** The current holder, if any. */
  async holder(): Promise<LeaseDoc | undefined> {
    return (await this.kv.getJson<LeaseDoc>(this.bucket, LEASE_KEY, checkLeaseDoc))?.value;
  }
}
