/**
 * `naq worker` and `naq job` as subprocesses, the way shell scripts use them, against a
 * real nats-server: results and exit codes of `job enqueue --wait`, a worker killed with
 * SIGKILL mid-job (the job completes elsewhere), SIGTERM (running job finishes, the rest
 * stay queued), --burst, --max-jobs, `worker list`, and NDJSON output.
 */
import { describe, expect, it } from "vitest";
import type { WorkerInfo } from "../../src/services/workers.js";
import type { JobRecord } from "../../src/model/job.js";
import { QueueService } from "../../src/services/queues.js";
import { Queue } from "../../src/queue.js";
import { eventually, useCliFixture, WORKER, workerStarted } from "../support/index.js";

/** Handlers the workers load: each marks its start on stderr so tests can see it run. */
const TASKS = `
const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener("abort", () => { clearTimeout(t); reject(signal.reason); }, { once: true });
});
export function add(payload) {
  return payload.a + payload.b;
}
export function fail() {
  throw new Error("always fails");
}
export async function nap(payload, ctx) {
  process.stderr.write(\`START \${ctx.id} attempt \${ctx.attempt} pid \${process.pid}\\n\`);
  await sleep(payload.ms, ctx.signal);
  return { pid: process.pid, ms: payload.ms };
}
`;

const cli = useCliFixture({ namespacePrefix: "c", tmpPrefix: "naq-worker-cli-", tasks: TASKS });

/** A fresh namespace; the CLI and a library Queue (closed after the test) on it. */
function fresh(extraEnv: Record<string, string> = {}) {
  const t = cli.fresh(extraEnv);
  const queue = new Queue("default", { config: { connection: { servers: [cli.server.url] }, namespace: t.namespace } });
  cli.cleanup(() => queue.close());
  return {
    ...t,
    queue,
    depth: async () => (await (await queue.services()).get(QueueService)).depth("default"),
  };
}

describe("naq job enqueue / status (CLI)", () => {
  it("--wait prints the result while a worker runs; a failed job exits 6", async () => {
    const t = fresh();
    const worker = t.spawn(WORKER);
    await workerStarted(worker);

    const ok = await t.run(["job", "enqueue", "add", '{"a":1,"b":2}', "--wait"]);
    expect(ok.stderr).toBe("");
    expect(ok).toMatchObject({ code: 0, stdout: "3\n" });

    const failed = await t.run(["job", "enqueue", "fail", "--retries", "0", "--wait"]);
    expect(failed.code).toBe(6);
    expect(failed.stdout).toBe("");
    expect(failed.stderr).toMatch(/failed after 1 attempt.*always fails/);
    expect(failed.stderr.trim().split("\n")).toHaveLength(1);

    const stopped = await worker.stop(10_000);
    expect(stopped.code).toBe(0);
  });

  it("--wait --wait-timeout 1s with no worker exits 4", async () => {
    const t = fresh();
    const r = await t.run(["job", "enqueue", "add", '{"a":1,"b":2}', "--wait", "--wait-timeout", "1s"]);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/timed out/);
    expect(r.durationMs).toBeLessThan(10_000);
  });

  it("status of an unknown job exits 3; a payload that is not JSON exits 2", async () => {
    const t = fresh();
    const unknown = await t.run(["job", "status", "no-such-job"]);
    expect(unknown.code).toBe(3);
    expect(unknown.stdout).toBe("");
    expect(unknown.stderr).toMatch(/no-such-job.*not found/);

    const bad = await t.run(["job", "enqueue", "x", "not json"]);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe("");
    expect(bad.stderr).toMatch(/not valid JSON/);
    expect(bad.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });
});

