/** `naq config`: show, validate and start a configuration. */
import { Command, Option } from "commander";
import { act } from "../act.js";
import { examples } from "../program.js";

export function configCommand(): Command {
  const cmd = new Command("config").description("show, validate and create naq configuration");

  cmd
    .command("show")
    .description("print the merged configuration and where each value came from (secrets redacted)")
    .addHelpText("after", examples("naq config show", "NAQ_URL=nats://a:4222 naq config show --json"))
    .action(act(async () => (await import("../actions/config.js")).show));

  cmd
    .command("validate")
    .description("check a config file (default: the one naq would load); exit 0 when valid, 2 when not")
    .argument("[file]", "config file to check")
    .addHelpText("after", examples("naq config validate", "naq config validate ./deploy/.naqrc.yaml"))
    .action(act(async () => (await import("../actions/config.js")).validate, { loadConfig: false }));

  cmd
    .command("init")
    .description("write a commented starter config file in the current directory")
    .addOption(new Option("--format <format>", "file format").choices(["yaml", "json", "js"]).default("yaml"))
    .option("-o, --output <file>", "where to write it (default .naqrc.yaml / .naqrc.json / naq.config.mjs)")
    .option("-f, --force", "overwrite an existing file")
    .addHelpText("after", examples("naq config init", "naq config init --format json -o .naqrc.json"))
    .action(act(async () => (await import("../actions/config.js")).init, { loadConfig: false }));

  return cmd;
}
