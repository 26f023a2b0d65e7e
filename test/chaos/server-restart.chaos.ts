/**
 * Server restart: a producer enqueues jobs at a steady rate while two worker processes run
 * them and a scheduler process fires delayed jobs and an `--every 1s` schedule (misfire
 * catch-up); the file-storage nats-server is restarted twice in the middle, on the same
 * store: first cleanly (SIGTERM), then as after a crash (SIGKILL: the server's last
 * consumer acks may not be on disk). The worker and scheduler processes are never restarted: they must
 * reconnect and carry on. The producer retries a failed enqueue with the same job id, and
 * Msg-Id dedup must make that one job: the ledger tells a second stored message (another
 * enqueuedAt) from a redelivery of the same one.
 *
 * Fast: 3,000 jobs in ~20 s. Long: 5,000 jobs in ~40 s.
 * CHAOS_DEBUG=1 prints the timeline behind the figures.
 */
import { expect, it } from "vitest";
import path from "node:path";
import { Queue } from "../../src/queue.js";
import type { NaqConfigInput } from "../../src/config/schema.js";
import { startServer } from "../support/index.js";
import { LedgerReader, tally, type LedgerEntry } from "./support/ledger.js";
import { recordScenario, scale } from "./support/report.js";
import {
  Inspector,
  naq,
  recordTally,
  round,
  sleep,
  spawnNaq,
  spawnWorker,
  tempDir,
  waitUntil,
  type Child,
} from "./support/harness.js";

const JOBS = scale(3_000, 5_000);
const RATE = scale(150, 125); // jobs per second
const LANES = 16;
const DELAYED = 24;
const ACK_WAIT_MS = 5_000;
const QUEUE = "chaos";
const RETRY_DELAY_MS = 200;

interface Restart {
  kind: "SIGTERM" | "SIGKILL";
  at: number;
  backAt: number;
  inFlight: number;
}

interface Fired {
  event: string;
  jobId: string;
  kind: string;
  dueAt: string;
  firedAt: string;
  recovered?: boolean;
  duplicate: boolean;
}

