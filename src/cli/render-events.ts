/** Human views of events: one tail line per event, a job's history, and statistics. */
import type { ChalkInstance } from "chalk";
import { formatDuration } from "../model/duration.js";
import { EVENT_TYPES, JobEventType, WorkerEventType, type EventType, type NaqEvent } from "../model/events.js";
import type { JobError } from "../model/job.js";
import type { DurationSummary, GroupStats } from "../model/stats.js";
import type { StatsResult } from "../services/events.js";
import type { Output } from "./output.js";

const TYPE_WIDTH = Math.max(...EVENT_TYPES.map((t) => t.length));

export function colourType(c: ChalkInstance, type: EventType | string): (s: string) => string {
  switch (type) {
    case JobEventType.completed:
      return c.green;
    case JobEventType.failed:
    case JobEventType.deadLettered:
      return c.red;
    case JobEventType.retrying:
    case JobEventType.waiting:
      return c.yellow;
    case JobEventType.started:
      return c.cyan;
    case JobEventType.enqueued:
    case JobEventType.scheduled:
      return c.blue;
    case JobEventType.cancelled:
    case WorkerEventType.started:
    case WorkerEventType.stopped:
      return c.magenta;
    default:
      return c.dim;
  }
}

export function errorText(e: JobError | undefined): string | undefined {
  if (!e) return undefined;
  return e.name && e.name !== "Error" ? `${e.name}: ${e.message}` : e.message;
}

function attemptText(ev: NaqEvent): string | undefined {
  if (ev.attempt === undefined) return undefined;
  return ev.maxAttempts ? `attempt ${ev.attempt}/${ev.maxAttempts}` : `attempt ${ev.attempt}`;
}

/** What happened, in words: attempt, delay, error, reason, progress. */
export function eventDetail(ev: NaqEvent): string {
  const parts: string[] = [];
  const err = errorText(ev.error);
  switch (ev.type) {
    case JobEventType.enqueued:
      if (ev.maxAttempts) parts.push(`${ev.maxAttempts} attempt${ev.maxAttempts === 1 ? "" : "s"} allowed`);
      break;
    case JobEventType.retrying:
      parts.push(`${attemptText(ev) ?? "attempt"} failed${err ? `: ${err}` : ""}`);
      if (ev.delayMs !== undefined) parts.push(`retry in ${formatDuration(ev.delayMs)}`);
      return parts.join("; ");
    case JobEventType.waiting:
      if (ev.reason) parts.push(ev.reason);
      if (ev.delayMs !== undefined) parts.push(`check again in ${formatDuration(ev.delayMs)}`);
      return parts.join("; ");
    case JobEventType.progress:
      if (ev.log !== undefined) parts.push(`log: ${ev.log}`);
      if (ev.progress !== undefined) parts.push(`progress: ${JSON.stringify(ev.progress)}`);
      break;
    default: {
      const a = attemptText(ev);
      if (a) parts.push(a);
      if (ev.reason) parts.push(ev.reason);
      if (err && !(ev.reason ?? "").includes(err)) parts.push(err);
    }
  }
  return parts.join("; ");
}

/** One tail line: time, type, queue, task, job id, worker, duration, detail. */
export function formatEventLine(ev: NaqEvent, c: ChalkInstance): string {
  const type = colourType(c, ev.type)(ev.type.padEnd(TYPE_WIDTH));
  const dash = c.dim("-");
  const cols = [
    c.dim(ev.at),
    type,
    ev.queue.padEnd(12),
    (ev.task ?? "-").padEnd(16),
    ev.jobId.padEnd(26),
    ev.worker ?? dash,
    ev.durationMs !== undefined ? formatDuration(ev.durationMs) : dash,
  ];
  const detail = eventDetail(ev);
  if (detail) cols.push(ev.error || ev.type === JobEventType.failed ? c.red(detail) : detail);
  return cols.join("  ");
}

export interface HistorySummary {
  jobId: string;
  queue: string | null;
  task: string | null;
  /** The newest state the events show. */
  status: string;
  /** Attempts started. */
  attempts: number;
  events: NaqEvent[];
}

const TERMINAL: readonly string[] = [JobEventType.completed, JobEventType.failed, JobEventType.cancelled];

export function summarizeHistory(jobId: string, events: NaqEvent[]): HistorySummary {
  const withTask = events.find((e) => e.task !== undefined);
  const terminal = [...events].reverse().find((e) => TERMINAL.includes(e.type));
  const last = events[events.length - 1];
  return {
    jobId,
    queue: events[0]?.queue ?? null,
    task: withTask?.task ?? null,
    status: terminal?.type ?? (last?.type === JobEventType.deadLettered ? "failed" : (last?.type ?? "unknown")),
    attempts: events.filter((e) => e.type === JobEventType.started).length,
    events,
  };
}

