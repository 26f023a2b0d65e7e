/** The human view of `naq bench`'s report (with --json the report itself is printed): a table of phases and what was removed. */
import { namesFor } from "../../model/naming.js";
import type { CliContext } from "../context.js";
import type { BenchReport } from "./bench.js";
import type { BenchCleanup } from "./bench-cleanup.js";

/** One line naming what cleanup removed. */
export function removedLine(r: BenchCleanup, queueName: string, consumerName: string): string {
  const parts = [
    r.consumer ? `consumer ${consumerName}` : "no consumer",
    `${r.jobs} queued job${r.jobs === 1 ? "" : "s"}`,
    `${r.events} events`,
    ...(r.deadLetters > 0 ? [`${r.deadLetters} dead letters`] : []),
    `${r.records} result and heartbeat records`,
  ];
  return `removed queue ${queueName}: ${parts.join(", ")}`;
}

const ms = (v: number): string => `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`;

export function renderBench(ctx: CliContext, r: BenchReport): string {
  const { c } = ctx.out;
  const head = [
    `naq bench on ${r.server.url} (${r.server.name !== r.server.id ? `${r.server.name}, ` : ""}nats-server ${r.server.version}${r.server.cluster ? `, cluster ${r.server.cluster}` : ""}), namespace ${r.namespace}`,
    `throwaway queue ${r.queue}; payload ${r.options.payloadSize} bytes; a no-op task, results stored`,
  ];
  interface Row {
    phase: string;
    jobs: number;
    rate?: number;
    p50?: number;
    p99?: number;
  }
  const rows: Row[] = [
    { phase: "enqueue, one at a time (awaited)", jobs: r.enqueue.sequential.jobs, rate: r.enqueue.sequential.jobsPerSec, p50: r.enqueue.sequential.p50Ms, p99: r.enqueue.sequential.p99Ms },
    { phase: `enqueue, bulk (${r.enqueue.bulk.window} in flight)`, jobs: r.enqueue.bulk.jobs, rate: r.enqueue.bulk.jobsPerSec },
    { phase: `process, concurrency ${r.process.concurrency}`, jobs: r.process.jobs, rate: r.process.jobsPerSec },
    { phase: `latency @${r.latency.rate}/s: enqueue -> start`, jobs: r.latency.measured, p50: r.latency.startP50Ms, p99: r.latency.startP99Ms },
    { phase: `latency @${r.latency.rate}/s: enqueue -> completed`, jobs: r.latency.measured, p50: r.latency.completedP50Ms, p99: r.latency.completedP99Ms },
  ];
  const table = ctx.out.table(rows, [
    { header: "PHASE", value: (x) => x.phase },
    { header: "JOBS", value: (x) => x.jobs, align: "right" },
    { header: "JOBS/S", value: (x) => (x.rate === undefined ? "" : Math.round(x.rate)), align: "right" },
    { header: "P50", value: (x) => (x.p50 === undefined ? "" : ms(x.p50)), align: "right" },
    { header: "P99", value: (x) => (x.p99 === undefined ? "" : ms(x.p99)), align: "right" },
  ]);
  return [...head, table, c.dim(removedLine(r.removed, r.queue, namesFor(r.namespace).queueConsumer(r.queue)))].join("\n");
}
