/**
 * Soak: a steady stream of jobs for a long time, with retried failures and permanent
 * failures mixed in, through two worker processes. Every job must end as planned
 * (completed, or failed and dead-lettered for the ones meant to fail), and the workers
 * must not leak: their RSS, live JS heap and open file descriptors in the last window are
 * compared with the first window.
 *
 * Fast: 50 s, windows of 10 s. Long: 10 minutes, windows of one minute.
 * NAQ_CHAOS_SOAK_SECONDS sets the duration (windows: a fifth of it, at most a minute).
 * CHAOS_DEBUG=1 prints the timeline behind the figures.
 */
import { expect, it } from "vitest";
import { readFileSync } from "node:fs";
import path from "node:path";
import { Queue } from "../../src/queue.js";
import type { NaqConfigInput } from "../../src/config/schema.js";
import { startServer } from "../support/index.js";
import { LedgerReader, tally } from "./support/ledger.js";
import { openFds, rssMiB } from "./support/proc.js";
import { recordScenario, scale } from "./support/report.js";
import { Inspector, recordTally, round, sleep, spawnWorker, tempDir, waitUntil, type WorkerChild } from "./support/harness.js";

const SECONDS = Number(process.env.NAQ_CHAOS_SOAK_SECONDS ?? scale(50, 600));
const WINDOW_S = Math.min(60, Math.max(5, Math.floor(SECONDS / 5)));
const RATE = 60; // jobs per second
const LANES = 8;
const WORKERS = 2;
const QUEUE = "chaos";
/**
 * Growth of a worker's RSS (mean of the last window over the mean of the first) that counts
 * as a leak. Each worker runs a full GC right before it reports its memory every second, so
 * neither figure is GC timing (without it, RSS drifts up 10-40 MiB in 50 s as V8 lets its
 * heap grow before a major GC). Measured: RSS +1 MiB, live JS heap +0.3 MiB over both 50 s
 * and 10 minutes (36,000 jobs); open fds unchanged.
 */
const RSS_TOLERANCE_MIB = 25;
/** Growth of the live JS heap (after a full GC) that counts as a leak. */
const HEAP_TOLERANCE_MIB = 5;
const FD_TOLERANCE = 5;

type Kind = "ok" | "retried" | "failed" | "fatal";
/** Every 20 jobs: 16 succeed at once, 2 succeed on their 2nd or 3rd attempt, 1 fails all attempts, 1 fails unrecoverably. */
function kindOf(i: number): Kind {
  const r = i % 20;
  return r < 16 ? "ok" : r < 18 ? "retried" : r === 18 ? "failed" : "fatal";
}

interface Sample {
  t: number;
  rss: number[];
  fds: number[];
}

const mean = (xs: number[]): number => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);

