/**
 * Queues and workers operated from the shell against a real nats-server: pause/resume
 * (jobs enqueued to a paused queue are not started, and all run after resume), queue
 * list/info, `naq check` exit codes, `worker stop`, `--max-idle`, and Prometheus metrics.
 */
import { describe, expect, it } from "vitest";
import type { JobRecord } from "../../src/model/job.js";
import type { QueueDetails, QueueSummary } from "../../src/services/queues.js";
import type { WorkerInfo } from "../../src/services/workers.js";
import { eventually, useCliFixture, WORKER, workerStarted } from "../support/index.js";

const TASKS = `
export async function mark(p, ctx) {
  process.stderr.write(\`START \${ctx.id}\\n\`);
  await new Promise((r) => setTimeout(r, p?.ms ?? 0));
  return ctx.id;
}
`;

const cli = useCliFixture({
  namespacePrefix: "q",
  tmpPrefix: "naq-queue-cli-",
  tasks: TASKS,
  // Heartbeats every 500ms so worker lists and running counts settle fast.
  naqrc: { worker: { heartbeat: "500ms" } },
});

/** A fresh namespace; `enqueue(n, queue)` puts n `mark` jobs on the queue and returns their ids. */
function fresh() {
  const t = cli.fresh();
  return {
    ...t,
    enqueue: async (n: number, queue: string, payload = "null") => {
      const input = Array.from({ length: n }, () => JSON.stringify({ task: "mark", payload: JSON.parse(payload) as unknown })).join("\n");
      const r = await t.run(["job", "enqueue", "--ndjson", "--queue", queue], input);
      expect(r.code).toBe(0);
      return r.stdout.trim().split("\n");
    },
  };
}

describe("naq queue pause / resume", () => {
  it("jobs enqueued to a paused queue are not started; after resume they all run", { timeout: 50_000 }, async () => {
    const t = fresh();
    const worker = t.spawn([...WORKER, "work", "--concurrency", "4"]);
    await workerStarted(worker);
    const paused = await t.json<{ queue: string; paused: boolean; already: boolean; reason: string }>(["queue", "pause", "work", "--reason", "maintenance"]);
    expect(paused).toMatchObject({ queue: "work", paused: true, already: false, reason: "maintenance" });
    await worker.waitFor("queue work is paused", { stream: "stderr", timeoutMs: 1_000 });

    const ids = await t.enqueue(5, "work");
    // A second worker started while the queue is paused does not fetch either.
    const late = t.spawn([...WORKER, "work"]);
    await workerStarted(late);
    await new Promise((r) => setTimeout(r, 2_500));
    expect(worker.stderr()).not.toMatch(/^START /m);
    expect(late.stderr()).not.toMatch(/^START /m);
    const info = await t.json<QueueDetails>(["queue", "info", "work"]);
    expect(info).toMatchObject({ name: "work", paused: true, waiting: 5, running: 0, undelivered: 5, workers: 2, pause: { reason: "maintenance" } });
    const list = await t.json<QueueSummary[]>(["queue", "list"]);
    expect(JSON.stringify(list)).toBe(JSON.stringify([{ name: "work", waiting: 5, running: 0, paused: true, workers: 2, failed: 0 }]));
    await eventually(async () => expect((await t.json<WorkerInfo[]>(["worker", "list"])).map((w) => w.status)).toEqual(["paused", "paused"]), {
      timeoutMs: 5_000,
    });
    expect((await t.run(["queue", "pause", "work"])).stdout).toMatch(/already paused/);

    const resumed = performance.now();
    expect(await t.json(["queue", "resume", "work"])).toMatchObject({ queue: "work", paused: false, wasPaused: true });
    const records = await Promise.all(ids.map((id) => t.json<JobRecord>(["job", "result", id, "--wait", "--wait-timeout", "15s"])));
    expect(records.map((r) => r.status)).toEqual(ids.map(() => "completed"));
    expect(records.every((r) => r.attempts === 1)).toBe(true);
    expect(performance.now() - resumed).toBeLessThan(10_000);
    expect((await t.run(["queue", "resume", "work"])).stdout).toBe("queue work was not paused\n");
    expect(await t.json<QueueSummary[]>(["queue", "list"])).toMatchObject([{ name: "work", waiting: 0, paused: false, workers: 2 }]);
    expect((await t.run(["queue", "info", "nothing-here"])).code).toBe(3);
    expect((await t.run(["queue", "pause", "bad.name"])).code).toBe(2);
  });
});

