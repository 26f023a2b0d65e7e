/** `naq worker`: run workers and see the ones running. */
import { Command, InvalidArgumentError, Option } from "commander";
import { act } from "../act.js";
import { collect, parseCount, parseDurationOption, parsePositive } from "../parse.js";
import { examples } from "../program.js";

function parsePort(value: string): number {
  const n = parseCount(value, "--metrics-port");
  if (n > 65_535) throw new InvalidArgumentError(`--metrics-port must be a port number from 0 to 65535, got "${value}"`);
  return n;
}

export function workerCommand(): Command {
  const cmd = new Command("worker").alias("workers").description("run workers and list the ones running");

  cmd
    .command("start")
    .description("run jobs from queues (the first listed has priority) until stopped; SIGTERM/SIGINT stop gracefully, a second one at once")
    .argument("[queues...]", "queues to take jobs from", ["default"])
    .addOption(new Option("-H, --handlers <module>", "module exporting task handlers (repeatable, or comma-separated; optional with --allow-exec)").argParser(collect))
    .addOption(new Option("-C, --concurrency <n>", "jobs run at once by this worker (default: config worker.concurrency, 10)").argParser((v) => parsePositive(v, "--concurrency")))
    .addOption(new Option("--grace <duration>", "on stop, how long running jobs may take to finish (default 30s)").argParser((v) => parseDurationOption(v, "--grace")))
    .option("--burst", "exit 0 once the queues are empty and nothing runs")
    .addOption(new Option("--max-jobs <n>", "exit after taking this many jobs").argParser((v) => parsePositive(v, "--max-jobs")))
    .addOption(new Option("--max-idle <duration>", "exit after being idle this long").argParser((v) => parseDurationOption(v, "--max-idle")))
    .option("--name <name>", "worker name (shown in worker list; default the host name)")
    .addOption(
      new Option("--allow-exec <commands>", "run exec jobs for these commands only: names (resolved on PATH at start) or absolute paths, comma-separated or repeated; * is refused")
        .argParser(collect),
    )
    .addOption(new Option("--metrics-port <port>", "serve Prometheus metrics on http://<host>:<port>/metrics and a probe on /healthz (200 while healthy, else 503; 0: any free port)").argParser((v) => parsePort(v)))
    .option("--metrics-host <host>", "interface for --metrics-port (default 0.0.0.0: all)")
    .addHelpText(
      "after",
      examples(
        "naq worker start emails --handlers ./dist/tasks.js --concurrency 20",
        "naq worker start ops --allow-exec pg_dump,/opt/jobs/backup.sh --concurrency 2",
        "naq worker start emails --handlers ./dist/tasks.js --metrics-port 9464 --max-idle 10m",
        "naq worker start critical default --handlers ./tasks.mjs --grace 1m",
        "naq worker start reports --handlers ./tasks.mjs --burst --json | jq -c 'select(.outcome == \"failed\")'",
      ),
    )
    .action(act(async () => (await import("../actions/worker.js")).start));

  cmd
    .command("stop")
    .description("ask workers to stop gracefully (they finish running jobs within the grace period, then exit 0)")
    .argument("[ids...]", "worker ids (see naq worker list)")
    .option("--all", "every live worker (of --queue)")
    .option("-Q, --queue <queue>", "with --all: only workers serving this queue")
    .addOption(new Option("--grace <duration>", "how long running jobs may take to finish (default: each worker's own --grace)").argParser((v) => parseDurationOption(v, "--grace")))
    .option("--reason <text>", "why (logged by the worker)")
    .option("-w, --wait", "wait until the workers have stopped (their heartbeats are gone)")
    .addOption(new Option("--wait-timeout <duration>", "with --wait: give up after this long (exit 4)").argParser((v) => parseDurationOption(v, "--wait-timeout")))
    .addHelpText("after", examples("naq worker stop web-1-4242-a1b2c3", "naq worker stop --all --queue emails --grace 2m --wait"))
    .action(act(async () => (await import("../actions/worker.js")).stop));

  cmd
    .command("list")
    .alias("ls")
    .description("list live workers (from their heartbeats)")
    .option("--names", "print only worker ids, one per line")
    .addHelpText("after", examples("naq worker list", "naq worker list --json | jq '.[] | {id, processed}'"))
    .action(act(async () => (await import("../actions/worker.js")).list));

  return cmd;
}
