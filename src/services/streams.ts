/**
 * StreamService: creates, checks, updates in place, purges and deletes JetStream streams.
 * Never deletes and recreates a stream to apply a change: a field that cannot change in
 * place (retention, storage) is an IncompatibleError naming the field.
 */
import {
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type ConsumerInfo,
  type PurgeOpts,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import { IncompatibleError, NotFoundError } from "../model/errors.js";
import { msToNanos, nanosToMs } from "../model/duration.js";
import type { StreamSpec } from "../model/topology.js";
import { BaseService, type ServiceContext } from "./base.js";
import { ConnectionService } from "./connection.js";
import { apiErrorCode, ApiCode, isNotFound, toNaqError } from "./nats-errors.js";
import type { MsgHdrs } from "@nats-io/transport-node";

export interface FieldChange {
  field: string;
  from: unknown;
  to: unknown;
  /** False when the server cannot change this field without recreating the stream. */
  mutable: boolean;
}

export interface EnsureResult {
  name: string;
  action: "created" | "updated" | "unchanged";
  changes: FieldChange[];
}

export interface StreamSummary {
  name: string;
  subjects: string[];
  retention: string;
  storage: string;
  replicas: number;
  messages: number;
  bytes: number;
  consumers: number;
  firstSeq: number;
  lastSeq: number;
  maxAgeMs: number;
  maxBytes: number;
  created: string;
}

export interface ConsumerSummary {
  name: string;
  filter: string;
  /** Messages not yet delivered to this consumer. */
  pending: number;
  /** Delivered but not yet acknowledged. */
  ackPending: number;
  redelivered: number;
  waiting: number;
  maxAckPending: number;
  ackWaitMs: number;
}

export interface StreamDetails extends StreamSummary {
  config: StreamConfig;
  consumerDetails: ConsumerSummary[];
  cluster?: { leader?: string; replicas: { name: string; current: boolean; lag?: number }[] };
}

export interface StoredMessage {
  subject: string;
  seq: number;
  data: Uint8Array;
  time: Date;
  header: Record<string, string>;
}

function headersOf(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const k of h.keys()) out[k] = h.get(k);
  return out;
}

export interface PurgeOptions {
  subject?: string;
  keep?: number;
}

const RETENTION: Record<StreamSpec["retention"], RetentionPolicy> = {
  limits: RetentionPolicy.Limits,
  workqueue: RetentionPolicy.Workqueue,
  interest: RetentionPolicy.Interest,
};
const STORAGE: Record<StreamSpec["storage"], StorageType> = { file: StorageType.File, memory: StorageType.Memory };

/** The JetStream config naq wants for a spec. */
export function streamConfigOf(spec: StreamSpec): Partial<StreamConfig> & { name: string } {
  return {
    name: spec.name,
    subjects: spec.subjects,
    retention: RETENTION[spec.retention],
    storage: STORAGE[spec.storage],
    num_replicas: spec.replicas,
    max_age: msToNanos(spec.maxAgeMs),
    max_bytes: spec.maxBytes,
    duplicate_window: msToNanos(spec.duplicateWindowMs),
    max_msgs_per_subject: spec.maxMsgsPerSubject ?? -1,
    max_msg_size: spec.maxMsgSize ?? -1,
    discard: spec.discard === "new" ? DiscardPolicy.New : DiscardPolicy.Old,
    allow_rollup_hdrs: spec.allowRollup ?? false,
    deny_delete: spec.denyDelete ?? false,
    allow_direct: spec.allowDirect ?? false,
  };
}

/** Differences between what the server has and what `spec` asks for. */
export function diffStream(have: StreamConfig, spec: StreamSpec): FieldChange[] {
  const want = streamConfigOf(spec);
  const changes: FieldChange[] = [];
  const check = (field: string, from: unknown, to: unknown, mutable = true) => {
    if (JSON.stringify(from) !== JSON.stringify(to)) changes.push({ field, from, to, mutable });
  };
  check("retention", have.retention, want.retention, false);
  check("storage", have.storage, want.storage, false);
  check("subjects", [...(have.subjects ?? [])].sort(), [...(want.subjects ?? [])].sort());
  check("replicas", have.num_replicas, want.num_replicas);
  check("max_age", nanosToMs(have.max_age), spec.maxAgeMs);
  check("max_bytes", have.max_bytes, want.max_bytes);
  check("duplicate_window", nanosToMs(have.duplicate_window), spec.duplicateWindowMs);
  check("max_msgs_per_subject", have.max_msgs_per_subject, want.max_msgs_per_subject);
  check("max_msg_size", have.max_msg_size, want.max_msg_size);
  check("discard", have.discard, want.discard);
  check("allow_rollup_hdrs", have.allow_rollup_hdrs ?? false, want.allow_rollup_hdrs);
  check("deny_delete", have.deny_delete ?? false, want.deny_delete);
  check("allow_direct", have.allow_direct ?? false, want.allow_direct);
  return changes;
}

