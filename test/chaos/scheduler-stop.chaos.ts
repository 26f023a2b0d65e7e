/**
 * Chaos: the scheduler leader is frozen. Two `naq scheduler start` processes with a short
 * leader lease fire two every-1s schedules (misfire `catch-up` and `skip`) and a stream of
 * one-shot delayed jobs into a queue that a worker process runs. The leader is stopped with
 * SIGSTOP for longer than its lease, the follower takes over, then the old leader gets
 * SIGCONT and both run side by side (the long version repeats this with several stop
 * lengths, down to just over the lease).
 *
 * Invariants: no due time fired twice (one `enqueued` event and one execution per job id,
 * and one fire reported per job id); a resumed old leader fires nothing before it leads
 * again; the `catch-up` schedule has every due time from its first run to its last; the
 * `skip` schedule's due times are each either fired or reported skipped, never both, never
 * neither; every delayed job ran exactly once.
 *
 * Recovery: from SIGSTOP of the leader until the new leader fired its first job.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/schema.js";
import { JobEventType } from "../../src/model/events.js";
import { ServiceManager } from "../../src/services/base.js";
import { SchedulerService } from "../../src/services/scheduler.js";
import { runCli, spawnCli, startServer, type SpawnedCli } from "../support/index.js";
import { eventCounts, startWorkerProc } from "./support/cluster-procs.js";
import type { WorkerChild } from "./support/harness.js";
import { readLedger } from "./support/ledger.js";
import { RssSampler } from "./support/proc.js";
import { recordScenario, scale } from "./support/report.js";

const NS = "chaossched";
const QUEUE = "chaos";
const LEASE_TTL_MS = 3_000;
const PERIOD_MS = 1_000;
/** Both schedulers run before the first stop. */
const WARMUP_MS = 8_000;
/** How long the leader is stopped, per cycle (all longer than the lease). */
const STOPS_MS = scale([8_000], [8_000, 4_000, 6_000, 12_000, 3_500, 9_000, 5_000]);
/**
 * Each cycle first schedules a burst of delayed jobs due at one moment, and stops the leader
 * this long after that moment: in the middle of firing them (claims and publishes in flight).
 */
const BURST = scale(200, 300);
const STOP_OFFSETS_MS = scale([120], [60, 120, 200, 30, 250, 100, 150]);
/** Both run side by side after each SIGCONT. */
const AFTER_MS = scale(10_000, 20_000);
const DELAYED_EVERY_MS = 400;
/** A takeover is certain when the stop outlasts the lease by this much (lease poll + expiry granularity). */
const TAKEOVER_SLACK_MS = 2_500;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Line {
  at: string;
  scheduler: string;
  event: string;
  kind?: string;
  name?: string;
  jobId?: string;
  dueAt?: string;
  /** When the tick that fired it began (the line itself is written when the tick ends). */
  firedAt?: string;
  duplicate?: boolean;
  recovered?: boolean;
  count?: number;
  capped?: boolean;
  firstDueAt?: string;
  lastDueAt?: string;
}

interface Cycle {
  victim: string;
  stopMs: number;
  stoppedAt: number;
  resumedAt?: number;
  /** SIGSTOP -> the other process reported it leads. */
  takeoverMs?: number;
  /** SIGSTOP -> the new leader's first fire. */
  recoveryMs?: number;
  /** SIGCONT -> the old leader reported it lost the lease. */
  noticedLossMs?: number;
  /** Burst jobs the successor fired (0 < n < BURST: the stop came in the middle of the burst). */
  burstBySuccessor?: number;
}

const dueOf = (jobId: string) => Number(jobId.slice(jobId.lastIndexOf("-") + 1));

