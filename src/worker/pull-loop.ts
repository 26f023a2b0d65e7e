/**
 * One queue's pulls, for a worker with a fixed number of slots.
 *
 * Each pull asks for as many jobs as there are free slots and is consumed in the
 * background, so a new pull goes out as soon as a slot frees (while earlier pulls are
 * still open), instead of after the previous batch ended; slots freed in the same turn are
 * gathered into one pull. At most MAX_OPEN_PULLS are open while jobs flow, one on an empty
 * queue. Every delivered job starts at once: none waits in a client buffer while its
 * ack_wait runs out. States of the loop: pulling -> (paused: waiting for a change) ->
 * stopped.
 */
import { coerceError } from "../model/errors.js";
import type { Delivery, FetchBatch } from "../services/queues.js";
import type { SlotPool } from "./slots.js";

export const PULL_EXPIRES_MS = 2_000;
/** Pulls one queue loop keeps open at once (the consumer allows 512 waiting pulls in all). */
export const MAX_OPEN_PULLS = 4;

/** What a pull loop needs from its worker. */
export interface PullHost {
  readonly pool: SlotPool;
  /** How many queues share the pool (an idle queue then asks for one slot only). */
  readonly queueCount: number;
  stopping(): boolean;
  paused(queue: string): boolean;
  /** Resolves at the next pause/resume/stop change. */
  changed(): Promise<void>;
  /** Records whether the queue looked empty (for --burst). */
  setIdle(queue: string, idle: boolean): void;
  /** Jobs the worker may still take (--max-jobs), counting open pulls; undefined = no limit. */
  jobsLeft(): number | undefined;
  /** Jobs asked for by a pull (+n) or no longer expected from it (-n). */
  expect(n: number): void;
  stopFetching(): void;
  dispatch(d: Delivery): void;
  fetch(queue: string, max: number, expiresMs: number): Promise<FetchBatch>;
  track(batch: FetchBatch, queue: string): void;
  untrack(batch: FetchBatch): void;
  error(err: Error): void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function pullLoop(host: PullHost, queue: string, priority: number): Promise<void> {
  const pool = host.pool;
  const open = new Set<Promise<void>>();
  let idle = false;
  let failures = 0;
  while (!host.stopping()) {
    if (failures > 0) await sleep(Math.min(5_000, 250 * 2 ** Math.min(failures, 5)));
    if (host.stopping()) break;
    if (host.paused(queue)) {
      // Paused: no pull requests until resumed (or stopped); counts as idle for --burst.
      host.setIdle(queue, true);
      if (!host.stopping()) await host.changed();
      continue;
    }
    // Several pulls at once only while jobs are flowing: on an empty queue one long poll is enough.
    if (open.size >= (idle ? 1 : MAX_OPEN_PULLS)) {
      await Promise.race(open);
      continue;
    }
    // An idle queue asks for one slot, leaving the rest to lower-priority queues.
    const want = idle && host.queueCount > 1 ? 1 : pool.capacity;
    let n = await pool.reserve(priority, want);
    if (n > 0 && n < want && open.size > 0) {
      // Let the jobs finishing in this turn hand back their slots, then pull for all of them.
      await new Promise((r) => setImmediate(r));
      n += pool.tryReserve(priority, want - n);
    }
    if (host.stopping() || n === 0 || host.paused(queue)) {
      pool.release(n);
      if (host.stopping() || n === 0) break;
      continue;
    }
    const left = host.jobsLeft();
    if (left !== undefined) {
      if (left <= 0) {
        pool.release(n);
        if (open.size === 0) {
          host.stopFetching();
          break;
        }
        await Promise.race(open);
        continue;
      }
      if (n > left) {
        pool.release(n - left);
        n = left;
      }
    }
    let batch: FetchBatch;
    try {
      batch = await host.fetch(queue, n, PULL_EXPIRES_MS);
      failures = 0;
    } catch (err) {
      pool.release(n);
      if (host.stopping()) break;
      failures++;
      host.error(coerceError(err));
      continue;
    }
    host.expect(n);
    const consuming: Promise<void> = consumeBatch(host, queue, batch, n).then(({ got, failed }) => {
      open.delete(consuming);
      failures = failed ? failures + 1 : 0;
      idle = got === 0;
      // Empty only when this pull found nothing and no other pull is still open.
      if (idle && open.size === 0) host.setIdle(queue, true);
      else if (!idle) host.setIdle(queue, false);
    });
    open.add(consuming);
  }
  await Promise.allSettled(open);
}

/** Runs the jobs of one pull as they arrive; returns how many arrived and whether the pull failed. */
async function consumeBatch(host: PullHost, queue: string, batch: FetchBatch, reserved: number): Promise<{ got: number; failed: boolean }> {
  host.track(batch, queue);
  if (host.paused(queue)) batch.stop();
  let got = 0;
  let dispatched = 0;
  let failed = false;
  try {
    for await (const d of batch) {
      got++;
      if (host.stopping() || dispatched >= reserved) {
        d.nak();
        continue;
      }
      host.expect(-1);
      host.dispatch(d);
      dispatched++;
    }
  } catch (err) {
    failed = true;
    if (!host.stopping()) host.error(coerceError(err));
  } finally {
    host.untrack(batch);
    host.expect(-(reserved - dispatched));
    // A dispatched job holds its slot until its handler settles (the worker releases it);
    // return only the rest. Releasing a running job's slot here would let shutdown cut it short.
    host.pool.release(reserved - dispatched);
  }
  return { got, failed };
}
