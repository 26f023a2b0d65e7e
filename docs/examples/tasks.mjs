// Example task handlers for `naq worker start --handlers docs/examples/tasks.mjs`.
// Every exported function is a task: it gets (payload, ctx) and returns the job's result.

/** Adds numbers: {"a": 1, "b": 2} -> 3 */
export function add(payload) {
  return payload.a + payload.b;
}

/** Pretends to send an email, reporting progress on the way. */
export async function sendWelcome(payload, ctx) {
  ctx.progress(50);
  await sleep(50, ctx.signal);
  ctx.log(`sent welcome mail to user ${payload.user}`);
  return { sent: true, user: payload.user };
}

/** Fails until its attempt number reaches payload.succeedOn (to see retries). */
export function flaky(payload, ctx) {
  if (ctx.attempt < (payload.succeedOn ?? 3)) throw new Error(`flaky failure on attempt ${ctx.attempt}`);
  return { attempt: ctx.attempt };
}

/** Sleeps payload.ms milliseconds (stops early when the job is cancelled or times out). */
export async function sleepFor(payload, ctx) {
  await sleep(payload.ms ?? 1000, ctx.signal);
  return { slept: payload.ms ?? 1000 };
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      reject(signal.reason);
    });
  });
}
