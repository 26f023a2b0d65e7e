/** `naq check`: one-line health checks with exit codes for cron, probes and monitoring. */
import { Command, Option } from "commander";
import { act } from "../act.js";
import { parseCount, parseDurationOption } from "../parse.js";
import { examples } from "../program.js";

export function checkCommand(): Command {
  const cmd = new Command("check").description("health checks for cron and probes: print one status line, exit 0 when OK, 1 when a threshold is crossed");

  cmd
    .command("queue")
    .description("check a queue against thresholds (exit 0 OK, 1 over a threshold, 3 unknown queue)")
    .argument("<queue>", "queue name")
    .addOption(new Option("--max-waiting <n>", "fail when more jobs than this wait").argParser((v) => parseCount(v, "--max-waiting")))
    .addOption(new Option("--max-age <duration>", "fail when the oldest job not yet taken is older than this").argParser((v) => parseDurationOption(v, "--max-age")))
    .addOption(new Option("--max-failed <n>", "fail when more jobs than this are dead-lettered").argParser((v) => parseCount(v, "--max-failed")))
    .addHelpText(
      "after",
      examples(
        "naq check queue emails --max-waiting 1000 --max-age 5m",
        "naq check queue emails --max-failed 0 || alert 'emails are failing'",
        "naq check queue emails --max-age 10m --json | jq .ok",
      ),
    )
    .action(act(async () => (await import("../actions/check.js")).queue));

  cmd
    .command("workers")
    .description("check that enough workers are alive (from their heartbeats)")
    .addOption(new Option("--min <n>", "fail with fewer live workers than this").argParser((v) => parseCount(v, "--min")).default(1))
    .option("-Q, --queue <queue>", "count only workers serving this queue")
    .addHelpText("after", examples("naq check workers --min 2", "naq check workers --queue emails"))
    .action(act(async () => (await import("../actions/check.js")).workers));

  return cmd;
}
