/**
 * add: sequential awaited enqueue, one job at a time (each waits for the server's ack),
 * the way an app enqueues from a request handler. Returns jobs/s.
 *
 *   naq     Queue.enqueue (a JetStream publish with Msg-Id + a buffered `enqueued` event)
 *   raw     js.publish of an envelope of the same shape, with Msg-Id
 *   bullmq  Queue.add
 */
import { withSystem } from "../lib/harness.mjs";

async function sequential(system, { natsUrl, redisUrl, n = 2_000 }) {
  return withSystem(system, { natsUrl, redisUrl }, async (sys) => {
    await sys.enqueue({ payload: { warmup: true } });
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await sys.enqueue({ payload: { i } });
    return (n / (performance.now() - t0)) * 1000;
  });
}

export const naq = (opts) => sequential("naq", opts);
export const raw = (opts) => sequential("raw", opts);
export const bullmq = (opts) => sequential("bullmq", opts);
