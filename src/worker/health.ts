/**
 * Whether a worker is doing its job, for probes (`/healthz` of `--metrics-port`): it is
 * running (or paused: an operator's choice, not a fault), and its heartbeat was written
 * lately. A heartbeat that stops being written means the worker cannot reach NATS (or its
 * event loop is stuck): `naq worker list` would soon show it as gone.
 */
import type { WorkerInfo } from "../services/workers.js";

export interface WorkerHealth {
  ok: boolean;
  status: WorkerInfo["status"];
  /** Why not ok. */
  reason?: string;
  /** ISO time of the last heartbeat written, if any. */
  lastHeartbeat?: string;
}

/** Missed heartbeats before a worker counts as unhealthy. */
export const MISSED_HEARTBEATS = 3;

export function workerHealth(o: { status: WorkerInfo["status"]; lastHeartbeat?: Date; heartbeatMs: number; now: number }): WorkerHealth {
  const base = { status: o.status, ...(o.lastHeartbeat ? { lastHeartbeat: o.lastHeartbeat.toISOString() } : {}) };
  if (o.status !== "running" && o.status !== "paused") return { ok: false, ...base, reason: `worker is ${o.status}` };
  const age = o.lastHeartbeat ? o.now - o.lastHeartbeat.getTime() : Number.POSITIVE_INFINITY;
  const limit = MISSED_HEARTBEATS * o.heartbeatMs;
  if (age > limit) {
    const since = Number.isFinite(age) ? `for ${Math.round(age / 1_000)}s` : "yet";
    return { ok: false, ...base, reason: `no heartbeat written ${since} (every ${o.heartbeatMs / 1_000}s expected): is NATS reachable?` };
  }
  return { ok: true, ...base };
}
