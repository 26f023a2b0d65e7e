/** `naq stream`: create, inspect, purge and delete naq's streams and KV buckets. */
import { Command, Option } from "commander";
import { act } from "../act.js";
import { parseCount } from "../parse.js";
import { examples } from "../program.js";

export function streamCommand(): Command {
  const cmd = new Command("stream")
    .alias("streams")
    .description("create, inspect, purge and delete naq's JetStream streams and KV buckets");

  cmd
    .command("init")
    .description("create or update every stream and bucket naq uses (idempotent; never deletes)")
    .addHelpText("after", examples("naq stream init", "naq --namespace billing stream init --json"))
    .action(act(async () => (await import("../actions/stream.js")).init));

  cmd
    .command("list")
    .alias("ls")
    .description("list naq's streams and buckets with message counts and sizes")
    .option("--names", "print only the names, one per line")
    .option("--all", "list every stream on the account, not only naq's")
    .addHelpText("after", examples("naq stream list", "naq stream list --names"))
    .action(act(async () => (await import("../actions/stream.js")).list));

  cmd
    .command("info")
    .description("show a stream (or a queue: its messages and consumer) in detail")
    .argument("<stream|queue>", "a stream name, or a queue name")
    .addHelpText("after", examples("naq stream info naq_jobs", "naq stream info emails --json"))
    .action(act(async () => (await import("../actions/stream.js")).info));

  cmd
    .command("purge")
    .description("remove messages from a queue or a stream; prints how many were removed")
    .argument("<queue|stream>", "a queue name (purges its waiting jobs) or a stream name")
    .option("--subject <subject>", "only messages on this subject")
    .addOption(new Option("--keep <n>", "keep the newest N messages").argParser((v) => parseCount(v, "--keep")))
    .option("-f, --force", "do not ask for confirmation (required without a terminal)")
    .addHelpText("after", examples("naq stream purge emails --force", "naq stream purge naq_events --keep 1000 --force"))
    .action(act(async () => (await import("../actions/stream.js")).purge));

  cmd
    .command("delete")
    .alias("rm")
    .description("delete a stream and all its messages")
    .argument("<stream>", "stream name")
    .option("-f, --force", "do not ask for confirmation (required without a terminal)")
    .addHelpText("after", examples("naq stream delete naq_dlq --force"))
    .action(act(async () => (await import("../actions/stream.js")).remove));

  return cmd;
}
