/**
 * Day-2 operations from the shell, against a real nats-server, running the CLI as a
 * subprocess: bulk NDJSON enqueue and cancel (queued and running). Dead letters, list and
 * logs are in dlq-cli.test.ts; queues, checks, stop and metrics in queue-cli.test.ts.
 */
import { describe, expect, it } from "vitest";
import type { JobRecord } from "../../src/model/job.js";
import { ndjson, OPS_TASKS, useCliFixture, WORKER } from "../support/index.js";

// Heartbeats every 500ms: `job list` sees running jobs (from heartbeats) sooner.
const { fresh } = useCliFixture({ namespacePrefix: "o", tmpPrefix: "naq-ops-cli-", tasks: OPS_TASKS, naqrc: { worker: { heartbeat: "500ms" } } });

describe("naq job enqueue --ndjson", () => {
  it("5,000 piped lines all run; a malformed line in the middle is reported with its number", { timeout: 60_000 }, async () => {
    const t = fresh();
    const lines = Array.from({ length: 5_000 }, (_, i) => JSON.stringify({ task: "add", payload: { a: i, b: 1 } }));
    lines[2_499] = '{"task": "add", "payload": {oops}';
    const r = await t.run(["--json", "job", "enqueue", "--ndjson", "-", "--retries", "0"], `${lines.join("\n")}\n`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: line 2500: not valid JSON/m);
    expect(r.stderr).toMatch(/1 of 5000 lines failed \(first: line 2500\); the other 4999 jobs were enqueued/);
    const out = ndjson<{ line: number; id: string; queue: string; seq: number; duplicate: boolean }>(r.stdout);
    expect(out).toHaveLength(4_999);
    expect(out.map((o) => o.line)).toEqual([...Array.from({ length: 2_499 }, (_, i) => i + 1), ...Array.from({ length: 2_500 }, (_, i) => i + 2_501)]);
    expect(new Set(out.map((o) => o.id)).size).toBe(4_999);
    expect(out.every((o) => o.queue === "default" && !o.duplicate)).toBe(true);

    const w = await t.run(["--json", ...WORKER, "--burst", "--concurrency", "100"], undefined, 50_000);
    expect(w.code).toBe(0);
    const done = ndjson<{ id: string; outcome: string }>(w.stdout);
    expect(done).toHaveLength(4_999);
    expect(done.every((d) => d.outcome === "completed")).toBe(true);
    expect(new Set(done.map((d) => d.id))).toEqual(new Set(out.map((o) => o.id)));
  });

  it("human output is one id per line; --strict enqueues nothing when a line is bad (exit 2)", async () => {
    const t = fresh();
    const ok = await t.run(["job", "enqueue", "--ndjson"], '{"task":"add","payload":{"a":1,"b":2}}\n\n{"task":"add","id":"fixed-1","queue":"other"}\n');
    expect(ok).toMatchObject({ code: 0, stderr: "" });
    const ids = ok.stdout.trim().split("\n");
    expect(ids).toHaveLength(2);
    expect(ids[1]).toBe("fixed-1");

    const strict = await t.run(["job", "enqueue", "--ndjson", "--strict", "--queue", "strict"], '{"task":"add"}\n{"task":"add","retries":"x"}\n');
    expect(strict.code).toBe(2);
    expect(strict.stdout).toBe("");
    expect(strict.stderr).toMatch(/line 2: "retries" must be a whole number; nothing was enqueued \(--strict\)/);
    const queues = await t.json<Array<{ name: string; waiting: number }>>(["queue", "list"]);
    expect(queues.find((q) => q.name === "strict")).toBeUndefined();
    expect(queues.find((q) => q.name === "other")).toMatchObject({ waiting: 1 });

    const missing = await t.run(["job", "enqueue", "--ndjson", "no-such-file.ndjson"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read no-such-file.ndjson: ENOENT/);
  });
});

describe("naq job cancel", () => {
  it("a queued job never runs; a running job's AbortSignal fires", { timeout: 50_000 }, async () => {
    const t = fresh();
    const [queuedId] = (await t.run(["job", "enqueue", "nap", '{"ms": 100}'])).stdout.trim().split("\n");
    const c1 = await t.run(["--json", "job", "cancel", queuedId as string, "--reason", "not needed"]);
    expect(c1.code).toBe(0);
    expect(JSON.parse(c1.stdout)).toMatchObject({ id: queuedId, status: "cancelled", reason: "not needed" });

    const worker = t.spawn(["--json", ...WORKER, "--concurrency", "2"]);
    await worker.waitFor(/"outcome":"cancelled"/, { timeoutMs: 15_000 });
    expect(worker.stderr()).not.toContain(`START ${queuedId}`);

    const runningId = (await t.run(["job", "enqueue", "nap", '{"ms": 60000}'])).stdout.trim();
    await worker.waitFor(`START ${runningId}`, { stream: "stderr", timeoutMs: 15_000 });
    const started = performance.now();
    const c2 = await t.run(["job", "cancel", runningId]);
    expect(c2).toMatchObject({ code: 0, stdout: `cancelled ${runningId}\n`, stderr: "" });
    await worker.waitFor(new RegExp(`"outcome":"cancelled"[^\\n]*${runningId}|${runningId}[^\\n]*"outcome":"cancelled"`), { timeoutMs: 10_000 });
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(await t.json<JobRecord>(["job", "status", runningId])).toMatchObject({ status: "cancelled" });

    // Already ended: exit 1; unknown: exit 3; several ids: each reported, exit of the first failure.
    const again = await t.run(["job", "cancel", runningId]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already cancelled/);
    const mixed = await t.run(["job", "cancel", "no-such-job", runningId]);
    expect(mixed.code).toBe(3);
    expect(mixed.stdout).toBe("");
    expect(mixed.stderr.trim().split("\n")).toHaveLength(3);
  });
});
