import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BackgroundTask, type BackgroundTaskOptions } from "../../src/services/background-task.js";
import type { Logger } from "../../src/services/base.js";
import { ServiceError, ValidationError } from "../../src/model/errors.js";

const T0 = new Date("2024-01-01T00:00:00.000Z");

interface Lines {
  warn: string[];
  error: string[];
  logger: Logger;
}

function recordingLogger(): Lines {
  const lines: Lines = {
    warn: [],
    error: [],
    logger: { debug() {}, info() {}, warn: (m) => lines.warn.push(m), error: (m) => lines.error.push(m) },
  };
  return lines;
}

/** Resolves after `ms` of (fake) time. */
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Milliseconds since T0 on the fake clock. */
const now = (): number => Date.now() - T0.getTime();

let tasks: BackgroundTask[] = [];

function makeTask(options: Partial<BackgroundTaskOptions> & Pick<BackgroundTaskOptions, "step">): BackgroundTask {
  const task = new BackgroundTask({ name: "test-task", intervalMs: 1_000, ...options });
  tasks.push(task);
  return task;
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
  tasks = [];
});

afterEach(async () => {
  // Give running steps (which sleep on the fake clock) time to notice the abort and finish.
  const stopping = Promise.all(tasks.map((t) => t.stop({ timeoutMs: 10_000 })));
  await vi.advanceTimersByTimeAsync(10_000);
  await stopping;
  // Leak guard: a stopped (or failed) task leaves no timer behind.
  expect(vi.getTimerCount()).toBe(0);
  vi.useRealTimers();
});

describe("BackgroundTask scheduling", () => {
  it("runs at start and then every interval", async () => {
    const starts: number[] = [];
    const task = makeTask({ step: async () => void starts.push(now()) });
    expect(task.state).toBe("idle");
    task.start();
    await vi.advanceTimersByTimeAsync(3_500);
    expect(starts).toEqual([0, 1_000, 2_000, 3_000]);
    expect(task.state).toBe("idle");
  });

  it("waits one interval first when runImmediately is false", async () => {
    const step = vi.fn(async () => {});
    const task = makeTask({ step, runImmediately: false });
    task.start();
    await vi.advanceTimersByTimeAsync(999);
    expect(step).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    expect(step).toHaveBeenCalledTimes(1);
  });

  it("start is idempotent", async () => {
    const step = vi.fn(async () => {});
    const task = makeTask({ step });
    task.start();
    task.start();
    await vi.advanceTimersByTimeAsync(1_500);
    expect(step).toHaveBeenCalledTimes(2);
  });

  it("is fixed-rate: the interval is measured from the step's start", async () => {
    const starts: number[] = [];
    const task = makeTask({
      step: async () => {
        starts.push(now());
        await sleep(300);
      },
    });
    task.start();
    await vi.advanceTimersByTimeAsync(3_100);
    expect(starts).toEqual([0, 1_000, 2_000, 3_000]);
  });

  it("never overlaps steps when a step is slower than the interval", async () => {
    let active = 0;
    let maxActive = 0;
    const starts: number[] = [];
    const task = makeTask({
      step: async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        starts.push(now());
        await sleep(2_500);
        active--;
      },
    });
    task.start();
    await vi.advanceTimersByTimeAsync(7_600);
    expect(maxActive).toBe(1);
    expect(starts).toHaveLength(4);
    // The wait is never negative: the next step starts as soon as the slow one ends
    // (on an immediate, which the fake clock runs up to 1ms later).
    for (let i = 1; i < starts.length; i++) {
      const gap = (starts[i] ?? 0) - (starts[i - 1] ?? 0);
      expect(gap).toBeGreaterThanOrEqual(2_500);
      expect(gap).toBeLessThanOrEqual(2_501);
    }
  });

  it("passes the same AbortSignal to every step, unaborted while running", async () => {
    const signals: AbortSignal[] = [];
    const task = makeTask({ step: async (signal) => void signals.push(signal) });
    task.start();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(signals).toHaveLength(2);
    expect(signals[0]).toBe(signals[1]);
    expect(signals[0]?.aborted).toBe(false);
  });
});

