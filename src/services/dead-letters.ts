/**
 * DeadLetters: the dead-letter side of JobService. A job that ran out of attempts (or
 * could not be decoded) is stored in the dead-letter stream as `<ns>.dlq.<queue>.<id>`;
 * from there it is listed, read, and retried (re-enqueued as first sent, with fresh
 * attempts). A plain helper of JobService, over the same scope's services.
 */
import { coerceError, NotFoundError, ValidationError } from "../model/errors.js";
import { validateEnvelope, validateJobId, type JOB_VERSION, type JobEnvelope, type JobError } from "../model/job.js";
import { versionedDoc } from "../model/records.js";
import { boundedError, fitDeadLetter, HEADER_ROOM } from "../model/limits.js";
import type { Names } from "../model/naming.js";
import type { ConnectionService } from "./connection.js";
import type { EnqueueResult } from "./jobs.js";
import { decodeJson } from "./kv.js";
import { isNoStreamForSubject, toNaqError } from "./nats-errors.js";
import { readStream } from "./stream-reader.js";
import type { StreamService } from "./streams.js";

/** A dead-letter entry (`<ns>.dlq.<queue>.<id>`): the original job, why it ended there, and the last error. */
export interface DeadLetter {
  v: typeof JOB_VERSION;
  id: string;
  queue: string;
  task?: string;
  reason: string;
  error?: JobError;
  attempts: number;
  failedAt: string;
  worker?: string;
  /** The original job; absent when the message could not be decoded. */
  job?: JobEnvelope;
  /** The original bytes, base64, when the message could not be decoded. */
  raw?: string;
  /**
   * Set when the entry had to be cut to fit the server's max_payload: the error (and
   * reason) are shortened, and if that was not enough `job` is left out and `raw` holds
   * only the first bytes of the message. `reason` says what was cut.
   */
  truncated?: boolean;
  /** With `truncated`: the size of the original message in bytes. */
  size?: number;
}

/** Checks a stored dead-letter entry (anyone may publish on `<ns>.dlq.>`): a retried `job` must be a valid envelope. */
export function checkDeadLetter(value: unknown, where: string): DeadLetter {
  const f = versionedDoc(value, where);
  f.str("id");
  f.str("queue");
  f.optStr("task");
  f.str("reason");
  f.optJobError("error");
  f.num("attempts");
  f.str("failedAt");
  f.optStr("worker");
  f.optStr("raw");
  if (f.doc.job !== undefined) {
    try {
      validateEnvelope(f.doc.job);
    } catch (err) {
      throw new ValidationError(`${where}: not a valid document: ${(err as Error).message}`, "job", { cause: err });
    }
  }
  return f.doc as unknown as DeadLetter;
}

/** How one job of `retry --all` went. */
export type RetryOutcome = { id: string; queue: string; ok: true; result: EnqueueResult } | { id: string; queue: string; ok: false; error: Error };

/** What the dead-letter side uses of JobService. */
export interface DeadLetterHost {
  /** Publishes a complete envelope with this Msg-Id. */
  publish(env: JobEnvelope, msgId: string): Promise<EnqueueResult>;
  /** Creates naq's streams (first use on a fresh server). */
  ensureStreams(): Promise<void>;
  /** Removes a job's terminal record and its bookkeeping, ignoring failures. */
  forgetRecord(id: string): Promise<void>;
}

export class DeadLetters {
  constructor(
    private readonly names: Names,
    private readonly connection: ConnectionService,
    private readonly streams: StreamService,
    private readonly host: DeadLetterHost,
  ) {}

  /**
   * Stores a job in the dead-letter stream (awaited: it must not be lost). `msgId` makes a
   * redelivered attempt's second dead-lettering a no-op.
   */
  async write(entry: DeadLetter, msgId?: string): Promise<void> {
    const js = await this.connection.jetstream();
    // An entry that cannot fit max_payload (a job near the limit plus its error, a poison
    // message in base64) is cut down to fit and marked `truncated`: a publish that can never
    // succeed would otherwise send the worker round the same message for ever.
    const limit = (await this.connection.server()).maxPayload - HEADER_ROOM;
    const fitted = fitDeadLetter(entry.error ? { ...entry, error: boundedError(entry.error) } : entry, limit);
    const send = () =>
      js.publish(this.names.deadLetterSubject(entry.queue, entry.id), new TextEncoder().encode(JSON.stringify(fitted)), msgId ? { msgID: msgId } : undefined);
    try {
      try {
        await send();
      } catch (err) {
        // A worker may have started on a fresh server (it creates only the jobs stream).
        if (!isNoStreamForSubject(err)) throw err;
        await this.host.ensureStreams();
        await send();
      }
    } catch (err) {
      throw toNaqError(err, `dead-lettering job ${entry.id}`);
    }
  }

