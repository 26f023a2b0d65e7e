/**
 * Dead letters, `job list` and `job logs` from the shell, against a real nats-server:
 * `job failed` shows the reason and last error, `retry --all` brings jobs back and they
 * complete once the cause is fixed; list shows queued, running and ended jobs; logs
 * prints ctx.log lines and --follow ends with the job.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { JobRecord } from "../../src/model/job.js";
import type { DeadLetter, JobSummary } from "../../src/services/jobs.js";
import { ndjson, OPS_TASKS, useCliFixture, WORKER } from "../support/index.js";

// Heartbeats every 500ms: `job list` sees running jobs (from heartbeats) sooner.
const cli = useCliFixture({ namespacePrefix: "d", tmpPrefix: "naq-dlq-cli-", tasks: OPS_TASKS, naqrc: { worker: { heartbeat: "500ms" } } });
const { fresh } = cli;

describe("dead letters: naq job failed / retry", () => {
  it("retry --all brings dead-lettered jobs back; they complete once the cause is fixed", { timeout: 50_000 }, async () => {
    const t = fresh();
    const flag = path.join(cli.dir, `flag-${t.namespace}`);
    const input = [1, 2, 3].map(() => JSON.stringify({ task: "needsFlag", payload: { flag }, retries: 0, queue: "fragile" })).join("\n");
    const ids = (await t.run(["job", "enqueue", "--ndjson"], input)).stdout.trim().split("\n");
    expect(ids).toHaveLength(3);
    expect((await t.run([...WORKER, "fragile", "--burst"])).code).toBe(0);

    const failed = await t.json<Array<DeadLetter & { seq: number }>>(["job", "failed", "--queue", "fragile"]);
    expect(failed.map((f) => f.id).sort()).toEqual([...ids].sort());
    for (const f of failed) {
      expect(f).toMatchObject({ queue: "fragile", task: "needsFlag", reason: "failed after 1 attempt", attempts: 1 });
      expect(f.error?.message).toMatch(/flag file missing/);
      expect(f.job?.payload).toEqual({ flag });
    }
    const human = await t.run(["job", "failed"]);
    expect(human.stdout).toMatch(/failed after 1 attempt.*flag file missing/);
    const listed = await t.json<JobSummary[]>(["job", "list", "--status", "failed"]);
    expect(listed.map((j) => j.id).sort()).toEqual([...ids].sort());

    await writeFile(flag, "fixed");
    const retried = await t.run(["--json", "job", "retry", "--all", "--queue", "fragile"]);
    expect(retried.code).toBe(0);
    expect(ndjson<{ id: string }>(retried.stdout).map((r) => r.id).sort()).toEqual([...ids].sort());
    expect(await t.json<unknown[]>(["job", "failed"])).toEqual([]);
    const queued = await t.json<JobSummary[]>(["job", "list", "--queue", "fragile"]);
    expect(queued.map((j) => j.status)).toEqual(["queued", "queued", "queued"]);

    expect((await t.run([...WORKER, "fragile", "--burst"])).code).toBe(0);
    const records = await Promise.all(ids.map((id) => t.json<JobRecord>(["job", "result", id])));
    for (const r of records) expect(r).toMatchObject({ status: "completed", attempts: 1, result: "ok" });

    const [none, usage] = await Promise.all([t.run(["job", "retry", "no-such-job"]), t.run(["job", "retry"])]);
    expect(none.code).toBe(3);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/or --all/);
  });
});

describe("naq job list / logs", () => {
  it("list shows delayed jobs as scheduled with their due time, after the queued ones and before the ended", { timeout: 30_000 }, async () => {
    const t = fresh();
    const done = (await t.run(["job", "enqueue", "add", '{"a":1,"b":1}'])).stdout.trim();
    expect((await t.run([...WORKER, "--burst"])).code).toBe(0);
    const queued = (await t.run(["job", "enqueue", "add", '{"a":2,"b":2}'])).stdout.trim();
    const later = (await t.run(["job", "enqueue", "add", '{"a":3,"b":3}', "--queue", "other", "--delay", "2h"])).stdout.trim();
    const soon = (await t.run(["job", "enqueue", "add", '{"a":4,"b":4}', "--delay", "1h"])).stdout.trim();

    const list = await t.json<JobSummary[]>(["job", "list"]);
    expect(list.map((j) => [j.id, j.status])).toEqual([
      [queued, "queued"],
      [soon, "scheduled"],
      [later, "scheduled"],
      [done, "completed"],
    ]);
    const soonRow = list[1] as JobSummary;
    expect(soonRow).toMatchObject({ queue: "default", task: "add", attempts: 0, maxAttempts: 4 });
    expect(Date.parse(soonRow.dueAt ?? "") - Date.now()).toBeGreaterThan(55 * 60_000);
    expect((await t.json<JobSummary[]>(["job", "list", "--status", "scheduled"])).map((j) => j.id)).toEqual([soon, later]);
    expect((await t.json<JobSummary[]>(["job", "list", "--queue", "other"])).map((j) => j.id)).toEqual([later]);
    expect((await t.json<JobSummary[]>(["job", "list", "--limit", "2"])).map((j) => j.id)).toEqual([queued, soon]);
    const human = await t.run(["job", "list", "--status", "scheduled"]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/\bDUE\b/);
    expect(human.stdout).toContain((soonRow.dueAt ?? "").replace(/\.\d{3}Z$/, "Z"));
    // Without delayed jobs the column is not there.
    expect((await t.run(["job", "list", "--status", "completed"])).stdout).not.toMatch(/\bDUE\b/);
  });

  it("list shows queued, running and ended jobs; logs prints ctx.log lines, --follow until the end", { timeout: 50_000 }, async () => {
    const t = fresh();
    const done = (await t.run(["job", "enqueue", "add", '{"a":1,"b":1}'])).stdout.trim();
    expect((await t.run([...WORKER, "--burst"])).code).toBe(0);
    const worker = t.spawn([...WORKER, "--concurrency", "1"]);
    await worker.waitFor(/worker \S+ started/, { stream: "stderr" });
    const running = (await t.run(["job", "enqueue", "nap", '{"ms": 60000}'])).stdout.trim();
    const waiting = (await t.run(["job", "enqueue", "add", '{"a":2,"b":2}'])).stdout.trim();
    await worker.waitFor(`START ${running}`, { stream: "stderr" });

    let list: JobSummary[] = [];
    // The worker's heartbeat lists its running job within one heartbeat.
    for (let i = 0; i < 40; i++) {
      list = await t.json<JobSummary[]>(["job", "list"]);
      if (list.find((j) => j.id === running)?.status === "running") break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(list.map((j) => [j.id, j.status])).toEqual([
      [running, "running"],
      [waiting, "queued"],
      [done, "completed"],
    ]);
    expect(await t.json<JobSummary[]>(["job", "list", "--status", "queued"])).toHaveLength(1);
    expect(await t.json<JobSummary[]>(["job", "list", "--limit", "1"])).toHaveLength(1);
    const bad = await t.run(["job", "list", "--status", "sleeping"]);
    expect(bad.code).toBe(2);
    expect((await t.run(["job", "cancel", running])).code).toBe(0);

    const chatty = (await t.run(["job", "enqueue", "chatty", '{"lines": 5, "gapMs": 150}'])).stdout.trim();
    const follow = t.spawn(["job", "logs", chatty, "--follow"]);
    const followed = await follow.exited;
    expect(followed.code).toBe(0);
    expect(followed.stdout).toBe("line 1\nline 2\nline 3\nline 4\nline 5\n");
    const logs = await t.run(["job", "logs", chatty]);
    expect(logs).toMatchObject({ code: 0, stdout: "line 1\nline 2\nline 3\nline 4\nline 5\n", stderr: "" });
    const events = ndjson<{ type: string; log?: string }>((await t.run(["--json", "job", "logs", chatty])).stdout);
    expect(events.map((e) => e.type)).toContain("completed");
    expect(events.filter((e) => e.log).map((e) => e.log)).toEqual(["line 1", "line 2", "line 3", "line 4", "line 5"]);
    // A job that already ended: --follow prints its history and exits.
    expect((await t.run(["job", "logs", chatty, "--follow"], undefined, 10_000)).code).toBe(0);
    expect((await t.run(["job", "logs", "no-such-job"])).code).toBe(3);
  });
});
