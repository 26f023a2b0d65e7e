/**
 * The suite's cases: what runs, with which parameters, which numbers come out, and the
 * targets naq is held to. Each case calls the scenario module's naq / raw / bullmq
 * functions (see each module's header); a function returns a number (metric "value")
 * or an object of named numbers.
 */
import * as add from "./add.mjs";
import * as addBulk from "./add-bulk.mjs";
import * as processJobs from "./process.mjs";
import * as latency from "./latency.mjs";
import * as cli from "./cli.mjs";
import * as memory from "./memory.mjs";

const jobsPerSec = { unit: "jobs/s", better: "higher" };

/**
 * targets: { raw: [op, x], bullmq: [op, x] } on the ratio naq / that system (medians).
 */
export function suiteCases({ quick = false, smoke = false } = {}) {
  if (smoke) {
    return [
      { id: "add-bulk", title: "add-bulk (smoke)", module: addBulk, params: { n: 200 }, metrics: [{ key: "value", label: "add-bulk, 200 jobs", ...jobsPerSec }] },
      {
        id: "process-prefilled-c10",
        title: "process (smoke)",
        module: processJobs,
        params: { n: 200, concurrency: 10, mode: "prefilled" },
        metrics: [{ key: "value", label: "process 200, pre-filled, c=10", ...jobsPerSec }],
      },
    ];
  }
  const processN = (c) => (quick ? (c === 1 ? 1_000 : 3_000) : 20_000);
  const processCases = [];
  for (const mode of ["prefilled", "live"]) {
    for (const c of [1, 10, 100]) {
      const n = processN(c);
      processCases.push({
        id: `process-${mode}-c${c}`,
        title: `process ${n.toLocaleString("en")} jobs, ${mode === "live" ? "live (producer running)" : "pre-filled"}, concurrency ${c}`,
        module: processJobs,
        params: { n, concurrency: c, mode },
        // The rows with targets: 5 runs in the full suite, so one noisy run moves the median less.
        ...(c === 100 && !quick ? { defaultRuns: 5 } : {}),
        metrics: [
          {
            key: "value",
            label: `process ${mode === "live" ? "live" : "pre-filled"} c=${c} (${n / 1000}k, results stored)`,
            ...jobsPerSec,
            ...(c === 100 ? { targets: { raw: [">=", 0.8], bullmq: [">=", 1.3] } } : {}),
          },
          // Where the time goes, shown for c=100 (in the JSON for all).
          { key: "clientCpu", label: `↳ worker CPU per 1k jobs, ${mode === "live" ? "live" : "pre-filled"} c=${c}`, unit: "ms", better: "lower", hidden: c !== 100 },
          { key: "serverCpu", label: `↳ server CPU per 1k jobs (nats / redis), ${mode === "live" ? "live" : "pre-filled"} c=${c}`, unit: "ms", better: "lower", hidden: c !== 100 },
        ],
      });
    }
  }
  const bulkN = quick ? 5_000 : 20_000;
  return [
    {
      id: "add",
      title: "add: sequential awaited enqueue",
      module: add,
      params: { n: quick ? 1_000 : 5_000 },
      metrics: [{ key: "value", label: "add, sequential awaited", ...jobsPerSec }],
    },
    {
      id: "add-bulk",
      title: "add-bulk: enqueueMany vs pipelined publish vs addBulk",
      module: addBulk,
      params: { n: bulkN },
      ...(quick ? {} : { defaultRuns: 5 }),
      metrics: [{ key: "value", label: `add-bulk (${bulkN / 1000}k)`, ...jobsPerSec, targets: { raw: [">=", 0.9], bullmq: [">=", 1.0] } }],
    },
    {
      id: "add-bulk-cli",
      title: "add-bulk via `naq job enqueue --ndjson` (one process, wall time)",
      systems: { naq: addBulk.naqCli },
      borrow: "add-bulk",
      skip: () => (addBulk.cliHasNdjson() ? false : "`naq job enqueue --help` shows no --ndjson in this build"),
      params: { n: bulkN },
      metrics: [{ key: "value", label: `add-bulk CLI --ndjson (${bulkN / 1000}k; raw/BullMQ from row above)`, ...jobsPerSec }],
    },
    ...processCases,
    {
      id: "latency",
      title: "latency at 500 jobs/s, concurrency 10",
      module: latency,
      params: { rate: 500, durationMs: quick ? 1_000 : 10_000, warmupMs: 500, concurrency: 10 },
      metrics: [
        { key: "startP50", label: "latency enqueue→start p50 @500/s", unit: "ms", better: "lower" },
        { key: "startP99", label: "latency enqueue→start p99 @500/s", unit: "ms", better: "lower" },
        { key: "doneP50", label: "latency enqueue→completed p50 @500/s", unit: "ms", better: "lower" },
        { key: "doneP99", label: "latency enqueue→completed p99 @500/s", unit: "ms", better: "lower" },
      ],
    },
    {
      id: "cli",
      title: "one CLI enqueue process",
      module: cli,
      params: { k: quick ? 3 : 10 },
      metrics: [
        { key: "value", label: `one enqueue process (median of ${quick ? 3 : 10})`, unit: "ms", better: "lower", targets: { raw: ["<=", 1.15], bullmq: ["<=", 0.6] } },
        { key: "cpu", label: "↳ its CPU, user+system (hyperfine only)", unit: "ms", better: "lower" },
      ],
    },
    {
      id: "memory",
      title: "worker steady state at 500 jobs/s, concurrency 10",
      module: memory,
      // One run in --quick (RSS needs ~5 s at this rate to level off; shorter runs flatter
      // whoever allocates late); the full suite does --runs.
      runs: quick ? 1 : undefined,
      params: { rate: 500, warmupMs: 5_000, measureMs: quick ? 2_000 : 10_000, concurrency: 10 },
      metrics: [
        { key: "rssMb", label: "worker RSS @500/s", unit: "MiB", better: "lower", targets: { bullmq: ["<=", 0.8] } },
        { key: "cpuPct", label: "worker CPU @500/s", unit: "% of a core", better: "lower" },
      ],
    },
  ];
}
