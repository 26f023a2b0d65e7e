/**
 * bin/naq's V8 code cache (see bin/naq): written once per command after a successful run,
 * then read; a damaged file is ignored and replaced; NAQ_COMPILE_CACHE=0 writes nothing.
 * Needs the bundle (`npm run build`); no NATS server.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { REPO_ROOT, runCli } from "../support/index.js";

const bundled = existsSync(path.join(REPO_ROOT, "dist", "cli-bundle")) && readdirSync(path.join(REPO_ROOT, "dist", "cli-bundle")).some((f) => f.endsWith(".cjs"));
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function cacheDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "naq-compile-cache-"));
  dirs.push(d);
  return d;
}

const caches = (dir: string) => readdirSync(dir).filter((f) => f.endsWith(".cache"));

describe.skipIf(!bundled)("bin/naq compile cache", () => {
  it("is written by the first successful run of a command and read by the next", async () => {
    const dir = cacheDir();
    const env = { NAQ_COMPILE_CACHE: dir };
    const first = await runCli(["--namespace", "x1", "config", "show", "--json"], { env });
    expect(first.code, first.stderr).toBe(0);
    const [name] = caches(dir);
    expect(name).toMatch(/^naq-\w+\.v\d+\.\d+\.\d+-\w+\.config-show\.cache$/);
    const file = path.join(dir, name as string);
    const before = statSync(file).mtimeMs;
    const bytes = readFileSync(file);

    const second = await runCli(["--namespace", "x1", "config", "show", "--json"], { env });
    expect(second.code).toBe(0);
    expect(second.stdout).toBe(first.stdout);
    expect(statSync(file).mtimeMs).toBe(before);
    expect(readFileSync(file).equals(bytes)).toBe(true);
    expect(caches(dir)).toHaveLength(1);
  });

  it("ignores and replaces a damaged cache file", async () => {
    const dir = cacheDir();
    const env = { NAQ_COMPILE_CACHE: dir };
    const good = await runCli(["--version"], { env });
    expect(good.code).toBe(0);
    const file = path.join(dir, caches(dir)[0] as string);
    const damaged = Buffer.from(readFileSync(file));
    for (let i = 64; i < damaged.length; i += 997) damaged[i] = (damaged[i] as number) ^ 0x5a;
    writeFileSync(file, damaged);

    const again = await runCli(["--version"], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toBe(good.stdout);
    expect(readFileSync(file).equals(damaged)).toBe(false);
    writeFileSync(file, "");
    expect((await runCli(["--version"], { env })).code).toBe(0);
  });

  it("is not written after a failure, nor with NAQ_COMPILE_CACHE=0", async () => {
    const dir = cacheDir();
    const bad = await runCli(["job", "status", "no-such-job", "--timeout", "1s"], { env: { NAQ_COMPILE_CACHE: dir, NAQ_URL: "nats://127.0.0.1:1" } });
    expect(bad.code).not.toBe(0);
    expect(caches(dir)).toEqual([]);
    const off = await runCli(["--version"], { env: { NAQ_COMPILE_CACHE: "0", XDG_CACHE_HOME: dir } });
    expect(off.code).toBe(0);
    expect(readdirSync(dir)).toEqual([]);
  });
});
