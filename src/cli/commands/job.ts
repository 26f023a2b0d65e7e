/** `naq job`: enqueue jobs, read their status and results, cancel them. */
import { Command, Option } from "commander";
import { act } from "../act.js";
import { collect, parseBackoffOption, parseCount, parseDurationOption } from "../parse.js";
import { examples } from "../program.js";

export function jobCommand(): Command {
  const cmd = new Command("job").alias("jobs").description("enqueue jobs, read their status and results, cancel them");

  cmd
    .command("enqueue")
    .alias("add")
    .description("enqueue a job; prints its id (with --wait: its result)")
    .argument("<task>", "task name (a handler the worker knows)")
    .argument("[payload-json]", "the job's payload as JSON (default null)")
    .option("-Q, --queue <queue>", "queue to put the job on", "default")
    .option("-d, --data <@file|->", "read the payload from a file (@path) or stdin (-)")
    .option("--id <id>", "job id (default: a new ULID); the same id twice within the duplicate window is one job")
    .addOption(new Option("-r, --retries <n>", "retries after the first attempt").argParser((v) => parseCount(v, "--retries")))
    .addOption(new Option("--backoff <spec>", "retry delays: fixed:5s | exp:1s:5m | list:1s,5s,30s (add ~0.2 for jitter)").argParser(parseBackoffOption))
    .addOption(
      new Option("-t, --timeout <duration>", "time limit per attempt, e.g. 30s (after the command; before it, --timeout is the global request timeout)")
        .argParser((v) => parseDurationOption(v, "--timeout")),
    )
    .addOption(new Option("--attempt-timeout <duration>").hideHelp().argParser((v) => parseDurationOption(v, "--timeout")))
    .addOption(new Option("--depends-on <id>", "run only after this job completed (repeatable, or comma-separated ids)").argParser(collect))
    .addOption(new Option("-l, --label <key=value>", "label the job (repeatable)").argParser(collect))
    .option("-w, --wait", "wait for the job to finish; print its result; exit 6 if it failed")
    .addOption(new Option("--wait-timeout <duration>", "with --wait: give up after this long (exit 4)").argParser((v) => parseDurationOption(v, "--wait-timeout")))
    .addHelpText(
      "after",
      examples(
        `naq job enqueue send-welcome '{"user": 42}' --queue emails --retries 5`,
        "naq job enqueue resize --data @image.json --timeout 2m --backoff exp:1s:5m",
        `id=$(naq job enqueue report '{}' -q) && naq job result "$id" --wait`,
        `naq job enqueue build '{"ref":"main"}' --wait --wait-timeout 10m || echo "failed with $?"`,
      ),
    )
    .action(act(async () => (await import("../actions/job.js")).enqueue));

  cmd
    .command("status")
    .description("show where a job is: queued, waiting, running, retrying, completed, failed, cancelled (exit 3 if unknown)")
    .argument("<id>", "job id")
    .addHelpText("after", examples("naq job status 01JD3X5V8R2M4N6P8Q0S2T4V6W", "naq job status $id --json | jq -r .status"))
    .action(act(async () => (await import("../actions/job.js")).status));

  cmd
    .command("result")
    .description("print a finished job's result (exit 3 if unknown, 6 if it failed)")
    .argument("<id>", "job id")
    .option("-w, --wait", "wait until the job finishes")
    .addOption(new Option("--wait-timeout <duration>", "with --wait: give up after this long (exit 4)").argParser((v) => parseDurationOption(v, "--wait-timeout")))
    .addHelpText("after", examples("naq job result $id", "naq job result $id --wait --wait-timeout 5m --json"))
    .action(act(async () => (await import("../actions/job.js")).result));

  cmd
    .command("cancel")
    .description("cancel a job that has not finished: a queued job never runs, a running one is signalled to stop")
    .argument("<id>", "job id")
    .option("--reason <text>", "why (kept in the job's record)")
    .addHelpText("after", examples("naq job cancel $id", "naq job cancel $id --reason 'customer left'"))
    .action(act(async () => (await import("../actions/job.js")).cancel));

  return cmd;
}
