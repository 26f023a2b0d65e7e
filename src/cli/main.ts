/**
 * CLI entry: parse, run one command, map any failure to one stderr line and an exit code.
 * Returns the exit code; only bin/naq touches the process's exit status.
 */
import { CommanderError, type Command } from "commander";
import { reportError } from "./exit.js";
import { Output } from "./output.js";
import { buildProgram } from "./program.js";

/** Output settings read straight from argv, for errors raised before options are parsed. */
function earlyOutput(argv: readonly string[]): Output {
  return new Output({
    json: argv.includes("--json"),
    quiet: argv.includes("-q") || argv.includes("--quiet"),
    color: !argv.includes("--no-color"),
    verbose: argv.includes("-v") || argv.includes("--verbose"),
  });
}

export async function run(argv: readonly string[] = process.argv): Promise<number> {
  const program = buildProgram();
  // Settings are not inherited by added commands: apply them to the whole tree.
  const configure = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.configureHelp({ showGlobalOptions: true });
    cmd.configureOutput({
      writeErr: (s) => process.stderr.write(s),
      outputError: (s, write) => write(s.startsWith("error:") ? s : `error: ${s}`),
    });
    cmd.commands.forEach(configure);
  };
  configure(program);
  try {
    await program.parseAsync(argv as string[]);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError && (err.code === "commander.helpDisplayed" || err.code === "commander.version")) return 0;
    return reportError(err, earlyOutput(argv));
  }
}
