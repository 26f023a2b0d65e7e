/**
 * Slow consumer / backpressure: the queue is paused (`naq queue pause`) while a producer
 * process (`naq job enqueue --ndjson`) enqueues a large backlog; two worker processes are
 * running all along; then the queue is resumed and drained. Nothing may run while paused,
 * nothing may be lost, and no process may buffer the backlog: a worker pulls only as many
 * jobs as it has free slots, so its memory must not grow with the backlog (a fixed bound in
 * MiB, the same for 15k and 100k jobs), and the producer streams its input.
 *
 * Fast: 15,000 jobs. Long: 100,000 jobs.
 */
import { expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import path from "node:path";
import type { NaqConfigInput } from "../../src/config/schema.js";
import { startServer } from "../support/index.js";
import { LedgerReader, tally } from "./support/ledger.js";
import { peakRssMiB, rssMiB } from "./support/proc.js";
import { recordScenario, scale } from "./support/report.js";
import { Inspector, naq, recordTally, round, sleep, spawnNaq, spawnWorker, tempDir, waitUntil, type Child, type WorkerChild } from "./support/harness.js";

const JOBS = scale(15_000, 100_000);
const WORKERS = 2;
const CONCURRENCY = 32;
const QUEUE = "chaos";
/**
 * A worker's RSS may grow this much over its idle size while it drains the backlog, whatever
 * the backlog (measured: +40-55 MiB for 15k jobs, +65-75 MiB for 100k, mostly V8 heap
 * headroom at 2-5k jobs/s; 100k jobs held in memory would be well over it).
 */
const WORKER_GROWTH_BOUND_MIB = 100;
/**
 * Jobs delivered and not yet acked, over all workers, while draining: their slots, plus jobs
 * whose handler is done and whose record is being written (a slot is handed back before the
 * record is written, so this is slots + throughput x write latency: 100-200 here). A worker
 * that pulled more than it can start would hold the consumer's max_ack_pending (1,000, the
 * default), the most the server lets out.
 */
const MAX_ACK_PENDING = 1_000;
/** The producer's peak RSS, whatever the number of lines it streams. */
const PRODUCER_BOUND_MIB = 200;

it(`backpressure: ${JOBS} jobs enqueued while the queue is paused, then drained`, async () => {
  const server = await startServer();
  const tmp = tempDir("naq-chaos-bp-");
  const ledgerFile = path.join(tmp.dir, "ledger");
  const namespace = "bp";
  const env = { NAQ_URL: server.url, NAQ_NAMESPACE: namespace };
  const config: NaqConfigInput = { connection: { servers: [server.url] }, namespace };
  const inspector = await Inspector.open(config);
  const workers: WorkerChild[] = [];
  let producer: Child | undefined;
  try {
    await naq(["stream", "init"], { cwd: tmp.dir, env });
    await naq(["queue", "pause", QUEUE, "--reason", "chaos backpressure"], { cwd: tmp.dir, env });
    for (let i = 1; i <= WORKERS; i++) {
      workers.push(spawnWorker({ servers: [server.url], namespace, ledger: ledgerFile, cwd: tmp.dir, concurrency: CONCURRENCY, name: `bp${i}`, memoryEveryMs: 250 }));
    }
    await Promise.all(workers.map((w) => w.ready));
    await sleep(1_000);
    const idleRss = workers.map((w) => rssMiB(w.pid) ?? 0);
    const serverIdle = server.pid ? (rssMiB(server.pid) ?? 0) : 0;

    const ids = Array.from({ length: JOBS }, (_, i) => `bp-${i}`);
    const input = path.join(tmp.dir, "jobs.ndjson");
    writeFileSync(input, ids.map((id) => JSON.stringify({ task: "record", id, payload: null })).join("\n") + "\n");
    const enqueueStart = Date.now();
    producer = spawnNaq(["job", "enqueue", "--ndjson", input, "--queue", QUEUE], { name: "producer", cwd: tmp.dir, env });
    // VmHWM is a high-water mark: reading it until the process ends misses at most its last interval.
    let producerPeak = 0;
    const serverPeak = () => (server.pid ? (peakRssMiB(server.pid) ?? 0) : 0);
    let serverPeakDuringEnqueue = 0;
    while (producer.alive) {
      producerPeak = Math.max(producerPeak, peakRssMiB(producer.pid) ?? 0);
      serverPeakDuringEnqueue = Math.max(serverPeakDuringEnqueue, serverPeak());
      await sleep(100);
    }
    const { code } = await producer.exited;
    const enqueueMs = Date.now() - enqueueStart;

    const ledger = new LedgerReader(ledgerFile);
    ledger.poll();
    const ranWhilePaused = ledger.entries.length;
    const depthPaused = await inspector.depth(QUEUE);
    const rssPaused = workers.map((w) => rssMiB(w.pid) ?? 0);

    // From the start of `naq queue resume` (a CLI process: its ~0.3 s start-up counts).
    const resumedAt = Date.now();
    await naq(["queue", "resume", QUEUE], { cwd: tmp.dir, env });
    let serverPeakDuringDrain = 0;
    let maxInFlight = 0;
    await waitUntil(async () => {
      ledger.poll();
      serverPeakDuringDrain = Math.max(serverPeakDuringDrain, serverPeak());
      if (ledger.distinct >= JOBS) return true;
      maxInFlight = Math.max(maxInFlight, (await inspector.depth(QUEUE)).inFlight);
      return false;
    }, scale(180_000, 600_000), 250);
    const drainedAt = Date.now();
    const firstRun = ledger.entries.reduce((m, e) => Math.min(m, e.at), Number.POSITIVE_INFINITY);
    let statuses = await inspector.terminalStatuses();
    await waitUntil(async () => {
      statuses = await inspector.terminalStatuses();
      return recordTally(ids, statuses).completed >= JOBS;
    }, 30_000, 1_000);
    const workerPeaks = workers.map((w) => w.peakRss() ?? 0);
    await Promise.all(workers.map((w) => w.stop()));
    ledger.poll();

    const t = tally(ids, ledger.counts());
    const rec = recordTally(ids, statuses);
    const lost = new Set([...t.lost, ...rec.missing, ...rec.wrong.map((w) => w.id)]);
    const growth = workerPeaks.map((p, i) => p - (idleRss[i] ?? 0));
    const drainSecs = (drainedAt - resumedAt) / 1000;
    const heapIdle = workers.map((w) => w.memory.filter((m) => m.at < enqueueStart).at(-1)?.heapUsed ?? 0);
    const heapPeak = workers.map((w) => Math.max(0, ...w.memory.filter((m) => m.at >= resumedAt).map((m) => m.heapUsed)));

    recordScenario({
      id: "backpressure",
      scenario: `Backpressure: ${JOBS.toLocaleString("en-US")} jobs enqueued (naq job enqueue --ndjson) while the queue is paused, then resumed; ${WORKERS} workers x ${CONCURRENCY}`,
      jobs: JOBS,
      completed: rec.completed,
      lost: lost.size,
      duplicated: t.duplicated,
      recoveryMs: Number.isFinite(firstRun) ? firstRun - resumedAt : null,
      peakRssMiB: round(Math.max(producerPeak, ...workerPeaks)),
      notes:
        `peak RSS: producer ${round(producerPeak)} MiB, workers ${workerPeaks.map((p) => round(p)).join(" / ")} MiB ` +
        `(+${round(Math.max(...growth))} MiB over idle, bound ${WORKER_GROWTH_BOUND_MIB}; JS heap used at most ${round(Math.max(...heapPeak))} MiB), nats-server ${round(Math.max(serverPeakDuringEnqueue, serverPeakDuringDrain))} MiB; ` +
        `enqueued in ${round(enqueueMs / 1000)} s, drained in ${round(drainSecs)} s (${Math.round(JOBS / drainSecs)} jobs/s); at most ${maxInFlight} in flight (${WORKERS * CONCURRENCY} slots, max_ack_pending ${MAX_ACK_PENDING}); ${ranWhilePaused} ran while paused`,
      extra: {
        producerExit: code,
        enqueueMs,
        ranWhilePaused,
        waitingWhilePaused: depthPaused.waiting,
        inFlightWhilePaused: depthPaused.inFlight,
        workerIdleRssMiB: idleRss.map((v) => round(v)).join(","),
        workerPausedRssMiB: rssPaused.map((v) => round(v)).join(","),
        workerPeakRssMiB: workerPeaks.map((v) => round(v)).join(","),
        workerGrowthMiB: growth.map((v) => round(v)).join(","),
        workerHeapUsedIdleMiB: heapIdle.map((v) => round(v)).join(","),
        workerHeapUsedPeakMiB: heapPeak.map((v) => round(v)).join(","),
        producerPeakRssMiB: round(producerPeak),
        serverIdleRssMiB: round(serverIdle),
        serverPeakRssMiB: round(Math.max(serverPeakDuringEnqueue, serverPeakDuringDrain)),
        drainMs: drainedAt - resumedAt,
        firstRunAfterResumeMs: Number.isFinite(firstRun) ? firstRun - resumedAt : null,
        maxInFlightWhileDraining: maxInFlight,
      },
    });

    expect(code).toBe(0);
    expect(ranWhilePaused).toBe(0);
    expect(depthPaused.waiting).toBe(JOBS);
    expect([...lost].slice(0, 10)).toEqual([]);
    expect(t.unexpected).toEqual([]);
    expect(t.duplicated).toBe(0); // no fault here: every job runs once
    expect(maxInFlight).toBeLessThan(MAX_ACK_PENDING);
    for (const g of growth) expect(g).toBeLessThanOrEqual(WORKER_GROWTH_BOUND_MIB);
    expect(producerPeak).toBeLessThanOrEqual(PRODUCER_BOUND_MIB);
  } finally {
    await Promise.all(workers.map((w) => w.kill9()));
    await producer?.kill9();
    await inspector.close().catch(() => undefined);
    await server[Symbol.asyncDispose]();
    tmp.remove();
  }
});
