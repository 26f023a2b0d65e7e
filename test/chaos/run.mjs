#!/usr/bin/env node
// `npm run test:chaos [-- --long] [vitest args...]`: runs the chaos suite (fast scenarios by
// default, full-size ones with --long), then writes the table in docs/reliability.md from
// the results of this run. Other arguments go to vitest (e.g. a file filter, --reporter).
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const args = process.argv.slice(2);
const long = args.includes("--long");
const vitestArgs = args.filter((a) => a !== "--long");
const resultsDir = process.env.NAQ_CHAOS_RESULTS ?? path.join(root, "test", "chaos", "results");
const docFile = path.join(root, "docs", "reliability.md");
// Table order: as the reliability issue lists the faults; unknown ids go last.
const ORDER = ["worker-kill", "server-restart", "cluster-failover", "scheduler-stop", "backpressure", "soak"];
const rank = (id) => (ORDER.includes(id) ? ORDER.indexOf(id) : ORDER.length);

rmSync(resultsDir, { recursive: true, force: true });
const run = spawnSync(
  process.execPath,
  [path.join(root, "node_modules", "vitest", "vitest.mjs"), "run", "--config", "vitest.chaos.config.ts", ...vitestArgs],
  { cwd: root, stdio: "inherit", env: { ...process.env, NAQ_CHAOS_LONG: long ? "1" : "0", NAQ_CHAOS_RESULTS: resultsDir } },
);

const results = existsSync(resultsDir)
  ? readdirSync(resultsDir)
      .filter((f) => f.endsWith(".json"))
      .map((f) => JSON.parse(readFileSync(path.join(resultsDir, f), "utf8")))
      .sort((a, b) => rank(a.id) - rank(b.id) || a.id.localeCompare(b.id))
  : [];

if (results.length > 0 && !vitestArgs.some((a) => !a.startsWith("-"))) writeDoc(results);
else if (results.length > 0) console.error(`chaos: a filtered run; ${path.relative(root, docFile)} left as it was`);
process.exit(run.status ?? 1);

function writeDoc(rows) {
  const natsVersion = spawnSync("nats-server", ["--version"], { encoding: "utf8" }).stdout?.trim() ?? "unknown";
  const fmt = (v, unit = "") => (v === null || v === undefined ? "-" : `${typeof v === "number" ? Math.round(v * 10) / 10 : v}${unit}`);
  const table = [
    "| Scenario | Jobs | Completed | Lost | Duplicated | Recovery | Peak RSS | Notes |",
    "|---|---:|---:|---:|---:|---:|---:|---|",
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${r.jobs} | ${r.completed} | ${r.lost} | ${r.duplicated} | ${fmt(r.recoveryMs, " ms")} | ` +
        `${fmt(r.peakRssMiB, " MiB")} | ${(r.notes ?? "").replace(/\|/g, "\\|")} |`,
    ),
  ].join("\n");
  const text = readFileSync(docFile, "utf8");
  const begin = "<!-- chaos-table:begin -->";
  const end = "<!-- chaos-table:end -->";
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  if (i < 0 || j < i) throw new Error(`${docFile} lacks the ${begin} / ${end} markers`);
  const block = [
    begin,
    `Latest run: ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, ${long ? "long" : "fast"} mode` +
      ` (\`npm run test:chaos${long ? " -- --long" : ""}\`), ${os.cpus().length} cores, Node ${process.version}, ${natsVersion}.`,
    "",
    table,
    end,
  ].join("\n");
  writeFileSync(docFile, text.slice(0, i) + block + text.slice(j + end.length));
  console.error(`chaos: wrote the results table to ${path.relative(root, docFile)}`);
}
