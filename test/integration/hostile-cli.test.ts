/**
 * Hostile input through the real CLI (node bin/naq) against a real nats-server whose
 * max_payload is 64 KiB. fast-check generates bad task names, queue names, ids, payload JSON,
 * NDJSON lines and schedule options (few runs, no shrinking: each run is a process): every
 * invalid one exits 2 with exactly one line on stderr (no stack trace) and enqueues nothing.
 * Names that are wildcards (`*`, `>`) or empty are refused, never used as a filter; a job
 * over max_payload gets one line naming its size and the limit (exit 2), and with --ndjson
 * the oversized line is reported by number while the others are enqueued (exit 1), or
 * nothing is enqueued with --strict (exit 2). Corrupted KV values give one line, not a crash.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEnvelope, type JsonValue } from "../../src/model/job.js";
import { envelopeFromLine } from "../../src/model/ndjson.js";
import { validateScheduleName } from "../../src/model/schedule.js";
import { deepJsonText, nastyString, typedOutcome } from "../support/fuzz.js";
import { runCli, startServer, type CliResult, type NatsServer } from "../support/index.js";

const MAX_PAYLOAD = 65_536;
let server: NatsServer | undefined;
let nc: NatsConnection | undefined;
let dir = "";
let count = 0;

beforeAll(async () => {
  server = await startServer({ config: `max_payload: ${MAX_PAYLOAD}` });
  nc = await connect({ servers: server.url });
  dir = await mkdtemp(path.join(os.tmpdir(), "naq-hostile-"));
});
afterAll(async () => {
  await nc?.close();
  await server?.[Symbol.asyncDispose]();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function fresh() {
  const namespace = `h${++count}`;
  const env = { NAQ_URL: (server as NatsServer).url, NAQ_NAMESPACE: namespace };
  return {
    namespace,
    run: (args: string[], input?: string): Promise<CliResult> => runCli(args, { env, input, cwd: dir, timeoutMs: 20_000 }),
    /** Jobs stored in the namespace's jobs stream (0 when it does not exist yet). */
    stored: async (): Promise<number> => {
      const jsm = await jetstreamManager(nc as NatsConnection);
      try {
        return (await jsm.streams.info(`${namespace}_jobs`)).state.messages;
      } catch {
        return 0;
      }
    },
  };
}

/** Exit 2 and exactly one line on stderr that is not a stack trace. */
function expectOneLineUsageError(r: CliResult, what: string): string {
  const where = `${what}\n--- exit ${r.code}\n--- stderr\n${r.stderr}\n--- stdout\n${r.stdout}`;
  expect(r.code, where).toBe(2);
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines, where).toHaveLength(1);
  expect(lines[0], where).toMatch(/^error: /);
  expect(r.stderr, where).not.toMatch(/\n\s+at |TypeError|RangeError|SyntaxError: /);
  expect(r.stdout, where).toBe("");
  return lines[0] as string;
}

/** JSON.parse, or a value createEnvelope refuses (a BigInt) for text that is not JSON. */
function parseOr(text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return 0n as unknown as JsonValue;
  }
}

/** Argument values a shell can pass (no NUL) that Commander does not read as an option. */
const argValue = nastyString.filter((s) => !s.includes("\0") && !s.startsWith("-"));
const hostileName = fc.oneof(fc.constantFrom("a.b", "*", ">", "", " ", "a b", "x".repeat(300), "tab\there", "é", "new\nline", "a*", "q>", "日本"), argValue);
const hostilePayload = fc.oneof(
  fc.constantFrom("{", "{'a':1}", "[1,]", "NaN", "undefined", "{\"a\":1e999}", `{"a":${deepJsonText(3_000)}}`, "\u0001", "1 2", "{\"a\":1}}"),
  argValue,
);