it(`soak: ${SECONDS} s at ${RATE} jobs/s with retries and failures; worker RSS and fds do not grow`, async () => {
  const server = await startServer();
  const tmp = tempDir("naq-chaos-soak-");
  const ledgerFile = path.join(tmp.dir, "ledger");
  const namespace = "soak";
  const config: NaqConfigInput = { connection: { servers: [server.url] }, namespace };
  const queue = new Queue(QUEUE, { config });
  const inspector = await Inspector.open(config);
  const workers: WorkerChild[] = [];
  try {
    for (let i = 1; i <= WORKERS; i++) {
      workers.push(spawnWorker({ servers: [server.url], namespace, ledger: ledgerFile, cwd: tmp.dir, concurrency: 10, name: `soak${i}`, memoryEveryMs: 1_000, gcBeforeMemory: true }));
    }
    await Promise.all(workers.map((w) => w.ready));

    const samples: Sample[] = [];
    const sampler = setInterval(() => {
      samples.push({ t: Date.now(), rss: workers.map((w) => rssMiB(w.pid) ?? 0), fds: workers.map((w) => openFds(w.pid) ?? 0) });
    }, 1_000);

    const total = SECONDS * RATE;
    const expected = new Map<string, "completed" | "failed">();
    const kinds: Record<Kind, number> = { ok: 0, retried: 0, failed: 0, fatal: 0 };
    let enqueueErrors = 0;
    let next = 0;
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: LANES }, async () => {
        for (;;) {
          const i = next++;
          if (i >= total) return;
          const due = t0 + (i * 1000) / RATE;
          if (due > Date.now()) await sleep(due - Date.now());
          const id = `soak-${i}`;
          const kind = kindOf(i);
          const payload: Record<string, number | boolean> =
            kind === "ok" ? { ms: 5 + (i % 4) * 5 } : kind === "retried" ? { ms: 5, failUntil: 2 + (i % 2) } : kind === "failed" ? { ms: 5, failUntil: 99 } : { ms: 5, fatal: true };
          try {
            await queue.enqueue("record", payload, { id, retries: kind === "failed" ? 1 : 3, backoff: { type: "fixed", delayMs: 200 } });
            expected.set(id, kind === "failed" || kind === "fatal" ? "failed" : "completed");
            kinds[kind]++;
          } catch {
            enqueueErrors++;
          }
        }
      }),
    );
    const producedAt = Date.now();
    const ledger = new LedgerReader(ledgerFile);
    const shouldRun = [...expected].filter(([, s]) => s === "completed").map(([id]) => id);
    await waitUntil(() => (ledger.poll(), shouldRun.every((id) => ledger.runs.has(id))), 60_000, 500);
    let statuses = await inspector.terminalStatuses();
    await waitUntil(async () => {
      statuses = await inspector.terminalStatuses();
      const r = recordTally(expected.keys(), statuses, (id) => expected.get(id) as string);
      return r.missing.length === 0;
    }, 30_000, 1_000);
    const drainedAt = Date.now();
    clearInterval(sampler);
    const deadLettered = await inspector.deadLettered();
    const peaks = workers.map((w) => w.peakRss() ?? 0);
    await Promise.all(workers.map((w) => w.stop()));
    ledger.poll();

    if (process.env.CHAOS_DEBUG) {
      for (const w of workers) console.log(`${w.name}: ${w.memory.map((m) => `${Math.round((m.at - t0) / 1000)}s ${round(m.rss)}/${round(m.heapUsed)}/${round(m.heapTotal)}`).join(" ")}`);
    }
    // Windows: the first and the last WINDOW_S seconds of the steady phase.
    const first = samples.filter((s) => s.t >= t0 && s.t < t0 + WINDOW_S * 1000);
    const last = samples.filter((s) => s.t > producedAt - WINDOW_S * 1000 && s.t <= producedAt);
    const perWorker = workers.map((_, i) => ({
      rssFirst: mean(first.map((s) => s.rss[i] ?? 0)),
      rssLast: mean(last.map((s) => s.rss[i] ?? 0)),
      fdsFirst: Math.max(...first.map((s) => s.fds[i] ?? 0)),
      fdsLast: Math.max(...last.map((s) => s.fds[i] ?? 0)),
      heapFirst: mean((workers[i]?.memory ?? []).filter((m) => m.at >= t0 && m.at < t0 + WINDOW_S * 1000).map((m) => m.heapUsed)),
      heapLast: mean((workers[i]?.memory ?? []).filter((m) => m.at > producedAt - WINDOW_S * 1000 && m.at <= producedAt).map((m) => m.heapUsed)),
    }));
    const t = tally(shouldRun, ledger.counts());
    const rec = recordTally(expected.keys(), statuses, (id) => expected.get(id) as string);
    const lost = new Set([...t.lost, ...rec.missing, ...rec.wrong.map((w) => w.id)]);
    const expectedFailures = kinds.failed + kinds.fatal;
    const fmt = (f: (w: (typeof perWorker)[number]) => string) => perWorker.map(f).join(" / ");

    recordScenario({
      id: "soak",
      scenario: `Soak: ${SECONDS >= 120 ? `${round(SECONDS / 60)} min` : `${SECONDS} s`} at ${RATE} jobs/s, 10% retried, 10% failing for good, ${WORKERS} workers`,
      jobs: expected.size,
      completed: rec.completed + rec.failedAsExpected,
      lost: lost.size,
      duplicated: t.duplicated,
      recoveryMs: null,
      peakRssMiB: round(Math.max(...peaks)),
      notes:
        `${rec.failedAsExpected} failed as planned (dead-lettered: ${deadLettered}); worker RSS (after a full GC) first vs last ${WINDOW_S >= 60 ? "minute" : `${WINDOW_S} s`}: ` +
        `${fmt((w) => `${round(w.rssFirst)} -> ${round(w.rssLast)}`)} MiB (JS heap used ${fmt((w) => `${round(w.heapFirst)} -> ${round(w.heapLast)}`)} MiB); ` +
        `open fds ${fmt((w) => `${w.fdsFirst} -> ${w.fdsLast}`)}`,
      extra: {
        seconds: SECONDS,
        windowSeconds: WINDOW_S,
        ok: kinds.ok,
        retried: kinds.retried,
        failedForGood: kinds.failed,
        fatal: kinds.fatal,
        deadLettered,
        enqueueErrors,
        wrongStatus: rec.wrong.length,
        missingRecords: rec.missing.length,
        rssGrowthMiB: perWorker.map((w) => round(w.rssLast - w.rssFirst)).join(","),
        fdGrowth: perWorker.map((w) => w.fdsLast - w.fdsFirst).join(","),
        heapUsedFirstMiB: perWorker.map((w) => round(w.heapFirst)).join(","),
        heapUsedLastMiB: perWorker.map((w) => round(w.heapLast)).join(","),
        rssFirstMiB: perWorker.map((w) => round(w.rssFirst)).join(","),
        rssLastMiB: perWorker.map((w) => round(w.rssLast)).join(","),
        drainAfterProducedMs: drainedAt - producedAt,
        samples: samples.length,
      },
    });

    if (t.duplicated > 0) {
      // Nothing is injected here, so a job run twice needs explaining: its ledger lines
      // (id attempt pid time enqueuedAt) and what the workers reported.
      const lines = readFileSync(ledgerFile, "utf8").split("\n");
      for (const [id, n] of ledger.counts().runs) if (n > 1) console.log(`[chaos] soak: ran ${n} times (${expected.get(id)}):`, lines.filter((l) => l.startsWith(`${id} `)));
      for (const w of workers) console.log(`[chaos] soak: ${w.name} stderr:`, w.stderr().slice(-3_000));
    }
    expect(enqueueErrors).toBe(0);
    expect([...lost].slice(0, 10)).toEqual([]);
    expect(t.unexpected).toEqual([]);
    expect(t.duplicated).toBe(0); // no fault here: nothing runs twice
    expect(deadLettered).toBe(expectedFailures);
    expect(first.length).toBeGreaterThan(0);
    expect(last.length).toBeGreaterThan(0);
    for (const w of perWorker) {
      expect(w.rssLast - w.rssFirst).toBeLessThanOrEqual(RSS_TOLERANCE_MIB);
      expect(w.heapLast - w.heapFirst).toBeLessThanOrEqual(HEAP_TOLERANCE_MIB);
      expect(w.fdsLast - w.fdsFirst).toBeLessThanOrEqual(FD_TOLERANCE);
    }
  } finally {
    await Promise.all(workers.map((w) => w.kill9()));
    await queue.close().catch(() => undefined);
    await inspector.close().catch(() => undefined);
    await server[Symbol.asyncDispose]();
    tmp.remove();
  }
});
