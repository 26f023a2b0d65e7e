/**
 * A plain description of the Commander tree, for generating shell completions and man
 * pages from the same source as `--help` (so they cannot drift from the real CLI).
 */
import type { Command, Option } from "commander";

/** Where a value can be completed from at run time (`naq <list command> --names`). */
export const DYNAMIC_SOURCES = {
  queues: "queue list --names",
  streams: "stream list --names",
  workers: "worker list --names",
  schedules: "scheduler list --names",
} as const;
export type DynamicSource = keyof typeof DYNAMIC_SOURCES;

export interface OptionSpec {
  short?: string;
  long?: string;
  flags: string;
  description: string;
  takesValue: boolean;
  choices?: readonly string[];
  dynamic?: DynamicSource;
  /** The value is a file or directory path (complete file names). */
  isPath?: boolean;
  defaultValue?: string;
}

export interface ArgSpec {
  name: string;
  description: string;
  required: boolean;
  variadic: boolean;
  dynamic?: DynamicSource;
  isPath?: boolean;
}

export interface CommandSpec {
  name: string;
  aliases: string[];
  /** Command names from the root, e.g. ["job", "enqueue"]; [] for the root. */
  path: string[];
  description: string;
  options: OptionSpec[];
  args: ArgSpec[];
  commands: CommandSpec[];
  /** The full `--help` text, including examples added with addHelpText. */
  help: string;
  examples: string[];
}

const OPTION_SOURCES: Record<string, DynamicSource> = { "--queue": "queues" };

function argSource(path: string[], name: string): DynamicSource | undefined {
  const n = name.toLowerCase();
  if (n.startsWith("queue")) return "queues";
  if (n.startsWith("stream")) return "streams";
  if (path[0] === "scheduler" && n === "name") return "schedules";
  if (path[0] === "worker" && (n === "id" || n === "worker")) return "workers";
  return undefined;
}

const PATHISH = /<(file|module|dir|path|seed\|file)|@file/;

function optionSpec(o: Option): OptionSpec {
  const takesValue = o.required || o.optional;
  return {
    ...(o.short ? { short: o.short } : {}),
    ...(o.long ? { long: o.long } : {}),
    flags: o.flags,
    description: o.description,
    takesValue,
    ...(o.argChoices ? { choices: o.argChoices } : {}),
    ...(o.long && OPTION_SOURCES[o.long] ? { dynamic: OPTION_SOURCES[o.long] } : {}),
    ...(takesValue && PATHISH.test(o.flags) ? { isPath: true } : {}),
    ...(o.defaultValue !== undefined && typeof o.defaultValue !== "object" ? { defaultValue: o.defaultValueDescription ?? String(o.defaultValue) } : {}),
  };
}

/** The help text Commander would print for `cmd --help` (with text added by addHelpText). */
export function helpText(cmd: Command): string {
  let text = "";
  const restore = cmd.configureOutput();
  cmd.configureOutput({ ...restore, writeOut: (s) => void (text += s), getOutHelpWidth: () => 100, getOutHasColors: () => false });
  try {
    cmd.outputHelp();
  } finally {
    cmd.configureOutput(restore);
  }
  return text;
}

export function examplesOf(help: string): string[] {
  const at = help.indexOf("\nExamples:\n");
  if (at < 0) return [];
  const out: string[] = [];
  for (const line of help.slice(at + "\nExamples:\n".length).split("\n")) {
    const m = /^\s+\$ (.*)$/.exec(line);
    if (m) out.push(m[1] as string);
    else if (line.trim() !== "") break;
  }
  return out;
}

export function describeTree(cmd: Command, path: string[] = []): CommandSpec {
  const help = helpText(cmd);
  return {
    name: cmd.name(),
    aliases: cmd.aliases(),
    path,
    description: cmd.description(),
    options: cmd.options.filter((o) => !o.hidden).map(optionSpec),
    args: cmd.registeredArguments.map((a) => ({
      name: a.name(),
      description: a.description,
      required: a.required,
      variadic: a.variadic,
      ...(argSource(path, a.name()) ? { dynamic: argSource(path, a.name()) } : {}),
      ...(/file|module|dir|path/.test(a.name()) ? { isPath: true } : {}),
    })),
    commands: cmd.commands.filter((c) => c.name() !== "help").map((c) => describeTree(c, [...path, c.name()])),
    help,
    examples: examplesOf(help),
  };
}

/** Every command in the tree, depth first, root first. */
export function allCommands(root: CommandSpec): CommandSpec[] {
  return [root, ...root.commands.flatMap(allCommands)];
}
