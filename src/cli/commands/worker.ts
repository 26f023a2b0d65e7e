/** `naq worker`: run workers and see the ones running. */
import { Command, Option } from "commander";
import { act } from "../act.js";
import { collect, parseDurationOption, parsePositive } from "../parse.js";
import { examples } from "../program.js";

export function workerCommand(): Command {
  const cmd = new Command("worker").alias("workers").description("run workers and list the ones running");

  cmd
    .command("start")
    .description("run jobs from queues (the first listed has priority) until stopped; SIGTERM/SIGINT stop gracefully, a second one at once")
    .argument("[queues...]", "queues to take jobs from", ["default"])
    .addOption(new Option("-H, --handlers <module>", "module exporting task handlers (repeatable, or comma-separated)").argParser(collect).makeOptionMandatory())
    .addOption(new Option("-C, --concurrency <n>", "jobs run at once by this worker (default: config worker.concurrency, 10)").argParser((v) => parsePositive(v, "--concurrency")))
    .addOption(new Option("--grace <duration>", "on stop, how long running jobs may take to finish (default 30s)").argParser((v) => parseDurationOption(v, "--grace")))
    .option("--burst", "exit 0 once the queues are empty and nothing runs")
    .addOption(new Option("--max-jobs <n>", "exit after taking this many jobs").argParser((v) => parsePositive(v, "--max-jobs")))
    .addOption(new Option("--max-idle <duration>", "exit after being idle this long").argParser((v) => parseDurationOption(v, "--max-idle")))
    .option("--name <name>", "worker name (shown in worker list; default the host name)")
    .addHelpText(
      "after",
      examples(
        "naq worker start emails --handlers ./dist/tasks.js --concurrency 20",
        "naq worker start critical default --handlers ./tasks.mjs --grace 1m",
        "naq worker start reports --handlers ./tasks.mjs --burst --json | jq -c 'select(.outcome == \"failed\")'",
      ),
    )
    .action(act(async () => (await import("../actions/worker.js")).start));

  cmd
    .command("list")
    .alias("ls")
    .description("list live workers (from their heartbeats)")
    .option("--names", "print only worker ids, one per line")
    .addHelpText("after", examples("naq worker list", "naq worker list --json | jq '.[] | {id, processed}'"))
    .action(act(async () => (await import("../actions/worker.js")).list));

  return cmd;
}
