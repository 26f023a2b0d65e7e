/**
 * KVStoreService: naq's KV buckets. Handles are opened once per scope; bucket specs
 * (TTL, history, replicas) come from config via the topology. JSON documents carry a
 * version field `v` so readers can refuse what they do not understand.
 */
import { Kvm, KvWatchInclude, type KV, type KvEntry } from "@nats-io/kv";
import { ValidationError } from "../model/errors.js";
import { topology, bucketStreamSpec, type BucketSpec } from "../model/topology.js";
import { BaseService, type ServiceContext } from "./base.js";
import { ConnectionService } from "./connection.js";
import { StreamService, type EnsureResult } from "./streams.js";
import { toNaqError } from "./nats-errors.js";

export interface Entry<T> {
  key: string;
  value: T;
  revision: number;
  created: Date;
}

export interface WatchEvent<T> {
  key: string;
  /** Undefined when the key was deleted or purged. */
  value: T | undefined;
  operation: "PUT" | "DEL" | "PURGE";
  revision: number;
}

export interface WatchOptions {
  /** Key or wildcard (`a.*`, `a.>`); default every key. */
  key?: string;
  /** Deliver current values first (default), or only later updates. */
  include?: "current" | "updates" | "history";
}

export interface Watcher<T> extends AsyncIterable<WatchEvent<T>> {
  stop(): void;
}

