/**
 * Worker crashes: jobs on a queue served by 3 worker processes; every second one of them,
 * picked at random, is killed with SIGKILL (no shutdown, no NAK, no deregistration) and a
 * new one is started. Every job must complete; a job runs twice only if a killed worker had
 * it in flight (it comes back after ack_wait), so the duplicates are at most the jobs in
 * flight at the kills, and each one is traced to the worker that was killed.
 *
 * Fast: 4,000 jobs (CI). Long (`-- --long`): 10,000 jobs.
 * CHAOS_DEBUG=1 prints the timeline behind the figures.
 */
import { expect, it } from "vitest";
import path from "node:path";
import { Queue } from "../../src/queue.js";
import type { NaqConfigInput } from "../../src/config/schema.js";
import { startServer } from "../support/index.js";
import { LedgerReader, tally } from "./support/ledger.js";
import { recordScenario, scale } from "./support/report.js";
import { Inspector, recordTally, recoveryTimes, round, sleep, spawnWorker, tempDir, waitUntil, type Child } from "./support/harness.js";

const JOBS = scale(4_000, 10_000);
const WORKERS = 3;
const CONCURRENCY = 10;
const JOB_MS = 60;
const KILL_EVERY_MS = 1_000;
const ACK_WAIT_MS = 5_000;
const QUEUE = "chaos";

interface Kill {
  pid: number;
  at: number;
  /** Jobs delivered and not acked on the queue (all workers) right before the kill. */
  inFlight: number;
  /** Jobs not yet delivered to any worker at the kill. */
  waiting: number;
  replacement: Child;
}

