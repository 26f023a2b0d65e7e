/**
 * Completions and man pages are generated from the command tree and shipped in the
 * package: they must match the tree (regenerate with `npm run gen`), cover every command
 * and option, and be valid roff.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generatedFiles } from "../../src/cli/generate/write.js";
import { allCommands, describeTree } from "../../src/cli/generate/tree.js";
import { buildProgram } from "../../src/cli/program.js";

const ROOT = join(import.meta.dirname, "../..");
const files = generatedFiles();
const tree = describeTree(buildProgram());
const hasGroff = spawnSync("groff", ["--version"]).status === 0;

describe("generated completions and man pages", () => {
  it.each(Object.keys(files))("%s is up to date (npm run gen)", (path) => {
    const shipped = readFileSync(join(ROOT, path), "utf8");
    expect(shipped, `${path} is stale: run npm run gen`).toBe(files[path]);
  });

  it("package.json ships every man page", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { man: string[]; files: string[] };
    const pages = Object.keys(files).filter((f) => f.startsWith("man/")).map((f) => `./${f}`);
    expect([...pkg.man].sort()).toEqual(pages.sort());
    expect(pkg.files).toEqual(expect.arrayContaining(["completions", "man"]));
  });

  it("every command and every option appears in the man pages", () => {
    const man = Object.entries(files)
      .filter(([f]) => f.startsWith("man/"))
      .map(([, text]) => text.replace(/\\-/g, "-").replace(/\\f[BIRP]/g, ""))
      .join("\n");
    const missing: string[] = [];
    for (const c of allCommands(tree)) {
      if (c.path.length > 0 && !man.includes(`naq ${c.path.join(" ")}`)) missing.push(`command naq ${c.path.join(" ")}`);
      for (const o of c.options) {
        for (const flag of [o.short, o.long]) if (flag && !man.includes(flag)) missing.push(`option ${flag} of naq ${c.path.join(" ")}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it.skipIf(!hasGroff).each(Object.keys(files).filter((f) => f.startsWith("man/")))("groff -man -ww -z %s reports no warnings", (page) => {
    const r = spawnSync("groff", ["-man", "-ww", "-z", join(ROOT, page)], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(`${r.stdout}${r.stderr}`).toBe("");
  });

  it("every command's --help has at least one example", () => {
    const without = allCommands(tree).filter((c) => c.commands.length === 0 && c.examples.length === 0).map((c) => `naq ${c.path.join(" ")}`);
    expect(without).toEqual([]);
  });
});
