/**
 * Prometheus metrics of one worker (`naq worker start --metrics-port P`), served as text
 * on http://HOST:P/metrics with prom-client, loaded only when asked for, and `/healthz` for
 * probes: 200 `ok` while the worker runs with its heartbeat written lately, else 503 with
 * the reason (see health.ts). Fed by the worker's events; nothing here touches NATS.
 *
 *   naq_jobs_processed_total{queue,task}        jobs completed
 *   naq_jobs_failed_total{queue,task}           jobs failed for good (dead-lettered)
 *   naq_jobs_retried_total{queue,task}          failed attempts that will be retried
 *   naq_jobs_cancelled_total{queue,task}        jobs cancelled while queued or running
 *   naq_job_duration_seconds{queue,task,outcome} histogram of attempt run times
 *   naq_jobs_in_flight                          jobs running now
 *   naq_worker_concurrency                      slots of this worker
 *   naq_worker_last_heartbeat_timestamp_seconds when the last heartbeat was written
 *   naq_queue_paused{queue}                     1 while a queue of this worker is paused
 *   plus prom-client's default process and Node.js metrics (process_*, nodejs_*).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { UsageError } from "../model/errors.js";
import type { Worker } from "./worker.js";

export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

export interface MetricsServer {
  /** The URL of the metrics page. */
  readonly url: string;
  /** The exposition text (what a scrape gets). */
  metrics(): Promise<string>;
  close(): Promise<void>;
}

export interface MetricsOptions {
  port: number;
  /** Interface to listen on (default 0.0.0.0: all). */
  host?: string;
  /** Include prom-client's default process metrics (default true). */
  defaultMetrics?: boolean;
}

export async function startMetrics(worker: Worker, opts: MetricsOptions): Promise<MetricsServer> {
  // prom-client is CommonJS: Node exposes its exports by name, a bundle only as `default`.
  const loaded = await import("prom-client");
  const prom = typeof loaded.Registry === "function" ? loaded : loaded.default;
  const registry = new prom.Registry();
  registry.setDefaultLabels({ worker: worker.id });
  if (opts.defaultMetrics !== false) prom.collectDefaultMetrics({ register: registry });
  const labelNames = ["queue", "task"] as const;
  const processed = new prom.Counter({ name: "naq_jobs_processed_total", help: "Jobs completed by this worker", labelNames, registers: [registry] });
  const failed = new prom.Counter({ name: "naq_jobs_failed_total", help: "Jobs failed for good (dead-lettered) by this worker", labelNames, registers: [registry] });
  const retried = new prom.Counter({ name: "naq_jobs_retried_total", help: "Failed attempts that will be retried", labelNames, registers: [registry] });
  const cancelled = new prom.Counter({ name: "naq_jobs_cancelled_total", help: "Jobs cancelled before or while running here", labelNames, registers: [registry] });
  const duration = new prom.Histogram({
    name: "naq_job_duration_seconds",
    help: "Run time of job attempts, by outcome (completed, failed, retrying)",
    labelNames: ["queue", "task", "outcome"] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  new prom.Gauge({
    name: "naq_jobs_in_flight",
    help: "Jobs running on this worker now",
    registers: [registry],
    collect() {
      this.set(worker.stats.running);
    },
  });
  const concurrency = new prom.Gauge({ name: "naq_worker_concurrency", help: "Jobs this worker runs at once at most", registers: [registry] });
  new prom.Gauge({
    name: "naq_worker_last_heartbeat_timestamp_seconds",
    help: "Unix time of the worker's last heartbeat write (0 before the first)",
    registers: [registry],
    collect() {
      const at = worker.lastHeartbeat;
      this.set(at ? at.getTime() / 1_000 : 0);
    },
  });
  const paused = new prom.Gauge({ name: "naq_queue_paused", help: "1 while the queue is paused", labelNames: ["queue"] as const, registers: [registry] });
  for (const q of worker.queues) paused.set({ queue: q }, 0);
  worker.on("pause", ({ queue, paused: p }) => paused.set({ queue }, p ? 1 : 0));

  worker.on("job", (j) => {
    const labels = { queue: j.queue, task: j.task ?? "(unknown)" };
    const seconds = j.durationMs !== undefined ? j.durationMs / 1_000 : undefined;
    switch (j.outcome) {
      case "completed":
        processed.inc(labels);
        break;
      case "failed":
        failed.inc(labels);
        break;
      case "retrying":
        retried.inc(labels);
        break;
      case "cancelled":
        cancelled.inc(labels);
        break;
      default:
        return;
    }
    if (seconds !== undefined && (j.outcome === "completed" || j.outcome === "failed" || j.outcome === "retrying")) {
      duration.observe({ ...labels, outcome: j.outcome }, seconds);
    }
  });
  const setConcurrency = () => concurrency.set(worker.concurrency);
  setConcurrency();
  worker.on("heartbeat", setConcurrency);

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (path === "/metrics") {
      registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": registry.contentType }).end(req.method === "HEAD" ? undefined : text),
        (err: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(`${(err as Error).message}\n`),
      );
    } else if (path === "/healthz") {
      const h = worker.health();
      if (h.ok) res.writeHead(200, { "content-type": "text/plain" }).end(req.method === "HEAD" ? undefined : "ok\n");
      else res.writeHead(503, { "content-type": "text/plain" }).end(req.method === "HEAD" ? undefined : `unhealthy: ${h.reason ?? h.status}\n`);
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics\n");
    }
  });
  const host = opts.host ?? "0.0.0.0";
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new UsageError(`--metrics-port: cannot listen on ${host}:${opts.port}: ${err.code ?? err.message}`, { cause: err }));
    };
    server.once("error", onError);
    server.listen(opts.port, host, () => {
      server.off("error", onError);
      resolve();
    });
  });
  server.unref();
  const addr = server.address() as AddressInfo;
  const shown = addr.address === "0.0.0.0" || addr.address === "::" ? "127.0.0.1" : addr.address;
  return {
    url: `http://${shown}:${addr.port}/metrics`,
    metrics: () => registry.metrics(),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
