/**
 * The foundation CLI (`stream`, `doctor`, `config`) as a shell script sees it: the built
 * `naq` run as a subprocess against a real nats-server, no TTY. One server for the file;
 * each test uses its own namespace so tests do not see each other's streams.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager } from "@nats-io/jetstream";
import { buildProgram } from "../../src/cli/program.js";
import { runCli, type CliOptions, type CliResult, type NatsServer, startServer } from "../support/index.js";

let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let tmp: string;

beforeAll(async () => {
  server = await startServer();
  nc = await connect({ servers: server.url, name: "foundation-cli-test" });
  jsm = await jetstreamManager(nc);
  tmp = await mkdtemp(path.join(os.tmpdir(), "naq-cli-test-"));
});

afterAll(async () => {
  await nc?.close();
  await server?.[Symbol.asyncDispose]();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** `naq -s <server> [--namespace ns] ...args`. */
function naq(args: string[], opts: CliOptions & { ns?: string } = {}): Promise<CliResult> {
  const { ns, ...rest } = opts;
  return runCli(["-s", server.url, ...(ns ? ["--namespace", ns] : []), ...args], rest);
}

/** Like naq() with --json; requires `code` (default 0) and parses stdout. */
async function naqJson<T>(args: string[], opts: CliOptions & { ns?: string; code?: number } = {}): Promise<T> {
  const res = await naq(["--json", ...args], opts);
  expect(res.code, `naq ${args.join(" ")} exited ${res.code}\n--- stderr\n${res.stderr}\n--- stdout\n${res.stdout}`).toBe(opts.code ?? 0);
  return JSON.parse(res.stdout) as T;
}

/** stderr as lines, without a trailing empty line. */
const stderrLines = (res: CliResult): string[] => res.stderr.split("\n").filter((l) => l.trim() !== "");

function expectOneErrorLine(res: CliResult, ...needles: (string | RegExp)[]): void {
  const lines = stderrLines(res);
  expect(lines, res.stderr).toHaveLength(1);
  for (const n of needles) expect(lines[0]).toMatch(n);
  expect(res.stderr).not.toMatch(/\n\s+at /); // no stack trace
}

async function publish(subject: string, n: number): Promise<void> {
  const js = jetstream(nc);
  await Promise.all(Array.from({ length: n }, (_, i) => js.publish(subject, JSON.stringify({ i }))));
}

const messages = async (stream: string): Promise<number> => (await jsm.streams.info(stream)).state.messages;

async function subjectCount(stream: string, subject: string): Promise<number> {
  const si = await jsm.streams.info(stream, { subjects_filter: subject });
  return Object.values(si.state.subjects ?? {}).reduce((a, b) => a + b, 0);
}

const totalConnections = async (): Promise<number> => Number((await server.varz()).total_connections);

function versionBelow(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split(".").map(Number);
  return a < major || (a === major && b < minor);
}

interface InitItem {
  kind: "stream" | "bucket";
  name: string;
  stream: string;
  action: "created" | "updated" | "unchanged";
  changes: { field: string; from: unknown; to: unknown; mutable: boolean }[];
}

interface DoctorJson {
  ok: boolean;
  server: { version: string };
  resources: { name: string; exists: boolean; drift: unknown[] }[];
  checks: { level: "ok" | "warn" | "error"; subject: string; message: string }[];
}

// ---------------------------------------------------------------------------------------

describe("one connection per invocation", () => {
  it("doctor, stream init, stream list, info and purge each open exactly one NATS connection", async () => {
    const ns = "conn";
    const invocations: [string[], number][] = [
      [["doctor"], 1], // streams missing: exit 1, still one connection
      [["stream", "init"], 0],
      [["doctor"], 0],
      [["stream", "list"], 0],
      [["stream", "info", "q1"], 3], // neither a stream nor a queue with jobs: not found, still one connection
      [["stream", "purge", "q1", "--force"], 0],
    ];
    for (const [args, code] of invocations) {
      const before = await totalConnections();
      const res = await naq(args, { ns });
      expect(res.code, `${args.join(" ")}: ${res.stderr}`).toBe(code);
      expect((await totalConnections()) - before, `connections opened by naq ${args.join(" ")}`).toBe(1);
    }
    // None left open: the test's own connection is the only one.
    expect((await server.connz()).num_connections).toBe(1);
  });
});