describe("naq job enqueue with hostile arguments (fast-check, 30 runs)", () => {
  it("invalid input: exit 2, one line on stderr, nothing enqueued; valid input is enqueued", { timeout: 90_000 }, async () => {
    const t = fresh();
    let valid = 0;
    let ran = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom("task", "payload", "queue", "id"), hostileName, hostilePayload, async (field, name, payloadText) => {
        ran++;
        const task = field === "task" ? name : "t";
        const payload = field === "payload" ? payloadText : '{"a":1}';
        const queue = field === "queue" ? name : "q";
        const id = field === "id" ? name : `job-${ran}`;
        // What naq should decide, computed in-process with the same model.
        const expected = typedOutcome(() => createEnvelope({ task, queue, id, payload: parseOr(payload) }));
        const r = await t.run(["job", "enqueue", task, payload, "--queue", queue, "--id", id]);
        if (expected.ok) {
          expect(r.code, r.stderr).toBe(0);
          expect(r.stdout.trim()).toBe(id);
          valid++;
        } else {
          expectOneLineUsageError(r, `job enqueue ${JSON.stringify([task, payload.slice(0, 80), queue, id])}`);
        }
      }),
      { numRuns: 30, endOnFailure: true },
    );
    expect(await t.stored()).toBe(valid);
  });

  it("--ndjson --strict with one hostile line among good ones: exit 2, one line naming the line, nothing enqueued (8 runs)", { timeout: 60_000 }, async () => {
    const t = fresh();
    const hostileLine = fc.oneof(
      hostilePayload,
      fc.record({ task: hostileName }).map((o) => JSON.stringify(o)),
      fc.record({ task: fc.constant("t"), queue: hostileName }).map((o) => JSON.stringify(o)),
      fc.record({ task: fc.constant("t"), id: hostileName.filter((s) => s !== "") }).map((o) => JSON.stringify(o)),
      fc.constantFrom('{"task":"t","payload":1e999}', '{"task":"t","retries":-1}', '{"task":"t","timeout":"99999999999w"}', '{"task":"t","__proto__":{"x":1}}', "[]", "null"),
    );
    await fc.assert(
      fc.asyncProperty(hostileLine, fc.integer({ min: 0, max: 3 }), async (bad, at) => {
        // A line that happens to be valid (or blank) is not what this checks.
        const parsed = typedOutcome(() => envelopeFromLine(bad));
        fc.pre(!parsed.ok && bad.trim() !== "" && !bad.includes("\n") && !bad.includes("\r"));
        const lines = ['{"task":"t","payload":1}', '{"task":"t","payload":2}', '{"task":"t","payload":3}'];
        lines.splice(at, 0, bad);
        const r = await t.run(["job", "enqueue", "--ndjson", "--strict"], `${lines.join("\n")}\n`);
        const line = expectOneLineUsageError(r, `ndjson line ${at + 1}: ${bad.slice(0, 80)}`);
        expect(line).toMatch(new RegExp(`^error: line ${at + 1}: .*nothing was enqueued \\(--strict\\)$`));
      }),
      { numRuns: 8, endOnFailure: true },
    );
    expect(await t.stored()).toBe(0);
  });
});

