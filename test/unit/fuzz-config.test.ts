/**
 * Fuzzing configuration loading (defaults → file → env → flags) with fast-check: random env
 * values for every NAQ_* variable, random flag objects (with prototype keys), and random
 * config files (JSON and YAML text). Loading either gives a validated config or a
 * ConfigError whose message names the source and the key: never another exception, and
 * never a polluted prototype.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ENV_VARS, loadConfig, type LoadedConfig } from "../../src/config/index.js";
import { ConfigError } from "../../src/model/errors.js";
import { nastyJson, nastyString, prototypeIsClean, RUNS, typedOutcomeAsync } from "../support/fuzz.js";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "naq-fuzz-config-"));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function check(load: () => Promise<LoadedConfig>): Promise<void> {
  const r = await typedOutcomeAsync(load);
  if (!r.ok) {
    expect(r.error).toBeInstanceOf(ConfigError);
    expect(r.error.message).toMatch(/^config error in /);
    expect(r.error.message).not.toMatch(/\n/);
  } else {
    // A config that loaded is usable: names are tokens, durations finite.
    expect(r.value.config.namespace).toMatch(/^[A-Za-z0-9_-]{1,32}$/);
    expect(Number.isFinite(r.value.config.timeout)).toBe(true);
  }
  expect(prototypeIsClean()).toBe(true);
}

const keyPath = fc.constantFrom("namespace", "timeout", "connection", "connection.servers", "streams.replicas", "worker.concurrency", "queues.overrides", "kv.resultTtl", "__proto__", "constructor.prototype", "worker.__proto__");

function treeAt(segs: string[], value: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let cur = out;
  segs.forEach((s, i) => {
    const v = i === segs.length - 1 ? value : {};
    Object.defineProperty(cur, s, { value: v, enumerable: true, writable: true, configurable: true });
    cur = v as Record<string, unknown>;
  });
  return out;
}

describe("loadConfig under fuzzing", () => {
  it("random NAQ_* environment values (300 runs)", async () => {
    const names = ENV_VARS.filter((v) => v.name !== "NAQ_CONFIG").map((v) => v.name);
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.constantFrom(...names), fc.oneof(nastyString, fc.double().map(String), fc.constantFrom("1e999", "-1", "0x10", " 5 ", "3"))), async (env) => {
        await check(() => loadConfig({ cwd: dir, stopDir: dir, env }));
      }),
      RUNS(300),
    );
  });

  it("random flag objects, prototype keys included (300 runs)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(keyPath, nastyJson), { maxLength: 3 }), async (entries) => {
        const flags = entries.reduce<Record<string, unknown>>((acc, [k, v]) => ({ ...acc, ...treeAt(k.split("."), v) }), {});
        await check(() => loadConfig({ cwd: dir, stopDir: dir, env: {}, flags }));
      }),
      RUNS(300),
    );
  });

  it("random config files, JSON and YAML (40 runs: each loads cosmiconfig's parsers)", { timeout: 60_000 }, async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.json({ maxDepth: 3 }),
          fc.string({ maxLength: 200 }),
          fc.tuple(fc.array(fc.tuple(keyPath, nastyJson), { maxLength: 3 })).map(([entries]) =>
            JSON.stringify(entries.reduce<Record<string, unknown>>((acc, [k, v]) => ({ ...acc, ...treeAt(k.split("."), v) }), {})),
          ),
          fc.constantFrom("namespace: [a, b]", "timeout: !!js/function 'x'", "a: &a [*a]", "connection:\n  servers: 5", "\u0000", "{}", "null", "[]", `{"namespace":${"[".repeat(5_000)}${"]".repeat(5_000)}}`),
        ),
        fc.constantFrom(".naqrc.json", ".naqrc.yaml", ".naqrc"),
        async (text, name) => {
          const file = path.join(dir, `${n++}-${name}`);
          await writeFile(file, text);
          await check(() => loadConfig({ cwd: dir, stopDir: dir, env: {}, configFile: file }));
          await rm(file, { force: true });
        },
      ),
      RUNS(40),
    );
  });
});
