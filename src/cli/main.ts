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

/**
 * Options a command defines with the same name as a global option. Commander gives every
 * occurrence to the program, so an occurrence after the command's name is renamed to the
 * command's own hidden option: `naq job enqueue x --timeout 5s` limits the job, while
 * `naq --timeout 5s job enqueue x` is the request timeout.
 */
const LOCAL_OPTIONS: ReadonlyArray<{ path: readonly string[][]; names: readonly string[]; to: string }> = [
  { path: [["job", "jobs"], ["enqueue", "add"]], names: ["-t", "--timeout"], to: "--attempt-timeout" },
  { path: [["scheduler", "schedule", "schedules"], ["add", "set"]], names: ["-t", "--timeout"], to: "--attempt-timeout" },
];

export function localizeOptions(argv: readonly string[]): string[] {
  const out = [...argv];
  for (const rule of LOCAL_OPTIONS) {
    let depth = 0;
    for (let i = 2; i < out.length; i++) {
      const arg = out[i] as string;
      if (arg === "--") break;
      if (depth < rule.path.length) {
        if (rule.path[depth]?.includes(arg)) depth++;
        continue;
      }
      const [name, value] = arg.startsWith("--") ? arg.split(/=(.*)/s, 2) : [arg, undefined];
      if (name && rule.names.includes(name)) out[i] = value === undefined ? rule.to : `${rule.to}=${value}`;
    }
  }
  return out;
}

export async function run(argv: readonly string[] = process.argv): Promise<number> {
  const program = buildProgram();
  // Settings are not inherited by added commands: apply them to the whole tree.
  const configure = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.configureHelp({ showGlobalOptions: true });
    cmd.configureOutput({
      writeErr: (s) => process.stderr.write(s),
      // One line: an argument echoed back may hold newlines or control characters.
      outputError: (s, write) => {
        const line = s
          .replace(/\n+$/, "")
          .replace(/\n/g, " ") // Commander's own "(Did you mean ...?)" follows a newline
          // eslint-disable-next-line no-control-regex -- escaping control characters is the point
          .replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
        write(`${line.startsWith("error:") ? line : `error: ${line}`}\n`);
      },
    });
    cmd.commands.forEach(configure);
  };
  configure(program);
  try {
    await program.parseAsync(localizeOptions(argv));
    return 0;
  } catch (err) {
    if (err instanceof CommanderError && (err.code === "commander.helpDisplayed" || err.code === "commander.version")) return 0;
    return reportError(err, earlyOutput(argv));
  }
}
