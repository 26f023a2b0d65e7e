/**
 * ControlService: operator requests that workers watch, in the KV bucket `<ns>_control`
 * (no TTL):
 * - `pause.<queue>`: the queue is paused while the key exists; workers stop fetching from
 *   it (jobs stay in the stream, nothing is lost); `resume` deletes the key.
 * - `stop.<workerId>`: asks one worker to shut down gracefully (optionally with its own
 *   grace period); the worker deletes the key as it stops.
 * Workers learn both through KV watches: no polling, no round trip per job.
 */
import { hostname } from "node:os";
import { NotFoundError, ValidationError } from "../model/errors.js";
import { JOB_VERSION } from "../model/job.js";
import { validateQueueName, validateToken } from "../model/naming.js";
import { versionedDoc } from "../model/records.js";
import { BaseService, type ServiceContext } from "./base.js";
import { KVStoreService } from "./kv.js";

/** A stream of changes; stop() ends it. */
export interface Follow<T> extends AsyncIterable<T> {
  stop(): void;
}

export interface PauseFlag {
  v: typeof JOB_VERSION;
  queue: string;
  /** ISO 8601 time of the pause. */
  at: string;
  reason?: string;
  /** Who paused it: `<host>-<pid>` of the naq process. */
  by?: string;
}

export interface StopRequest {
  v: typeof JOB_VERSION;
  worker: string;
  at: string;
  /** Grace for running jobs; absent: the worker's own. */
  graceMs?: number;
  reason?: string;
  by?: string;
}

export interface PauseChange {
  queue: string;
  paused: boolean;
  flag?: PauseFlag;
}

/** Checks a pause flag read back from the bucket. */
export function checkPauseFlag(value: unknown, where: string): PauseFlag {
  const f = versionedDoc(value, where);
  f.str("queue");
  f.str("at");
  f.optStr("reason");
  f.optStr("by");
  return f.doc as unknown as PauseFlag;
}

/** Checks a stop request read back from the bucket. */
export function checkStopRequest(value: unknown, where: string): StopRequest {
  const f = versionedDoc(value, where);
  f.str("worker");
  f.str("at");
  if (f.doc.graceMs !== undefined && !(f.num("graceMs") >= 0)) f.fail("graceMs", "a number of milliseconds >= 0");
  f.optStr("reason");
  f.optStr("by");
  return f.doc as unknown as StopRequest;
}

/**
 * The pause key exists but its value is not a pause flag (written by hand, corrupted): the
 * queue is paused all the same (the key is what pauses it), and the flag says why it looks odd.
 */
const unreadableFlag = (queue: string, at: Date, err: Error): PauseFlag => ({
  v: JOB_VERSION,
  queue,
  at: at.toISOString(),
  reason: `(the pause flag's value is not readable: ${err.message}; naq queue resume ${queue} removes it)`,
});

const PAUSE = "pause.";
const STOP = "stop.";
const by = (): string => `${hostname()}-${process.pid}`;

export class ControlService extends BaseService {
  static readonly deps = [KVStoreService] as const;

  constructor(
    ctx: ServiceContext,
    private readonly kv: KVStoreService,
  ) {
    super(ctx);
  }

  private get bucket(): string {
    return this.names.buckets.control;
  }

  /** Pauses a queue (idempotent: an existing pause is kept as it was). */
  async pause(queue: string, reason?: string): Promise<{ flag: PauseFlag; already: boolean }> {
    validateQueueName(queue);
    const existing = await this.pauseFlag(queue);
    if (existing) return { flag: existing, already: true };
    const flag: PauseFlag = { v: JOB_VERSION, queue, at: new Date().toISOString(), ...(reason ? { reason } : {}), by: by() };
    await this.kv.putJson(this.bucket, PAUSE + queue, flag);
    return { flag, already: false };
  }

  /** Resumes a queue; returns the pause it ended, or undefined when it was not paused. */
  async resume(queue: string): Promise<PauseFlag | undefined> {
    validateQueueName(queue);
    const existing = await this.pauseFlag(queue);
    if (existing) await this.kv.delete(this.bucket, PAUSE + queue);
    return existing;
  }

  async pauseFlag(queue: string): Promise<PauseFlag | undefined> {
    const key = PAUSE + validateQueueName(queue);
    try {
      return (await this.kv.getJson<PauseFlag>(this.bucket, key, checkPauseFlag))?.value;
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      return unreadableFlag(queue, (await this.kv.get(this.bucket, key))?.created ?? new Date(), err);
    }
  }

  /** Every paused queue, by name. */
  async paused(): Promise<Map<string, PauseFlag>> {
    const keys = await this.kv.keys(this.bucket, `${PAUSE}*`);
    const flags = await Promise.all(
      keys.map(async (k): Promise<[string, PauseFlag | undefined]> => {
        const queue = k.slice(PAUSE.length);
        try {
          return [queue, (await this.kv.getJson<PauseFlag>(this.bucket, k, checkPauseFlag))?.value];
        } catch (err) {
          if (!(err instanceof ValidationError)) throw err;
          return [queue, unreadableFlag(queue, new Date(), err)];
        }
      }),
    );
    const out = new Map<string, PauseFlag>();
    // The key names the queue (the flag's own `queue` field is informational).
    for (const [queue, flag] of flags) if (flag) out.set(queue, flag);
    return out;
  }

  /** Follows pause flags: current ones first, then every change. */
  async watchPauses(): Promise<Follow<PauseChange>> {
    const w = await this.kv.watchJson<PauseFlag>(this.bucket, { key: `${PAUSE}*` }, checkPauseFlag);
    return {
      stop: () => w.stop(),
      async *[Symbol.asyncIterator]() {
        for await (const e of w) {
          const queue = e.key.slice(PAUSE.length);
          if (e.invalid) yield { queue, paused: true, flag: unreadableFlag(queue, new Date(), e.invalid) };
          else yield e.value ? { queue, paused: true, flag: e.value } : { queue, paused: false };
        }
      },
    };
  }

  /** Asks worker `id` to stop gracefully. */
  async requestStop(id: string, opts: { graceMs?: number; reason?: string } = {}): Promise<StopRequest> {
    validateToken(id, "worker id");
    const req: StopRequest = {
      v: JOB_VERSION,
      worker: id,
      at: new Date().toISOString(),
      ...(opts.graceMs !== undefined ? { graceMs: opts.graceMs } : {}),
      ...(opts.reason ? { reason: opts.reason } : {}),
      by: by(),
    };
    await this.kv.putJson(this.bucket, STOP + id, req);
    return req;
  }

  /** Follows stop requests for worker `id`. */
  async watchStop(id: string): Promise<Follow<StopRequest | undefined>> {
    const w = await this.kv.watchJson<StopRequest>(this.bucket, { key: STOP + validateToken(id, "worker id") }, checkStopRequest);
    return {
      stop: () => w.stop(),
      async *[Symbol.asyncIterator]() {
        // A value that is not a stop request is ignored (the worker keeps running).
        for await (const e of w) if (!e.invalid) yield e.value;
      },
    };
  }

  /** Removes a stop request (the worker does this as it stops). */
  async clearStop(id: string): Promise<void> {
    await this.kv.purge(this.bucket, STOP + validateToken(id, "worker id")).catch((err: unknown) => {
      if (!(err instanceof NotFoundError)) throw err;
    });
  }
}