describe("naq check", () => {
  it("exit codes flip when a threshold is crossed", { timeout: 50_000 }, async () => {
    const t = fresh();
    expect((await t.run(["check", "queue", "checked"])).code).toBe(3);
    await t.enqueue(1, "checked");
    const ok = await t.run(["check", "queue", "checked", "--max-waiting", "1", "--max-failed", "0"]);
    expect(ok).toMatchObject({ code: 0, stderr: "" });
    expect(ok.stdout).toMatch(/^OK queue checked: waiting 1, running 0, oldest [\d.]+m?s, failed 0\n$/);

    await t.enqueue(1, "checked");
    const over = await t.run(["check", "queue", "checked", "--max-waiting", "1"]);
    expect(over).toMatchObject({ code: 1, stderr: "" });
    expect(over.stdout).toMatch(/^FAIL queue checked: waiting 2 > 1 /);
    const asJson = await t.run(["--json", "check", "queue", "checked", "--max-waiting", "1"]);
    expect(asJson.code).toBe(1);
    expect(JSON.parse(asJson.stdout)).toMatchObject({ ok: false, check: "queue", queue: "checked", problems: ["waiting 2 > 1"], values: { waiting: 2 } });

    await new Promise((r) => setTimeout(r, 1_100));
    const [old, young] = await Promise.all([t.run(["check", "queue", "checked", "--max-age", "1s"]), t.run(["check", "queue", "checked", "--max-age", "1h"])]);
    expect([old.code, young.code]).toEqual([1, 0]);

    const noWorkers = await t.run(["check", "workers"]);
    expect(noWorkers).toMatchObject({ code: 1, stdout: "FAIL workers: 0 live workers < 1\n" });
    const w = t.spawn([...WORKER, "other"]);
    await workerStarted(w);
    const [forQueue, two, elsewhere] = await Promise.all([
      t.json(["check", "workers", "--queue", "other"]),
      t.run(["check", "workers", "--min", "2"]),
      t.run(["check", "workers", "--queue", "checked"]),
    ]);
    expect(forQueue).toMatchObject({ ok: true, values: { workers: 1 } });
    expect([two.code, elsewhere.code]).toEqual([1, 1]);
  });
});