describe("BackgroundTask failures", () => {
  it("backs off exponentially and gives up after the limit", async () => {
    const lines = recordingLogger();
    const starts: number[] = [];
    const onGiveUp = vi.fn();
    const task = makeTask({
      intervalMs: 10_000,
      retryDelayMs: 100,
      maxConsecutiveFailures: 5,
      logger: lines.logger,
      onGiveUp,
      step: async () => {
        starts.push(now());
        throw new Error(`boom ${starts.length}`);
      },
    });
    let doneResolved = false;
    void task.done.then(() => (doneResolved = true));
    task.start();

    await vi.advanceTimersByTimeAsync(0);
    expect(task.state).toBe("backing-off");
    await vi.advanceTimersByTimeAsync(60_000);

    // Delays 100, 200, 400, 800 between the five attempts.
    expect(starts).toEqual([0, 100, 300, 700, 1_500]);
    expect(task.state).toBe("failed");
    expect(onGiveUp).toHaveBeenCalledTimes(1);
    expect(onGiveUp.mock.calls[0]?.[0]).toBeInstanceOf(Error);
    expect((onGiveUp.mock.calls[0]?.[0] as Error).message).toBe("boom 5");
    expect(doneResolved).toBe(true);
    // One warn line per failure, and nothing after giving up.
    expect(lines.warn).toHaveLength(5);
    expect(lines.warn[0]).toContain("test-task");
    expect(lines.warn[0]).toContain("boom 1");
    expect(lines.warn[0]).toContain("retrying in 100ms");
    expect(lines.warn[4]).toContain("giving up");
    expect(lines.error).toEqual([]);
    expect(task.metrics.consecutiveFailures).toBe(5);
    expect(vi.getTimerCount()).toBe(0);
    await expect(task.stop()).resolves.toBeUndefined();
    expect(task.state).toBe("failed");
  });

  it("caps the retry delay at maxRetryDelayMs", async () => {
    const starts: number[] = [];
    const task = makeTask({
      intervalMs: 60_000,
      retryDelayMs: 1_000,
      backoffFactor: 10,
      maxRetryDelayMs: 5_000,
      maxConsecutiveFailures: 4,
      step: async () => {
        starts.push(now());
        throw new Error("down");
      },
    });
    task.start();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(starts).toEqual([0, 1_000, 6_000, 11_000]);
  });

  it("defaults the first retry delay to min(intervalMs, 1000)", async () => {
    const starts: number[] = [];
    const step = async (): Promise<void> => {
      starts.push(now());
      throw new Error("down");
    };
    makeTask({ intervalMs: 400, maxConsecutiveFailures: 2, step }).start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(starts).toEqual([0, 400]);

    starts.length = 0;
    vi.setSystemTime(T0);
    makeTask({ intervalMs: 60_000, maxConsecutiveFailures: 2, step }).start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(starts).toEqual([0, 1_000]);
  });

  it("a success resets the consecutive-failure count and the backoff", async () => {
    const outcomes = ["fail", "fail", "ok", "fail", "fail", "ok", "ok"];
    const starts: number[] = [];
    const onGiveUp = vi.fn();
    const task = makeTask({
      intervalMs: 1_000,
      retryDelayMs: 100,
      maxConsecutiveFailures: 3,
      onGiveUp,
      step: async () => {
        const outcome = outcomes[starts.length] ?? "ok";
        starts.push(now());
        if (outcome === "fail") throw new Error("flaky");
      },
    });
    task.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(task.metrics.consecutiveFailures).toBe(1);
    await vi.advanceTimersByTimeAsync(300);
    expect(task.metrics.consecutiveFailures).toBe(0);
    await vi.advanceTimersByTimeAsync(3_000);
    // fail@0 → +100 fail@100 → +200 ok@300 → +1000 fail@1300 → +100 (reset) fail@1400 → +200 ok@1600 → ok@2600
    expect(starts.slice(0, 7)).toEqual([0, 100, 300, 1_300, 1_400, 1_600, 2_600]);
    expect(onGiveUp).not.toHaveBeenCalled();
    expect(task.state).toBe("idle");
    expect(task.metrics).toMatchObject({ failures: 4, consecutiveFailures: 0, successes: starts.length - 4 });
  });

  it("never gives up when maxConsecutiveFailures is 0 or Infinity", async () => {
    for (const max of [0, Infinity]) {
      const onGiveUp = vi.fn();
      const task = makeTask({
        retryDelayMs: 10,
        maxRetryDelayMs: 50,
        maxConsecutiveFailures: max,
        onGiveUp,
        step: async () => {
          throw new Error("always");
        },
      });
      task.start();
      await vi.advanceTimersByTimeAsync(5_000);
      expect(task.metrics.consecutiveFailures).toBeGreaterThan(50);
      expect(task.state).toBe("backing-off");
      expect(onGiveUp).not.toHaveBeenCalled();
      await task.stop();
    }
  });

  it("survives non-Error throws, synchronous throws and rejected non-Errors", async () => {
    const thrown: unknown[] = ["a string", { code: 42 }, undefined, 7];
    const lines = recordingLogger();
    const errors: string[] = [];
    let i = 0;
    const task = makeTask({
      retryDelayMs: 10,
      maxConsecutiveFailures: 0,
      logger: lines.logger,
      step: () => {
        const value = thrown[i++];
        if (i === 2) return Promise.reject(value);
        if (i <= thrown.length) throw value;
        return Promise.resolve();
      },
    });
    task.start();
    for (let n = 0; n < thrown.length; n++) {
      await vi.advanceTimersByTimeAsync(n === 0 ? 0 : 10 * 2 ** (n - 1));
      errors.push(task.metrics.lastError ?? "");
    }
    expect(errors).toEqual(["a string", '{"code":42}', "undefined", "7"]);
    expect(lines.warn).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(80);
    expect(task.metrics).toMatchObject({ runs: 5, failures: 4, successes: 1, consecutiveFailures: 0 });
    expect(task.state).toBe("idle");
  });

  it("a throwing onGiveUp or logger does not break the task", async () => {
    const throwing: Logger = {
      debug() {},
      info() {},
      warn() {
        throw new Error("logger down");
      },
      error() {
        throw new Error("logger down");
      },
    };
    const task = makeTask({
      retryDelayMs: 10,
      maxConsecutiveFailures: 2,
      logger: throwing,
      onGiveUp: () => {
        throw new Error("listener down");
      },
      step: async () => {
        throw new Error("down");
      },
    });
    task.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(task.state).toBe("failed");
    await task.done;
  });
});