describe("unreachable server", () => {
  it("exits 5 at once with one line naming the URL", async () => {
    const res = await runCli(["-s", "nats://127.0.0.1:1", "stream", "list"]);
    expect(res.code).toBe(5);
    expectOneErrorLine(res, /nats:\/\/127\.0\.0\.1:1\b/);
    expect(res.durationMs).toBeLessThan(5_000); // the default connect timeout is 5s
    expect(res.stdout).toBe("");
  });
});

describe("stream init", () => {
  it("creates everything, then reports every item unchanged", async () => {
    const ns = "ti";
    const first = await naqJson<InitItem[]>(["stream", "init"], { ns });
    expect(first.map((i) => i.name)).toEqual([
      "ti_jobs",
      "ti_events",
      "ti_dlq",
      "ti_results",
      "ti_workers",
      "ti_schedules",
      "ti_leader",
      "ti_control",
      "ti_cancels",
    ]);
    expect(first.every((i) => i.action === "created")).toBe(true);
    expect(first.filter((i) => i.kind === "bucket").every((i) => i.stream === `KV_${i.name}`)).toBe(true);

    const second = await naqJson<InitItem[]>(["stream", "init"], { ns });
    expect(second).toHaveLength(first.length);
    for (const item of second) {
      expect(item.action, item.name).toBe("unchanged");
      expect(item.changes).toEqual([]);
    }
  });

  it("updates a drifted stream in place, lists the change and keeps its messages", async () => {
    const ns = "td";
    await naqJson(["stream", "init"], { ns });
    await publish("td.events.q1.job1.created", 4);
    const si = await jsm.streams.info("td_events");
    const wantedMaxAge = si.config.max_age;
    await jsm.streams.update("td_events", { ...si.config, max_age: 3_600 * 1e9 });

    const doctor = await naqJson<DoctorJson>(["doctor"], { ns, code: 1 });
    expect(doctor.resources.find((r) => r.name === "td_events")?.drift).toHaveLength(1);
    expect(doctor.checks.some((c) => c.level === "error" && c.subject === "td_events" && /max_age/.test(c.message))).toBe(true);

    const items = await naqJson<InitItem[]>(["stream", "init"], { ns });
    const events = items.find((i) => i.name === "td_events");
    expect(events?.action).toBe("updated");
    expect(events?.changes).toEqual([{ field: "max_age", from: 3_600_000, to: wantedMaxAge / 1e6, mutable: true }]);
    expect(items.filter((i) => i.name !== "td_events").every((i) => i.action === "unchanged")).toBe(true);

    const after = await jsm.streams.info("td_events");
    expect(after.config.max_age).toBe(wantedMaxAge);
    expect(after.state.messages).toBe(4);
    expect(after.created).toBe(si.created); // the same stream, not a new one

    // The table names the change for people too.
    await jsm.streams.update("td_events", { ...after.config, max_age: 3_600 * 1e9 });
    const human = await naq(["stream", "init"], { ns });
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/td_events\s*│\s*updated\s*│\s*max_age: 3600000 -> \d+/);
  });

  it("refuses a change that needs a recreate (exit 1, naming the field) and does not delete the stream", async () => {
    const ns = "tx";
    await jsm.streams.add({
      name: "tx_jobs",
      subjects: ["tx.queue.*"],
      retention: RetentionPolicy.Limits,
      storage: StorageType.Memory,
    });
    await publish("tx.queue.a", 3);
    const before = await jsm.streams.info("tx_jobs");

    const res = await naq(["stream", "init"], { ns });
    expect(res.code).toBe(1);
    expectOneErrorLine(res, /tx_jobs/, /retention/, /storage/);

    const after = await jsm.streams.info("tx_jobs");
    expect(after.created).toBe(before.created);
    expect(after.config.retention).toBe(RetentionPolicy.Limits);
    expect(after.config.storage).toBe(StorageType.Memory);
    expect(after.state.messages).toBe(3);
  });
});

