#!/usr/bin/env node
/**
 * naq's benchmark suite: naq vs raw nats.js vs BullMQ, same machine, same run, on servers
 * this script starts (and kills) itself. See bench/README.md.
 *
 *   npm run bench                      # full suite (~10 min on 2 cores)
 *   npm run bench -- --quick           # smaller n, under 3 minutes
 *   npm run bench -- --only process --runs 5
 *   npm run bench -- --smoke           # one tiny scenario per system; non-zero exit if the harness breaks
 */
import { execFileSync } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { cpus, loadavg, totalmem, release, platform } from "node:os";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startNats, startRedis, ServerMissingError } from "./lib/servers.mjs";
import { formatScheduler, formatTable, runSuite, targetSummary } from "./lib/suite.mjs";
import { timer as cliTimer } from "./scenarios/cli.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(HERE);

const USAGE = `usage: node bench/run.mjs [options]   (npm run bench -- [options])

  --quick            smaller n and fewer invocations (under 3 minutes)
  --smoke            one tiny scenario per system, a few seconds; exits non-zero if the harness is broken
  --only <ids>       only these cases, comma-separated; an exact id selects that case alone,
                     anything else is a prefix (add, add-bulk, add-bulk-cli, process, process-live,
                     process-prefilled-c100, latency, cli, memory, scheduler)
  --runs <n>         runs per figure (default 3, and 5 for the rows with targets in the full
                     suite; at least 3 for min/median/max to mean much)
  --nats-url <url>   use this NATS server instead of starting one (numbers then depend on it)
  --redis-url <url>  use this redis for BullMQ instead of starting one
  --no-bullmq        leave BullMQ out
  --out <file>       where to write the JSON (default bench/results/latest.json)
  -h, --help`;

function parse(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean", default: false },
      smoke: { type: "boolean", default: false },
      only: { type: "string" },
      runs: { type: "string" },
      "nats-url": { type: "string" },
      "redis-url": { type: "string" },
      "no-bullmq": { type: "boolean", default: false },
      out: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  // Not given: 3 per figure (1 with --smoke), 5 for the rows with targets in the full suite.
  const runs = values.runs === undefined ? (values.smoke ? 1 : undefined) : Number(values.runs);
  if (runs !== undefined && (!Number.isInteger(runs) || runs < 1)) throw new Error(`--runs must be a whole number >= 1, got ${values.runs}`);
  return { ...values, runs, only: values.only?.split(",").map((s) => s.trim()).filter(Boolean) };
}

async function versionOf(pkg) {
  try {
    return JSON.parse(await readFile(`${ROOT}/node_modules/${pkg}/package.json`, "utf8")).version;
  } catch {
    return undefined;
  }
}

function gitCommit() {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--", "src"], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    return dirty ? `${head} (src/ has uncommitted changes)` : head;
  } catch {
    return undefined;
  }
}