  /** The dead-letter entry of a job, if any. */
  async get(id: string, queue?: string): Promise<(DeadLetter & { seq: number }) | undefined> {
    validateJobId(id);
    const m = await this.streams.lastBySubject(this.names.deadLetterStream, this.names.deadLetterFilter({ queue, jobId: id }));
    return m ? { ...decodeJson<DeadLetter>(m.data, `dead letter ${m.seq}`, checkDeadLetter), seq: m.seq } : undefined;
  }

  /** Re-enqueues a dead-lettered job as it was first sent, with fresh attempts. */
  async retry(id: string): Promise<EnqueueResult> {
    const dl = await this.get(id);
    if (!dl) throw new NotFoundError(`job ${id} is not in the dead-letter stream`);
    return this.retryEntry(dl);
  }

  /**
   * Re-enqueues one dead-letter entry: the record is removed first (so a fast worker's new
   * record is never the one removed), then the original job is published with a fresh
   * Msg-Id, then every dead-letter entry of the job is purged.
   */
  async retryEntry(dl: DeadLetter & { seq: number }): Promise<EnqueueResult> {
    if (!dl.job) throw new ValidationError(`job ${dl.id} cannot be retried: it was dead-lettered because it could not be decoded (${dl.reason})`, "id");
    await this.host.forgetRecord(dl.id);
    // A distinct Msg-Id: the original id may still be inside the duplicate window.
    const result = await this.host.publish({ ...dl.job, enqueuedAt: new Date().toISOString() }, `${dl.id}.retry.${dl.seq}`);
    await this.streams.purge(this.names.deadLetterStream, { subject: this.names.deadLetterSubject(dl.queue, dl.id) });
    return result;
  }

  /** Re-enqueues every dead-lettered job (of `queue`), at most `concurrency` at once. */
  async retryAll(opts: { queue?: string; concurrency?: number } = {}): Promise<RetryOutcome[]> {
    const entries = await this.list({ queue: opts.queue });
    const out: RetryOutcome[] = [];
    const concurrency = Math.max(1, opts.concurrency ?? 32);
    for (let i = 0; i < entries.length; i += concurrency) {
      const chunk = entries.slice(i, i + concurrency);
      const done = await Promise.all(
        chunk.map(async (dl): Promise<RetryOutcome> => {
          try {
            return { id: dl.id, queue: dl.queue, ok: true, result: await this.retryEntry(dl) };
          } catch (err) {
            return { id: dl.id, queue: dl.queue, ok: false, error: coerceError(err) };
          }
        }),
      );
      out.push(...done);
    }
    return out;
  }

  /**
   * Dead-letter entries (the newest per job), newest first, at most `limit` (default all).
   * Reads the entries of the queue (or all queues) in one ordered pass.
   */
  async list(opts: { queue?: string; limit?: number } = {}): Promise<Array<DeadLetter & { seq: number }>> {
    const [js, jsm] = [await this.connection.jetstream(), await this.connection.manager()];
    const out: Array<DeadLetter & { seq: number }> = [];
    const filter = this.names.deadLetterFilter({ queue: opts.queue });
    for await (const m of readStream(js, jsm, this.names.deadLetterStream, {
      filter,
      deliver: "last_per_subject",
      onDenied: (match, fn) => this.connection.onPermissionDenied(match, fn),
    })) {
      try {
        out.push({ ...decodeJson<DeadLetter>(m.data, `dead letter ${m.seq}`, checkDeadLetter), seq: m.seq });
      } catch {
        // not naq's: skip
      }
    }
    out.sort((a, b) => b.seq - a.seq);
    return opts.limit !== undefined ? out.slice(0, opts.limit) : out;
  }
}