describe("doctor", () => {
  it("reports missing streams (exit 1), then passes after stream init with a durability note", async () => {
    const ns = "dr";
    const fresh = await naqJson<DoctorJson>(["doctor"], { ns, code: 1 });
    expect(fresh.ok).toBe(false);
    expect(fresh.resources.length).toBeGreaterThan(0);
    expect(fresh.resources.every((r) => !r.exists)).toBe(true);
    const missing = fresh.checks.find((c) => c.level === "error" && c.subject === "streams");
    expect(missing?.message).toMatch(/missing: dr_jobs, dr_events/);
    expect(missing?.message).toMatch(/naq stream init/);

    await naqJson(["stream", "init"], { ns });
    const ready = await naqJson<DoctorJson>(["doctor"], { ns });
    expect(ready.ok).toBe(true);
    expect(ready.checks.filter((c) => c.level === "error")).toEqual([]);
    expect(ready.resources.every((r) => r.exists && r.drift.length === 0)).toBe(true);
    expect(ready.server.version).toMatch(/^2\.\d+\.\d+/);
    const durability = ready.checks.find((c) => c.subject === "durability");
    expect(durability).toBeDefined();
    if (versionBelow(ready.server.version, 2, 10)) {
      expect(durability?.level).toBe("warn");
      expect(durability?.message).toMatch(/fsync/);
      expect(durability?.message).toContain(ready.server.version);
    }

    // Without --json: a report for people on stdout, exit 0.
    const human = await naq(["doctor"], { ns });
    expect(human.code).toBe(0);
    expect(human.stdout).toContain("durability");
    expect(human.stdout).toContain("dr_jobs");
  });
});

describe("stream purge", () => {
  it("refuses without a terminal or --force; purges one queue, keeps N, and counts", async () => {
    const ns = "pq";
    await naqJson(["stream", "init"], { ns });
    await publish("pq.queue.q1", 6);
    await publish("pq.queue.q2", 3);

    const refused = await naq(["stream", "purge", "q1"], { ns });
    expect(refused.code).toBe(2);
    expectOneErrorLine(refused, /--force/);
    expect(refused.stdout).toBe("");
    expect(await subjectCount("pq_jobs", "pq.queue.q1")).toBe(6);

    const kept = await naq(["stream", "purge", "q1", "--force", "--keep", "2"], { ns });
    expect(kept.code, kept.stderr).toBe(0);
    expect(kept.stdout).toMatch(/purged 4 messages/);
    expect(await subjectCount("pq_jobs", "pq.queue.q1")).toBe(2);
    expect(await subjectCount("pq_jobs", "pq.queue.q2")).toBe(3);

    const all = await naqJson<{ purged: number; queue: string; subject: string }>(["stream", "purge", "q1", "--force"], { ns });
    expect(all).toMatchObject({ purged: 2, queue: "q1", subject: "pq.queue.q1" });
    expect(await subjectCount("pq_jobs", "pq.queue.q1")).toBe(0);
    expect(await subjectCount("pq_jobs", "pq.queue.q2")).toBe(3); // only q1's subject was touched

    const quiet = await naq(["-q", "stream", "purge", "q2", "--force"], { ns });
    expect(quiet.stdout.trim()).toBe("3");

    // A stream by name: everything in it.
    await publish("pq.events.q1.j1.created", 5);
    const stream = await naqJson<{ purged: number; queue: null }>(["stream", "purge", "pq_events", "--force", "--keep", "1"], { ns });
    expect(stream).toMatchObject({ purged: 4, queue: null });
    expect(await messages("pq_events")).toBe(1);
  });
});

describe("stream info and delete", () => {
  it("shows a queue and a stream as JSON; rejects bad names; refuses delete without --force", async () => {
    const ns = "si";
    await naqJson(["stream", "init"], { ns });
    await publish("si.queue.emails", 2);

    const queue = await naqJson<Record<string, unknown>>(["stream", "info", "emails"], { ns });
    expect(queue).toEqual({ queue: "emails", stream: "si_jobs", subject: "si.queue.emails", waiting: 2, consumer: null });

    const jobs = await naqJson<Record<string, unknown> & { config: Record<string, unknown> }>(["stream", "info", "si_jobs"], { ns });
    expect(jobs).toMatchObject({ name: "si_jobs", subjects: ["si.queue.*"], retention: "workqueue", storage: "file", replicas: 1, messages: 2 });
    expect(jobs.consumerDetails).toEqual([]);
    expect(jobs.config.name).toBe("si_jobs");

    const dotted = await naq(["stream", "info", "no.such.stream"], { ns });
    expect(dotted.code).toBe(2);
    expectOneErrorLine(dotted, /no\.such\.stream/, /not valid/);

    const refused = await naq(["stream", "delete", "x"], { ns });
    expect(refused.code).toBe(2);
    expectOneErrorLine(refused, /--force/);

    const stillThere = await naq(["stream", "delete", "si_dlq"], { ns });
    expect(stillThere.code).toBe(2);
    expect((await jsm.streams.info("si_dlq")).config.name).toBe("si_dlq");

    const missing = await naq(["stream", "delete", "si_nothing", "--force"], { ns });
    expect(missing.code).toBe(3);
    expectOneErrorLine(missing, /si_nothing/);

    const deleted = await naqJson<{ deleted: boolean }>(["stream", "delete", "si_dlq", "--force"], { ns });
    expect(deleted.deleted).toBe(true);
    await expect(jsm.streams.info("si_dlq")).rejects.toThrow();
  });
});