describe("BackgroundTask stop", () => {
  it("aborts the signal, waits for the running step, and leaves no timer", async () => {
    let sawAbort = false;
    let finished = false;
    const task = makeTask({
      step: async (signal) => {
        await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
        sawAbort = signal.aborted;
        await sleep(200); // cleanup after the abort
        finished = true;
      },
    });
    task.start();
    await vi.advanceTimersByTimeAsync(50);
    expect(task.state).toBe("running");

    let stopped = false;
    const stopping = task.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(sawAbort).toBe(true);
    expect(stopped).toBe(false);
    await vi.advanceTimersByTimeAsync(199);
    expect(stopped).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await stopping;
    expect(finished).toBe(true);
    expect(task.state).toBe("stopped");
    expect(task.health().healthy).toBe(false);
    await task.done;
    expect(vi.getTimerCount()).toBe(0);
  });

  it("resolves after timeoutMs when the step ignores the signal", async () => {
    const lines = recordingLogger();
    const task = makeTask({ logger: lines.logger, step: () => new Promise<void>(() => {}) });
    task.start();
    let stopped = false;
    void task.stop({ timeoutMs: 1_000 }).then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(999);
    expect(stopped).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(stopped).toBe(true);
    expect(lines.warn.join("\n")).toContain("still running");
    await task.done;
    expect(vi.getTimerCount()).toBe(0);
  });

  it("returns the same promise when called twice", async () => {
    const task = makeTask({ step: async () => {} });
    task.start();
    const first = task.stop();
    expect(task.stop()).toBe(first);
    expect(task.stop({ timeoutMs: 1 })).toBe(first);
    await first;
  });

  it("returns the same promise when an abort listener calls stop again", async () => {
    let inner: Promise<void> | undefined;
    const task = makeTask({
      step: (signal) =>
        new Promise<void>((resolve) =>
          signal.addEventListener("abort", () => {
            inner = task.stop();
            resolve();
          }),
        ),
    });
    task.start();
    const outer = task.stop();
    await outer;
    expect(inner).toBe(outer);
  });

  it("cancels the pending timer: no step runs after stop", async () => {
    const step = vi.fn(async () => {});
    const task = makeTask({ step });
    task.start();
    await vi.advanceTimersByTimeAsync(500);
    expect(vi.getTimerCount()).toBe(1);
    await task.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(step).toHaveBeenCalledTimes(1);
    expect(task.state).toBe("stopped");
  });

  it("does not count as giving up when the aborted step throws", async () => {
    const onGiveUp = vi.fn();
    const lines = recordingLogger();
    const task = makeTask({
      maxConsecutiveFailures: 1,
      onGiveUp,
      logger: lines.logger,
      step: (signal) =>
        new Promise<void>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true })),
    });
    task.start();
    await task.stop();
    expect(task.state).toBe("stopped");
    expect(onGiveUp).not.toHaveBeenCalled();
    expect(lines.warn).toEqual([]);
  });

  it("stopping a task that never started resolves done; it cannot be restarted", async () => {
    const step = vi.fn(async () => {});
    const task = makeTask({ step });
    await task.stop();
    await task.done;
    expect(task.state).toBe("stopped");
    expect(() => task.start()).toThrow(ServiceError);
    expect(step).not.toHaveBeenCalled();
  });

  it("supports await using", async () => {
    const step = vi.fn(async () => {});
    {
      await using task = makeTask({ step });
      task.start();
    }
    await vi.advanceTimersByTimeAsync(5_000);
    expect(step).toHaveBeenCalledTimes(1);
  });
});