function summarize(si: StreamInfo): StreamSummary {
  return {
    name: si.config.name,
    subjects: si.config.subjects ?? [],
    retention: si.config.retention,
    storage: si.config.storage,
    replicas: si.config.num_replicas,
    messages: si.state.messages,
    bytes: si.state.bytes,
    consumers: si.state.consumer_count,
    firstSeq: si.state.first_seq,
    lastSeq: si.state.last_seq,
    maxAgeMs: nanosToMs(si.config.max_age),
    maxBytes: si.config.max_bytes,
    created: si.created,
  };
}

function summarizeConsumer(ci: ConsumerInfo): ConsumerSummary {
  return {
    name: ci.name,
    filter: ci.config.filter_subject ?? (ci.config.filter_subjects ?? []).join(","),
    pending: ci.num_pending,
    ackPending: ci.num_ack_pending,
    redelivered: ci.num_redelivered,
    waiting: ci.num_waiting,
    maxAckPending: ci.config.max_ack_pending ?? -1,
    ackWaitMs: nanosToMs(ci.config.ack_wait ?? 0),
  };
}

export class StreamService extends BaseService {
  static readonly deps = [ConnectionService] as const;

  constructor(
    ctx: ServiceContext,
    private readonly connection: ConnectionService,
  ) {
    super(ctx);
  }

  private async jsm() {
    return this.connection.manager();
  }

  /** Raw stream info, or undefined when the stream does not exist. */
  async find(name: string): Promise<StreamInfo | undefined> {
    const jsm = await this.jsm();
    try {
      return await jsm.streams.info(name);
    } catch (err) {
      if (apiErrorCode(err) === ApiCode.StreamNotFound) return undefined;
      throw toNaqError(err, `stream ${name}`);
    }
  }

  /** Differences between the server's stream and the spec; undefined when it does not exist. */
  async drift(spec: StreamSpec): Promise<FieldChange[] | undefined> {
    const si = await this.find(spec.name);
    return si ? diffStream(si.config, spec) : undefined;
  }

  /** Creates the stream, or updates it in place; refuses changes that would need a recreate. */
  async ensure(spec: StreamSpec): Promise<EnsureResult> {
    const jsm = await this.jsm();
    const si = await this.find(spec.name);
    if (!si) {
      try {
        await jsm.streams.add(streamConfigOf(spec));
      } catch (err) {
        throw toNaqError(err, `creating stream ${spec.name}`);
      }
      return { name: spec.name, action: "created", changes: [] };
    }
    const changes = diffStream(si.config, spec);
    if (changes.length === 0) return { name: spec.name, action: "unchanged", changes };
    const fixed = changes.filter((c) => !c.mutable);
    if (fixed.length > 0) {
      const list = fixed.map((c) => `${c.field} is ${String(c.from)}, config wants ${String(c.to)}`).join("; ");
      throw new IncompatibleError(
        `stream ${spec.name} cannot be updated in place: ${list}. naq never deletes a stream to change it; move its messages and delete it yourself (naq stream delete ${spec.name}) if you mean to`,
      );
    }
    try {
      await jsm.streams.update(spec.name, { ...si.config, ...streamConfigOf(spec) });
    } catch (err) {
      throw toNaqError(err, `updating stream ${spec.name}`);
    }
    return { name: spec.name, action: "updated", changes };
  }

