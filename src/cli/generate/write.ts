/**
 * Writes the generated files that ship in the package: completions/ and man/.
 * Run with `npm run gen`; a test fails when the shipped files are stale.
 */
import { mkdir, readdir, readFile, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { buildProgram } from "../program.js";
import { COMPLETION_FILES, completionScript, SHELLS } from "./completion.js";
import { manPages } from "./man.js";
import { describeTree } from "./tree.js";

/** Every generated file: path relative to the package root -> contents. */
export function generatedFiles(): Record<string, string> {
  const root = describeTree(buildProgram());
  const files: Record<string, string> = {};
  for (const shell of SHELLS) files[COMPLETION_FILES[shell]] = completionScript(root, shell);
  for (const [name, text] of Object.entries(manPages(root))) files[`man/${name}`] = text;
  return files;
}

export async function writeAll(packageRoot = process.cwd()): Promise<string[]> {
  const files = generatedFiles();
  await mkdir(join(packageRoot, "completions"), { recursive: true });
  await mkdir(join(packageRoot, "man"), { recursive: true });
  // Pages of groups that no longer exist must not linger.
  for (const f of await readdir(join(packageRoot, "man"))) {
    if (f.endsWith(".1") && !(`man/${f}` in files)) await unlink(join(packageRoot, "man", f));
  }
  for (const [path, text] of Object.entries(files)) await writeFile(join(packageRoot, path), text, "utf8");
  // package.json#man lists exactly the pages generated.
  const pkgPath = join(packageRoot, "package.json");
  const pkg = JSON.parse(await readFile(pkgPath, "utf8")) as { man?: string[] };
  const man = Object.keys(files).filter((f) => f.startsWith("man/")).map((f) => `./${f}`);
  if (JSON.stringify(pkg.man) !== JSON.stringify(man)) {
    pkg.man = man;
    await writeFile(pkgPath, `${JSON.stringify(pkg, null, 2)}\n`, "utf8");
  }
  return Object.keys(files);
}
