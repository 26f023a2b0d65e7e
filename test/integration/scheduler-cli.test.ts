/**
 * `naq scheduler` and `naq job enqueue --delay/--at` as subprocesses against a real
 * nats-server: a delayed job runs on time through a worker and a scheduler process; three
 * `naq scheduler start` processes fire an every-1s schedule once per due time while the
 * leader is killed with SIGKILL (and a SIGTERM hands over at once); schedule management
 * commands, their JSON, and their errors and exit codes.
 */
import { describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/schema.js";
import type { JobRecord } from "../../src/model/job.js";
import { ServiceManager } from "../../src/services/base.js";
import type { ScheduleInfo } from "../../src/services/scheduler.js";
import { StreamService } from "../../src/services/streams.js";
import { eventually, runCli, useCliFixture, type SpawnedCli } from "../support/index.js";

const LEASE_TTL_MS = 3_000;

const TASKS = `
export function hello(payload, ctx) {
  return { startedAt: Date.now(), id: ctx.id };
}
export function noop() {
  return null;
}
`;

const cli = useCliFixture({ namespacePrefix: "cs", tmpPrefix: "naq-sched-cli-", tasks: TASKS, naqrc: { kv: { leaderTtl: `${LEASE_TTL_MS}ms` } } });
const { fresh } = cli;

interface Line {
  event: string;
  scheduler: string;
  at: string;
  jobId?: string;
  firedAt?: string;
}

describe("naq job enqueue --delay / --at", () => {
  it("a job with --delay 2s is scheduled, then runs between 2s and 3.5s after it was enqueued", { timeout: 30_000 }, async () => {
    const c = fresh();
    const worker = c.spawn(["worker", "start", "--handlers", "tasks.mjs"]);
    await worker.waitFor(/worker .* started/, { stream: "stderr" });
    const sched = c.spawn(["--json", "scheduler", "start", "--id", "only"]);
    await sched.waitFor('"event":"leader"');
    const job = await c.json<{ id: string; dueAt: string; scheduled: boolean }>(["job", "enqueue", "hello", "{}", "--delay", "2s"]);
    expect(job.scheduled).toBe(true);
    const enqueuedAt = Date.parse(job.dueAt) - 2_000;
    expect((await c.json<{ status: string }>(["job", "status", job.id])).status).toBe("scheduled");
    const record = await c.json<JobRecord>(["job", "result", job.id, "--wait", "--wait-timeout", "10s"]);
    const ranAfter = (record.result as { startedAt: number }).startedAt - enqueuedAt;
    expect(ranAfter).toBeGreaterThanOrEqual(2_000);
    expect(ranAfter).toBeLessThanOrEqual(3_500);
    expect(sched.json<Line>().some((l) => l.event === "fired" && l.jobId === job.id)).toBe(true);
  });

  it("--at needs a zone: an offset, Z, or --tz; a delayed job can be cancelled", async () => {
    const c = fresh();
    const bad = await c.run(["job", "enqueue", "hello", "--at", "2030-01-01T09:00:00"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--at "2030-01-01T09:00:00" has no time zone: add Z or an offset .* or give --tz/);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
    const both = await c.run(["job", "enqueue", "hello", "--at", "2030-01-01T09:00:00Z", "--delay", "1m"]);
    expect(both.code).toBe(2);
    const berlin = await c.json<{ id: string; dueAt: string }>(["job", "enqueue", "hello", "--at", "2030-01-01T09:00:00", "--tz", "Europe/Berlin"]);
    expect(berlin.dueAt).toBe("2030-01-01T08:00:00.000Z");
    const cancelled = await c.json<JobRecord>(["job", "cancel", berlin.id]);
    expect(cancelled.status).toBe("cancelled");
    expect((await c.json<{ status: string }>(["job", "status", berlin.id])).status).toBe("cancelled");
  });
});

describe("naq scheduler start (three processes)", () => {
  it("fires each due time of an every-1s schedule exactly once over 20 s while the leader is SIGKILLed", { timeout: 50_000 }, async () => {
    const c = fresh();
    await c.json(["scheduler", "add", "beat", "noop", "--every", "1s", "--misfire", "catch-up"]);
    const procs = ["s1", "s2", "s3"].map((id) => c.spawn(["--json", "scheduler", "start", "--id", id, "--tick", "250ms"]));
    const leaderOf = () => {
      const events = procs.flatMap((p) => p.json<Line>()).filter((l) => l.event === "leader");
      return events.sort((a, b) => Date.parse(a.at) - Date.parse(b.at)).at(-1)?.scheduler;
    };
    await eventually(() => expect(leaderOf()).toBeDefined(), { timeoutMs: 10_000 });
    const started = Date.now();
    await new Promise((r) => setTimeout(r, 8_000));
    const first = leaderOf() as string;
    const victim = procs[["s1", "s2", "s3"].indexOf(first)] as SpawnedCli;
    const killedAt = Date.now();
    victim.signal("SIGKILL");
    await eventually(() => expect(leaderOf()).not.toBe(first), { timeoutMs: LEASE_TTL_MS + 5_000, intervalMs: 50 });
    const second = leaderOf() as string;
    const successor = procs[["s1", "s2", "s3"].indexOf(second)] as SpawnedCli;
    // Firing resumes within the lease TTL (plus one lease poll and a tick).
    await eventually(() => expect(successor.json<Line>().some((l) => l.event === "fired")).toBe(true), { timeoutMs: LEASE_TTL_MS + 3_000, intervalMs: 50 });
    const resumedAfter = Math.min(...successor.json<Line>().filter((l) => l.event === "fired").map((l) => Date.parse(l.at))) - killedAt;
    expect(resumedAfter).toBeLessThanOrEqual(LEASE_TTL_MS + 1_500);
    await new Promise((r) => setTimeout(r, Math.max(0, 20_000 - (Date.now() - started))));

    // SIGTERM releases the lease at once: the third process leads within about a second.
    const stoppedAt = Date.now();
    const result = await successor.stop(5_000);
    expect(result.code).toBe(0);
    await eventually(() => expect(leaderOf()).not.toBe(second), { timeoutMs: 2_000, intervalMs: 50 });
    expect(Date.now() - stoppedAt).toBeLessThan(LEASE_TTL_MS);
    for (const p of procs) await p.stop(5_000);

    // What reached JetStream: one job per due time, every due time from the first to the last.
    await using services = await ServiceManager.open(configSchema.parse({ connection: { servers: [cli.server.url] }, namespace: c.namespace }));
    const streams = await services.get(StreamService);
    const jobs = services.ctx.names.jobsStream;
    const info = await streams.info(jobs);
    const ids: string[] = [];
    for (let seq = info.firstSeq; seq <= info.lastSeq; seq++) {
      const m = await streams.bySequence(jobs, seq);
      if (m) ids.push((JSON.parse(new TextDecoder().decode(m.data)) as { id: string }).id);
    }
    expect(new Set(ids).size).toBe(ids.length);
    const dues = ids.map((id) => Number(id.slice("beat-".length))).sort((a, b) => a - b);
    for (let i = 1; i < dues.length; i++) expect((dues[i] as number) - (dues[i - 1] as number)).toBe(1_000);
    expect(dues.length).toBeGreaterThanOrEqual(18);
    const reported = procs.flatMap((p) => p.json<Line>()).filter((l) => l.event === "fired").map((l) => l.jobId);
    expect(new Set(reported).size).toBe(reported.length);
  });
});

describe("naq scheduler (management)", () => {
  it("adds (upsert), lists, shows, pauses, resumes, triggers and removes schedules", async () => {
    const c = fresh();
    const added = await c.json<ScheduleInfo & { created: boolean }>(["scheduler", "add", "report", "hello", '{"k":1}', "--cron", "0 9 * * 1-5", "--tz", "Europe/Berlin", "--queue", "reports", "--retries", "2", "--label", "team=ops"]);
    expect(added).toMatchObject({ name: "report", created: true, status: "active", job: { task: "hello", queue: "reports", payload: { k: 1 }, retries: 2, labels: { team: "ops" } }, recurrence: { kind: "cron", cron: "0 9 * * 1-5", tz: "Europe/Berlin" } });
    const updated = await c.json<ScheduleInfo & { created: boolean }>(["scheduler", "add", "report", "hello", "--cron", "0 10 * * 1-5", "--tz", "Europe/Berlin", "--misfire", "fire-once"]);
    expect(updated).toMatchObject({ created: false, misfire: "fire-once" });
    await c.json(["scheduler", "add", "sync", "noop", "--every", "15m", "--limit", "3", "--jitter", "10s"]);

    const list = await c.json<ScheduleInfo[]>(["scheduler", "list"]);
    expect(list.map((s) => [s.name, s.status, s.runs])).toEqual([["report", "active", 0], ["sync", "active", 0]]);
    const human = await c.run(["scheduler", "list"]);
    expect(human.stdout).toMatch(/NAME.*TASK.*QUEUE.*SCHEDULE.*NEXT RUN.*LAST RUN.*RUNS.*STATUS/);
    expect(human.stdout).toMatch(/report .*cron 0 10 \* \* 1-5 \(Europe\/Berlin\)/);
    expect(human.stdout).toMatch(/sync .*every 15m .*0\/3 .*active/);

    const shown = await c.json<ScheduleInfo & { upcoming: string[] }>(["scheduler", "show", "report", "--next", "3"]);
    expect(shown.upcoming).toHaveLength(3);
    for (const t of shown.upcoming) expect(new Date(t).getUTCHours()).toBeGreaterThanOrEqual(8);

    expect((await c.json<ScheduleInfo>(["scheduler", "pause", "report"])).status).toBe("paused");
    expect((await c.json<ScheduleInfo>(["scheduler", "resume", "report"])).status).toBe("active");
    const trig = await c.run(["scheduler", "trigger", "sync"]);
    expect(trig.code).toBe(0);
    expect(trig.stdout.trim()).toMatch(/^sync-t\d+$/);
    expect((await c.json<{ status: string }>(["job", "status", trig.stdout.trim()])).status).toBe("queued");

    const refused = await c.run(["scheduler", "remove", "sync"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--force/);
    expect((await c.run(["scheduler", "remove", "sync", "--force"])).code).toBe(0);
    const gone = await c.run(["scheduler", "show", "sync"]);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(/schedule sync not found/);
  });

  it("rejects bad timing with one clear line and exit 2", async () => {
    const c = fresh();
    const cases: Array<[string[], RegExp]> = [
      [["scheduler", "add", "x", "t"], /give the timing: --cron <expr> .* or --every <duration>/],
      [["scheduler", "add", "x", "t", "--cron", "* * *"], /cron "\* \* \*" has 3 fields: expected a cron expression of 5 fields/],
      [["scheduler", "add", "x", "t", "--cron", "0 9 * * *", "--tz", "Berlin"], /tz "Berlin" is not a time zone/],
      [["scheduler", "add", "x", "t", "--every", "1m", "--cron", "* * * * *"], /either --cron or --every/],
      [["scheduler", "add", "x", "t", "--every", "1m", "--start-at", "2030-01-01T00:00:00"], /--start-at .* has no time zone/],
      [["scheduler", "add", "x", "t", "--every", "1m", "--misfire", "later"], /--misfire/],
      [["scheduler", "add", "_x", "t", "--every", "1m"], /reserved/],
    ];
    for (const [args, message] of cases) {
      const r = await c.run(args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr, args.join(" ")).toMatch(message);
      expect(r.stderr.trim().split("\n"), args.join(" ")).toHaveLength(1);
    }
  });

  it("every scheduler command has --help with examples", async () => {
    for (const sub of ["add", "list", "show", "pause", "resume", "remove", "trigger", "start"]) {
      const r = await runCli(["scheduler", sub, "--help"]);
      expect(r.code, sub).toBe(0);
      expect(r.stdout, sub).toMatch(/Examples:\n {2}\$ naq scheduler/);
    }
  });
});
