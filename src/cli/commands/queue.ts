/** `naq queue`: see queues, pause and resume them. */
import { Command } from "commander";
import { act } from "../act.js";
import { examples } from "../program.js";

export function queueCommand(): Command {
  const cmd = new Command("queue").alias("queues").description("list queues, show one, pause and resume them");

  cmd
    .command("list")
    .alias("ls")
    .description("list queues: jobs waiting and running, paused, live workers, dead-lettered jobs")
    .option("--names", "print only the queue names, one per line")
    .addHelpText("after", examples("naq queue list", "naq queue list --json | jq -r '.[] | select(.paused) | .name'"))
    .action(act(async () => (await import("../actions/queue.js")).list));

  cmd
    .command("info")
    .description("show one queue: counts, its consumer, the oldest job not yet taken, pause, workers (exit 3 if unknown)")
    .argument("<queue>", "queue name")
    .addHelpText("after", examples("naq queue info emails", "naq queue info emails --json | jq .oldest.ageMs"))
    .action(act(async () => (await import("../actions/queue.js")).info));

  cmd
    .command("pause")
    .description("pause a queue: workers stop fetching from it within a second; jobs stay queued (nothing is lost); running jobs finish")
    .argument("<queue>", "queue name")
    .option("--reason <text>", "why (shown by queue list/info)")
    .addHelpText("after", examples("naq queue pause emails --reason 'SMTP maintenance'", "naq queue pause emails && deploy.sh && naq queue resume emails"))
    .action(act(async () => (await import("../actions/queue.js")).pause));

  cmd
    .command("resume")
    .description("resume a paused queue: workers fetch from it again at once")
    .argument("<queue>", "queue name")
    .addHelpText("after", examples("naq queue resume emails"))
    .action(act(async () => (await import("../actions/queue.js")).resume));

  return cmd;
}