it(`server restart: ${JOBS} jobs, the nats-server restarted twice under the same worker and scheduler processes`, async () => {
  const server = await startServer();
  const tmp = tempDir("naq-chaos-sr-");
  const ledgerFile = path.join(tmp.dir, "ledger");
  const namespace = "sr";
  const env = { NAQ_URL: server.url, NAQ_NAMESPACE: namespace, NAQ_ACK_WAIT: `${ACK_WAIT_MS}ms` };
  // The producer's requests time out after 2 s, then it retries with the same id.
  const config: NaqConfigInput = { connection: { servers: [server.url] }, namespace, timeout: 2_000, queues: { defaults: { ackWait: ACK_WAIT_MS } } };
  const queue = new Queue(QUEUE, { config });
  const inspector = await Inspector.open(config);
  const workers: Child[] = [];
  let scheduler: Child | undefined;
  try {
    await naq(["stream", "init"], { cwd: tmp.dir, env });
    for (let i = 1; i <= 2; i++) {
      workers.push(spawnWorker({ servers: [server.url], namespace, ledger: ledgerFile, cwd: tmp.dir, concurrency: 10, name: `sr${i}`, env: { NAQ_ACK_WAIT: `${ACK_WAIT_MS}ms` } }));
    }
    scheduler = spawnNaq(["--json", "scheduler", "start", "--tick", "250ms"], { name: "scheduler", cwd: tmp.dir, env, readyOn: /"event":"started"/, keepStdout: true });
    await Promise.all([...workers.map((w) => w.ready), scheduler.ready]);
    const pids = { workers: workers.map((w) => w.pid), scheduler: scheduler.pid };

    const durationMs = (JOBS / RATE) * 1000;
    await naq(["scheduler", "add", "tick", "record", "{}", "--every", "1s", "--queue", QUEUE, "--misfire", "catch-up"], { cwd: tmp.dir, env });
    const t0 = Date.now();
    const delayedIds: string[] = [];
    for (let i = 0; i < DELAYED; i++) {
      const id = `sr-delayed-${i}`;
      await queue.enqueueAt(t0 + 1_000 + Math.round(((durationMs - 1_000) * i) / DELAYED), "record", { ms: 5 }, { id });
      delayedIds.push(id);
    }

    // The producer: job i is due at t0 + i / RATE; a failed enqueue is retried with the same id.
    const sent: string[] = [];
    let retries = 0;
    let dupAcks = 0;
    let next = 0;
    const producing = Promise.all(
      Array.from({ length: LANES }, async () => {
        for (;;) {
          const i = next++;
          if (i >= JOBS) return;
          const due = t0 + (i * 1000) / RATE;
          if (due > Date.now()) await sleep(due - Date.now());
          const id = `sr-${i}`;
          for (;;) {
            try {
              const r = await queue.enqueue("record", { ms: 20 }, { id });
              if (r.duplicate) dupAcks++;
              sent.push(id);
              break;
            } catch {
              retries++;
              await sleep(RETRY_DELAY_MS);
            }
          }
        }
      }),
    );

    const ledger = new LedgerReader(ledgerFile);
    const restarts: Restart[] = [];
    for (const [frac, kind] of [
      [0.3, "SIGTERM"],
      [0.65, "SIGKILL"],
    ] as const) {
      const when = t0 + durationMs * frac;
      if (when > Date.now()) await sleep(when - Date.now());
      const { inFlight } = await inspector.depth(QUEUE);
      const at = Date.now();
      if (kind === "SIGKILL") {
        await server.kill();
        await server.start();
      } else await server.restart();
      restarts.push({ kind, at, backAt: Date.now(), inFlight });
    }
    await producing;
    const producedAt = Date.now();
    // Let the schedule run past the last restart, then stop it and see what it fired.
    await sleep(Math.max(0, restarts[1] ? restarts[1].backAt + 4_000 - Date.now() : 0));
    await naq(["scheduler", "pause", "tick"], { cwd: tmp.dir, env });
    await sleep(1_000);
    const tickDoc = JSON.parse(await naq(["--json", "scheduler", "show", "tick"], { cwd: tmp.dir, env })) as { runs: number };
    const fired = scheduler
      .stdout()
      .split("\n")
      .filter((l) => l.includes('"event":"fired"'))
      .map((l) => JSON.parse(l) as Fired);
    const tickIds = [...new Set(fired.filter((f) => f.kind === "schedule").map((f) => f.jobId))];
    const firedDelayed = new Set(fired.filter((f) => f.kind === "delayed").map((f) => f.jobId));
    const all = [...sent, ...delayedIds, ...tickIds];

    await waitUntil(() => (ledger.poll(), all.every((id) => ledger.runs.has(id))), scale(90_000, 120_000), 250);
    const drained = Date.now();
    let statuses = await inspector.terminalStatuses();
    await waitUntil(async () => {
      statuses = await inspector.terminalStatuses();
      return recordTally(all, statuses).completed >= all.length;
    }, 20_000, 500);
    if (process.env.CHAOS_DEBUG) {
      console.log(JSON.stringify(restarts));
      for (const c of [...workers, scheduler]) console.log(`--- ${c.name} stderr\n${c.stderr()}`);
    }
    const stillAlive = { workers: workers.map((w) => w.alive), scheduler: scheduler.alive };
    const peaks = [...workers, scheduler].map((c) => c.peakRss()).filter((v): v is number => v !== null);
    await Promise.all(workers.map((w) => w.stop()));
    await scheduler.stop();
    ledger.poll();

    // Counting.
    const t = tally(all, ledger.counts());
    const rec = recordTally(all, statuses);
    const lost = new Set([...t.lost, ...rec.missing, ...rec.wrong.map((w) => w.id)]);
    const byId = new Map<string, LedgerEntry[]>();
    for (const e of ledger.entries) byId.set(e.id, [...(byId.get(e.id) ?? []), e]);
    const distinctMessages = (id: string) => new Set((byId.get(id) ?? []).map((e) => e.enqueuedAt)).size;
    const producerDoubles = sent.filter((id) => distinctMessages(id) > 1);
    const schedulerDoubles = [...delayedIds, ...tickIds].filter((id) => distinctMessages(id) > 1);
    const inFlightAtRestarts = restarts.reduce((a, r) => a + r.inFlight, 0);
    // A job may run twice only if a restart cut off its record write or its ack (or, after
    // SIGKILL, the server's note of the ack): its earlier run ended shortly before the stop or
    // while the server was down. After the clean restart, at most the jobs then in flight.
    const SLOTS = 2 * 10;
    const windowOf = (at: number) => restarts.findIndex((r) => at >= r.at - 3_000 && at <= r.backAt + 1_000);
    const dupPerRestart = restarts.map(() => 0);
    const dupOutsideRestarts: string[] = [];
    for (const [id, runs] of byId) {
      if (runs.length < 2) continue;
      for (const e of [...runs].sort((a, b) => a.at - b.at).slice(0, -1)) {
        const w = windowOf(e.at);
        if (w < 0) dupOutsideRestarts.push(id);
        else dupPerRestart[w] = (dupPerRestart[w] ?? 0) + 1;
      }
    }
    const cleanBound = (restarts[0]?.inFlight ?? 0) + SLOTS;
    // Completions after each restart, by each worker; scheduled runs fired after each restart.
    const workedAfter = restarts.map((r) => pids.workers.map((pid) => ledger.entries.filter((e) => e.pid === pid && e.at > r.backAt).length));
    const firedAfter = restarts.map((r) => fired.filter((f) => Date.parse(f.firedAt) > r.backAt).length);
    const recovery = restarts.map((r) => {
      const first = ledger.entries.filter((e) => e.at > r.backAt).reduce((m, e) => Math.min(m, e.at), Number.POSITIVE_INFINITY);
      return (Number.isFinite(first) ? first : drained) - r.at;
    });
    const downtime = restarts.map((r) => r.backAt - r.at);
    const dues = tickIds.map((id) => Number(id.slice("tick-".length))).sort((a, b) => a - b);
    const tickGaps = dues.slice(1).filter((d, i) => d - (dues[i] as number) !== 1_000).length;
    const peak = peaks.length > 0 ? Math.max(...peaks) : null;

    recordScenario({
      id: "server-restart",
      scenario: `Server restart: ${JOBS.toLocaleString("en-US")} jobs at ${RATE}/s + ${DELAYED} delayed + an every-1s schedule; file-storage nats-server restarted twice (SIGTERM, then SIGKILL); same 2 workers and scheduler`,
      jobs: all.length,
      completed: rec.completed,
      lost: lost.size,
      duplicated: t.duplicated,
      recoveryMs: Math.max(...recovery),
      peakRssMiB: peak === null ? null : round(peak),
      notes:
        `${retries} producer retries (same id), ${dupAcks} answered "duplicate", ${producerDoubles.length} jobs stored twice; ` +
        `redeliveries of jobs cut off by a restart: ${restarts.map((r, i) => `${dupPerRestart[i]} (${r.kind}, ${r.inFlight} in flight)`).join(", ")}; ` +
        `${tickIds.length} schedule runs with ${tickGaps} gaps, ${firedDelayed.size}/${DELAYED} delayed fired; server down ${downtime.map((d) => round(d / 1000)).join(" s, ")} s`,
      extra: {
        producerJobs: sent.length,
        delayed: DELAYED,
        scheduleRuns: tickIds.length,
        scheduleRunsInDoc: tickDoc.runs,
        producerRetries: retries,
        duplicateAcks: dupAcks,
        producerDoubles: producerDoubles.length,
        schedulerDoubles: schedulerDoubles.length,
        inFlightAtRestarts,
        duplicatesPerRestart: dupPerRestart.join(","),
        cleanRestartBound: cleanBound,
        duplicatesOutsideRestarts: dupOutsideRestarts.length,
        downtimeMs: downtime.join(","),
        recoveryMs: recovery.map(Math.round).join(","),
        workedAfterRestart: JSON.stringify(workedAfter),
        firedAfterRestart: firedAfter.join(","),
        unexpectedIds: t.unexpected.length,
        producedAfterMs: producedAt - t0,
        drainedAfterMs: drained - t0,
      },
    });

    expect([...lost].slice(0, 10)).toEqual([]);
    expect(t.unexpected).toEqual([]);
    // A producer retry never made a second job; neither did a scheduler republish.
    expect(producerDoubles).toEqual([]);
    expect(schedulerDoubles).toEqual([]);
    expect(dupOutsideRestarts).toEqual([]);
    expect(dupPerRestart[0]).toBeLessThanOrEqual(cleanBound);
    // The same processes carried on: alive at the end, and working after each restart.
    expect(stillAlive).toEqual({ workers: [true, true], scheduler: true });
    expect(workedAfter.flat().every((n) => n > 0)).toBe(true);
    expect(firedAfter.every((n) => n > 0)).toBe(true);
    // Every delayed job fired (once), the schedule fired every second (catch-up), each run once.
    expect(firedDelayed.size).toBe(DELAYED);
    expect(tickGaps).toBe(0);
    expect(tickIds.length).toBe(tickDoc.runs);
  } finally {
    await Promise.all(workers.map((w) => w.kill9()));
    await scheduler?.kill9();
    await queue.close().catch(() => undefined);
    await inspector.close().catch(() => undefined);
    await server[Symbol.asyncDispose]();
    tmp.remove();
  }
});
