/** `naq events`: follow, replay and summarize the record of every job and worker. */
import { Command, Option } from "commander";
import { EVENT_TYPES } from "../../model/events.js";
import { STATS_GROUP_BY } from "../../model/stats.js";
import { act } from "../act.js";
import { collect, parseDurationOption, parsePositive } from "../parse.js";
import { examples } from "../program.js";

const SINCE_HELP = "a duration back from now (10m, 2h, 1d), an ISO 8601 time, or all";

export function eventsCommand(): Command {
  const cmd = new Command("events")
    .alias("event")
    .description("follow, replay and summarize job and worker events (reading never consumes them)");

  cmd
    .command("tail")
    .alias("follow")
    .description("print events as they happen (NDJSON with --json); queue, job and type are filtered by the server")
    .option("-Q, --queue <queue>", "only this queue (_worker: worker lifecycle events, _schedule: schedule events)")
    .option("--job <id>", "only this job")
    .option("--task <task>", "only this task")
    .option("--worker <id>", "only events published by this worker")
    .option("--type <types>", `only these types, comma-separated or repeated: ${EVENT_TYPES.join(", ")}`, collect)
    .option("--since <when>", `start with older events: ${SINCE_HELP} (default: only new events, also written as new)`)
    .addOption(new Option("--count <n>", "exit 0 after N matching events").argParser((v) => parsePositive(v, "--count")))
    .addOption(
      new Option("--max-wait <duration>", "stop after this long (exit 4 if --count events were not seen by then)").argParser((v) =>
        parseDurationOption(v, "--max-wait"),
      ),
    )
    .addHelpText(
      "after",
      `${examples(
        "naq events tail",
        "naq events tail --queue emails --type failed,retrying --json | jq .error.message",
        "naq events tail --job 01JD3X5V8R2M4N6P8Q0S2T4V6W --since all",
        "naq events tail --queue emails --type completed --count 100 --max-wait 5m   # wait for a batch",
        "naq events tail --type worker_started,worker_stopped",
      )}
Ends on Ctrl-C, SIGTERM, or when the reader of its output goes away (| head), with exit 0.
`,
    )
    .action(act(async () => (await import("../actions/events.js")).tail));

  cmd
    .command("history")
    .alias("show")
    .description("the whole life of one job, in order: enqueued, every attempt, retries, final state (exit 3 if none)")
    .argument("<job-id>", "the job's id")
    .addHelpText(
      "after",
      examples("naq events history 01JD3X5V8R2M4N6P8Q0S2T4V6W", "naq events history 01JD3X5V8R2M4N6P8Q0S2T4V6W --json | jq -r '.events[].type'"),
    )
    .action(act(async () => (await import("../actions/events.js")).history));

  cmd
    .command("stats")
    .description("counts per type, failure rate, throughput and duration percentiles over a window")
    .option("--since <when>", `start of the window: ${SINCE_HELP}`, "1h")
    .addOption(new Option("--by <field>", "also break the numbers down per queue, task or worker").choices(STATS_GROUP_BY))
    .addHelpText(
      "after",
      examples("naq events stats", "naq events stats --since 24h --by queue", "naq events stats --since 2025-01-15T00:00:00Z --by task --json | jq '.groups[] | {key, failureRate}'"),
    )
    .action(act(async () => (await import("../actions/events.js")).stats));

  return cmd;
}