describe("BackgroundTask trigger", () => {
  it("runs a step at once and restarts the interval from it", async () => {
    const starts: number[] = [];
    const task = makeTask({ intervalMs: 60_000, runImmediately: false, step: async () => void starts.push(now()) });
    task.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(starts).toEqual([]);
    await task.trigger();
    expect(starts).toEqual([10_000]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(starts).toEqual([10_000, 70_000]);
  });

  it("runs as soon as the current step ends, without overlap", async () => {
    let active = 0;
    let maxActive = 0;
    const starts: number[] = [];
    const task = makeTask({
      intervalMs: 60_000,
      step: async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        starts.push(now());
        await sleep(500);
        active--;
      },
    });
    task.start();
    await vi.advanceTimersByTimeAsync(100);
    let triggered = false;
    void task.trigger().then(() => (triggered = true));
    void task.trigger(); // a second request while one is pending does not add a run
    await vi.advanceTimersByTimeAsync(399);
    expect(starts).toEqual([0]);
    await vi.advanceTimersByTimeAsync(2); // the first step ends at 500; the triggered one follows
    expect(starts).toHaveLength(2);
    expect(starts[1]).toBeGreaterThanOrEqual(500);
    expect(starts[1]).toBeLessThanOrEqual(501);
    expect(triggered).toBe(false); // waits for the step it caused, not the one running
    await vi.advanceTimersByTimeAsync(500);
    expect(triggered).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(starts).toHaveLength(2);
    expect(maxActive).toBe(1);
  });

  it("cuts a backoff short", async () => {
    const starts: number[] = [];
    const task = makeTask({
      retryDelayMs: 10_000,
      step: async () => {
        starts.push(now());
        if (starts.length === 1) throw new Error("once");
      },
    });
    task.start();
    await vi.advanceTimersByTimeAsync(100);
    expect(task.state).toBe("backing-off");
    await task.trigger();
    expect(starts).toEqual([0, 100]);
    expect(task.state).toBe("idle");
  });

  it("resolves at once and does nothing before start or after stop", async () => {
    const step = vi.fn(async () => {});
    const task = makeTask({ step });
    await task.trigger();
    expect(step).not.toHaveBeenCalled();
    task.start();
    await task.stop();
    await task.trigger();
    expect(step).toHaveBeenCalledTimes(1);
  });
});

