/**
 * Event statistics, pure: feed events to an EventStatsBuilder (in stream order), then
 * build() over a time window. What each number means (also in docs/events.md):
 *
 * - counts: events of each type in the window (every type is present, 0 when none).
 * - completed / failed: jobs that ended in the window (`completed`, `failed` events).
 * - failureRate: failed / (completed + failed); null when no job ended.
 * - throughput: (completed + failed) per second / minute over the window.
 * - durationMs: run time of the successful attempt of completed jobs (their
 *   `durationMs`), with nearest-rank percentiles: exact values that occurred, no
 *   interpolation, so a known workload gives known answers.
 * - workers: lifecycle events; `open` lists workers that started in the window and did
 *   not stop in it. A reader that also knows the live workers (heartbeats) can tell the
 *   ones that died without stopping: see lostWorkers().
 */
import { EVENT_TYPES, JobEventType, WORKER_EVENTS_QUEUE, WorkerEventType, type EventType, type NaqEvent } from "./events.js";

export const STATS_GROUP_BY = ["queue", "task", "worker"] as const;
export type StatsGroupBy = (typeof STATS_GROUP_BY)[number];

/** Group key for events that lack the grouped field (e.g. `enqueued` has no worker). */
export const NO_KEY = "(none)";

export interface DurationSummary {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface StatsWindow {
  from: string;
  to: string;
  ms: number;
}

export interface GroupStats {
  /** The group's queue, task or worker; null for the total. */
  key: string | null;
  events: number;
  counts: Record<EventType, number>;
  completed: number;
  failed: number;
  failureRate: number | null;
  throughput: { perSecond: number; perMinute: number } | null;
  durationMs: DurationSummary | null;
}

export interface WorkerLifecycle {
  started: number;
  stopped: number;
  /** Workers that started in the window and did not stop in it (running, or died). */
  open: string[];
}

export interface EventStats {
  window: StatsWindow;
  by: StatsGroupBy | null;
  total: GroupStats;
  /** One per key, sorted by key; empty without `by`. Job events only (not those on naq's `_` queues). */
  groups: GroupStats[];
  workers: WorkerLifecycle;
}

/**
 * Nearest-rank percentile of ascending `sorted` values: the smallest value with at least
 * p% of the values at or below it. p in (0, 100]; NaN for no values.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

/** min / mean / p50 / p95 / p99 / max of `values` (any order); null for none. */
export function summarizeDurations(values: readonly number[]): DurationSummary | null {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return null;
  const sorted = [...finite].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: sorted.length,
    min: sorted[0] as number,
    mean: sum / sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] as number,
  };
}

/** failed / (completed + failed), or null when nothing ended. */
export function failureRate(completed: number, failed: number): number | null {
  const ended = completed + failed;
  return ended === 0 ? null : failed / ended;
}

/** Workers in `open` that are not alive any more: they stopped sending heartbeats without a `worker_stopped` event. */
export function lostWorkers(open: readonly string[], alive: Iterable<string>): string[] {
  const live = new Set(alive);
  return open.filter((id) => !live.has(id));
}

const zeroCounts = (): Record<EventType, number> =>
  Object.fromEntries(EVENT_TYPES.map((t) => [t, 0])) as Record<EventType, number>;

class GroupAccumulator {
  events = 0;
  readonly counts = zeroCounts();
  readonly durations: number[] = [];

  add(ev: NaqEvent): void {
    this.events++;
    if (ev.type in this.counts) this.counts[ev.type]++;
    if (ev.type === JobEventType.completed && typeof ev.durationMs === "number") this.durations.push(ev.durationMs);
  }

  build(key: string | null, windowMs: number): GroupStats {
    const completed = this.counts[JobEventType.completed];
    const failed = this.counts[JobEventType.failed];
    const perSecond = windowMs > 0 ? (completed + failed) / (windowMs / 1_000) : undefined;
    return {
      key,
      events: this.events,
      counts: { ...this.counts },
      completed,
      failed,
      failureRate: failureRate(completed, failed),
      throughput: perSecond === undefined ? null : { perSecond, perMinute: perSecond * 60 },
      durationMs: summarizeDurations(this.durations),
    };
  }
}

export class EventStatsBuilder {
  private readonly total = new GroupAccumulator();
  private readonly groups = new Map<string, GroupAccumulator>();
  private readonly openWorkers = new Set<string>();
  private started = 0;
  private stopped = 0;

  constructor(readonly by: StatsGroupBy | null = null) {}

  add(ev: NaqEvent): void {
    this.total.add(ev);
    if (ev.queue === WORKER_EVENTS_QUEUE) {
      if (ev.type === WorkerEventType.started) {
        this.started++;
        this.openWorkers.add(ev.jobId);
      } else if (ev.type === WorkerEventType.stopped) {
        this.stopped++;
        this.openWorkers.delete(ev.jobId);
      }
    }
    // Queues starting with '_' are naq's own (worker, schedule events): not job groups.
    if (ev.queue.startsWith("_")) return;
    if (this.by) {
      const key = (this.by === "queue" ? ev.queue : this.by === "task" ? ev.task : ev.worker) ?? NO_KEY;
      let group = this.groups.get(key);
      if (!group) this.groups.set(key, (group = new GroupAccumulator()));
      group.add(ev);
    }
  }

  build(from: Date, to: Date): EventStats {
    const ms = Math.max(0, to.getTime() - from.getTime());
    return {
      window: { from: from.toISOString(), to: to.toISOString(), ms },
      by: this.by,
      total: this.total.build(null, ms),
      groups: [...this.groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([key, g]) => g.build(key, ms)),
      workers: { started: this.started, stopped: this.stopped, open: [...this.openWorkers].sort() },
    };
  }
}
