/**
 * Day-2 operations from the shell, against a real nats-server, running the CLI as a
 * subprocess: bulk NDJSON enqueue and cancel (queued and running). Dead letters, list and
 * logs are in dlq-cli.test.ts; queues, checks, stop and metrics in queue-cli.test.ts.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { JobRecord } from "../../src/model/job.js";
import { runCli, runCliJson, spawnCli, startServer, type NatsServer, type SpawnedCli } from "../support/index.js";

let server: NatsServer;
let dir: string;
let nsCounter = 0;
const children: SpawnedCli[] = [];

const TASKS = `
import { existsSync } from "node:fs";
const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener("abort", () => { clearTimeout(t); reject(signal.reason); }, { once: true });
});
export function add(p) { return p.a + p.b; }
export async function nap(p, ctx) {
  process.stderr.write(\`START \${ctx.id}\\n\`);
  await sleep(p.ms, ctx.signal);
  return "woke";
}
export function needsFlag(p) {
  if (!existsSync(p.flag)) throw new Error("flag file missing: " + p.flag);
  return "ok";
}
export async function chatty(p, ctx) {
  for (let i = 1; i <= p.lines; i++) {
    ctx.log("line " + i);
    await sleep(p.gapMs ?? 0, ctx.signal);
  }
  return p.lines;
}
`;

beforeAll(async () => {
  server = await startServer();
  dir = await mkdtemp(path.join(os.tmpdir(), "naq-ops-cli-"));
  await writeFile(path.join(dir, "tasks.mjs"), TASKS);
  // Heartbeats every 500ms: `job list` sees running jobs (from heartbeats) sooner.
  await writeFile(path.join(dir, ".naqrc.json"), JSON.stringify({ worker: { heartbeat: "500ms" } }));
});

afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop(2_000)));
});

afterAll(async () => {
  await server?.[Symbol.asyncDispose]();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function fresh() {
  const env = { NAQ_URL: server.url, NAQ_NAMESPACE: `o${++nsCounter}` };
  const opts = { env, cwd: dir };
  return {
    run: (args: string[], input?: string, timeoutMs = 30_000) => runCli(args, { ...opts, input, timeoutMs }),
    json: <T>(args: string[]) => runCliJson<T>(args, opts),
    spawn: (args: string[]) => {
      const child = spawnCli(args, opts);
      children.push(child);
      return child;
    },
  };
}

const WORKER = ["worker", "start", "--handlers", "tasks.mjs"];

function ndjson<T>(stdout: string): T[] {
  return stdout
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as T);
}

describe("naq job enqueue --ndjson", () => {
  it("5,000 piped lines all run; a malformed line in the middle is reported with its number", { timeout: 60_000 }, async () => {
    const t = fresh();
    const lines = Array.from({ length: 5_000 }, (_, i) => JSON.stringify({ task: "add", payload: { a: i, b: 1 } }));
    lines[2_499] = '{"task": "add", "payload": {oops}';
    const r = await t.run(["--json", "job", "enqueue", "--ndjson", "-", "--retries", "0"], `${lines.join("\n")}\n`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: line 2500: not valid JSON/m);
    expect(r.stderr).toMatch(/1 of 5000 lines failed \(first: line 2500\); the other 4999 jobs were enqueued/);
    const out = ndjson<{ line: number; id: string; queue: string; seq: number; duplicate: boolean }>(r.stdout);
    expect(out).toHaveLength(4_999);
    expect(out.map((o) => o.line)).toEqual([...Array.from({ length: 2_499 }, (_, i) => i + 1), ...Array.from({ length: 2_500 }, (_, i) => i + 2_501)]);
    expect(new Set(out.map((o) => o.id)).size).toBe(4_999);
    expect(out.every((o) => o.queue === "default" && !o.duplicate)).toBe(true);

    const w = await t.run(["--json", ...WORKER, "--burst", "--concurrency", "100"], undefined, 50_000);
    expect(w.code).toBe(0);
    const done = ndjson<{ id: string; outcome: string }>(w.stdout);
    expect(done).toHaveLength(4_999);
    expect(done.every((d) => d.outcome === "completed")).toBe(true);
    expect(new Set(done.map((d) => d.id))).toEqual(new Set(out.map((o) => o.id)));
  });

  it("human output is one id per line; --strict enqueues nothing when a line is bad (exit 2)", async () => {
    const t = fresh();
    const ok = await t.run(["job", "enqueue", "--ndjson"], '{"task":"add","payload":{"a":1,"b":2}}\n\n{"task":"add","id":"fixed-1","queue":"other"}\n');
    expect(ok).toMatchObject({ code: 0, stderr: "" });
    const ids = ok.stdout.trim().split("\n");
    expect(ids).toHaveLength(2);
    expect(ids[1]).toBe("fixed-1");

    const strict = await t.run(["job", "enqueue", "--ndjson", "--strict", "--queue", "strict"], '{"task":"add"}\n{"task":"add","retries":"x"}\n');
    expect(strict.code).toBe(2);
    expect(strict.stdout).toBe("");
    expect(strict.stderr).toMatch(/line 2: "retries" must be a whole number; nothing was enqueued \(--strict\)/);
    const queues = await t.json<Array<{ name: string; waiting: number }>>(["queue", "list"]);
    expect(queues.find((q) => q.name === "strict")).toBeUndefined();
    expect(queues.find((q) => q.name === "other")).toMatchObject({ waiting: 1 });

    const missing = await t.run(["job", "enqueue", "--ndjson", "no-such-file.ndjson"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read no-such-file.ndjson: ENOENT/);
  });
});

describe("naq job cancel", () => {
  it("a queued job never runs; a running job's AbortSignal fires", { timeout: 50_000 }, async () => {
    const t = fresh();
    const [queuedId] = (await t.run(["job", "enqueue", "nap", '{"ms": 100}'])).stdout.trim().split("\n");
    const c1 = await t.run(["--json", "job", "cancel", queuedId as string, "--reason", "not needed"]);
    expect(c1.code).toBe(0);
    expect(JSON.parse(c1.stdout)).toMatchObject({ id: queuedId, status: "cancelled", reason: "not needed" });

    const worker = t.spawn(["--json", ...WORKER, "--concurrency", "2"]);
    await worker.waitFor(/"outcome":"cancelled"/, { timeoutMs: 15_000 });
    expect(worker.stderr()).not.toContain(`START ${queuedId}`);

    const runningId = (await t.run(["job", "enqueue", "nap", '{"ms": 60000}'])).stdout.trim();
    await worker.waitFor(`START ${runningId}`, { stream: "stderr", timeoutMs: 15_000 });
    const started = performance.now();
    const c2 = await t.run(["job", "cancel", runningId]);
    expect(c2).toMatchObject({ code: 0, stdout: `cancelled ${runningId}\n`, stderr: "" });
    await worker.waitFor(new RegExp(`"outcome":"cancelled"[^\\n]*${runningId}|${runningId}[^\\n]*"outcome":"cancelled"`), { timeoutMs: 10_000 });
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(await t.json<JobRecord>(["job", "status", runningId])).toMatchObject({ status: "cancelled" });

    // Already ended: exit 1; unknown: exit 3; several ids: each reported, exit of the first failure.
    const again = await t.run(["job", "cancel", runningId]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already cancelled/);
    const mixed = await t.run(["job", "cancel", "no-such-job", runningId]);
    expect(mixed.code).toBe(3);
    expect(mixed.stdout).toBe("");
    expect(mixed.stderr.trim().split("\n")).toHaveLength(3);
  });
});