describe("naq worker stop / --max-idle / --metrics-port", () => {
  it("worker stop asks a worker to finish its jobs and exit 0; --all --wait waits for them", { timeout: 50_000 }, async () => {
    const t = fresh();
    const a = t.spawn([...WORKER, "slow", "--name", "a"]);
    const b = t.spawn([...WORKER, "slow", "--name", "b"]);
    const c = t.spawn([...WORKER, "elsewhere", "--name", "c"]);
    await Promise.all([workerStarted(a), workerStarted(b), workerStarted(c)]);
    const [job] = await t.enqueue(1, "slow", '{"ms": 1500}');
    await eventually(() => expect(`${a.stderr()}${b.stderr()}`).toContain(`START ${job}`), { timeoutMs: 10_000 });
    const runner = a.stderr().includes(`START ${job}`) ? a : b;

    const workers = await t.json<WorkerInfo[]>(["worker", "list"]);
    const runnerId = workers.find((w) => w.pid === runner.pid)?.id as string;
    const asked = await t.run(["--json", "worker", "stop", runnerId, "--reason", "deploy"]);
    expect(asked.code).toBe(0);
    expect(JSON.parse(asked.stdout)).toMatchObject({ worker: runnerId, reason: "deploy" });
    const res = await runner.exited;
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/stop requested by .* \(deploy\): finishing running jobs/);
    expect(await t.json<JobRecord>(["job", "result", job as string])).toMatchObject({ status: "completed" });

    const unknown = await t.run(["worker", "stop", "no-such-worker"]);
    expect({ code: unknown.code, stderr: unknown.stderr }).toMatchObject({ code: 3 });
    const all = await t.run(["worker", "stop", "--all", "--queue", "slow", "--wait", "--wait-timeout", "15s"]);
    expect(all.code).toBe(0);
    expect(all.stdout.trim().split("\n")).toHaveLength(1);
    expect((await (runner === a ? b : a).exited).code).toBe(0);
    expect((await t.json<WorkerInfo[]>(["worker", "list"])).map((w) => w.name)).toEqual(["c"]);
  });

  it("--max-idle exits 0 after being idle that long; --metrics-port serves Prometheus text", { timeout: 50_000 }, async () => {
    const t = fresh();
    const [id] = await t.enqueue(1, "metered");
    const w = t.spawn([...WORKER, "metered", "--max-idle", "1500ms", "--metrics-port", "0", "--metrics-host", "127.0.0.1"]);
    const url = (await w.waitFor(/metrics on (\S+)/, { stream: "stderr" })).replace("metrics on ", "");
    await t.json<JobRecord>(["job", "result", id as string, "--wait", "--wait-timeout", "10s"]);
    const text = await (await fetch(url)).text();
    expect(text).toMatch(/^naq_jobs_processed_total\{queue="metered",task="mark",worker="[^"]+"\} 1$/m);
    expect(text).toMatch(/^naq_job_duration_seconds_count\{[^}]*queue="metered",task="mark",outcome="completed"\} 1$/m);
    expect(text).toMatch(/^naq_jobs_in_flight\{[^}]*\} 0$/m);
    expect(text).toMatch(/^naq_worker_last_heartbeat_timestamp_seconds\{[^}]*\} 1\d{9}(\.\d+)?$/m);
    expect(text).toMatch(/^process_cpu_user_seconds_total/m);
    expect((await fetch(url.replace("/metrics", "/healthz"))).status).toBe(200);
    const started = performance.now();
    const res = await w.exited;
    expect(res.code).toBe(0);
    expect(performance.now() - started).toBeLessThan(8_000);
  });
});

describe("--json everywhere", () => {
  it("every new command prints only JSON (or NDJSON) on stdout, and nothing on stderr when it succeeds", { timeout: 50_000 }, async () => {
    const t = fresh();
    const [id] = await t.enqueue(1, "jq");
    const exec = await t.run(["--json", "job", "enqueue", "--exec", "--queue", "jq", "--", "echo", "x"]);
    expect(exec.code).toBe(0);
    const execId = (JSON.parse(exec.stdout) as { id: string }).id;
    type Cmd = { args: string[]; code?: number; ndjson?: boolean };
    const check = async (c: Cmd) => {
      const r = await t.run(["--json", ...c.args]);
      expect({ args: c.args, code: r.code, stderr: r.stderr }).toEqual({ args: c.args, code: c.code ?? 0, stderr: "" });
      if (c.ndjson) for (const line of r.stdout.trim().split("\n").filter(Boolean)) JSON.parse(line);
      else expect(() => JSON.parse(r.stdout)).not.toThrow();
    };
    // Readers, at once.
    await Promise.all(
      [
        { args: ["job", "list"] },
        { args: ["job", "list", "--queue", "jq", "--status", "queued"] },
        { args: ["job", "failed"] },
        { args: ["job", "logs", id as string], ndjson: true },
        { args: ["queue", "list"] },
        { args: ["queue", "list", "--names"] },
        { args: ["queue", "info", "jq"] },
        { args: ["check", "queue", "jq", "--max-waiting", "10"] },
        { args: ["check", "queue", "jq", "--max-waiting", "0"], code: 1 },
        { args: ["check", "workers", "--min", "0"] },
        { args: ["worker", "list"] },
      ].map(check),
    );
    // Writers, in order.
    for (const c of [{ args: ["queue", "pause", "jq"] }, { args: ["queue", "resume", "jq"] }, { args: ["job", "cancel", execId], ndjson: true }]) await check(c);
    // Nothing to retry: no output at all, exit 0.
    expect(await t.run(["--json", "job", "retry", "--all"])).toMatchObject({ code: 0, stdout: "", stderr: "" });
  });
});
