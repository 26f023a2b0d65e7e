/** `naq scheduler`: recurring schedules (add, list, show, pause, resume, remove, trigger) and the scheduler process. */
import { Command, Option } from "commander";
import { MISFIRE_POLICIES } from "../../model/schedule.js";
import { act } from "../act.js";
import { collect, parseBackoffOption, parseCount, parseDurationOption, parsePositive } from "../parse.js";
import { examples } from "../program.js";

export function schedulerCommand(): Command {
  const cmd = new Command("scheduler")
    .alias("schedule")
    .alias("schedules")
    .description("recurring jobs (cron with a time zone, or every N) and the scheduler that fires them and delayed jobs");

  cmd
    .command("add")
    .alias("set")
    .description("create or update (by name) a recurring schedule")
    .argument("<name>", "schedule name: letters, digits, '_' and '-' (fired jobs get the id <name>-<due time in ms>)")
    .argument("<task>", "task name (a handler the worker knows)")
    .argument("[payload-json]", "the jobs' payload as JSON (default null)")
    .option("--cron <expr>", 'cron expression: 5 fields, or 6 with seconds first, e.g. "0 9 * * 1-5"')
    .option("--tz <zone>", "IANA time zone for --cron and for times without an offset (default UTC)")
    .addOption(new Option("--every <duration>", "fixed interval instead of --cron, e.g. 15m (at least 1s)").argParser((v) => parseDurationOption(v, "--every")))
    .option("-Q, --queue <queue>", "queue to put the jobs on", "default")
    .option("-d, --data <@file|->", "read the payload from a file (@path) or stdin (-)")
    .option("--start-at <time>", "first run at or after this ISO 8601 time")
    .option("--end-at <time>", "no runs after this ISO 8601 time")
    .addOption(new Option("--limit <n>", "stop after this many runs").argParser((v) => parsePositive(v, "--limit")))
    .addOption(new Option("--misfire <policy>", "missed runs (scheduler down, schedule paused): skip them, catch-up (fire each), or fire-once").choices(MISFIRE_POLICIES))
    .addOption(new Option("--jitter <duration>", "fire each run up to this much after its due time (spreads load; the same on every scheduler)").argParser((v) => parseDurationOption(v, "--jitter")))
    .addOption(new Option("-r, --retries <n>", "retries after the first attempt").argParser((v) => parseCount(v, "--retries")))
    .addOption(new Option("--backoff <spec>", "retry delays: fixed:5s | exp:1s:5m | list:1s,5s,30s").argParser(parseBackoffOption))
    .addOption(
      new Option("-t, --timeout <duration>", "time limit per attempt of each job, e.g. 30s (after the command; before it, --timeout is the global request timeout)")
        .argParser((v) => parseDurationOption(v, "--timeout")),
    )
    .addOption(new Option("--attempt-timeout <duration>").hideHelp().argParser((v) => parseDurationOption(v, "--timeout")))
    .addOption(new Option("-l, --label <key=value>", "label the jobs (repeatable)").argParser(collect))
    .addHelpText(
      "after",
      examples(
        `naq scheduler add weekday-report report '{"kind":"daily"}' --cron "0 9 * * 1-5" --tz Europe/Berlin --queue reports`,
        "naq scheduler add sync-crm sync --every 15m --jitter 30s --misfire fire-once",
        `naq scheduler add black-friday promo --cron "*/30 * * * * *" --start-at 2026-11-27T00:00:00 --end-at 2026-11-28T00:00:00 --tz America/New_York`,
        "naq scheduler add warmup ping --every 1m --limit 10 --misfire catch-up",
      ),
    )
    .action(act(async () => (await import("../actions/scheduler.js")).add));

  cmd
    .command("list")
    .alias("ls")
    .description("list schedules: name, task, queue, timing, next run, last run, runs, status")
    .addHelpText("after", examples("naq scheduler list", "naq scheduler list --json | jq -r '.[] | select(.status == \"paused\") | .name'"))
    .action(act(async () => (await import("../actions/scheduler.js")).list));

  cmd
    .command("show")
    .alias("get")
    .description("show one schedule with its next runs (exit 3 if unknown)")
    .argument("<name>", "schedule name")
    .addOption(new Option("-n, --next <count>", "how many upcoming runs to show").argParser((v) => parsePositive(v, "--next")).default(5))
    .addHelpText("after", examples("naq scheduler show weekday-report", "naq scheduler show weekday-report --json | jq .upcoming"))
    .action(act(async () => (await import("../actions/scheduler.js")).show));

  cmd
    .command("pause")
    .description("stop firing a schedule until resumed")
    .argument("<name>", "schedule name")
    .addHelpText("after", examples("naq scheduler pause weekday-report"))
    .action(act(async () => (await import("../actions/scheduler.js")).pause));

  cmd
    .command("resume")
    .description("fire a paused schedule again: from its next due time (skip), every missed run (catch-up) or one now (fire-once)")
    .argument("<name>", "schedule name")
    .addHelpText("after", examples("naq scheduler resume weekday-report"))
    .action(act(async () => (await import("../actions/scheduler.js")).resume));

  cmd
    .command("remove")
    .alias("rm")
    .description("delete a schedule (jobs it already fired are not touched)")
    .argument("<name>", "schedule name")
    .option("-f, --force", "do not ask for confirmation")
    .addHelpText("after", examples("naq scheduler remove weekday-report", "naq scheduler rm old-sync --force"))
    .action(act(async () => (await import("../actions/scheduler.js")).remove));

  cmd
    .command("trigger")
    .alias("run")
    .description("enqueue a schedule's job now, outside its timing (the next run stays as it is); prints the job id")
    .argument("<name>", "schedule name")
    .addHelpText("after", examples("naq scheduler trigger weekday-report", `id=$(naq scheduler trigger nightly) && naq job result "$id" --wait`))
    .action(act(async () => (await import("../actions/scheduler.js")).trigger));

  cmd
    .command("start")
    .description("run a scheduler until stopped: several may run, one leads and fires; SIGTERM/SIGINT release the lease and exit, a second signal exits at once")
    .option("--id <id>", "this scheduler's id in the lease (default host-pid-random)")
    .addOption(new Option("--tick <duration>", "how often to look for due runs (default 1s; runs known to be due sooner fire on time)").argParser((v) => parseDurationOption(v, "--tick")))
    .addHelpText(
      "after",
      examples(
        "naq scheduler start",
        "naq scheduler start --id sched-$(hostname)",
        "naq scheduler start --json | jq -c 'select(.event == \"fired\")'",
      ),
    )
    .action(act(async () => (await import("../actions/scheduler.js")).start));

  return cmd;
}
