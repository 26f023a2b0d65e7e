/**
 * scheduler: the cost of one scheduler tick with 100k far-future entries vs none.
 *
 * HOOK. That benchmark belongs to the scheduler work and lives in bench/scheduler-tick.mjs
 * (its own file, its own owner). The suite runs it when the file exists:
 *
 *   - if it exports `schedulerTick` (or `run`, or a default function), the suite calls
 *       await schedulerTick({ natsUrl, quick, runs })
 *     and stores what it returns;
 *   - otherwise (today) it runs `node bench/scheduler-tick.mjs` with NAQ_URL set to the
 *     bench's server (so it starts no server of its own), with BENCH_FAR=10000 BENCH_ROUNDS=5
 *     under --quick (loading 100k entries alone takes ~30 s), and parses its
 *     text: "tick firing N due jobs  <empty> ms  <loaded> ms", "tick with nothing due ...".
 *     Its figures are medians over its own rounds (it is run once per suite).
 *
 * When the file does not exist the result is { skipped }.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL, URL } from "node:url";
import { cleanEnv } from "./add-bulk.mjs";

export const SCHEDULER_TICK = fileURLToPath(new URL("../scheduler-tick.mjs", import.meta.url));

export function available() {
  return existsSync(SCHEDULER_TICK);
}

/** Parses scheduler-tick.mjs's text report; undefined when it does not look like one. */
export function parseReport(text) {
  const num = (s) => Number(s.replace(/,/g, ""));
  const far = /empty\s+([\d,]+)\s+due/.exec(text);
  const rounds = /(\d+) rounds, (\d+) jobs due per round/.exec(text);
  const row = (re) => {
    const m = re.exec(text);
    return m ? { empty: num(m[1]), loaded: num(m[2]) } : undefined;
  };
  const busy = row(/tick firing \d+ due jobs\s+([\d.,]+) ms\s+([\d.,]+) ms/);
  const idle = row(/tick with nothing due\s+([\d.,]+) ms\s+([\d.,]+) ms/);
  const listing = row(/wildcard key listing[^)]*\)\s+([\d.,]+) ms\s+([\d.,]+) ms/);
  if (!busy && !idle) return undefined;
  const fired = /fired (\d+)\/(\d+) \(empty\), (\d+)\/(\d+) \(loaded\)/.exec(text);
  return {
    unit: "ms",
    entries: far ? num(far[1]) : undefined,
    rounds: rounds ? Number(rounds[1]) : undefined,
    duePerRound: rounds ? Number(rounds[2]) : undefined,
    busy,
    idle,
    listing,
    allFired: fired ? fired[1] === fired[2] && fired[3] === fired[4] : undefined,
  };
}

export async function run({ natsUrl, quick = false, runs = 3 }) {
  const t0 = Date.now();
  const source = readFileSync(SCHEDULER_TICK, "utf8");
  if (/export\s+(async\s+)?function\s+(schedulerTick|run)\b|export\s+default\s/.test(source)) {
    const mod = await import(pathToFileURL(SCHEDULER_TICK).href);
    const fn = mod.schedulerTick ?? mod.run ?? (typeof mod.default === "function" ? mod.default : undefined);
    if (fn) return { via: "import", result: await fn({ natsUrl, quick, runs }), seconds: (Date.now() - t0) / 1000 };
  }
  const env = cleanEnv({ NAQ_URL: natsUrl, ...(quick ? { BENCH_FAR: process.env.BENCH_FAR ?? "10000", BENCH_ROUNDS: process.env.BENCH_ROUNDS ?? "5" } : {}) });
  const { code, stdout, stderr } = await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SCHEDULER_TICK], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("exit", (c) => resolve({ code: c, stdout: out, stderr: err }));
  });
  if (code !== 0) throw new Error(`bench/scheduler-tick.mjs exited ${code}: ${(stderr || stdout).slice(-500)}`);
  return { via: "process", result: parseReport(stdout) ?? stdout.trim(), text: stdout.trim(), seconds: (Date.now() - t0) / 1000 };
}
