/**
 * Man pages generated from the command tree plus the prose in man-prose.ts: naq(1) for
 * the program, global options, environment, files and exit codes, and naq-<group>(1)
 * for each command group.
 */
import { ENV_VARS } from "../../config/env.js";
import { EXIT_CODES_HELP } from "../exit.js";
import { DESCRIPTION, FILES, GROUP_PROSE } from "./man-prose.js";
import type { CommandSpec, OptionSpec } from "./tree.js";

const DATE = "2026-11-21";

/** Escapes text for roff: backslashes, dashes, and lines that would start a request. */
export function roff(text: string): string {
  return text
    .replace(/\\/g, "\\e")
    .replace(/-/g, "\\-")
    .replace(/[^\t\n\x20-\x7e]/g, (ch) => (ch === "\u2014" ? "\\(em" : ch === "\u2026" ? "..." : `\\[u${ch.codePointAt(0)?.toString(16).toUpperCase().padStart(4, "0")}]`))
    .split("\n")
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join("\n");
}

/** Capitalized, ending with a full stop. */
function sentence(text: string): string {
  const t = text.trim().replace(/^./, (c) => c.toUpperCase());
  return /[.!?)]$/.test(t) ? t : `${t}.`;
}

function optionItem(o: OptionSpec): string[] {
  // Flags bold, value placeholders (<name>) italic.
  const rendered = o.flags
    .split(/(<[^>]+>)/)
    .filter((part) => part !== "")
    .map((part) => (part.startsWith("<") ? `\\fI${roff(part)}\\fR` : `\\fB${roff(part)}\\fR`))
    .join("");
  const extras: string[] = [];
  if (o.choices) extras.push(`One of: ${o.choices.join(", ")}.`);
  if (o.defaultValue !== undefined && o.defaultValue !== "false") extras.push(`Default: ${o.defaultValue}.`);
  return [".TP", rendered, roff([sentence(o.description), ...extras].join(" "))];
}

function synopsis(c: CommandSpec): string[] {
  const lines = [".SY naq", `.B ${roff(c.path.join(" "))}`];
  if (c.options.length > 0) lines.push(".RI [ options ]");
  for (const a of c.args) {
    const name = roff(a.name) + (a.variadic ? "\\&..." : "");
    lines.push(a.required ? `.I ${name}` : `.RI [ ${name} ]`);
  }
  lines.push(".YS");
  return lines;
}

function examplesBlock(examples: string[]): string[] {
  if (examples.length === 0) return [];
  return [".PP", "Examples:", ".PP", ".RS", ".EX", ...examples.map((e) => `$ ${roff(e)}`), ".EE", ".RE"];
}

function commandSection(c: CommandSpec): string[] {
  const lines = [`.SS "naq ${roff(c.path.join(" "))}"`];
  if (c.aliases.length > 0) lines.push(`(alias: ${roff(c.aliases.join(", "))})`, ".br");
  lines.push(roff(sentence(c.description)));
  if (c.args.length > 0) {
    lines.push(".PP", "Arguments:", ".RS");
    for (const a of c.args) lines.push(".TP", `\\fI${roff(a.name)}\\fR`, roff(sentence(a.description || a.name)));
    lines.push(".RE");
  }
  if (c.options.length > 0) {
    lines.push(".PP", "Options:", ".RS");
    for (const o of c.options) lines.push(...optionItem(o));
    lines.push(".RE");
  }
  lines.push(...examplesBlock(c.examples));
  return lines;
}

function header(name: string, title: string): string[] {
  return [
    `.\\" ${name}.1 - generated from naq's command tree; do not edit (npm run gen)`,
    `.TH ${name.toUpperCase()} 1 ${DATE} "naq 0.1.0" "User Commands"`,
    ".SH NAME",
    `${roff(name)} \\- ${roff(title)}`,
  ];
}

export function groupPage(root: CommandSpec, group: CommandSpec): string {
  const leaves = group.commands.length > 0 ? group.commands : [group];
  const lines = [...header(`naq-${group.name}`, group.description), ".SH SYNOPSIS", ...leaves.flatMap(synopsis)];
  lines.push(".SH DESCRIPTION", roff(sentence(group.description)));
  if (GROUP_PROSE[group.name]) lines.push(".PP", GROUP_PROSE[group.name] as string);
  lines.push(
    ".PP",
    "Global options (connection, output, config) are described in",
    ".BR naq (1)",
    "and may be given before or after the command.",
    ".SH COMMANDS",
    ...leaves.flatMap(commandSection),
    ".SH SEE ALSO",
    [".BR naq (1)", ...root.commands.filter((c) => c !== group && c.commands.length > 0).map((c) => `.BR naq\\-${c.name} (1)`)].join(",\n"),
  );
  return `${lines.join("\n")}\n`;
}

export function mainPage(root: CommandSpec): string {
  const groups = root.commands.filter((c) => c.commands.length > 0);
  const leaves = root.commands.filter((c) => c.commands.length === 0);
  const lines = [...header("naq", root.description), ".SH SYNOPSIS", ".SY naq", ".RI [ global-options ]", ".I command", ".RI [ subcommand ]", ".RI [ options ]", ".RI [ arguments ]", ".YS"];
  lines.push(".SH DESCRIPTION", DESCRIPTION);
  lines.push(".SH GLOBAL OPTIONS", "These options apply to every command and may be given before or after it.", ".RS");
  for (const o of root.options) lines.push(...optionItem(o));
  lines.push(".RE", ".SH COMMANDS");
  for (const g of groups) {
    lines.push(".TP", `\\fBnaq ${roff(g.name)}\\fR ${roff(g.commands.map((c) => c.name).join("|"))}`, `${roff(g.description)}; see`, `.BR naq\\-${g.name} (1).`);
  }
  for (const c of leaves) lines.push(...commandSection(c));
  lines.push(".SH ENVIRONMENT", "Environment variables override config files; flags override both.", ".TP", "\\fBNO_COLOR\\fR", "Turn colours off.", ".TP", "\\fBNAQ_COMPILE_CACHE\\fR", "Directory of the CLI's code caches (see FILES); 0 turns them off.");
  for (const e of ENV_VARS) lines.push(".TP", `\\fB${roff(e.name)}\\fR`, roff(`${e.description}${e.key ? ` (config key ${e.key})` : ""}.`));
  lines.push(".SH FILES", FILES);
  lines.push(".SH EXIT STATUS");
  for (const line of EXIT_CODES_HELP.split("\n").slice(1)) {
    const m = /^\s+(\d)\s+(.*)$/.exec(line);
    if (m) lines.push(".TP", `.B ${m[1]}`, roff(sentence(m[2] as string)));
  }
  lines.push(".SH EXAMPLES", ".RS", ".EX", ...root.examples.map((e) => `$ ${roff(e)}`), ".EE", ".RE");
  lines.push(".SH SEE ALSO", groups.map((g) => `.BR naq\\-${g.name} (1)`).join(",\n"), ".PP", "README.md, docs/wire-format.md and docs/operations.md in the naq package.");
  return `${lines.join("\n")}\n`;
}

/** Every man page: file name -> contents. */
export function manPages(root: CommandSpec): Record<string, string> {
  const pages: Record<string, string> = { "naq.1": mainPage(root) };
  for (const g of root.commands.filter((c) => c.commands.length > 0)) pages[`naq-${g.name}.1`] = groupPage(root, g);
  return pages;
}
