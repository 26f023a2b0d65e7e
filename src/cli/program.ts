/**
 * The `naq` program: global options, help, and the command groups. Each group lives in
 * src/cli/commands/<group>.ts; their actions load lazily (see act.ts).
 */
import { Command } from "commander";
import { benchCommand } from "./commands/bench.js";
import { completionCommand } from "./commands/completion.js";
import { configCommand } from "./commands/config.js";
import { doctorCommand } from "./commands/doctor.js";
import { eventsCommand } from "./commands/events.js";
import { checkCommand } from "./commands/check.js";
import { jobCommand } from "./commands/job.js";
import { queueCommand } from "./commands/queue.js";
import { schedulerCommand } from "./commands/scheduler.js";
import { streamCommand } from "./commands/stream.js";
import { workerCommand } from "./commands/worker.js";
import { EXIT_CODES_HELP } from "./exit.js";
import { addGlobalOptions } from "./globals.js";

export const VERSION = "0.1.0";

export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => `  $ ${l}`).join("\n")}\n`;
}

export function buildProgram(): Command {
  const program = new Command("naq")
    .description("A job queue for TypeScript and shell scripts, built on NATS JetStream")
    .version(VERSION, "-V, --version")
    .showHelpAfterError("(run with --help for usage)")
    .configureHelp({ sortSubcommands: false, showGlobalOptions: true })
    .enablePositionalOptions(false);
  addGlobalOptions(program);
  program
    .addCommand(workerCommand())
    .addCommand(jobCommand())
    .addCommand(queueCommand())
    .addCommand(schedulerCommand())
    .addCommand(eventsCommand())
    .addCommand(streamCommand())
    .addCommand(doctorCommand())
    .addCommand(checkCommand())
    .addCommand(benchCommand())
    .addCommand(configCommand())
    .addCommand(completionCommand())
    .addHelpText(
      "after",
      `${examples(
        "naq worker start emails --handlers ./dist/tasks.js --concurrency 20",
        `naq job enqueue send-welcome '{"user": 42}' --queue emails --retries 5 --wait`,
        "naq events tail --queue emails --type failed --json | jq .error",
        `naq scheduler add weekday-report report --cron "0 9 * * 1-5" --tz Europe/Berlin && naq scheduler start`,
        "naq stream init",
        "naq doctor",
        "naq -s nats://nats.internal:4222 --creds ~/.nats/app.creds stream list --json | jq '.[].name'",
      )}
Configuration: .naqrc*, naq.config.*, package.json#naq, then NAQ_* env vars, then flags (later wins).
See \`naq config show\` for the merged result and where each value came from.

${EXIT_CODES_HELP}
`,
    );
  return program;
}