describe("BackgroundTask metrics and health", () => {
  it("reports counts, times and durations", async () => {
    let fail = false;
    const task = makeTask({
      name: "heartbeat",
      intervalMs: 1_000,
      retryDelayMs: 100,
      maxConsecutiveFailures: 3,
      step: async () => {
        await sleep(250);
        if (fail) throw new Error("nats down");
      },
    });
    expect(task.metrics).toEqual({ runs: 0, successes: 0, failures: 0, consecutiveFailures: 0, totalDurationMs: 0 });
    expect(task.health()).toMatchObject({ name: "heartbeat", state: "idle", healthy: false });

    task.start();
    expect(task.health()).toMatchObject({ state: "running", healthy: true, runs: 1 });
    await vi.advanceTimersByTimeAsync(250);
    expect(task.metrics).toEqual({
      runs: 1,
      successes: 1,
      failures: 0,
      consecutiveFailures: 0,
      lastRunAt: new Date(T0.getTime()),
      lastSuccessAt: new Date(T0.getTime() + 250),
      lastDurationMs: 250,
      totalDurationMs: 250,
    });
    expect(task.health()).toMatchObject({ state: "idle", healthy: true });

    fail = true;
    await vi.advanceTimersByTimeAsync(1_000); // second step starts at 1000, fails at 1250
    expect(task.metrics).toEqual({
      runs: 2,
      successes: 1,
      failures: 1,
      consecutiveFailures: 1,
      lastRunAt: new Date(T0.getTime() + 1_000),
      lastSuccessAt: new Date(T0.getTime() + 250),
      lastError: "nats down",
      lastDurationMs: 250,
      totalDurationMs: 500,
    });
    const health = task.health();
    expect(health).toMatchObject({ name: "heartbeat", state: "backing-off", healthy: false, failures: 1, lastError: "nats down" });

    await vi.advanceTimersByTimeAsync(10_000);
    expect(task.health()).toMatchObject({ state: "failed", healthy: false, consecutiveFailures: 3, runs: 4 });
  });

  it("hands out snapshots that later steps do not change", async () => {
    const task = makeTask({ step: async () => {} });
    task.start();
    await vi.advanceTimersByTimeAsync(0);
    const snapshot = task.metrics;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(snapshot.runs).toBe(1);
    expect(task.metrics.runs).toBe(2);
  });
});

describe("BackgroundTask options", () => {
  it.each([
    ["intervalMs", { intervalMs: -1 }],
    ["intervalMs", { intervalMs: Number.NaN }],
    ["intervalMs", { intervalMs: Infinity }],
    ["maxConsecutiveFailures", { maxConsecutiveFailures: -1 }],
    ["retryDelayMs", { retryDelayMs: -5 }],
    ["backoffFactor", { backoffFactor: 0.5 }],
  ] as const)("rejects a bad %s", (field, bad) => {
    try {
      new BackgroundTask({ name: "bad", intervalMs: 1_000, step: async () => {}, ...bad });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe(field);
    }
  });
});