async function machine(nats, redis) {
  const cpu = cpus();
  return {
    cores: cpu.length,
    cpu: cpu[0]?.model,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()}`,
    node: process.version,
    natsServer: nats?.version,
    redis: redis?.version,
    packages: {
      "@nats-io/transport-node": await versionOf("@nats-io/transport-node"),
      "@nats-io/jetstream": await versionOf("@nats-io/jetstream"),
      "@nats-io/kv": await versionOf("@nats-io/kv"),
      bullmq: await versionOf("bullmq"),
      ioredis: await versionOf("ioredis"),
    },
    naqCommit: gitCommit(),
    cliTimer: cliTimer(),
    loadAvgAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

export async function main(argv = process.argv.slice(2)) {
  let opts;
  try {
    opts = parse(argv);
  } catch (err) {
    console.error(`${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  const log = (line) => console.error(line);
  const started = [];
  const notes = [];
  try {
    let nats;
    let natsUrl = opts["nats-url"];
    if (!natsUrl) {
      nats = await startNats();
      started.push(nats);
      natsUrl = nats.url;
      log(`nats-server ${nats.version} on ${natsUrl} (store ${nats.storeDir})`);
    }
    let redis;
    let redisUrl = opts["no-bullmq"] ? undefined : opts["redis-url"];
    if (!redisUrl && !opts["no-bullmq"]) {
      try {
        redis = await startRedis();
        started.push(redis);
        redisUrl = redis.url;
        log(`redis-server ${redis.version} on ${redisUrl}`);
      } catch (err) {
        if (!(err instanceof ServerMissingError)) throw err;
        notes.push(`BullMQ skipped: ${err.message}`);
        log(`BullMQ skipped: ${err.message}`);
      }
    }
    const info = await machine(nats ?? { version: opts["nats-url"] ? "external" : undefined }, redis ?? { version: redisUrl ? "external" : undefined });
    log(`${info.cores} cores, node ${info.node}, load ${info.loadAvgAtStart.join(" ")}${opts.quick ? ", --quick" : ""}${opts.smoke ? ", --smoke" : ""}`);

    const results = await runSuite({
      natsUrl,
      redisUrl,
      natsPid: nats?.pid,
      redisPid: redis?.pid,
      quick: opts.quick,
      smoke: opts.smoke,
      only: opts.only,
      runs: opts.runs,
      systems: opts["no-bullmq"] ? ["naq", "raw"] : undefined,
      log,
    });
    info.loadAvgAtEnd = loadavg().map((x) => Math.round(x * 100) / 100);
    const doc = { date: new Date().toISOString(), machine: info, options: { quick: opts.quick, smoke: opts.smoke, only: opts.only, runs: opts.runs }, ...results, notes: [...notes, ...results.notes] };

    const out = opts.out ?? `${HERE}/results/${opts.smoke ? "smoke" : "latest"}.json`;
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, `${JSON.stringify(doc, null, 2)}\n`);

    console.log(`\n## naq benchmark — ${doc.date}${opts.quick ? " (--quick)" : ""}${opts.smoke ? " (--smoke)" : ""}\n`);
    console.log(
      `${info.cores} cores (${info.cpu}), ${info.memoryGiB} GiB, node ${info.node}, nats-server ${info.natsServer ?? "?"}, redis ${info.redis ?? "–"}, ` +
        `bullmq ${info.packages.bullmq ?? "–"}, nats.js ${info.packages["@nats-io/jetstream"]}; load ${info.loadAvgAtStart.join("/")} → ${info.loadAvgAtEnd.join("/")}; CLI timed by ${info.cliTimer}\n`,
    );
    if (doc.cases.length > 0) console.log(formatTable(doc));
    if (doc.cases.length > 0) console.log("\nEach cell: median (min–max) of the runs; ↑ higher is better, ↓ lower is better. Ratios are naq's median over the other's;");
    if (doc.cases.length > 0) console.log("for ↑ rows a ratio above 1 means naq is ahead, for ↓ rows below 1 does. ✅/❌: target met or not (same machine, same run).");
    const sched = formatScheduler(results.scheduler);
    if (sched) console.log(`\n${sched}`);
    const targets = targetSummary(doc);
    if (targets.length > 0) {
      const passed = targets.filter((t) => t.pass === true).length;
      console.log(`\ntargets: ${passed} of ${targets.length} met`);
    }
    for (const n of doc.notes) console.log(`note: ${n}`);
    const errors = results.cases.flatMap((c) => c.errors ?? []);
    for (const e of errors) console.log(`error: ${e}`);
    console.log(`\nJSON: ${out} (${results.seconds.toFixed(0)} s)`);
    return errors.length > 0 ? 1 : 0;
  } finally {
    for (const s of started.reverse()) await s.stop().catch(() => undefined);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const run = args.includes("--smoke") ? (await import("./smoke.mjs")).main(args.filter((a) => a !== "--smoke")) : main(args);
  run.then(
    (code) => process.exit(code),
    (err) => {
      console.error(`bench failed: ${err?.stack ?? err}`);
      process.exit(1);
    },
  );
}
