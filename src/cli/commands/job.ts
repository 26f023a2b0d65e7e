/** `naq job`: enqueue jobs, read their status and results, cancel them. */
import { Command, Option } from "commander";
import { act } from "../act.js";
import { collect, collectRaw, parseBackoffOption, parseCount, parseDurationOption, parsePositive } from "../parse.js";
import { examples } from "../program.js";

export function jobCommand(): Command {
  const cmd = new Command("job").alias("jobs").description("enqueue jobs, read their status and results, cancel them");

  cmd
    .command("enqueue")
    .alias("add")
    .description("enqueue a job (or many with --ndjson, or a command with --exec); prints its id (with --wait: its result)")
    .argument("[task]", "task name (a handler the worker knows); with --exec: the command")
    .argument("[payload-json]", "the job's payload as JSON (default null); with --exec: the command's first argument")
    .argument("[args...]", "with --exec: the command's other arguments (write -- before the command)")
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
    .addOption(new Option("--delay <duration>", "run it this long from now, e.g. 10m (status scheduled until then; a scheduler must run: naq scheduler start)").argParser((v) => parseDurationOption(v, "--delay")))
    .option("--at <time>", "run it at this ISO 8601 time, e.g. 2026-12-01T09:00:00Z (a time without an offset needs --tz)")
    .option("--tz <zone>", "with --at: the IANA time zone of a time written without an offset, e.g. Europe/Berlin")
    .option("--ndjson [file]", "enqueue one job per line of JSON from stdin (or - or a file): {\"task\", \"payload\", \"queue\"?, \"id\"?, \"retries\"?, \"backoff\"?, \"timeout\"?, \"dependsOn\"?, \"labels\"?}; prints one id (or JSON) per job")
    .option("--strict", "with --ndjson: check every line first and enqueue nothing if one is bad (exit 2)")
    .addOption(new Option("--window <n>", "with --ndjson: publishes awaiting their ack at once (default 256)").argParser((v) => parsePositive(v, "--window")))
    .option("--exec", "enqueue the built-in exec task: run the command after -- (no shell) on a worker started with --allow-exec")
    .option("--cwd <dir>", "with --exec: working directory of the command on the worker")
    .addOption(new Option("-e, --env <KEY=value>", "with --exec: environment variable for the command (repeatable)").argParser(collectRaw))
    .addHelpText(
      "after",
      examples(
        `naq job enqueue send-welcome '{"user": 42}' --queue emails --retries 5`,
        `jq -c '{task: "resize", payload: .}' images.json | naq job enqueue --ndjson --queue images`,
        "naq job enqueue --ndjson jobs.ndjson --strict --json | jq -r .id",
        "naq job enqueue --exec --queue ops --timeout 10m --env TARGET=prod -- /opt/jobs/backup.sh --full",
        "naq job enqueue --exec --wait -- pg_dump -f /backups/db.sql mydb",
        "naq job enqueue resize --data @image.json --timeout 2m --backoff exp:1s:5m",
        `id=$(naq job enqueue report '{}' -q) && naq job result "$id" --wait`,
        `naq job enqueue send-reminder '{"user": 42}' --delay 24h`,
        "naq job enqueue rotate-keys --at 2026-12-01T09:00:00 --tz Europe/Berlin",
        `naq job enqueue build '{"ref":"main"}' --wait --wait-timeout 10m || echo "failed with $?"`,
      ),
    )
    .action(act(async () => (await import("../actions/job.js")).enqueue));

  cmd
    .command("status")
    .description("show where a job is: scheduled, queued, waiting, running, retrying, completed, failed, cancelled (exit 3 if unknown)")
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
    .description("cancel jobs that have not finished: a queued job never runs, a running one gets its AbortSignal (exec: its processes are killed)")
    .argument("<id...>", "job ids")
    .option("--reason <text>", "why (kept in the job's record)")
    .addHelpText(
      "after",
      examples(
        "naq job cancel $id",
        "naq job cancel $id --reason 'customer left'",
        "naq job list --queue emails --status queued --json | jq -r '.[].id' | xargs naq job cancel",
      ),
    )
    .action(act(async () => (await import("../actions/job.js")).cancel));

  cmd
    .command("list")
    .alias("ls")
    .description("list jobs: waiting and running ones (queue order), delayed ones not yet due (soonest first), then ended ones (newest first)")
    .option("-Q, --queue <queue>", "only jobs of this queue")
    .addOption(new Option("--status <status>", "only jobs with this status").choices(["queued", "waiting", "running", "retrying", "scheduled", "completed", "failed", "cancelled"]))
    .addOption(new Option("-n, --limit <n>", "at most this many jobs").argParser((v) => parsePositive(v, "--limit")).default(100))
    .addHelpText(
      "after",
      examples("naq job list", "naq job list --queue emails --status running", "naq job list --status scheduled    # delayed jobs not yet due", "naq job list --status failed --json | jq -r '.[] | [.id, .error.message] | @tsv'"),
    )
    .action(act(async () => (await import("../actions/ops.js")).list));

  cmd
    .command("failed")
    .description("list dead-lettered jobs (newest first) with the reason and the last error")
    .option("-Q, --queue <queue>", "only jobs of this queue")
    .addOption(new Option("-n, --limit <n>", "at most this many jobs").argParser((v) => parsePositive(v, "--limit")))
    .addHelpText("after", examples("naq job failed", "naq job failed --queue emails --json | jq -r '.[].id'"))
    .action(act(async () => (await import("../actions/ops.js")).failed));

  cmd
    .command("retry")
    .description("re-enqueue dead-lettered jobs as they were first sent, with fresh attempts; prints their ids")
    .argument("[id...]", "job ids (or --all)")
    .option("--all", "every dead-lettered job (of --queue)")
    .option("-Q, --queue <queue>", "with --all: only jobs of this queue")
    .addHelpText("after", examples("naq job retry $id", "naq job retry --all --queue emails", "naq job failed --json | jq -r '.[] | select(.reason | test(\"SMTP\")) | .id' | xargs naq job retry"))
    .action(act(async () => (await import("../actions/ops.js")).retry));

  cmd
    .command("logs")
    .description("print a job's log lines (ctx.log, exec output); --json: all its events as NDJSON")
    .argument("<id>", "job id")
    .option("-f, --follow", "keep printing until the job ends")
    .addHelpText("after", examples("naq job logs $id", "naq job logs $id --follow", "naq job logs $id --json | jq -c 'select(.type == \"retrying\")'"))
    .action(act(async () => (await import("../actions/ops.js")).logs));

  return cmd;
}
