/**
 * One queue's pulls for a worker with a fixed number of slots, over one long-lived pull
 * channel (src/services/pull-channel.ts).
 *
 * The loop reserves free slots and asks the channel for exactly that many jobs; every
 * delivered job starts at once in a slot reserved for it (none waits in a client buffer
 * while its ack_wait runs out), and jobs a pull will not deliver give their slots back.
 * Slots freed in the same turn are gathered into one pull. At most MAX_OPEN_PULLS pulls are
 * open while jobs flow, one on an empty queue. States: pulling -> (paused: waiting for a
 * change) -> stopped; on stop the channel is drained (jobs already on the way are NAKed so
 * another worker takes them at once) and closed.
 */
import { coerceError } from "../model/errors.js";
import type { PullListener } from "../services/pull-channel.js";
import type { Delivery } from "../services/queues.js";
import type { SlotPool } from "./slots.js";

export const PULL_EXPIRES_MS = 2_000;
/** Pulls one queue keeps open at once (the consumer allows 512 waiting pulls in all). */
export const MAX_OPEN_PULLS = 4;

/** What the loop needs from the queue's pull channel. */
export interface Channel {
  pull(n: number, expiresMs: number): void;
  readonly openPulls: number;
  stop(): void;
  close(): Promise<void>;
}

/** What a channel loop needs from its worker. */
export interface ChannelHost {
  readonly pool: SlotPool;
  /** How many queues share the pool (an idle queue then asks for one slot only). */
  readonly queueCount: number;
  stopping(): boolean;
  paused(queue: string): boolean;
  /** The connection results are written on is down: no pulls until it is back (not idleness). */
  offline(): boolean;
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
  /** Gives a delivered job back without running it (NAK), noting that this delivery was not an attempt. */
  handBack(d: Delivery): void;
  open(queue: string, listener: PullListener): Promise<Channel>;
  /** Registers what pausing or stopping the worker calls to end this queue's open pulls. */
  track(handle: { stop(): void }, queue: string): void;
  untrack(handle: { stop(): void }): void;
  error(err: Error): void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function channelLoop(host: ChannelHost, queue: string, priority: number): Promise<void> {
  const pool = host.pool;
  /** Slots held for jobs asked for and not yet delivered or given back. */
  let reserved = 0;
  let idle = false;
  let failures = 0;
  /** A failure was counted since the last pull went out (pulls open together fail together: one failure for the backoff). */
  let failedSincePull = false;
  let poke: (() => void) | undefined;
  const wakeUp = (): void => {
    const p = poke;
    poke = undefined;
    p?.();
  };
  const nextEvent = (): Promise<void> => new Promise((resolve) => (poke = resolve));
  const giveBack = (n: number): void => {
    reserved -= n;
    host.expect(-n);
    pool.release(n);
  };

  const listener: PullListener = {
    delivery(d, expected) {
      if (!expected) {
        // No pull is known to want it (one given up on delivered after all): run it if a slot
        // is free, else let another worker have it.
        const left = host.jobsLeft();
        if (!host.stopping() && (left === undefined || left > 0) && pool.tryReserve(priority, 1) === 1) host.dispatch(d);
        else host.handBack(d);
        return;
      }
      reserved--;
      host.expect(-1);
      if (host.stopping()) {
        host.handBack(d);
        pool.release(1);
        wakeUp();
        return;
      }
      failures = 0;
      idle = false;
      host.setIdle(queue, false);
      host.dispatch(d); // the slot reserved for it is now the job's, released when its handler settles
      if (poke) wakeUp(); // fewer jobs asked for: the loop may pull again
    },
    returned(n, empty) {
      giveBack(n);
      failures = 0;
      if (empty) {
        idle = true;
        // Empty only when no other pull is still waiting for jobs.
        if (reserved === 0) host.setIdle(queue, true);
      }
      wakeUp();
    },
    error(err, n) {
      if (n > 0) giveBack(n);
      if (!failedSincePull) {
        failures++;
        failedSincePull = true;
      }
      if (!host.stopping()) host.error(coerceError(err));
      wakeUp();
    },
  };

  let channel: Channel | undefined;
  while (!channel && !host.stopping()) {
    try {
      channel = await host.open(queue, listener);
    } catch (err) {
      if (host.stopping()) break;
      failures++;
      host.error(coerceError(err));
      await sleep(Math.min(5_000, 250 * 2 ** Math.min(failures, 5)));
    }
  }
  if (!channel) return;
  const open = channel;
  const handle = {
    stop: () => {
      open.stop();
      wakeUp();
    },
  };
  host.track(handle, queue);
  try {
    while (!host.stopping()) {
      // Backing off; a stop (which pokes) cuts it short.
      if (failures > 0) await Promise.race([sleep(Math.min(5_000, 250 * 2 ** Math.min(failures, 5))), nextEvent()]);
      if (host.stopping()) break;
      if (host.offline()) {
        // A job taken now could not store its result: it would only come back and run again.
        await host.changed();
        continue;
      }
      if (host.paused(queue)) {
        // Paused: no pull requests until resumed (or stopped); counts as idle for --burst.
        host.setIdle(queue, true);
        if (!host.stopping()) await host.changed();
        continue;
      }
      // An idle queue asks for one slot, leaving the rest to lower-priority queues; several
      // pulls at once only while jobs are flowing (on an empty queue one long poll is enough).
      const want = idle && host.queueCount > 1 ? 1 : pool.capacity;
      if (reserved >= want || open.openPulls >= (idle ? 1 : MAX_OPEN_PULLS)) {
        await nextEvent();
        continue;
      }
      let n = await pool.reserve(priority, want - reserved);
      if (n > 0 && n < want - reserved && pool.used > n) {
        // Let the jobs finishing in this turn hand back their slots, then pull for all of them.
        await new Promise((r) => setImmediate(r));
        n += pool.tryReserve(priority, want - reserved - n);
      }
      if (host.stopping() || n === 0 || host.paused(queue) || host.offline()) {
        pool.release(n);
        if (host.stopping() || n === 0) break;
        continue;
      }
      const left = host.jobsLeft();
      if (left !== undefined) {
        if (left <= 0) {
          pool.release(n);
          if (reserved === 0) {
            host.stopFetching();
            break;
          }
          await nextEvent();
          continue;
        }
        if (n > left) {
          pool.release(n - left);
          n = left;
        }
      }
      try {
        open.pull(n, PULL_EXPIRES_MS);
      } catch (err) {
        pool.release(n);
        if (host.stopping()) break;
        if (!failedSincePull) failures++;
        failedSincePull = true;
        host.error(coerceError(err));
        continue;
      }
      failedSincePull = false;
      reserved += n;
      host.expect(n);
    }
  } finally {
    host.untrack(handle);
    // Drains: jobs the server sent before the UNSUB still arrive (and are NAKed, stopping); the rest come back.
    await open.close();
    if (reserved > 0) giveBack(reserved);
  }
}
