/**
 * Every `naq ...` command line in the README's shell examples must be valid for the
 * current CLI: parsed by the real Commander program (actions replaced, nothing runs).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { localizeOptions } from "../../src/cli/main.js";
import { buildProgram } from "../../src/cli/program.js";

const README = readFileSync(join(import.meta.dirname, "../../README.md"), "utf8");

/** Shell words of one simple command, with quotes removed and $VARS/$(...) as placeholders. */
export function shellWords(text: string): string[] {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (ch === "'") {
      const end = text.indexOf("'", i + 1);
      cur += text.slice(i + 1, end < 0 ? undefined : end);
      i = end < 0 ? text.length : end;
      inWord = true;
    } else if (ch === '"') {
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        if (text[j] === "\\") j++;
        cur += text[j] ?? "";
      }
      i = j;
      inWord = true;
    } else if (ch === "\\") {
      cur += text[++i] ?? "";
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

/** The naq invocations in a shell line: split on pipes, lists and command substitutions. */
export function naqInvocations(line: string): string[][] {
  const out: string[][] = [];
  const segments = line
    .replace(/^\$\s+/, "")
    .replace(/\$\(/g, "\n")
    .replace(/\)/g, "\n")
    .split(/\n|\|\||&&|\||;/);
  for (const seg of segments) {
    let words = shellWords(seg.replace(/\s\d?>>?\s*\S+/g, " ").replace(/\s<\s*\S+/g, " "));
    while (words.length > 0 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0] as string)) words = words.slice(1);
    if (words[0] === "naq") out.push(words.slice(1).map((w) => w.replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/g, "X")));
  }
  return out;
}

function shellLines(markdown: string): string[] {
  const lines: string[] = [];
  const fence = /```(?:sh|bash|shell|console)\n([\s\S]*?)```/g;
  for (let m = fence.exec(markdown); m; m = fence.exec(markdown)) {
    let pending = "";
    for (const raw of (m[1] as string).split("\n")) {
      const line = raw.replace(/\s+#.*$/, "");
      if (line.trimStart().startsWith("#")) continue;
      if (line.endsWith("\\")) {
        pending += `${line.slice(0, -1)} `;
        continue;
      }
      lines.push(pending + line);
      pending = "";
    }
  }
  return lines.filter((l) => /(^|[\s|(;&$])naq\s/.test(l));
}

function parserOnly(): Command {
  const program = buildProgram();
  const silence = (cmd: Command): void => {
    cmd.exitOverride();
    cmd.configureOutput({ writeOut: () => {}, writeErr: () => {} });
    if (cmd.commands.length === 0) cmd.action(() => {});
    cmd.commands.forEach(silence);
  };
  silence(program);
  return program;
}

const invocations = shellLines(README).flatMap((line) => naqInvocations(line).map((args) => ({ line, args })));

describe("README shell examples", () => {
  it("has examples to check", () => {
    expect(invocations.length).toBeGreaterThan(10);
  });

  it("the checker itself rejects what the CLI would reject", async () => {
    for (const bad of [["job", "status"], ["stream", "purge", "q", "--keep", "x"], ["job", "enqueue", "t", "--nope"], ["bogus"]]) {
      await expect(parserOnly().parseAsync(["node", "naq", ...bad]), bad.join(" ")).rejects.toThrow();
    }
    expect(naqInvocations(`id=$(naq job enqueue report '{}' -q) && naq job result "$id" --wait`)).toEqual([
      ["job", "enqueue", "report", "{}", "-q"],
      ["job", "result", "X", "--wait"],
    ]);
  });

  it.each(invocations.map((i) => [i.args.join(" "), i] as const))("naq %s", async (_name, { line, args }) => {
    const program = parserOnly();
    await expect(program.parseAsync(localizeOptions(["node", "naq", ...args])), line).resolves.toBeDefined();
  });
});
