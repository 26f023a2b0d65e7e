/**
 * Pipelined bulk enqueue: many publishes in flight at once, at most `window` awaiting
 * their ack, each result kept in its input's place. One publish at a time waits a round
 * trip per job; a window keeps the connection busy without holding every job's promise.
 *
 * The mechanics only: the publish itself (encoding, size check, the JetStream publish,
 * the `enqueued` event) is the caller's, JobService.publish; JobService.enqueueMany and
 * enqueueStream are these functions over it.
 */
import { coerceError } from "../model/errors.js";
import { createEnvelope, type EnqueueInput, type JobEnvelope } from "../model/job.js";
import type { EnqueueResult } from "./jobs.js";

/** Publishes one envelope; a failure is a rejection (one thrown at once counts the same). */
export type Publish = (env: JobEnvelope) => Promise<EnqueueResult>;

export interface PipelineOptions {
  /** Publishes awaiting their ack at once at most (default 256, at least 1). */
  window?: number;
}

const DEFAULT_WINDOW = 256;

const windowSize = (opts: PipelineOptions): number => Math.max(1, opts.window ?? DEFAULT_WINDOW);

/**
 * Publishes `inputs` through `publish`, at most `window` awaiting their ack at once.
 * Results are in input order; a failed job is an Error in its slot (an input that is
 * not a valid job is not published). `queue`: where inputs that name none go (default:
 * `default`).
 */
export async function publishMany(
  publish: Publish,
  inputs: Iterable<EnqueueInput | JobEnvelope>,
  opts: PipelineOptions & { queue?: string } = {},
): Promise<Array<EnqueueResult | Error>> {
  const window = windowSize(opts);
  const results: Array<EnqueueResult | Error> = [];
  // A count and one waiter, not Promise.race over the window: race adds a reaction to
  // every pending publish each time, O(window) per job.
  let inflight = 0;
  let slotFree: (() => void) | undefined;
  const settled = (): void => {
    inflight--;
    const wake = slotFree;
    slotFree = undefined;
    wake?.();
  };
  const all: Array<Promise<void>> = [];
  let i = 0;
  for (const input of inputs) {
    const slot = i++;
    let env: JobEnvelope;
    try {
      // Not an object (null, a string): createEnvelope says so in one clear line.
      env = typeof input === "object" && input !== null && "v" in input ? input : createEnvelope(input, Date.now(), opts.queue);
    } catch (err) {
      results[slot] = coerceError(err);
      continue;
    }
    inflight++;
    let published: Promise<EnqueueResult>;
    try {
      published = publish(env);
    } catch (err) {
      published = Promise.reject(coerceError(err));
    }
    const p = published.then(
      (r) => {
        results[slot] = r;
        settled();
      },
      (err: unknown) => {
        results[slot] = coerceError(err);
        settled();
      },
    );
    all.push(p);
    if (inflight >= window) await new Promise<void>((resolve) => (slotFree = resolve));
  }
  await Promise.all(all);
  return results;
}

/**
 * Publishes a stream of items through `publish`, at most `window` awaiting their ack at
 * once, and yields each item with its result (an Error where it failed) in input order.
 * `envelopeOf` may throw: that item's result is the error, nothing is published. The
 * oldest publish is awaited first: results come in order, so a slow ack holds back the
 * window (no reordering buffer).
 */
export async function* publishStream<T>(
  publish: Publish,
  items: AsyncIterable<T> | Iterable<T>,
  envelopeOf: (item: T) => JobEnvelope,
  opts: PipelineOptions = {},
): AsyncGenerator<[T, EnqueueResult | Error]> {
  const window = windowSize(opts);
  const pending: Array<{ item: T; done: Promise<EnqueueResult | Error> }> = [];
  for await (const item of items) {
    let done: Promise<EnqueueResult | Error>;
    try {
      done = publish(envelopeOf(item)).catch((err: unknown) => coerceError(err));
    } catch (err) {
      done = Promise.resolve(coerceError(err));
    }
    pending.push({ item, done });
    while (pending.length >= window) {
      const head = pending.shift() as (typeof pending)[number];
      yield [head.item, await head.done];
    }
  }
  for (const p of pending) yield [p.item, await p.done];
}