describe("naq scheduler add with hostile arguments (fast-check, 10 runs)", () => {
  it("exit 2, one line on stderr, no schedule stored", { timeout: 60_000 }, async () => {
    const t = fresh();
    const option = fc.oneof(
      fc.tuple(fc.constant("--cron"), fc.oneof(argValue, fc.constantFrom("* * *", "61 * * * *", "*/0 * * * *", "@reboot", "0 0 31 2 *", "L L L L L"))),
      fc.tuple(fc.constant("--every"), fc.oneof(argValue, fc.constantFrom("0s", "999ms", "99999999999w", "1e999", "-5m"))),
      fc.tuple(fc.constant("--tz"), fc.oneof(argValue, fc.constantFrom("Mars/Olympus", "UTC+1", "../../etc/passwd"))),
      fc.tuple(fc.constant("--start-at"), fc.oneof(argValue, fc.constantFrom("2025-02-30T00:00:00Z", "275760-09-14T00:00:00Z", "2025-01-01T00:00:00"))),
      fc.tuple(fc.constant("name"), hostileName),
    );
    await fc.assert(
      fc.asyncProperty(option, async ([what, value]) => {
        const name = what === "name" ? value : "nightly";
        if (what === "name") fc.pre(!typedOutcome(() => validateScheduleName(value)).ok);
        const timing = what === "--cron" || what === "--tz" ? ["--cron", what === "--cron" ? value : "0 9 * * *"] : ["--every", what === "--every" ? value : "1h"];
        const extra = what === "--tz" || what === "--start-at" ? [what, value] : [];
        if (what === "--tz") fc.pre(!["UTC", "utc", "Etc/UTC", "GMT"].includes(value) && !/^[A-Z][a-z]+\/[A-Z][a-z_]+$/.test(value));
        const r = await t.run(["scheduler", "add", name, "report", ...timing, ...extra]);
        expectOneLineUsageError(r, `scheduler add ${JSON.stringify([name, ...timing, ...extra])}`);
      }),
      { numRuns: 10, endOnFailure: true },
    );
    const list = await t.run(["--json", "scheduler", "list"]);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout)).toEqual([]);
  });
});

describe("names that are not subject tokens", () => {
  it("wildcards and empty names are refused with what is accepted, never used as a filter", { timeout: 60_000 }, async () => {
    const t = fresh();
    // Jobs on two queues: a wildcard that matched would list both.
    expect((await t.run(["job", "enqueue", "t", "--queue", "alpha", "--id", "a1"])).code).toBe(0);
    expect((await t.run(["job", "enqueue", "t", "--queue", "beta", "--id", "b1"])).code).toBe(0);
    const listed = await t.run(["--json", "job", "list", "--queue", "alpha"]);
    expect((JSON.parse(listed.stdout) as Array<{ id: string }>).map((j) => j.id)).toEqual(["a1"]);

    for (const args of [
      ["job", "list", "--queue", "*"],
      ["job", "list", "--queue", ">"],
      ["job", "list", "--queue", ""],
      ["job", "failed", "--queue", "*"],
      ["job", "failed", "--queue", ""],
      ["events", "tail", "--queue", ">", "--max-wait", "1s"],
      ["events", "tail", "--queue", "", "--max-wait", "1s"],
      ["events", "history", ">"],
      ["events", "history", "*"],
      ["job", "status", "*"],
      ["job", "status", "a.b"],
      ["job", "cancel", ">"],
      ["job", "enqueue", "t", "--queue", "a.b"],
      ["job", "enqueue", "t", "--queue", ""],
      ["job", "enqueue", "t", "--id", "x".repeat(300)],
      ["job", "enqueue", "t", "--id", "_mine"],
      ["job", "enqueue", "a b"],
      ["job", "enqueue", "é"],
      ["queue", "pause", "*"],
      ["queue", "pause", "bad\u0007name"],
      ["--namespace", "*", "job", "list"],
      ["--namespace", "a.b", "job", "list"],
    ]) {
      const line = expectOneLineUsageError(await t.run(args), args.join(" "));
      expect(line, args.join(" ")).toMatch(/letters, digits|reserved for naq/);
    }
    expect(await t.stored()).toBe(2);
  });
});