describe("naq worker start (CLI)", () => {
  it("kill -9 mid-job: the jobs complete on another worker, none lost", { timeout: 45_000 }, async () => {
    const t = fresh({ NAQ_ACK_WAIT: "2s" });
    const a = t.spawn([...WORKER, "--concurrency", "3"]);
    await workerStarted(a);
    const results = await t.queue.enqueueMany(Array.from({ length: 3 }, () => ({ task: "nap", payload: { ms: 2_500 } })));
    const ids = results.map((r) => {
      if (r instanceof Error) throw r;
      return r.id;
    });
    await eventually(() => expect(a.stderr().match(/^START /gm)).toHaveLength(3), { timeoutMs: 10_000, intervalMs: 50 });

    a.signal("SIGKILL");
    const dead = await a.exited;
    expect(dead.signal).toBe("SIGKILL");
    // Nothing was finished before the kill.
    for (const id of ids) await expect(t.queue.getResult(id)).rejects.toThrow(/not finished/);

    const b = t.spawn([...WORKER, "--concurrency", "3"]);
    await workerStarted(b);
    const records = await Promise.all(ids.map((id) => t.queue.getResult(id, { wait: true, timeoutMs: 20_000 })));
    for (const r of records) {
      expect(r).toMatchObject({ status: "completed", attempts: 2, result: { pid: b.pid, ms: 2_500 } });
      expect(r.worker).toContain(`-${b.pid}-`);
    }
    expect(b.stderr().match(/^START .* attempt 2 /gm)).toHaveLength(3);
    await eventually(async () => expect(await t.depth()).toMatchObject({ waiting: 0, inFlight: 0 }), { timeoutMs: 5_000 });
    expect((await b.stop(10_000)).code).toBe(0);
  });

  it("SIGTERM: the running job finishes within --grace, exit 0, queued jobs stay for the next worker", { timeout: 45_000 }, async () => {
    const t = fresh();
    const a = t.spawn([...WORKER, "--concurrency", "1", "--grace", "10s"]);
    await workerStarted(a);
    const results = await t.queue.enqueueMany(Array.from({ length: 3 }, () => ({ task: "nap", payload: { ms: 1_500 } })));
    const ids = results.map((r) => {
      if (r instanceof Error) throw r;
      return r.id;
    });
    await a.waitFor(/^START (\S+)/m, { stream: "stderr", timeoutMs: 10_000 });
    const first = /^START (\S+)/m.exec(a.stderr())?.[1] as string;
    expect(ids).toContain(first);

    const signalled = performance.now();
    a.signal("SIGTERM");
    const res = await a.exited;
    expect(res.signal).toBeNull();
    expect(res.code).toBe(0);
    expect(performance.now() - signalled).toBeLessThan(8_000);
    expect(res.stderr).toMatch(/SIGTERM: finishing running jobs/);
    expect(res.stderr.match(/^START /gm)).toHaveLength(1);

    expect(await t.queue.getResult(first)).toMatchObject({ status: "completed", attempts: 1 });
    await eventually(async () => expect(await t.depth()).toMatchObject({ waiting: 2, inFlight: 0 }), { timeoutMs: 5_000 });
    // The worker deregistered on the way out.
    expect(await t.json<WorkerInfo[]>(["worker", "list"])).toEqual([]);

    const b = await t.run([...WORKER, "--burst"]);
    expect(b.code).toBe(0);
    const records = await Promise.all(ids.map((id) => t.queue.getResult(id)));
    expect(records.map((r) => r.status)).toEqual(["completed", "completed", "completed"]);
    expect(records.map((r) => r.attempts)).toEqual([1, 1, 1]);
  });

  it("--burst exits 0 once the queue is empty; --max-jobs 3 exits after 3 jobs", { timeout: 30_000 }, async () => {
    const t = fresh();
    const five = await t.queue.enqueueMany(Array.from({ length: 5 }, (_, i) => ({ task: "add", payload: { a: i, b: 1 } })));
    const ids = five.map((r) => {
      if (r instanceof Error) throw r;
      return r.id;
    });

    const limited = await t.run([...WORKER, "--max-jobs", "3"]);
    expect(limited.code).toBe(0);
    expect(limited.stderr).toMatch(/stopped: 3 completed, 0 failed/);
    const done = (await Promise.all(ids.map((id) => t.queue.getResult(id).catch(() => undefined)))).filter(Boolean);
    expect(done).toHaveLength(3);
    await eventually(async () => expect(await t.depth()).toMatchObject({ waiting: 2, inFlight: 0 }), { timeoutMs: 5_000 });

    const burst = await t.run([...WORKER, "--burst"]);
    expect(burst.code).toBe(0);
    expect(burst.stderr).toMatch(/stopped: 2 completed, 0 failed/);
    const all = await Promise.all(ids.map((id) => t.queue.getResult(id)));
    expect(all.map((r) => r.result)).toEqual([1, 2, 3, 4, 5]);

    // An empty queue: --burst ends by itself, promptly.
    const empty = await t.run([...WORKER, "--burst"]);
    expect(empty.code).toBe(0);
    expect(empty.durationMs).toBeLessThan(10_000);
  });

  it("worker list --json shows a running worker with its queues", async () => {
    const t = fresh();
    const w = t.spawn(["worker", "start", "alpha", "beta", "--handlers", "tasks.mjs", "--name", "lister", "--concurrency", "4"]);
    await workerStarted(w);
    const list = await t.json<WorkerInfo[]>(["worker", "list"]);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ name: "lister", pid: w.pid, queues: ["alpha", "beta"], status: "running", concurrency: 4 });
    const names = await t.run(["worker", "list", "--names"]);
    expect(names.stdout.trim()).toBe(list[0]?.id);
    expect((await w.stop(10_000)).code).toBe(0);
    expect(await t.json<WorkerInfo[]>(["worker", "list"])).toEqual([]);
  });

  it("--json prints one NDJSON line per job on stdout and nothing else", async () => {
    const t = fresh();
    const results = await t.queue.enqueueMany([
      { task: "add", payload: { a: 1, b: 1 } },
      { task: "add", payload: { a: 2, b: 2 } },
      { task: "fail", retries: 0 },
    ]);
    const ids = results.map((r) => {
      if (r instanceof Error) throw r;
      return r.id;
    });
    const r = await t.run(["--json", ...WORKER, "--burst"]);
    expect(r.code).toBe(0);
    expect(r.stdout.endsWith("\n")).toBe(true);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    const parsed = lines.map((l) => JSON.parse(l) as { id: string; outcome: string; worker: string; at: string; queue: string; error?: string });
    expect(parsed.map((p) => p.id).sort()).toEqual([...ids].sort());
    const byId = new Map(parsed.map((p) => [p.id, p]));
    expect(byId.get(ids[0] as string)).toMatchObject({ outcome: "completed", queue: "default", task: "add", attempt: 1 });
    expect(byId.get(ids[2] as string)).toMatchObject({ outcome: "failed", task: "fail", error: "always fails" });
    for (const p of parsed) {
      expect(Number.isNaN(Date.parse(p.at))).toBe(false);
      expect(typeof p.worker).toBe("string");
    }
    const failed = await t.queue.getResult(ids[2] as string);
    expect(failed).toMatchObject({ status: "failed" } satisfies Partial<JobRecord>);
  });
});