it(`worker crashes: ${JOBS} jobs, ${WORKERS} workers, kill -9 one every second`, async () => {
  const server = await startServer();
  const tmp = tempDir("naq-chaos-wk-");
  const ledgerFile = path.join(tmp.dir, "ledger");
  const namespace = "wk";
  const config: NaqConfigInput = { connection: { servers: [server.url] }, namespace, queues: { defaults: { ackWait: ACK_WAIT_MS } } };
  const workers: Child[] = [];
  const queue = new Queue(QUEUE, { config });
  const inspector = await Inspector.open(config);
  let n = 0;
  const startWorker = (): Child => {
    const w = spawnWorker({
      servers: [server.url],
      namespace,
      ledger: ledgerFile,
      cwd: tmp.dir,
      concurrency: CONCURRENCY,
      name: `wk${++n}`,
      env: { NAQ_ACK_WAIT: `${ACK_WAIT_MS}ms` },
    });
    workers.push(w);
    return w;
  };
  try {
    for (let i = 0; i < WORKERS; i++) startWorker();
    await Promise.all(workers.map((w) => w.ready));

    const started = Date.now();
    const results = await queue.enqueueMany(
      Array.from({ length: JOBS }, (_, i) => ({ id: `wk-${i}`, task: "record", payload: { ms: JOB_MS } })),
      { window: 256 },
    );
    const sent = results.filter((r) => !(r instanceof Error)).map((r) => (r as { id: string }).id);
    const enqueueErrors = results.length - sent.length;

    const ledger = new LedgerReader(ledgerFile);
    const kills: Kill[] = [];
    const deadline = Date.now() + scale(120_000, 300_000);
    while (Date.now() < deadline) {
      await sleep(KILL_EVERY_MS);
      ledger.poll();
      if (ledger.distinct >= sent.length) break;
      const candidates = workers.filter((w) => w.alive && w.isReady);
      const victim = candidates[Math.floor(Math.random() * candidates.length)];
      if (!victim) continue;
      const { inFlight, waiting } = await inspector.depth(QUEUE);
      const at = Date.now();
      await victim.kill9();
      kills.push({ pid: victim.pid, at, inFlight, waiting, replacement: startWorker() });
    }
    const allRan = Date.now();
    // Jobs the last killed worker had in flight come back after ack_wait.
    await waitUntil(() => (ledger.poll(), ledger.distinct >= sent.length), scale(60_000, 120_000), 250);
    const drained = Date.now();
    let statuses = await inspector.terminalStatuses();
    await waitUntil(async () => {
      statuses = await inspector.terminalStatuses();
      return recordTally(sent, statuses).completed >= sent.length;
    }, 20_000, 500);
    await Promise.all(workers.map((w) => w.stop()));
    ledger.poll();

    // Counting.
    const t = tally(sent, ledger.counts());
    const rec = recordTally(sent, statuses);
    const lostIds = new Set([...t.lost, ...rec.missing, ...rec.wrong.map((w) => w.id)]);
    const killedAt = new Map(kills.map((k) => [k.pid, k]));
    // Every execution of a job but its last had its ack lost: it must have run in a killed worker.
    const byId = new Map<string, Array<{ pid: number; at: number }>>();
    for (const e of ledger.entries) {
      const list = byId.get(e.id) ?? [];
      list.push({ pid: e.pid, at: e.at });
      byId.set(e.id, list);
    }
    const dupPerKill = new Map<number, number>();
    let unattributed = 0;
    for (const runs of byId.values()) {
      if (runs.length < 2) continue;
      runs.sort((a, b) => a.at - b.at);
      for (const r of runs.slice(0, -1)) {
        if (killedAt.has(r.pid)) dupPerKill.set(r.pid, (dupPerKill.get(r.pid) ?? 0) + 1);
        else unattributed++;
      }
    }
    const inFlightAtKills = kills.reduce((a, k) => a + k.inFlight, 0);
    const overBound = kills.filter((k) => (dupPerKill.get(k.pid) ?? 0) > k.inFlight);
    // Completions flowing again after a kill, for the kills made while jobs were still
    // waiting: after the last job was handed out, what is left is jobs in flight on killed
    // workers, which come back after ack_wait whatever happens next.
    const busyKills = kills.filter((k) => k.waiting > 0);
    const recovery = recoveryTimes(busyKills.map((k) => k.at), ledger.entries, drained);
    const redelivered = ledger.entries.filter((e) => e.attempt > 1).length;
    if (process.env.CHAOS_DEBUG) {
      for (const [i, k] of kills.entries()) {
        const done = ledger.entries.filter((e) => e.at <= k.at).length;
        console.log(`kill ${i} +${k.at - started} ms pid ${k.pid} inFlight ${k.inFlight} waiting ${k.waiting} ran-before ${done}`);
      }
      const sorted = [...ledger.entries].sort((a, b) => a.at - b.at);
      console.log(sorted.slice(-80).map((e) => `+${e.at - started}:${e.pid}:${e.attempt}`).join(" "));
      console.log(workers.map((w) => `${w.name}/${w.pid} spawned +${w.spawnedAt - started} ready +${(w.readyAt ?? 0) - started}`).join("\n"));
    }
    const replacementReady = kills.map((k) => (k.replacement.readyAt ?? drained) - k.at);
    const firstByPid = new Map<number, number>();
    for (const e of ledger.entries) if (!firstByPid.has(e.pid) || e.at < (firstByPid.get(e.pid) as number)) firstByPid.set(e.pid, e.at);
    const replacementWorking = kills.map((k) => (firstByPid.get(k.replacement.pid) ?? drained) - k.at);
    const peaks = workers.map((w) => w.peakRss()).filter((v): v is number => v !== null);
    const peak = peaks.length > 0 ? Math.max(...peaks) : null;
    const secs = (drained - started) / 1000;

    recordScenario({
      id: "worker-kill",
      scenario: `Worker crashes: ${JOBS.toLocaleString("en-US")} jobs, ${WORKERS} workers x ${CONCURRENCY}, kill -9 one every ${KILL_EVERY_MS / 1000}s and start a new one`,
      jobs: sent.length,
      completed: rec.completed,
      lost: lostIds.size,
      duplicated: t.duplicated,
      recoveryMs: recovery.length > 0 ? Math.max(...recovery) : null,
      peakRssMiB: peak === null ? null : round(peak),
      notes:
        `${kills.length} kills; duplicates ${t.duplicated} <= ${inFlightAtKills} in flight at the kills, all from killed workers` +
        `${unattributed ? ` (NOT: ${unattributed} from live ones)` : ""}; ${redelivered} jobs came back after ack_wait (${ACK_WAIT_MS / 1000} s) and ran; a replacement took jobs after ` +
        `${Math.round(Math.max(0, ...replacementWorking))} ms at most; ${round(secs)} s`,
      extra: {
        kills: kills.length,
        killsWhileJobsWaiting: busyKills.length,
        redeliveredRuns: redelivered,
        inFlightAtKills,
        unattributedDuplicates: unattributed,
        killsOverBound: overBound.length,
        enqueueErrors,
        unexpectedIds: t.unexpected.length,
        ledgerLost: t.lost.length,
        recordsMissing: rec.missing.length,
        recordsNotCompleted: rec.wrong.length,
        maxReplacementReadyMs: Math.round(Math.max(0, ...replacementReady)),
        maxReplacementFirstJobMs: Math.round(Math.max(0, ...replacementWorking)),
        meanRecoveryMs: recovery.length > 0 ? Math.round(recovery.reduce((a, b) => a + b, 0) / recovery.length) : null,
        allRanAfterMs: allRan - started,
        drainedAfterMs: drained - started,
        jobsPerSecond: Math.round(sent.length / secs),
      },
    });

    expect(enqueueErrors).toBe(0);
    expect(kills.length).toBeGreaterThanOrEqual(scale(4, 10));
    expect([...lostIds].slice(0, 10)).toEqual([]);
    expect(t.unexpected).toEqual([]);
    expect(unattributed).toBe(0);
    expect(overBound.map((k) => ({ pid: k.pid, inFlight: k.inFlight, dup: dupPerKill.get(k.pid) }))).toEqual([]);
    expect(t.duplicated).toBeLessThanOrEqual(inFlightAtKills);
  } finally {
    await Promise.all(workers.map((w) => w.kill9()));
    await queue.close().catch(() => undefined);
    await inspector.close().catch(() => undefined);
    await server[Symbol.asyncDispose]();
    tmp.remove();
  }
});