// ---------------------------------------------------------------------------------------

interface ConfigShow {
  file: string | null;
  config: { namespace: string; timeout: number; connection: { servers: string[] }; worker: { concurrency: number } };
  sources: { key: string; value: unknown; source: string }[];
}

describe("config", () => {
  /** A fresh directory that is also HOME, so no config above it or in ~/.config is found. */
  async function dir(name: string, files: Record<string, string> = {}): Promise<{ cwd: string; env: Record<string, string> }> {
    const cwd = path.join(tmp, name);
    await mkdir(cwd, { recursive: true });
    for (const [file, text] of Object.entries(files)) await writeFile(path.join(cwd, file), text);
    return { cwd, env: { HOME: cwd, XDG_CONFIG_HOME: path.join(cwd, ".config") } };
  }

  async function show(where: { cwd: string; env: Record<string, string> }, args: string[] = [], env: Record<string, string> = {}) {
    const r = await runCli(["config", "show", "--json", ...args], { cwd: where.cwd, env: { ...where.env, ...env } });
    expect(r.code, r.stderr).toBe(0);
    const parsed = JSON.parse(r.stdout) as ConfigShow;
    const source = (key: string) => parsed.sources.find((s) => s.key === key)?.source;
    return { ...parsed, source };
  }

  it("precedence: flag > env > file > default, with the source of each value", async () => {
    const file = JSON.stringify({ namespace: "fromfile", connection: { servers: ["nats://file:4222"] }, timeout: "7s" });
    const where = await dir("precedence", { ".naqrc.json": file });
    const filePath = path.join(where.cwd, ".naqrc.json");

    const none = await show(await dir("empty"));
    expect(none.file).toBeNull();
    expect(none.config.namespace).toBe("naq");
    expect(none.source("namespace")).toBe("default");

    const fromFile = await show(where);
    expect(fromFile.file).toBe(filePath);
    expect(fromFile.config.namespace).toBe("fromfile");
    expect(fromFile.source("namespace")).toBe(filePath);
    expect(fromFile.config.connection.servers).toEqual(["nats://file:4222"]);
    expect(fromFile.source("connection.servers")).toBe(filePath);
    expect(fromFile.config.timeout).toBe(7_000);
    expect(fromFile.config.worker.concurrency).toBe(10);
    expect(fromFile.source("worker.concurrency")).toBe("default");

    const fromEnv = await show(where, [], { NAQ_NAMESPACE: "fromenv", NAQ_URL: "nats://env:4222" });
    expect(fromEnv.config.namespace).toBe("fromenv");
    expect(fromEnv.source("namespace")).toBe("env NAQ_NAMESPACE");
    expect(fromEnv.config.connection.servers).toEqual(["nats://env:4222"]);
    expect(fromEnv.source("connection.servers")).toBe("env NAQ_URL");
    expect(fromEnv.source("timeout")).toBe(filePath); // untouched keys still come from the file

    const fromFlag = await show(where, ["--namespace", "fromflag", "-s", "nats://flag:4222"], {
      NAQ_NAMESPACE: "fromenv",
      NAQ_URL: "nats://env:4222",
    });
    expect(fromFlag.config.namespace).toBe("fromflag");
    expect(fromFlag.source("namespace")).toBe("flag --namespace");
    expect(fromFlag.config.connection.servers).toEqual(["nats://flag:4222"]);
    expect(fromFlag.source("connection.servers")).toBe("flag --server");
    expect(fromFlag.config.timeout).toBe(7_000);
    expect(fromFlag.source("timeout")).toBe(filePath);
  });

  it("a bad key in a file: exit 2 with one line naming the file and the key", async () => {
    const where = await dir("badkey", { ".naqrc.json": JSON.stringify({ namespace: "ok", streams: { replicsa: 3 } }) });
    const filePath = path.join(where.cwd, ".naqrc.json");
    const r = await runCli(["config", "show"], where);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expectOneErrorLine(r, filePath, /streams\.replicsa/);

    // Any command that loads config fails the same way, before connecting.
    const list = await runCli(["-s", server.url, "stream", "list"], where);
    expect(list.code).toBe(2);
    expectOneErrorLine(list, filePath, /replicsa/);

    // A bad value from the environment names the variable.
    const clean = await dir("badenv");
    const env = await runCli(["config", "show"], { cwd: clean.cwd, env: { ...clean.env, NAQ_STREAM_REPLICAS: "2" } });
    expect(env.code).toBe(2);
    expectOneErrorLine(env, /NAQ_STREAM_REPLICAS/, /1, 3 or 5/);
  });

  it("validate exits 0 for a good file and 2 for a bad one", async () => {
    const where = await dir("validate", {
      "good.json": JSON.stringify({ namespace: "good", worker: { concurrency: 4 } }),
      "bad.json": JSON.stringify({ namespace: "has.dots" }),
    });
    const good = await runCli(["config", "validate", "good.json"], where);
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toContain("good.json");

    const bad = await runCli(["config", "validate", "bad.json"], where);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(path.join(where.cwd, "bad.json"));
    expect(bad.stderr).toMatch(/namespace/);

    const json = await runCli(["--json", "config", "validate", "good.json"], where);
    expect(JSON.parse(json.stdout)).toMatchObject({ valid: true, file: path.join(where.cwd, "good.json") });

    const gone = await runCli(["config", "validate", "missing.json"], where);
    expect(gone.code).toBe(2);
    expectOneErrorLine(gone, /missing\.json/, /not found/);
  });

  it("init writes a loadable file and refuses to overwrite it without --force", async () => {
    const where = await dir("init");
    const target = path.join(where.cwd, ".naqrc.yaml");

    const first = await runCli(["config", "init"], where);
    expect(first.code, first.stderr).toBe(0);
    const text = await readFile(target, "utf8");
    expect(text).toMatch(/namespace: naq/);

    await writeFile(target, `${text}\n# edited\n`);
    const again = await runCli(["config", "init"], where);
    expect(again.code).toBe(2);
    expectOneErrorLine(again, target, /--force/);
    expect(await readFile(target, "utf8")).toContain("# edited");

    const forced = await runCli(["config", "init", "--force"], where);
    expect(forced.code, forced.stderr).toBe(0);
    expect(await readFile(target, "utf8")).toBe(text);

    // What init writes is valid and is what `config show` then finds.
    expect((await runCli(["config", "validate"], where)).code).toBe(0);
    const shown = await show(where);
    expect(shown.file).toBe(target);

    const json = await runCli(["config", "init", "--format", "json", "-o", "naq.json"], where);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(await readFile(path.join(where.cwd, "naq.json"), "utf8"))).toMatchObject({ namespace: "naq" });
    expect((await runCli(["config", "validate", "naq.json"], where)).code).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------

describe("help", () => {
  /** Every command path that does something: the leaves of the Commander tree, and the root. */
  function leaves(cmd: Command, prefix: string[] = []): string[][] {
    const subs = cmd.commands.filter((c) => c.name() !== "help");
    if (subs.length === 0) return [prefix];
    return subs.flatMap((c) => leaves(c, [...prefix, c.name()]));
  }

  it("every command's --help exits 0 and shows examples", async () => {
    const paths = [[], ...leaves(buildProgram())];
    expect(paths.length).toBeGreaterThan(8);
    expect(paths).toContainEqual(["stream", "purge"]);
    expect(paths).toContainEqual(["config", "init"]);
    expect(paths).toContainEqual(["doctor"]);
    const results = await Promise.all(paths.map((p) => runCli([...p, "--help"]).then((r) => ({ path: p.join(" ") || "(root)", r }))));
    const bad = results
      .filter(({ r }) => r.code !== 0 || !r.stdout.includes("Examples:"))
      .map(({ path: p, r }) => `naq ${p} --help: exit ${r.code}, examples ${r.stdout.includes("Examples:")}, stderr ${r.stderr.trim()}`);
    expect(bad).toEqual([]);
  });
});
