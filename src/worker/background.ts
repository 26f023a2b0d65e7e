/**
 * The worker's periodic loops, all BackgroundTasks: heartbeat, in-progress acks for
 * running jobs (at a third of the shortest ack_wait, so a long job is never redelivered
 * while it runs), and the --max-idle check.
 */
import type { Logger } from "../services/base.js";
import { BackgroundTask } from "../services/background-task.js";

export interface WorkerLoopsOptions {
  heartbeatMs: number;
  /** Shortest ack_wait of the worker's queues. */
  ackWaitMs: number;
  maxIdleMs?: number;
  logger: Logger;
  heartbeat(): Promise<void>;
  /** Sends an in-progress ack for every running job. */
  touchRunning(): void;
  /** True when nothing runs and nothing arrived for `ms`. */
  idleFor(ms: number): boolean;
  onIdle(): void;
}

export function workerLoops(o: WorkerLoopsOptions): BackgroundTask[] {
  const tasks = [
    new BackgroundTask({
      name: "worker heartbeat",
      intervalMs: o.heartbeatMs,
      step: o.heartbeat,
      maxConsecutiveFailures: 0,
      logger: o.logger,
      unref: true,
    }),
    new BackgroundTask({
      name: "in-progress acks",
      intervalMs: Math.max(250, Math.floor(o.ackWaitMs / 3)),
      runImmediately: false,
      step: async () => o.touchRunning(),
      maxConsecutiveFailures: 0,
      logger: o.logger,
      unref: true,
    }),
  ];
  const maxIdle = o.maxIdleMs;
  if (maxIdle !== undefined) {
    tasks.push(
      new BackgroundTask({
        name: "idle check",
        intervalMs: Math.max(100, Math.min(1_000, maxIdle / 4)),
        runImmediately: false,
        step: async () => {
          if (o.idleFor(maxIdle)) o.onIdle();
        },
        unref: true,
      }),
    );
  }
  return tasks;
}

/** Runs `onItem` for each item of a watch until it ends; errors go to `onError`. */
export async function follow<T>(watch: AsyncIterable<T>, onItem: (item: T) => void, onError: (err: unknown) => void): Promise<void> {
  try {
    for await (const item of watch) onItem(item);
  } catch (err) {
    onError(err);
  }
}
