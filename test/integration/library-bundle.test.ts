/**
 * The library as it ships: the package's import entry is one bundled ES module
 * (dist/lib/naq.js, built by scripts/bundle.mjs) with zod and croner inlined. It must export
 * exactly what src/index.ts does, load neither zod nor croner as packages, keep nats.js
 * external, and run jobs end to end against a real nats-server. `npm test` builds first.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import * as source from "../../src/index.js";
import { useLibraryFixture } from "../support/index.js";

const ENTRY = fileURLToPath(new URL("../../dist/lib/naq.js", import.meta.url));
type Lib = typeof source;

const lib = useLibraryFixture("bundle");

/** The package's own name resolves through package.json "exports", as it does for an app. */
const PACKAGE = "naq";

async function shipped(): Promise<Lib> {
  // Through a variable: the type check must not need a build (the shape is compared below).
  return (await import(PACKAGE)) as Lib;
}

describe("library bundle (dist/lib/naq.js)", () => {
  it("is the package's import entry and exports what src/index.ts exports", async () => {
    const pkg = JSON.parse(await readFile(fileURLToPath(new URL("../../package.json", import.meta.url)), "utf8")) as {
      exports: { ".": { import: string } };
    };
    expect(pkg.exports["."].import).toBe("./dist/lib/naq.js");
    expect(Object.keys(await shipped()).sort()).toEqual(Object.keys(source).sort());
  });

  it("inlines zod and croner and leaves nats.js to the app", async () => {
    const text = await readFile(ENTRY, "utf8");
    const imported = [...text.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1] ?? "");
    expect(imported.filter((s) => !s.startsWith("node:")).sort()).toEqual(
      expect.arrayContaining(["@nats-io/jetstream", "@nats-io/kv", "@nats-io/transport-node"]),
    );
    expect(imported.some((s) => s.startsWith("zod") || s === "croner")).toBe(false);
  });

  it("runs jobs end to end: enqueue, a worker, completed records", async () => {
    const { Queue, Worker } = await shipped();
    const config = lib.freshConfig();
    const queue = new Queue("bundled", { config });
    lib.cleanup(() => queue.close());
    const worker = new Worker({ queues: ["bundled"], handlers: { add: (p) => (p as { a: number; b: number }).a + (p as { a: number; b: number }).b }, config, graceMs: 2_000 });
    lib.cleanup(() => worker.close({ force: true }));
    const done = new Map<string, string>();
    worker.on("job", (j) => done.set(j.id, j.outcome));
    await worker.start();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await queue.enqueue("add", { a: i, b: 10 })).id);
    for (let waited = 0; done.size < 3 && waited < 10_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
    expect([...done.values()]).toEqual(["completed", "completed", "completed"]);
    const records = await Promise.all(ids.map((id) => queue.getResult(id)));
    expect(records.map((r) => r?.result)).toEqual([10, 11, 12]);
  });
});
