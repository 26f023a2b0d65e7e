/**
 * KVStoreService: naq's KV buckets. Handles are opened once per scope; bucket specs
 * (TTL, history, replicas) come from config via the topology. JSON documents carry a
 * version field `v` so readers can refuse what they do not understand.
 */
import { Kvm, KvWatchInclude, type KV, type KvEntry } from "@nats-io/kv";
import { NaqError, ValidationError } from "../model/errors.js";
import { checkVersioned, type DocCheck } from "../model/records.js";
import { topology, bucketStreamSpec, type BucketSpec } from "../model/topology.js";
import { BaseService, type ServiceContext } from "./base.js";
import { ConnectionService } from "./connection.js";
import { StreamService, type EnsureResult } from "./streams.js";
import { toNaqError } from "./nats-errors.js";
import type { AckedPublisher } from "./acked-publish.js";

export interface Entry<T> {
  key: string;
  value: T;
  revision: number;
  created: Date;
}

export interface WatchEvent<T> {
  key: string;
  /** Undefined when the key was deleted or purged, or when its value could not be decoded (see `invalid`). */
  value: T | undefined;
  operation: "PUT" | "DEL" | "PURGE";
  revision: number;
  /** A PUT whose value is not what the key should hold (corrupted, written by something else): why. */
  invalid?: NaqError;
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

/**
 * Parses a stored JSON document and checks it with `check` (ValidationError naming `where`
 * when it is not valid JSON or not the document it should be). Without `check`: parsed only.
 */
export function decodeJson<T>(data: Uint8Array, where: string, check?: DocCheck<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(data));
  } catch (err) {
    throw new ValidationError(`${where}: value is not valid JSON`, where, { cause: err });
  }
  return check ? check(value, where) : (value as T);
}

/** What nats.js accepts as a KV key (and no leading or trailing dot). */
const VALID_KEY = /^[-/=.\w]+$/;

/** A key listing that receives nothing for this long is complete (see keys()). */
const KEYS_IDLE_MS = 1_000;

const live = (e: KvEntry | null): e is KvEntry => e !== null && e.operation === "PUT";

export class KVStoreService extends BaseService {
  static readonly deps = [ConnectionService, StreamService] as const;
  private readonly handles = new Map<string, Promise<KV>>();
  private kvm?: Kvm;
  private publisher?: AckedPublisher;

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

  /** A JSON document, checked with `check` (default: a JSON object with `v: 1`); ValidationError when the value is not one. */
  async getJson<T extends Versioned>(bucket: string, key: string, check: DocCheck<T> = checkVersioned): Promise<Entry<T> | undefined> {
    const e = await this.get(bucket, key);
    return e ? { ...e, value: decodeJson<T>(e.value, `${bucket}/${key}`, check) } : undefined;
  }

  /**
   * Writes a value; returns its revision. A put is a JetStream publish to `$KV.<bucket>.<key>`;
   * it goes through the scope's AckedPublisher (one shared reply subscription, no per-write
   * request object or timer): the worker does one per job.
   */
  async put(bucket: string, key: string, value: Uint8Array | string): Promise<number> {
    await this.bucket(bucket); // naq's buckets are created on first use
    if (key.startsWith(".") || key.endsWith(".") || !VALID_KEY.test(key)) throw new ValidationError(`invalid KV key "${key}"`, "key");
    try {
      const publisher = (this.publisher ??= await this.connection.publisher());
      const ack = await publisher.publish(`$KV.${bucket}.${key}`, typeof value === "string" ? encoder.encode(value) : value);
      return ack.seq;
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
   * Removes keys and their history without leaving delete markers (a purge of each key's
   * subject on the bucket's stream), `window` requests at a time; returns the messages
   * removed. For data naq itself made and wants gone (`naq bench`).
   */
  async removeKeys(bucket: string, keys: Iterable<string>, window = 64): Promise<number> {
    const jsm = await this.connection.manager();
    const stream = `KV_${bucket}`;
    if (!(await this.streams.find(stream))) return 0;
    let removed = 0;
    const inflight = new Set<Promise<void>>();
    for (const key of keys) {
      const p: Promise<void> = jsm.streams.purge(stream, { filter: `$KV.${bucket}.${key}` }).then(
        (r) => void (removed += r.purged),
        (err: unknown) => {
          throw toNaqError(err, `removing ${bucket}/${key}`);
        },
      );
      inflight.add(p);
      void p.then(
        () => inflight.delete(p),
        () => inflight.delete(p),
      );
      if (inflight.size >= window) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    return removed;
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
            let value: T | undefined;
            let invalid: NaqError | undefined;
            if (e.operation === "PUT") {
              // A bad value is reported with its event; it does not end the watch.
              try {
                value = decode(e.value, e.key);
              } catch (err) {
                if (!(err instanceof NaqError)) throw err;
                invalid = err;
              }
            }
            yield { key: e.key, value, operation: e.operation, revision: e.revision, ...(invalid ? { invalid } : {}) };
          }
        } finally {
          it.stop();
        }
      },
    };
  }

  /** Follows JSON documents, checked with `check` (default: `v: 1`); a bad value comes as an event with `invalid`. */
  watchJson<T extends Versioned>(bucket: string, opts: WatchOptions = {}, check: DocCheck<T> = checkVersioned): Promise<Watcher<T>> {
    return this.watch<T>(bucket, opts, (d, key) => decodeJson<T>(d, `${bucket}/${key}`, check));
  }
}
