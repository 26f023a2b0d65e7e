/**
 * `naq bench` against a real nats-server: the JSON report's shape, the human table, and
 * that the throwaway queue leaves nothing behind (no consumer, jobs, events, results or
 * worker) while the user's own queues are not touched. No test asserts a time.
 */
import { describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/schema.js";
import { namesFor } from "../../src/model/naming.js";
import { ServiceManager } from "../../src/services/base.js";
import { StreamService } from "../../src/services/streams.js";
import type { BenchReport } from "../../src/cli/actions/bench.js";
import type { QueueDetails, QueueSummary } from "../../src/services/queues.js";
import type { WorkerInfo } from "../../src/services/workers.js";
import { useCliFixture, type CliNamespace } from "../support/index.js";

const cli = useCliFixture({ namespacePrefix: "bench", tmpPrefix: "naq-bench-cli-", tasks: "export const noop = () => null;\n" });

const SMALL = ["--jobs", "150", "--concurrency", "20", "--rate", "100", "--duration", "1s", "--payload-size", "64"];

/** Messages stored on `stream` under `subject` in the namespace of `t` (0 when the stream is missing). */
async function stored(t: CliNamespace, stream: string, subject: string): Promise<number> {
  const services = await ServiceManager.open(configSchema.parse({ connection: { servers: [cli.server.url] }, namespace: t.namespace }));
  try {
    const streams = await services.get(StreamService);
    return (await streams.find(stream)) ? await streams.countSubject(stream, subject) : 0;
  } finally {
    await services.close();
  }
}

async function expectNoTrace(t: CliNamespace, queue: string, ids: string[]): Promise<void> {
  const names = namesFor(t.namespace);
  const info = await t.run(["queue", "info", queue]);
  expect(info.code, info.stderr).toBe(3);
  expect((await t.json<QueueSummary[]>(["queue", "list"])).map((q) => q.name)).not.toContain(queue);
  expect(await t.json<WorkerInfo[]>(["worker", "list"])).toEqual([]);
  expect(await stored(t, names.jobsStream, names.queueSubject(queue))).toBe(0);
  expect(await stored(t, names.eventsStream, names.eventFilter({ queue }))).toBe(0);
  expect(await stored(t, names.eventsStream, names.eventFilter({ queue: "_worker" }))).toBe(0);
  expect(await stored(t, names.deadLetterStream, names.deadLetterFilter({ queue }))).toBe(0);
  expect(await stored(t, `KV_${names.buckets.results}`, `$KV.${names.buckets.results}.>`)).toBe(0);
  expect(await stored(t, `KV_${names.buckets.workers}`, `$KV.${names.buckets.workers}.>`)).toBe(0);
  for (const id of ids) expect((await t.run(["job", "status", id])).code).toBe(3);
}

describe("naq bench", () => {
  it("--json: every phase measured; the throwaway queue is gone afterwards and other queues untouched", { timeout: 90_000 }, async () => {
    const t = cli.fresh();
    const mine = await t.run(["job", "enqueue", "noop", "--queue", "emails"]);
    expect(mine.code, mine.stderr).toBe(0);

    const r = await t.run(["bench", ...SMALL, "--json"], undefined, 60_000);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as BenchReport;
    expect(report.queue).toMatch(/^naq-bench-[0-9a-f]{8}$/);
    expect(report).toMatchObject({
      server: { url: expect.stringContaining(String(cli.server.port)), version: expect.any(String) },
      namespace: t.namespace,
      options: { jobs: 150, concurrency: 20, payloadSize: 64, rate: 100, durationMs: 1_000 },
      enqueue: {
        sequential: { jobs: 150, seconds: expect.any(Number), jobsPerSec: expect.any(Number), p50Ms: expect.any(Number), p99Ms: expect.any(Number) },
        bulk: { jobs: 150, seconds: expect.any(Number), jobsPerSec: expect.any(Number), window: 256 },
      },
      process: { jobs: 300, concurrency: 20, seconds: expect.any(Number), jobsPerSec: expect.any(Number) },
      latency: { rate: 100, jobs: 100 },
      removed: { consumer: true, jobs: 0, deadLetters: 0, worker: expect.stringMatching(/^naq-bench-/) },
    });
    for (const v of [report.enqueue.sequential.jobsPerSec, report.enqueue.bulk.jobsPerSec, report.process.jobsPerSec]) expect(v).toBeGreaterThan(0);
    const l = report.latency;
    expect(l.measured).toBeGreaterThan(0);
    expect(l.measured).toBeLessThanOrEqual(l.jobs);
    expect(l.startP50Ms).toBeGreaterThan(0);
    expect(l.startP99Ms).toBeGreaterThanOrEqual(l.startP50Ms);
    expect(l.completedP50Ms).toBeGreaterThanOrEqual(l.startP50Ms);
    expect(l.completedP99Ms).toBeGreaterThanOrEqual(l.completedP50Ms);
    // enqueued and completed for each of its 400 jobs (a trivial job's started is folded
    // into its completed: streams.events.foldStarted), and the worker's own events.
    expect(report.removed.events).toBeGreaterThanOrEqual(2 * 400);
    expect(report.removed.records).toBeGreaterThanOrEqual(400);

    const ids = [`${report.queue}-s0`, `${report.queue}-b149`, `${report.queue}-l99`];
    await expectNoTrace(t, report.queue, ids);
    const emails = await t.json<QueueDetails>(["queue", "info", "emails"]);
    expect(emails).toMatchObject({ name: "emails", waiting: 1 });
  });

  it("prints a table and what it removed; refuses a queue that is in use", { timeout: 90_000 }, async () => {
    const t = cli.fresh();
    const r = await t.run(["bench", ...SMALL, "--queue", "bench-here"], undefined, 60_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("throwaway queue bench-here");
    for (const phase of ["enqueue, one at a time", "enqueue, bulk", "process, concurrency 20", "enqueue -> start", "enqueue -> completed"]) expect(r.stdout).toContain(phase);
    expect(r.stdout).toMatch(/removed queue bench-here: consumer \S+_q_bench-here, 0 queued jobs, \d+ events/);
    await expectNoTrace(t, "bench-here", []);

    expect((await t.run(["job", "enqueue", "noop", "--queue", "busy"])).code).toBe(0);
    const refused = await t.run(["bench", ...SMALL, "--queue", "busy"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/queue busy is in use \(1 job, 0 workers\)/);
    expect((await t.json<QueueDetails>(["queue", "info", "busy"])).waiting).toBe(1);
  });

  it("SIGINT stops it and still removes the queue (exit 1)", { timeout: 90_000 }, async () => {
    const t = cli.fresh();
    const child = t.spawn(["bench", "--jobs", "50000", "--queue", "stopped"]);
    // Stop it once jobs are stored (by then the queue exists).
    const names = namesFor(t.namespace);
    const deadline = Date.now() + 30_000;
    while ((await stored(t, names.jobsStream, names.queueSubject("stopped"))) === 0) {
      if (Date.now() > deadline) throw new Error(`bench stored no job in 30s: ${child.stderr()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    child.signal("SIGINT");
    const done = await child.exited;
    expect(done.code, done.stderr).toBe(1);
    expect(done.stderr).toMatch(/removed queue stopped: .*\n.*interrupted \(SIGINT\)/);
    await expectNoTrace(t, "stopped", []);
  });
});
