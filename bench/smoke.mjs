#!/usr/bin/env node
/**
 * Smoke test of the bench harness (for .ci/run): starts its own nats-server (and
 * redis-server when there is one), runs one tiny scenario per system (200 jobs bulk-enqueued,
 * then 200 processed at concurrency 10), and exits non-zero if anything in the harness
 * breaks. It asserts no timing: only that every system produced a positive number.
 * Without redis-server (or bullmq) BullMQ is skipped with a message, not failed.
 *
 *   node bench/smoke.mjs        (needs `npm run build` first: naq is imported from dist/)
 *   npm run bench -- --smoke
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startNats, startRedis, ServerMissingError } from "./lib/servers.mjs";
import { formatTable, runSuite } from "./lib/suite.mjs";

const DIST = fileURLToPath(new URL("../dist/lib/naq.js", import.meta.url));
const LIMIT_MS = 120_000;

export async function main() {
  if (!existsSync(DIST)) {
    console.error("bench smoke: dist/lib/naq.js is missing; run `npm run build` first");
    return 1;
  }
  const t0 = Date.now();
  const guard = setTimeout(() => {
    console.error(`bench smoke: FAILED — still running after ${LIMIT_MS / 1000} s`);
    process.exit(1);
  }, LIMIT_MS);
  guard.unref();
  const started = [];
  try {
    const nats = await startNats();
    started.push(nats);
    let redisUrl;
    try {
      const redis = await startRedis();
      started.push(redis);
      redisUrl = redis.url;
    } catch (err) {
      if (!(err instanceof ServerMissingError)) throw err;
      console.error(`bench smoke: BullMQ skipped — ${err.message}`);
    }
    const results = await runSuite({ natsUrl: nats.url, redisUrl, smoke: true, runs: 1, log: (l) => console.error(l) });
    const problems = [];
    for (const c of results.cases) {
      problems.push(...(c.errors ?? []));
      for (const m of c.metrics) {
        for (const s of results.systems) {
          const v = m.systems[s]?.median;
          if (!(Number.isFinite(v) && v > 0)) problems.push(`${c.id} ${s}: no result (${v})`);
        }
      }
    }
    console.log(formatTable(results));
    for (const n of results.notes) console.log(`note: ${n}`);
    if (problems.length > 0) {
      for (const p of problems) console.error(`bench smoke: ${p}`);
      console.error(`bench smoke: FAILED (${problems.length} problem(s))`);
      return 1;
    }
    console.log(`bench smoke: ok — ${results.systems.join(", ")} × ${results.cases.length} scenarios in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return 0;
  } finally {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (err) => {
      console.error(`bench smoke: FAILED — ${err?.stack ?? err}`);
      process.exit(1);
    },
  );
}
