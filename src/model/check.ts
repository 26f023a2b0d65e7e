/**
 * `naq check`: health checks for cron and probes. Pure: given measured values and
 * thresholds, decide OK or not and say why in one line. A value over its threshold
 * fails the check (equal is fine); a threshold not given is not checked.
 */
import { formatDuration } from "./duration.js";

export interface CheckResult {
  ok: boolean;
  check: "queue" | "workers";
  /** The queue checked (for workers: the queue filter, if any). */
  queue?: string;
  /** One line for people and logs: `OK ...` or `FAIL ...`. */
  summary: string;
  /** One entry per threshold crossed. */
  problems: string[];
  values: Record<string, number | null>;
  thresholds: Record<string, number>;
}

export interface QueueValues {
  waiting: number;
  running: number;
  /** Age of the oldest job no worker has taken yet; null when none waits. */
  oldestAgeMs: number | null;
  failed: number;
  paused: boolean;
}

export interface QueueThresholds {
  maxWaiting?: number;
  maxAgeMs?: number;
  maxFailed?: number;
}

export function checkQueue(queue: string, v: QueueValues, t: QueueThresholds): CheckResult {
  const problems: string[] = [];
  if (t.maxWaiting !== undefined && v.waiting > t.maxWaiting) problems.push(`waiting ${v.waiting} > ${t.maxWaiting}`);
  if (t.maxAgeMs !== undefined && v.oldestAgeMs !== null && v.oldestAgeMs > t.maxAgeMs) {
    problems.push(`oldest waiting ${formatDuration(v.oldestAgeMs)} > ${formatDuration(t.maxAgeMs)}`);
  }
  if (t.maxFailed !== undefined && v.failed > t.maxFailed) problems.push(`failed ${v.failed} > ${t.maxFailed}`);
  const ok = problems.length === 0;
  const facts = [
    `waiting ${v.waiting}`,
    `running ${v.running}`,
    `oldest ${v.oldestAgeMs === null ? "-" : formatDuration(v.oldestAgeMs)}`,
    `failed ${v.failed}`,
    ...(v.paused ? ["paused"] : []),
  ].join(", ");
  const thresholds: Record<string, number> = {};
  if (t.maxWaiting !== undefined) thresholds.maxWaiting = t.maxWaiting;
  if (t.maxAgeMs !== undefined) thresholds.maxAgeMs = t.maxAgeMs;
  if (t.maxFailed !== undefined) thresholds.maxFailed = t.maxFailed;
  return {
    ok,
    check: "queue",
    queue,
    summary: ok ? `OK queue ${queue}: ${facts}` : `FAIL queue ${queue}: ${problems.join("; ")} (${facts})`,
    problems,
    values: { waiting: v.waiting, running: v.running, oldestAgeMs: v.oldestAgeMs, failed: v.failed, paused: v.paused ? 1 : 0 },
    thresholds,
  };
}

export function checkWorkers(count: number, min: number, queue?: string): CheckResult {
  const where = queue ? ` for queue ${queue}` : "";
  const problems = count < min ? [`${count} live worker${count === 1 ? "" : "s"}${where} < ${min}`] : [];
  const ok = problems.length === 0;
  return {
    ok,
    check: "workers",
    ...(queue ? { queue } : {}),
    summary: ok ? `OK workers${where}: ${count} live (min ${min})` : `FAIL workers${where}: ${problems.join("; ")}`,
    problems,
    values: { workers: count },
    thresholds: { min },
  };
}