  async info(name: string): Promise<StreamDetails> {
    const si = await this.find(name);
    if (!si) throw new NotFoundError(`stream ${name} not found`);
    const jsm = await this.jsm();
    const consumers: ConsumerSummary[] = [];
    try {
      for await (const ci of jsm.consumers.list(name)) consumers.push(summarizeConsumer(ci));
    } catch (err) {
      throw toNaqError(err, `listing consumers of ${name}`);
    }
    return {
      ...summarize(si),
      config: si.config,
      consumerDetails: consumers,
      cluster: si.cluster
        ? {
            leader: si.cluster.leader,
            replicas: (si.cluster.replicas ?? []).map((r) => ({ name: r.name, current: r.current, lag: r.lag })),
          }
        : undefined,
    };
  }

  /** Messages currently stored on `subject` (wildcards allowed) in `stream`. */
  async countSubject(stream: string, subject: string): Promise<number> {
    const jsm = await this.jsm();
    try {
      const si = await jsm.streams.info(stream, { subjects_filter: subject });
      return Object.values(si.state.subjects ?? {}).reduce((a, b) => a + b, 0);
    } catch (err) {
      throw toNaqError(err, `counting ${subject} in ${stream}`);
    }
  }

  /** The newest message on `subject` (wildcards allowed), or undefined when there is none. */
  async lastBySubject(stream: string, subject: string): Promise<StoredMessage | undefined> {
    const jsm = await this.jsm();
    try {
      const m = await jsm.streams.getMessage(stream, { last_by_subj: subject });
      return m ? { subject: m.subject, seq: m.seq, data: m.data, time: m.time, header: headersOf(m.header) } : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw toNaqError(err, `reading ${subject} from ${stream}`);
    }
  }

  /** The message at `seq`, or undefined when it was deleted or never existed. */
  async bySequence(stream: string, seq: number): Promise<StoredMessage | undefined> {
    const jsm = await this.jsm();
    try {
      const m = await jsm.streams.getMessage(stream, { seq });
      return m ? { subject: m.subject, seq: m.seq, data: m.data, time: m.time, header: headersOf(m.header) } : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw toNaqError(err, `reading message ${seq} from ${stream}`);
    }
  }

  async deleteMessage(stream: string, seq: number): Promise<boolean> {
    const jsm = await this.jsm();
    try {
      return await jsm.streams.deleteMessage(stream, seq, false);
    } catch (err) {
      if (isNotFound(err)) return false;
      throw toNaqError(err, `deleting message ${seq} from ${stream}`);
    }
  }

  /** Every stream on the account, or those whose name starts with `prefix`. */
  async list(prefix?: string): Promise<StreamSummary[]> {
    const jsm = await this.jsm();
    const out: StreamSummary[] = [];
    try {
      for await (const si of jsm.streams.list()) {
        if (!prefix || si.config.name.startsWith(prefix)) out.push(summarize(si));
      }
    } catch (err) {
      throw toNaqError(err, "listing streams");
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Removes messages (all, or of one subject, optionally keeping the newest `keep`); returns how many. */
  async purge(name: string, opts: PurgeOptions = {}): Promise<number> {
    const jsm = await this.jsm();
    if (!(await this.find(name))) throw new NotFoundError(`stream ${name} not found`);
    const filter = opts.subject ? { filter: opts.subject } : {};
    const request: PurgeOpts | undefined =
      opts.keep !== undefined ? { ...filter, keep: opts.keep } : opts.subject ? { filter: opts.subject } : undefined;
    try {
      const r = await jsm.streams.purge(name, request);
      return r.purged;
    } catch (err) {
      throw toNaqError(err, `purging stream ${name}`);
    }
  }

  async delete(name: string): Promise<void> {
    const jsm = await this.jsm();
    try {
      await jsm.streams.delete(name);
    } catch (err) {
      throw toNaqError(err, `deleting stream ${name}`);
    }
  }

  /** A quick health view: present, leader known, replicas current. */
  async health(name: string): Promise<{ name: string; exists: boolean; healthy: boolean; problems: string[] }> {
    const si = await this.find(name);
    if (!si) return { name, exists: false, healthy: false, problems: ["missing"] };
    const problems: string[] = [];
    if (si.cluster) {
      if (!si.cluster.leader) problems.push("no leader");
      for (const r of si.cluster.replicas ?? []) if (!r.current) problems.push(`replica ${r.name} is behind`);
    }
    return { name, exists: true, healthy: problems.length === 0, problems };
  }
}
