/**
 * The layering rules of DESIGN.md, checked on the source text:
 * - only src/services/ imports the NATS client packages (`@nats-io/*`, or the old `nats`);
 * - src/model/ is pure: it imports nothing from src/services, src/cli or src/worker.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../support/index.js";

const SRC = path.join(REPO_ROOT, "src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return /\.(c|m)?[jt]sx?$/.test(entry.name) && !entry.name.endsWith(".d.ts") ? [full] : [];
  });
}

/** Strips comments so that an example in a doc comment is not taken for an import. */
function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
}

/** Every module specifier a file imports or re-exports: static, side-effect, dynamic, require. */
function importsOf(text: string): string[] {
  const code = stripComments(text);
  const specs: string[] = [];
  const patterns = [
    /\b(?:import|export)\s[^;]*?\bfrom\s*["']([^"']+)["']/g, // import x from "m"; export { x } from "m"
    /\bimport\s*["']([^"']+)["']/g, // import "m"
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g, // import("m")
    /\brequire\s*\(\s*["']([^"']+)["']\s*\)/g, // require("m")
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) specs.push(m[1] as string);
  return specs;
}

const isNatsClient = (spec: string): boolean => spec.startsWith("@nats-io/") || spec === "nats" || spec.startsWith("nats/");

const rel = (file: string): string => path.relative(REPO_ROOT, file).split(path.sep).join("/");

const files = sourceFiles(SRC);

describe("import scanner", () => {
  it("finds every kind of import and ignores comments", () => {
    const text = [
      'import { connect } from "@nats-io/transport-node";',
      'import type { JetStreamClient } from "@nats-io/jetstream";',
      "import {",
      "  a,",
      "  b,",
      '} from "../services/base.js";',
      'export { x } from "./x.js";',
      'export * from "nats";',
      'import "./side-effect.js";',
      'const m = await import("@nats-io/kv");',
      'const r = require("nats/lib");',
      '// import { no } from "@nats-io/commented";',
      '/* import { no } from "nats"; */',
      'const url = "nats://127.0.0.1:4222"; // not an import',
    ].join("\n");
    expect(importsOf(text).sort()).toEqual(
      [
        "@nats-io/transport-node",
        "@nats-io/jetstream",
        "../services/base.js",
        "./x.js",
        "nats",
        "./side-effect.js",
        "@nats-io/kv",
        "nats/lib",
      ].sort(),
    );
  });

  it("sees the source tree", () => {
    expect(files.length).toBeGreaterThan(10);
    expect(files.some((f) => rel(f).startsWith("src/services/"))).toBe(true);
    expect(files.some((f) => rel(f).startsWith("src/model/"))).toBe(true);
    // The services do use the client: the scanner would notice a violation.
    const services = files.filter((f) => rel(f).startsWith("src/services/"));
    expect(services.flatMap((f) => importsOf(readFileSync(f, "utf8"))).some(isNatsClient)).toBe(true);
  });
});

describe("layers", () => {
  it("only src/services/ imports the NATS client packages", () => {
    const violations = files
      .filter((f) => !rel(f).startsWith("src/services/"))
      .flatMap((f) => importsOf(readFileSync(f, "utf8")).filter(isNatsClient).map((spec) => `${rel(f)} imports ${spec}`));
    expect(violations).toEqual([]);
  });

  it("src/model/ imports nothing from src/services, src/cli or src/worker", () => {
    const forbidden = ["src/services", "src/cli", "src/worker"];
    const violations = files
      .filter((f) => rel(f).startsWith("src/model/"))
      .flatMap((f) =>
        importsOf(readFileSync(f, "utf8"))
          .filter((spec) => spec.startsWith("."))
          .map((spec) => ({ spec, target: rel(path.resolve(path.dirname(f), spec)) }))
          .filter(({ target }) => forbidden.some((dir) => target === dir || target.startsWith(`${dir}/`)))
          .map(({ spec }) => `${rel(f)} imports ${spec}`),
      );
    expect(violations).toEqual([]);
  });
});
