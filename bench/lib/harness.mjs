/** Helpers shared by the scenarios. */
import { openSystem, runName } from "./systems.mjs";

/**
 * Opens `system` on a fresh run name (its own naq namespace / stream prefix / BullMQ
 * queue), runs fn(sys), then closes and deletes everything it made, even on failure.
 */
export async function withSystem(system, { natsUrl, redisUrl, tag = "" }, fn) {
  const name = runName(tag);
  const sys = await openSystem(system, { natsUrl, redisUrl, name, create: true });
  try {
    const out = await fn(sys);
    if (sys.errors.length > 0) throw new Error(`${system}: ${sys.errors.length} error(s) during the run, first: ${sys.errors[0]?.message}`);
    return out;
  } finally {
    await sys.close().catch(() => undefined);
    await sys.destroy().catch(() => undefined);
  }
}

/** A counter that resolves `reached` when it gets to `target` (or rejects after timeoutMs). */
export function completionCounter(target, { timeoutMs = 300_000, what = "jobs" } = {}) {
  let count = 0;
  let firstAt;
  let lastAt;
  let resolve;
  let reject;
  const reached = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const timer = setTimeout(() => reject(new Error(`timed out: ${count} of ${target} ${what} done after ${timeoutMs} ms`)), timeoutMs);
  timer.unref?.();
  reached.catch(() => undefined).finally(() => clearTimeout(timer));
  return {
    get count() {
      return count;
    },
    get firstAt() {
      return firstAt;
    },
    get lastAt() {
      return lastAt;
    },
    tick() {
      count++;
      const now = performance.now();
      if (count === 1) firstAt = now;
      if (count === target) {
        lastAt = now;
        resolve(now);
      }
    },
    reached,
    fail: (err) => reject(err),
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Jobs [{ payload: { i } }] for i in [from, from + n). */
export function jobs(n, from = 0) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = { payload: { i: from + i } };
  return out;
}

/** Whether a BullMQ comparison can run: a redis URL, and bullmq + ioredis installed. */
export async function bullmqAvailable(redisUrl) {
  if (!redisUrl) return { ok: false, why: "no redis (redis-server not found, or no --redis-url)" };
  try {
    await import("bullmq");
    await import("ioredis");
    return { ok: true };
  } catch (err) {
    return { ok: false, why: `bullmq/ioredis not installed (${err.code ?? err.message})` };
  }
}

/**
 * Calls send(i) for i = 0, 1, ... at `rate` per second (catching up after a late timer,
 * never ahead of schedule) until `total` calls; resolves then. send must not block.
 */
export function paced({ rate, total, send, onTick }) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let sent = 0;
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) * rate) / 1000));
      while (sent < due) send(sent++);
      onTick?.(performance.now() - t0);
      if (sent >= total) resolve();
      else setTimeout(tick, 2);
    };
    tick();
  });
}