export function historyView(out: Output, h: HistorySummary): string {
  const c = out.c;
  // Times come from several processes (producer, workers): measure from the earliest.
  const times = h.events.map((e) => Date.parse(e.at)).filter(Number.isFinite);
  const t0 = times.length ? Math.min(...times) : 0;
  const span = formatDuration(times.length ? Math.max(...times) - t0 : 0);
  const head = `job ${c.bold(h.jobId)}  queue ${h.queue ?? "-"}  task ${h.task ?? "-"}  ${colourType(c, h.status)(h.status)} after ${h.attempts} attempt${
    h.attempts === 1 ? "" : "s"
  }, ${h.events.length} events over ${span}`;
  const table = out.table(h.events, [
    { header: "TIME", value: (e) => e.at },
    { header: "+", value: (e) => `+${formatDuration(Date.parse(e.at) - t0)}`, align: "right" },
    { header: "EVENT", value: (e) => colourType(c, e.type)(e.type) },
    { header: "WORKER", value: (e) => e.worker ?? "-" },
    { header: "DURATION", value: (e) => (e.durationMs !== undefined ? formatDuration(e.durationMs) : "-"), align: "right" },
    { header: "DETAIL", value: (e) => eventDetail(e) },
  ]);
  return `${head}\n${table}`;
}

const pct = (r: number | null): string => (r === null ? "-" : `${(r * 100).toFixed(r > 0 && r < 0.001 ? 3 : 1)}%`);
const dur = (d: DurationSummary | null, k: keyof DurationSummary): string => (d ? formatDuration(d[k]) : "-");
const rate = (g: GroupStats): string => (g.throughput ? `${g.throughput.perSecond.toFixed(g.throughput.perSecond < 10 ? 2 : 0)}/s` : "-");

export function statsView(out: Output, s: StatsResult, lost: string[] | null): string {
  const t = s.total;
  const head = out.keyValues([
    ["Window", `${s.window.from} .. ${s.window.to} (${formatDuration(s.window.ms)})`],
    ["Events", `${t.events}`],
    ["Completed", t.completed],
    ["Failed", t.failed],
    ["Failure rate", pct(t.failureRate)],
    ["Throughput", t.throughput ? `${rate(t)} (${t.throughput.perMinute.toFixed(t.throughput.perMinute < 100 ? 1 : 0)}/min)` : "-"],
    ["Duration", t.durationMs ? `p50 ${dur(t.durationMs, "p50")}  p95 ${dur(t.durationMs, "p95")}  p99 ${dur(t.durationMs, "p99")}  max ${dur(t.durationMs, "max")}` : "-"],
    [
      "Workers",
      `${s.workers.started} started, ${s.workers.stopped} stopped` +
        (lost === null ? "" : lost.length > 0 ? `, ${out.c.red(`${lost.length} gone without stopping (heartbeat missed): ${lost.join(", ")}`)}` : ""),
    ],
  ]);
  const counts = Object.entries(t.counts).filter(([, n]) => n > 0);
  const countsTable = out.table(counts, [
    { header: "EVENT", value: ([type]) => colourType(out.c, type)(type) },
    { header: "COUNT", value: ([, n]) => n, align: "right" },
  ]);
  let text = `${head}\n\n${countsTable}`;
  if (s.by) {
    const groups = out.table(s.groups, [
      { header: s.by.toUpperCase(), value: (g) => g.key ?? "" },
      { header: "EVENTS", value: (g) => g.events, align: "right" },
      { header: "ENQUEUED", value: (g) => g.counts.enqueued, align: "right" },
      { header: "COMPLETED", value: (g) => g.completed, align: "right" },
      { header: "FAILED", value: (g) => g.failed, align: "right" },
      { header: "RETRIES", value: (g) => g.counts.retrying, align: "right" },
      { header: "FAIL %", value: (g) => pct(g.failureRate), align: "right" },
      { header: "RATE", value: (g) => rate(g), align: "right" },
      { header: "P50", value: (g) => dur(g.durationMs, "p50"), align: "right" },
      { header: "P95", value: (g) => dur(g.durationMs, "p95"), align: "right" },
      { header: "P99", value: (g) => dur(g.durationMs, "p99"), align: "right" },
    ]);
    text += `\n\n${groups}`;
  }
  return text;
}