describe("a bad name is a usage error even when NATS is unreachable", () => {
  it("exit 2 and the name's rule, not exit 5 'cannot connect': names are checked before connecting", { timeout: 60_000 }, async () => {
    // Nothing listens there: any command that connected first would fail with exit 5.
    const env = { NAQ_URL: "nats://127.0.0.1:1", NAQ_NAMESPACE: "down" };
    const commands = [
      ["job", "status", "a.b"],
      ["job", "result", "a.b"],
      ["job", "cancel", "ok", "a.b"],
      ["job", "logs", "*"],
      ["job", "enqueue", "t", "--queue", "a.b"],
      ["queue", "pause", "a.b"],
      ["queue", "info", ">"],
      ["scheduler", "add", "a.b", "t", "--every", "1m"],
      ["scheduler", "add", "ok", "t", "--every", "1m", "--queue", "a.b"],
      ["scheduler", "show", "a.b"],
      ["scheduler", "pause", "*"],
      ["scheduler", "resume", "a.b"],
      ["scheduler", "remove", "a.b"],
      ["scheduler", "trigger", "a.b"],
      ["worker", "stop", "a.b"],
      ["stream", "info", "a.b"],
      ["events", "history", "a.b"],
    ];
    const results = await Promise.all(commands.map((args) => runCli(args, { env, cwd: dir, timeoutMs: 20_000 })));
    results.forEach((r, i) => {
      const what = (commands[i] as string[]).join(" ");
      expect(expectOneLineUsageError(r, what), what).toMatch(/letters, digits/);
    });
  });
});

describe("jobs over max_payload through the CLI", () => {
  it("one job: exit 2 and one line with its size and the limit; nothing enqueued", async () => {
    const t = fresh();
    const file = path.join(dir, "big.json");
    await writeFile(file, JSON.stringify({ blob: "x".repeat(70_000) }));
    const r = await t.run(["job", "enqueue", "t", "--data", `@${file}`, "--id", "big-1"]);
    const line = expectOneLineUsageError(r, "enqueue 70 KB");
    expect(line).toMatch(/^error: job big-1 is 70\d\d\d bytes, over the limit of 65280 bytes \(the server's max_payload of 65536 bytes, less 256 for headers\): store large data elsewhere/);
    expect(await t.stored()).toBe(0);
  });

  it("--ndjson with one oversized line: it is reported by number, the others are enqueued, exit 1; with --strict nothing is, exit 2", async () => {
    const t = fresh();
    const big = JSON.stringify({ task: "t", id: "big", payload: "y".repeat(70_000) });
    const input = [JSON.stringify({ task: "t", id: "one" }), big, JSON.stringify({ task: "t", id: "three" })].join("\n");
    const strict = await t.run(["job", "enqueue", "--ndjson", "--strict"], input);
    expect(expectOneLineUsageError(strict, "strict")).toMatch(/^error: line 2: job big is 70\d\d\d bytes, over the limit of 65280 bytes .*nothing was enqueued \(--strict\)$/);
    expect(await t.stored()).toBe(0);

    const r = await t.run(["job", "enqueue", "--ndjson"], input);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toBe("one\nthree\n");
    const errors = r.stderr.trimEnd().split("\n");
    expect(errors).toHaveLength(2);
    expect(errors[0]).toMatch(/^error: line 2: job big: job big is 70\d\d\d bytes, over the limit of 65280 bytes/);
    expect(errors[1]).toMatch(/^error: 1 of 3 lines failed .*the other 2 jobs were enqueued$/);
    expect(await t.stored()).toBe(2);
  });
});

describe("corrupted values in naq's KV buckets", () => {
  it("a job record that is not one: job status and job result say so in one line (exit 2), never a crash", async () => {
    const t = fresh();
    expect((await t.run(["stream", "init"])).code).toBe(0);
    expect((await t.run(["job", "enqueue", "t", "--id", "victim"])).code).toBe(0);
    const kv = await new Kvm(nc as NatsConnection).open(`${t.namespace}_results`);
    for (const garbage of ["null", "[]", "{", '{"v":2,"status":"completed"}', '{"v":1,"id":"victim","status":"completed","error":"boom"}']) {
      await kv.put("victim", garbage);
      for (const args of [["job", "status", "victim"], ["job", "result", "victim", "--wait", "--wait-timeout", "2s"]]) {
        const line = expectOneLineUsageError(await t.run(args), `${args.join(" ")} with ${garbage}`);
        expect(line).toMatch(new RegExp(`^error: ${t.namespace}_results/victim: `));
      }
    }
    // `job list` leaves the unreadable record out instead of failing.
    const list = await t.run(["--json", "job", "list"]);
    expect(list.code, list.stderr).toBe(0);
  });
});