/** A JSON document as naq stores it: always versioned. */
export type Versioned = { v: number };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeJson(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export function decodeJson<T>(data: Uint8Array, where: string): T {
  try {
    return JSON.parse(decoder.decode(data)) as T;
  } catch (err) {
    throw new ValidationError(`${where}: value is not valid JSON`, where, { cause: err });
  }
}

/** A key listing that receives nothing for this long is complete (see keys()). */
const KEYS_IDLE_MS = 1_000;

const live = (e: KvEntry | null): e is KvEntry => e !== null && e.operation === "PUT";

export class KVStoreService extends BaseService {
  static readonly deps = [ConnectionService, StreamService] as const;
  private readonly handles = new Map<string, Promise<KV>>();
  private kvm?: Kvm;

  constructor(
    ctx: ServiceContext,
    private readonly connection: ConnectionService,
    private readonly streams: StreamService,
  ) {
    super(ctx);
  }

  /** naq's bucket specs from config. */
  specs(): BucketSpec[] {
    return topology(this.config, this.names).buckets;
  }

  spec(bucket: string): BucketSpec | undefined {
    return this.specs().find((b) => b.bucket === bucket);
  }

  /** Creates or updates the stream behind a bucket (same drift rules as streams). */
  ensure(spec: BucketSpec): Promise<EnsureResult> {
    this.handles.delete(spec.bucket);
    return this.streams.ensure(bucketStreamSpec(spec));
  }

  /** A handle to `bucket`; naq's own buckets are created on first use if missing. */
  bucket(bucket: string): Promise<KV> {
    let handle = this.handles.get(bucket);
    if (!handle) {
      handle = this.openBucket(bucket);
      this.handles.set(bucket, handle);
      handle.catch(() => this.handles.delete(bucket));
    }
    return handle;
  }

  private async openBucket(bucket: string): Promise<KV> {
    this.kvm ??= new Kvm(await this.connection.jetstream());
    const spec = this.spec(bucket);
    try {
      if (spec && !(await this.streams.find(bucketStreamSpec(spec).name))) await this.ensure(spec);
      return await this.kvm.open(bucket);
    } catch (err) {
      throw toNaqError(err, `KV bucket ${bucket}`);
    }
  }

  async get(bucket: string, key: string): Promise<Entry<Uint8Array> | undefined> {
    const kv = await this.bucket(bucket);
    try {
      const e = await kv.get(key);
      return live(e) ? { key, value: e.value, revision: e.revision, created: e.created } : undefined;
    } catch (err) {
      throw toNaqError(err, `reading ${bucket}/${key}`);
    }
  }

  async getJson<T extends Versioned>(bucket: string, key: string): Promise<Entry<T> | undefined> {
    const e = await this.get(bucket, key);
    return e ? { ...e, value: decodeJson<T>(e.value, `${bucket}/${key}`) } : undefined;
  }

  /** Writes a value; returns its revision. */
  async put(bucket: string, key: string, value: Uint8Array | string): Promise<number> {
    const kv = await this.bucket(bucket);
    try {
      return await kv.put(key, value);
    } catch (err) {
      throw toNaqError(err, `writing ${bucket}/${key}`);
    }
  }

  putJson<T extends Versioned>(bucket: string, key: string, doc: T): Promise<number> {
    return this.put(bucket, key, encodeJson(doc));
  }

  /** Insert-only: ConflictError when the key already holds a value. */
  async create(bucket: string, key: string, value: Uint8Array | string): Promise<number> {
    const kv = await this.bucket(bucket);
    try {
      return await kv.create(key, value);
    } catch (err) {
      throw toNaqError(err, `creating ${bucket}/${key}`);
    }
  }

  createJson<T extends Versioned>(bucket: string, key: string, doc: T): Promise<number> {
    return this.create(bucket, key, encodeJson(doc));
  }

  /** Compare-and-set: writes only if the key is still at `revision`; ConflictError otherwise. */
  async update(bucket: string, key: string, value: Uint8Array | string, revision: number): Promise<number> {
    const kv = await this.bucket(bucket);
    try {
      return await kv.update(key, value, revision);
    } catch (err) {
      throw toNaqError(err, `updating ${bucket}/${key}`);
    }
  }

  updateJson<T extends Versioned>(bucket: string, key: string, doc: T, revision: number): Promise<number> {
    return this.update(bucket, key, encodeJson(doc), revision);
  }

  /** Deletes a key (optionally only if still at `revision`). */
  async delete(bucket: string, key: string, revision?: number): Promise<void> {
    const kv = await this.bucket(bucket);
    try {
      await kv.delete(key, revision !== undefined ? { previousSeq: revision } : undefined);
    } catch (err) {
      throw toNaqError(err, `deleting ${bucket}/${key}`);
    }
  }

  /** Removes a key and its history. */
  async purge(bucket: string, key: string): Promise<void> {
    const kv = await this.bucket(bucket);
    try {
      await kv.purge(key);
    } catch (err) {
      throw toNaqError(err, `purging ${bucket}/${key}`);
    }
  }

  /**
   * Keys matching `filter` (subject-style wildcards), at most `limit`, each once, in the
   * order first listed. (The listing is a consumer over the bucket: a key rewritten while
   * it runs, e.g. a heartbeat, is delivered again.)
   */
  async keys(bucket: string, filter = ">", limit = Number.POSITIVE_INFINITY): Promise<string[]> {
    const kv = await this.bucket(bucket);
    const seen = new Set<string>();
    try {
      const it = await kv.keys(filter);
      const iterator = it[Symbol.asyncIterator]();
      // nats.js ends the listing on the message that leaves nothing pending. When the last
      // entries vanish before delivery (TTL expiry, a key rewritten or deleted meanwhile),
      // that message never comes: an idle pause then means the listing is complete.
      for (;;) {
        let timer: NodeJS.Timeout | undefined;
        const idle = new Promise<"idle">((resolve) => (timer = setTimeout(() => resolve("idle"), KEYS_IDLE_MS)));
        const next = await Promise.race([iterator.next(), idle]).finally(() => clearTimeout(timer));
        if (next === "idle" || next.done) break;
        seen.add(next.value);
        if (seen.size >= limit) break;
      }
      it.stop();
    } catch (err) {
      throw toNaqError(err, `listing keys of ${bucket}`);
    }
    return [...seen];
  }

  /** Follows changes to matching keys. Stop it (or break the loop) when done. */
  async watch<T = Uint8Array>(
    bucket: string,
    opts: WatchOptions = {},
    decode: (data: Uint8Array, key: string) => T = (d) => d as unknown as T,
  ): Promise<Watcher<T>> {
    const kv = await this.bucket(bucket);
    const include =
      opts.include === "updates"
        ? KvWatchInclude.UpdatesOnly
        : opts.include === "history"
          ? KvWatchInclude.AllHistory
          : KvWatchInclude.LastValue;
    let it: Awaited<ReturnType<KV["watch"]>>;
    try {
      it = await kv.watch({ key: opts.key ?? ">", include });
    } catch (err) {
      throw toNaqError(err, `watching ${bucket}`);
    }
    return {
      stop: () => it.stop(),
      async *[Symbol.asyncIterator]() {
        try {
          for await (const e of it) {
            yield {
              key: e.key,
              value: e.operation === "PUT" ? decode(e.value, e.key) : undefined,
              operation: e.operation,
              revision: e.revision,
            };
          }
        } finally {
          it.stop();
        }
      },
    };
  }

  watchJson<T extends Versioned>(bucket: string, opts: WatchOptions = {}): Promise<Watcher<T>> {
    return this.watch<T>(bucket, opts, (d, key) => decodeJson<T>(d, `${bucket}/${key}`));
  }
}
