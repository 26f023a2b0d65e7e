import { describe, expect, it } from "vitest";
import { MISSED_HEARTBEATS, workerHealth } from "../../src/worker/health.js";
import { Worker } from "../../src/worker/worker.js";

const NOW = Date.parse("2026-01-01T00:00:00Z");
const beat = (agoMs: number) => new Date(NOW - agoMs);

describe("workerHealth", () => {
  it("is ok while running or paused with a recent heartbeat", () => {
    expect(workerHealth({ status: "running", lastHeartbeat: beat(4_000), heartbeatMs: 5_000, now: NOW })).toEqual({
      ok: true,
      status: "running",
      lastHeartbeat: "2025-12-31T23:59:56.000Z",
    });
    expect(workerHealth({ status: "paused", lastHeartbeat: beat(1), heartbeatMs: 5_000, now: NOW }).ok).toBe(true);
  });

  it(`is not ok after ${MISSED_HEARTBEATS} missed heartbeats, and says so`, () => {
    const h = workerHealth({ status: "running", lastHeartbeat: beat(16_000), heartbeatMs: 5_000, now: NOW });
    expect(h).toMatchObject({ ok: false, status: "running" });
    expect(h.reason).toBe("no heartbeat written for 16s (every 5s expected): is NATS reachable?");
    expect(workerHealth({ status: "running", lastHeartbeat: beat(15_000), heartbeatMs: 5_000, now: NOW }).ok).toBe(true);
  });

  it("is not ok while starting or stopping", () => {
    for (const status of ["starting", "stopping"] as const) {
      expect(workerHealth({ status, lastHeartbeat: beat(0), heartbeatMs: 5_000, now: NOW })).toMatchObject({ ok: false, reason: `worker is ${status}` });
    }
  });

  it("a worker that has not started is not healthy yet", () => {
    const w = new Worker({ queues: ["q"], handlers: { t: () => null } });
    expect(w.health()).toMatchObject({ ok: false, status: "starting" });
  });
});
