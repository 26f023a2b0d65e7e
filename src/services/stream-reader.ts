/**
 * Reading a limits-retention stream in order with an ordered (ephemeral) consumer: one
 * filter subject (nats-server 2.9 takes one), history first, then optionally new
 * messages as they arrive. Used for the dead-letter listing and job logs. Never for the
 * jobs stream: a work-queue stream refuses a second consumer overlapping a queue's.
 */
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { permissionDenial, toNaqError } from "./nats-errors.js";
import type { StoredMessage } from "./streams.js";

export interface ReadOptions {
  /** One subject filter (wildcards allowed). */
  filter: string;
  /** `all` (default): every stored message; `last_per_subject`: the newest per subject. */
  deliver?: "all" | "last_per_subject";
  /** Keep reading new messages after the history, until stopped or aborted. */
  follow?: boolean;
  signal?: AbortSignal;
  /**
   * Called once when the stored history has been read (before any newer message); a
   * `true` result ends the read there.
   */
  onCaughtUp?: () => boolean | void | Promise<boolean | void>;
  /** ConnectionService.onPermissionDenied: ends the read when the server denies its pulls. */
  onDenied?: (match: (subject: string) => boolean, fn: (err: Error) => void) => () => void;
}

/** Messages stored under `filter` right now (0 when the stream does not exist). */
export async function countMatching(jsm: JetStreamManager, stream: string, filter: string): Promise<number> {
  try {
    const si = await jsm.streams.info(stream, { subjects_filter: filter });
    return Object.values(si.state.subjects ?? {}).reduce((a, b) => a + b, 0);
  } catch (err) {
    const e = toNaqError(err, `reading ${stream}`);
    if (e.name === "NotFoundError") return 0;
    throw e;
  }
}

/** Reads `stream` in order; see ReadOptions. Break out of the loop to stop early. */
export async function* readStream(js: JetStreamClient, jsm: JetStreamManager, stream: string, opts: ReadOptions): AsyncGenerator<StoredMessage> {
  if (opts.signal?.aborted) return;
  const stored = await countMatching(jsm, stream, opts.filter);
  let caughtUp = stored === 0;
  if (caughtUp && ((await opts.onCaughtUp?.()) === true || !opts.follow)) return;
  let messages: Awaited<ReturnType<Awaited<ReturnType<JetStreamClient["consumers"]["get"]>>["consume"]>> | undefined;
  // A denied pull is not an error nats.js gives the reader: without this it waits forever.
  let denied: Error | undefined;
  const offDenied = opts.onDenied?.(
    (subject) => subject.startsWith("$JS.API.CONSUMER.") && subject.includes(`.${stream}.`),
    (err) => {
      denied ??= err;
      messages?.stop(err);
    },
  );
  try {
    const consumer = await js.consumers.get(stream, {
      filter_subjects: opts.filter,
      deliver_policy: opts.deliver === "last_per_subject" ? DeliverPolicy.LastPerSubject : DeliverPolicy.All,
    });
    messages = await consumer.consume({ max_messages: 256 });
    if (denied) messages.stop(denied);
  } catch (err) {
    offDenied?.();
    throw toNaqError(err, `reading ${stream}`);
  }
  const reading = messages;
  const onAbort = () => void reading.stop();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const m of reading) {
      const header: Record<string, string> = {};
      if (m.headers) for (const k of m.headers.keys()) header[k] = m.headers.get(k);
      yield { subject: m.subject, seq: m.seq, data: m.data, time: new Date(m.info.timestampNanos / 1_000_000), header };
      if (!caughtUp && m.info.pending === 0) {
        caughtUp = true;
        if ((await opts.onCaughtUp?.()) === true || !opts.follow) break;
      }
      if (opts.signal?.aborted) break;
    }
  } catch (err) {
    throw permissionDenial(err) ? toNaqError(err, `reading ${stream}`) : err;
  } finally {
    offDenied?.();
    opts.signal?.removeEventListener("abort", onAbort);
    reading.stop();
  }
}