describe("chaos: scheduler leader stopped", () => {
  it(`SIGSTOP of the scheduler leader for longer than its lease (${STOPS_MS.length} cycle${STOPS_MS.length > 1 ? "s" : ""}): no due time fires twice`, async () => {
    const started = Date.now();
    await using server = await startServer();
    const tmp = await mkdtemp(path.join(os.tmpdir(), "naq-chaos-sched-"));
    await writeFile(path.join(tmp, ".naqrc.json"), JSON.stringify({ kv: { leaderTtl: `${LEASE_TTL_MS}ms` } }));
    const ledger = path.join(tmp, "ledger.txt");
    const env = { NAQ_URL: server.url, NAQ_NAMESPACE: NS };
    const cli = async (args: string[]) => {
      const r = await runCli(args, { env, cwd: tmp });
      expect(r.code, `naq ${args.join(" ")}: ${r.stderr}`).toBe(0);
      return r;
    };
    const procs: SpawnedCli[] = [];
    let worker: WorkerChild | undefined;
    let sampler: RssSampler | undefined;
    try {
      await cli(["stream", "init"]);
      await cli(["scheduler", "add", "catchup", "record", "{}", "--every", `${PERIOD_MS}ms`, "--queue", QUEUE, "--misfire", "catch-up", "--retries", "0"]);
      await cli(["scheduler", "add", "skip", "record", "{}", "--every", `${PERIOD_MS}ms`, "--queue", QUEUE, "--misfire", "skip", "--retries", "0"]);

      // One-shot delayed jobs due all along the run, including while the leader is stopped.
      const plannedMs = WARMUP_MS + STOPS_MS.reduce((a, b) => a + b, 0) + STOPS_MS.length * AFTER_MS;
      const config = configSchema.parse({ connection: { servers: [server.url] }, namespace: NS, kv: { leaderTtl: `${LEASE_TTL_MS}ms` } });
      await using services = await ServiceManager.open(config, { longLived: true });
      const scheduling = await services.get(SchedulerService);
      const t0 = Date.now() + 2_000;
      const delayed: Array<{ input: { id: string; task: string; queue: string; payload: Record<string, never>; retries: number }; atMs: number }> = Array.from({ length: Math.floor((plannedMs - 2_000) / DELAYED_EVERY_MS) }, (_, i) => ({
        input: { id: `dl-${String(i).padStart(5, "0")}`, task: "record", queue: QUEUE, payload: {}, retries: 0 },
        atMs: t0 + i * DELAYED_EVERY_MS,
      }));
      const scheduled = await scheduling.scheduleJobs(delayed);
      expect(scheduled.filter((r) => r instanceof Error)).toEqual([]);

      worker = await startWorkerProc({ servers: [server.url], namespace: NS, ledger, cwd: tmp, concurrency: 10, name: "sched-w" });
      const ids = ["sA", "sB"];
      for (const id of ids) procs.push(spawnCli(["--json", "scheduler", "start", "--id", id, "--tick", "250ms"], { env, cwd: tmp }));
      for (const p of procs) await p.waitFor('"event":"started"', { timeoutMs: 30_000 });
      sampler = new RssSampler(() => ({ sA: procs[0]?.pid, sB: procs[1]?.pid, worker: worker?.pid }));

      const lines = (): Line[] => procs.flatMap((p) => p.json<Line>());
      const leaderNow = (): string | undefined =>
        lines()
          .filter((l) => l.event === "leader")
          .sort((a, b) => Date.parse(a.at) - Date.parse(b.at))
          .at(-1)?.scheduler;
      const procOf = (id: string) => procs[ids.indexOf(id)] as SpawnedCli;

      await sleep(WARMUP_MS);
      const cycles: Cycle[] = [];
      for (const [k, stopMs] of STOPS_MS.entries()) {
        const burstAt = Date.now() + 1_500;
        const burst = Array.from({ length: BURST }, (_, n) => ({
          input: { id: `burst${k}-${String(n).padStart(4, "0")}`, task: "record", queue: QUEUE, payload: {}, retries: 0 },
          atMs: burstAt,
        }));
        const r = await scheduling.scheduleJobs(burst);
        expect(r.filter((x) => x instanceof Error)).toEqual([]);
        delayed.push(...burst);
        await sleep(burstAt + (STOP_OFFSETS_MS[k] ?? 100) - Date.now());
        const victim = leaderNow();
        expect(victim, "a scheduler leads").toBeDefined();
        const other = ids.find((id) => id !== victim) as string;
        const c: Cycle = { victim: victim as string, stopMs, stoppedAt: Date.now() };
        cycles.push(c);
        procOf(c.victim).signal("SIGSTOP");
        const watchSuccessor = () => {
          const mine = lines().filter((l) => l.scheduler === other && Date.parse(l.at) >= c.stoppedAt);
          const lead = mine.find((l) => l.event === "leader");
          if (lead && c.takeoverMs === undefined) c.takeoverMs = Date.parse(lead.at) - c.stoppedAt;
          const fire = mine.find((l) => l.event === "fired");
          if (fire && c.recoveryMs === undefined) c.recoveryMs = Date.parse(fire.at) - c.stoppedAt;
        };
        const until = c.stoppedAt + stopMs;
        while (Date.now() < until) {
          watchSuccessor();
          await sleep(50);
        }
        procOf(c.victim).signal("SIGCONT");
        c.resumedAt = Date.now();
        const afterUntil = c.resumedAt + AFTER_MS;
        while (Date.now() < afterUntil) {
          watchSuccessor();
          const lost = lines().find((l) => l.scheduler === c.victim && l.event === "follower" && Date.parse(l.at) >= (c.resumedAt as number));
          if (lost && c.noticedLossMs === undefined) c.noticedLossMs = Date.parse(lost.at) - (c.resumedAt as number);
          await sleep(100);
        }
      }

      // Stop both (SIGTERM: the leader releases the lease), let the worker finish, count.
      for (const p of procs) await p.stop(10_000);
      const endedAt = Date.now();
      const all = lines();
      const delayedIds = delayed.map((d) => d.input.id);
      for (const [k, c] of cycles.entries()) {
        c.burstBySuccessor = all.filter((l) => l.event === "fired" && !l.duplicate && l.scheduler !== c.victim && l.jobId?.startsWith(`burst${k}-`)).length;
      }
      const fired = all.filter((l) => l.event === "fired");
      const expectedToRun = new Set([...fired.map((l) => l.jobId as string), ...delayedIds.filter((_, i) => (delayed[i]?.atMs ?? 0) < endedAt - 1_000)]);
      const drainUntil = Date.now() + 30_000;
      while (Date.now() < drainUntil) {
        const runs = readLedger(ledger).runs;
        if ([...expectedToRun].every((id) => runs.has(id))) break;
        await sleep(250);
      }
      await sleep(1_000); // a second execution, if there were one, would show up by now
      const peaks = sampler.stop();
      await worker.stop();
      const enqueuedCount = await eventCounts(services, QUEUE, JobEventType.enqueued);
      const enqueuedTotal = [...enqueuedCount.values()].reduce((a, b) => a + b, 0);

      // --- count ---------------------------------------------------------------------------
      const runs = readLedger(ledger).runs;
      const reportedFires = new Map<string, number>();
      for (const f of fired) if (!f.duplicate) reportedFires.set(f.jobId as string, (reportedFires.get(f.jobId as string) ?? 0) + 1);
      const absorbed = fired.filter((f) => f.duplicate).length;
      // Publishes a stopped leader had begun (lease checked) but not yet written when it was
      // stopped go out when it resumes; the successor has published those jobs again by then,
      // so they come back as duplicates, absorbed by the Msg-Id dedup.
      const absorbedAfterResume = cycles.map((c, k) => {
        const end = cycles[k + 1]?.stoppedAt ?? Number.POSITIVE_INFINITY;
        return fired.filter((f) => f.duplicate && f.scheduler === c.victim && Date.parse(f.at) >= (c.resumedAt ?? 0) && Date.parse(f.at) < end).length;
      });
      const recoveredFires = fired.filter((f) => f.recovered).length;
      const jobIds = new Set([...enqueuedCount.keys(), ...runs.keys(), ...reportedFires.keys()]);
      // Events are best effort: a publisher that never saw its publish acknowledged (stopped
      // past its request timeout, and the successor's second publish was absorbed) emits no
      // `enqueued`. Counted, not asserted; the ledger is what says how often a job ran.
      const noEnqueuedEvent = [...runs.keys()].filter((id) => !enqueuedCount.has(id));
      // Their stderr, less the expected notes (lease lost after a stop, SIGTERM at the end).
      const warnings = procs.flatMap((p) => p.stderr().split("\n").filter((l) => l.trim() !== "" && !/lost the leader lease|SIGTERM/.test(l)));
      const twice = [...jobIds].filter((id) => (enqueuedCount.get(id) ?? 0) > 1 || (runs.get(id) ?? 0) > 1 || (reportedFires.get(id) ?? 0) > 1);
      const duplicated = [...jobIds].reduce((n, id) => n + Math.max(0, (runs.get(id) ?? 0) - 1), 0);

      // A resumed old leader must not start firing before it leads again. (A tick begun
      // before the stop may still report after the SIGCONT what it published before.)
      let staleFires = 0;
      for (const c of cycles) {
        const resumed = c.resumedAt ?? 0;
        const mine = all.filter((l) => l.scheduler === c.victim && Date.parse(l.at) >= resumed).sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
        for (const l of mine) {
          if (l.event === "leader") break;
          if (l.event === "fired" && Date.parse(l.firedAt ?? l.at) >= resumed) staleFires++;
        }
      }

      // catch-up: every due time from the first to the last, once.
      const dues = (name: string) => [...jobIds].filter((id) => id.startsWith(`${name}-`)).map(dueOf).sort((a, b) => a - b);
      const catchup = dues("catchup");
      const catchupGaps: number[] = [];
      for (let i = 1; i < catchup.length; i++) {
        const gap = (catchup[i] as number) - (catchup[i - 1] as number);
        if (gap !== PERIOD_MS) catchupGaps.push(gap);
      }
      // skip: each due time fired or skipped, not both, not neither.
      const skipFired = new Set(dues("skip"));
      const skipped = new Set<number>();
      let skippedCount = 0;
      let skippedBoth = 0;
      let skipCountMismatch = 0;
      for (const s of all.filter((l) => l.event === "skipped" && l.name === "skip")) {
        skippedCount += s.count ?? 0;
        const first = Date.parse(s.firstDueAt as string);
        const last = Date.parse(s.lastDueAt as string);
        if ((last - first) / PERIOD_MS + 1 !== s.count) skipCountMismatch++;
        for (let d = first; d <= last; d += PERIOD_MS) {
          if (skipFired.has(d) || skipped.has(d)) skippedBoth++;
          skipped.add(d);
        }
      }
      const skipAll = [...skipFired, ...skipped].sort((a, b) => a - b);
      let skipHoles = 0;
      for (let i = 1; i < skipAll.length; i++) skipHoles += ((skipAll[i] as number) - (skipAll[i - 1] as number)) / PERIOD_MS - 1;
      const delayedDue = delayedIds.filter((_, i) => (delayed[i]?.atMs ?? 0) < endedAt - 1_000);
      const delayedLost = delayedDue.filter((id) => !runs.has(id));
      const catchupLastLagMs = endedAt - (catchup.at(-1) ?? 0);
      const lost = catchupGaps.reduce((n, g) => n + g / PERIOD_MS - 1, 0) + skipHoles + delayedLost.length + [...jobIds].filter((id) => (enqueuedCount.get(id) ?? 0) > 0 && !runs.has(id)).length;
      const recoveries = cycles.map((c) => c.recoveryMs).filter((r): r is number => r !== undefined);
      const ran = [...jobIds].filter((id) => runs.has(id)).length;
      const totalS = (Date.now() - started) / 1000;

      recordScenario({
        id: "scheduler-stop",
        scenario: `2 schedulers, lease ${LEASE_TTL_MS / 1000} s, every-1s schedules + delayed jobs; SIGSTOP of the leader for ${STOPS_MS.map((s) => `${s / 1000}`).join("/")} s, then SIGCONT`,
        jobs: jobIds.size,
        completed: ran,
        lost,
        duplicated,
        recoveryMs: recoveries.length > 0 ? Math.max(...recoveries) : null,
        peakRssMiB: Math.max(0, ...Object.values(peaks)) || null,
        notes:
          `due times fired twice: ${twice.length}; takeover after ${cycles.map((c) => (c.takeoverMs === undefined ? "none" : `${c.takeoverMs} ms`)).join(", ")}; ` +
          `catch-up schedule: ${catchup.length} runs, no gap; skip schedule: ${skipFired.size} fired, ${skippedCount} skipped by policy; ` +
          `${delayedDue.length} delayed jobs, ${BURST} of them due at once just before each stop ` +
          `(${cycles.map((c) => c.burstBySuccessor).join(", ")} of them fired by the successor); ` +
          `${recoveredFires} claimed by the stopped leader and published by its successor; ${absorbed} second publishes absorbed by Msg-Id dedup ` +
          `(${absorbedAfterResume.reduce((a, b) => a + b, 0)} sent by a resumed old leader); stale leader fires: ${staleFires}`,
        extra: {
          cycles: cycles.length,
          takeoverMs: cycles.map((c) => c.takeoverMs ?? -1).join(","),
          recoveryMs: cycles.map((c) => c.recoveryMs ?? -1).join(","),
          noticedLossMs: cycles.map((c) => c.noticedLossMs ?? -1).join(","),
          firedTwice: twice.length,
          staleFires,
          catchupRuns: catchup.length,
          catchupGaps: catchupGaps.length,
          catchupLastLagMs,
          skipFired: skipFired.size,
          skippedByPolicy: skippedCount,
          skipFiredAndSkipped: skippedBoth,
          skipHoles,
          skipCountMismatch,
          delayedDue: delayedDue.length,
          delayedLost: delayedLost.length,
          absorbedPublishes: absorbed,
          absorbedFromResumedLeader: absorbedAfterResume.join(","),
          recoveredFires,
          burstBySuccessor: cycles.map((c) => c.burstBySuccessor ?? -1).join(","),
          enqueuedEvents: enqueuedTotal,
          ranWithoutEnqueuedEvent: noEnqueuedEvent.length,
          schedulerWarnings: warnings.length,
          totalSeconds: Math.round(totalS),
        },
      });
      console.log(`[chaos] scheduler-stop: cycles ${JSON.stringify(cycles)}, twice ${JSON.stringify(twice.slice(0, 10))}, absorbed ${JSON.stringify(fired.filter((f) => f.duplicate).slice(0, 10).map((f) => ({ by: f.scheduler, job: f.jobId, at: f.at, firedAt: f.firedAt })))}, without an enqueued event ${JSON.stringify(noEnqueuedEvent.slice(0, 10))}, scheduler warnings ${JSON.stringify(warnings.slice(0, 10))}, ${totalS.toFixed(1)} s`);

      expect(twice, "job ids enqueued, run or reported fired more than once").toEqual([]);
      expect(duplicated).toBe(0);
      expect(staleFires, "fires by a resumed old leader before it led again").toBe(0);
      for (const c of cycles) {
        if (c.stopMs >= LEASE_TTL_MS + TAKEOVER_SLACK_MS) {
          expect(c.takeoverMs, `takeover while ${c.victim} was stopped ${c.stopMs} ms`).toBeDefined();
          expect(c.recoveryMs, `firing resumed while ${c.victim} was stopped ${c.stopMs} ms`).toBeDefined();
        }
        expect(c.noticedLossMs === undefined || c.noticedLossMs < LEASE_TTL_MS + 2_000).toBe(true);
      }
      expect(catchupGaps, "catch-up schedule: gaps between consecutive due times").toEqual([]);
      expect(catchup.length).toBeGreaterThanOrEqual(Math.floor((endedAt - started) / PERIOD_MS / 2));
      expect(catchupLastLagMs).toBeLessThan(5_000);
      expect(skippedBoth, "skip schedule: due times both fired and skipped").toBe(0);
      expect(skipHoles, "skip schedule: due times neither fired nor skipped").toBe(0);
      expect(skipCountMismatch, "skip reports whose count does not match their range").toBe(0);
      expect(delayedLost, "delayed jobs that never ran").toEqual([]);
      expect(lost).toBe(0);
    } finally {
      sampler?.stop();
      for (const p of procs) {
        p.signal("SIGCONT");
        await p.stop(5_000);
      }
      await worker?.stop(2_000);
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
