/**
 * The minimal NATS permissions of docs/examples/nats-permissions.conf (shown verbatim in
 * docs/operations.md), against a real server that uses exactly that file: a producer
 * enqueues and reads its jobs but cannot purge streams or run a worker; a worker runs jobs
 * (retries, dead letters) and nothing else; an operator manages streams. Every denial is
 * one line naming the denied subject and exits 5, at once: also for a denied pull request
 * or event publish, which nats.js reports only on the connection's status.
 */
import { readFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configSchema } from "../../src/config/schema.js";
import type { DeadLetter } from "../../src/services/jobs.js";
import { Worker } from "../../src/worker/worker.js";
import { eventually, REPO_ROOT, recordingCli, spawnCli, startServer, workerStarted, type CliResult, type NatsServer } from "../support/index.js";

const FIXTURE = path.join(REPO_ROOT, "docs", "examples", "nats-permissions.conf");
const PASSWORDS = {
  PRODUCER_PASSWORD: "prod-Qw3s3cr3t-7001",
  WORKER_PASSWORD: "work-Er4s3cr3t-7002",
  OPERATOR_PASSWORD: "oper-Ty5s3cr3t-7003",
};
const TASKS = `
export function add(p) { return p.a + p.b; }
export function boom() { throw new Error("boom"); }
export async function nap(p, ctx) {
  await new Promise((resolve, reject) => {
    const t = setTimeout(resolve, p.ms);
    ctx.signal.addEventListener("abort", () => { clearTimeout(t); reject(ctx.signal.reason); }, { once: true });
  });
  return "woke";
}
`;

let fixture: string;
let dir: string;
let server: NatsServer;

beforeAll(async () => {
  fixture = await readFile(FIXTURE, "utf8");
  dir = await mkdtemp(path.join(os.tmpdir(), "naq-permissions-"));
  await writeFile(path.join(dir, "tasks.mjs"), TASKS);
  // The fixture reads the passwords from the server's environment (spawned with ours).
  Object.assign(process.env, PASSWORDS);
  server = await startServer({ config: fixture });
});

afterAll(async () => {
  await server?.[Symbol.asyncDispose]();
  if (dir) await rm(dir, { recursive: true, force: true });
});

type Role = "producer" | "worker" | "operator";
const PASSWORD: Record<Role, string> = {
  producer: PASSWORDS.PRODUCER_PASSWORD,
  worker: PASSWORDS.WORKER_PASSWORD,
  operator: PASSWORDS.OPERATOR_PASSWORD,
};
const envOf = (role: Role, on: NatsServer = server) => ({ NAQ_URL: on.url, NAQ_USER: role, NAQ_PASSWORD: PASSWORD[role] });

const { outputs, naq } = recordingCli(() => dir);
const as = (role: Role, args: string[], on: NatsServer = server): Promise<CliResult> => naq(args, envOf(role, on));

/** Exit 5, and one line naming the denied subject. */
function expectDenied(r: CliResult, subject: RegExp): void {
  expect(r.code, r.stderr).toBe(5);
  const lines = r.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/permission denied: NATS does not allow this user to publish to "/);
  expect(lines[0]).toMatch(subject);
}

/** Permission violations the server has logged so far. */
const violations = () => server.logTail(200).split("\n").filter((l) => /Violation/.test(l));

describe("minimal permissions (docs/examples/nats-permissions.conf)", () => {
  it("docs/operations.md shows the fixture verbatim", async () => {
    const doc = await readFile(path.join(REPO_ROOT, "docs", "operations.md"), "utf8");
    expect(doc).toContain(`\`\`\`\n${fixture}\`\`\``);
  });

  it("the operator creates the streams", async () => {
    const r = await as("operator", ["stream", "init", "--json"]);
    expect(r.code, r.stderr).toBe(0);
  });

  it("a producer enqueues and reads its jobs, but cannot purge, init, delete or run a worker", { timeout: 40_000 }, async () => {
    const before = violations().length;
    const enq = await as("producer", ["job", "enqueue", "add", '{"a":1,"b":2}', "--queue", "perm"]);
    expect(enq).toMatchObject({ code: 0, stderr: "" });
    const id = enq.stdout.trim();
    const status = await as("producer", ["job", "status", id, "--json"]);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ id, status: "queued" });
    const history = await as("producer", ["events", "history", id, "--json"]);
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout).toContain('"enqueued"');
    expect(violations()).toHaveLength(before);

    expectDenied(await as("producer", ["stream", "purge", "perm", "--force"]), /"\$JS\.API\.STREAM\.INFO\.perm"/);
    expectDenied(await as("producer", ["stream", "purge", "naq_jobs", "--force"]), /"\$JS\.API\.STREAM\.INFO\.naq_jobs"/);
    expectDenied(await as("producer", ["stream", "delete", "naq_jobs", "--force"]), /"\$JS\.API\.STREAM\./);
    expectDenied(await as("producer", ["stream", "init"]), /"\$JS\.API\.STREAM\./);
    expectDenied(await as("producer", ["worker", "start", "perm", "--handlers", "tasks.mjs"]), /"\$JS\.API\.STREAM\.INFO\.naq_jobs"/);
    // The job is still there.
    const still = await as("operator", ["job", "status", id, "--json"]);
    expect(JSON.parse(still.stdout)).toMatchObject({ status: "queued" });
  });

  it("a worker runs jobs (results, retries, dead letters, dependencies, cancel, pause, stop) and cannot purge", { timeout: 60_000 }, async () => {
    const before = violations().length;
    const worker = spawnCli(["worker", "start", "perm", "--handlers", "tasks.mjs", "--concurrency", "2"], { env: envOf("worker"), cwd: dir });
    try {
      await workerStarted(worker);
      const waited = await as("producer", ["job", "enqueue", "add", '{"a":20,"b":22}', "--queue", "perm", "--wait", "--wait-timeout", "20s"]);
      expect(waited).toMatchObject({ code: 0, stdout: "42\n" });
      const failed = await as("producer", ["job", "enqueue", "boom", "{}", "--queue", "perm", "--retries", "1", "--backoff", "fixed:100ms", "--wait", "--wait-timeout", "20s"]);
      expect(failed.code, failed.stderr).toBe(6);
      const exec = await as("producer", ["job", "enqueue", "--exec", "--queue", "perm", "--json", "--", "echo", "hi"]);
      const execId = (JSON.parse(exec.stdout) as { id: string }).id;
      const result = await as("producer", ["job", "result", execId, "--wait", "--wait-timeout", "20s"]);
      expect(result.code).toBe(6);
      expect(violations()).toHaveLength(before);

      const first = (await as("producer", ["job", "enqueue", "add", '{"a":1,"b":1}', "--queue", "perm"])).stdout.trim();
      const after = await as("producer", ["job", "enqueue", "add", '{"a":2,"b":2}', "--queue", "perm", "--depends-on", first, "--wait", "--wait-timeout", "20s"]);
      expect(after).toMatchObject({ code: 0, stdout: "4\n" });

      const napping = (await as("producer", ["job", "enqueue", "nap", '{"ms":30000}', "--queue", "perm"])).stdout.trim();
      await eventually(async () => expect(JSON.parse((await as("producer", ["job", "status", napping, "--json"])).stdout)).toMatchObject({ status: "running" }), { timeoutMs: 15_000 });
      expect((await as("operator", ["job", "cancel", napping])).code).toBe(0);
      expect((await as("producer", ["job", "result", napping, "--wait", "--wait-timeout", "15s"])).code).toBe(6);
      expect(JSON.parse((await as("producer", ["job", "status", napping, "--json"])).stdout)).toMatchObject({ status: "cancelled" });
      for (const verb of ["pause", "resume"]) expect((await as("operator", ["queue", verb, "perm"])).code).toBe(0);
      expect(violations()).toHaveLength(before);

      const dead = await as("operator", ["job", "failed", "--json"]);
      expect((JSON.parse(dead.stdout) as DeadLetter[]).map((d) => d.task).sort()).toEqual(["boom", "exec"]);
      expectDenied(await as("worker", ["stream", "purge", "perm", "--force"]), /"\$JS\.API\.STREAM\.INFO\.perm"/);

      // Asked to stop by the operator, the worker clears its stop request and exits 0.
      expect((await as("operator", ["worker", "stop", "--all"])).code).toBe(0);
      const stopped = await Promise.race([worker.exited, new Promise<undefined>((r) => setTimeout(r, 20_000, undefined))]);
      expect(stopped, "the worker did not stop within 20 s").toBeDefined();
    } finally {
      const stopped = await worker.stop(15_000);
      outputs.push(stopped);
      expect(stopped.code, stopped.stderr).toBe(0);
      expect(stopped.stderr).not.toMatch(/permission|denied|violation/i);
    }
    expect(violations().filter((l) => /User "worker"/.test(l) && !/STREAM\.INFO\.perm/.test(l))).toEqual([]);
  });

  it("the operator pauses, cancels, delays, purges and re-inits", { timeout: 40_000 }, async () => {
    const before = violations().length;
    for (const args of [
      ["queue", "pause", "perm"],
      ["queue", "resume", "perm"],
      ["job", "enqueue", "add", '{"a":1,"b":1}', "--queue", "perm", "--delay", "1h"],
      ["stream", "purge", "perm", "--force"],
      ["stream", "init"],
    ]) {
      const r = await as("operator", args);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
    }
    const id = (await as("operator", ["job", "enqueue", "add", '{"a":1,"b":1}', "--queue", "perm"])).stdout.trim();
    expect((await as("operator", ["job", "cancel", id])).code).toBe(0);
    expect(violations()).toHaveLength(before);
  });
});

describe("denials reported only on the connection", () => {
  let strict: NatsServer;
  beforeAll(async () => {
    // The same file, less the producer's event publish and its pulls from the events stream.
    const removed = ['"naq.events.*.*.enqueued"', '"$JS.API.CONSUMER.MSG.NEXT.naq_events.>"'];
    for (const r of removed) expect(fixture).toContain(r);
    const config = removed.reduce((text, r) => text.replace(r, ""), fixture);
    strict = await startServer({ config });
    expect((await as("operator", ["stream", "init"], strict)).code).toBe(0);
  });
  afterAll(async () => {
    await strict?.[Symbol.asyncDispose]();
  });

  it("a denied event publish: the job is enqueued, with one warning naming the subject", async () => {
    const r = await as("producer", ["job", "enqueue", "add", "{}", "--queue", "perm"], strict);
    expect(r.code, r.stderr).toBe(0);
    const id = r.stdout.trim();
    expect(r.stderr).toBe(
      `warning: events: permission denied: NATS does not allow this user to publish to "naq.events.perm.${id}.enqueued"; events this user publishes are not stored\n`,
    );
  });

  it("a denied pull from the events stream ends the read at once with one line", async () => {
    const id = (await as("operator", ["job", "enqueue", "add", "{}", "--queue", "perm"], strict)).stdout.trim();
    const r = await as("producer", ["events", "history", id], strict);
    expectDenied(r, /"\$JS\.API\.CONSUMER\.MSG\.NEXT\.naq_events\.naq_ev_\w+"$/);
    expect(r.stderr).toMatch(/^error: reading naq_events: /);
    expect(r.durationMs).toBeLessThan(10_000);
  });
});

describe("a worker that may not acknowledge", () => {
  it("says so once, naming the subject to allow, instead of running every job again in silence", { timeout: 30_000 }, async () => {
    const noAck = await startServer({
      config: `
authorization {
  users = [
    { user: operator, password: "${PASSWORDS.OPERATOR_PASSWORD}", permissions: { publish: [">"], subscribe: ["_INBOX.>"] } }
    { user: noack, password: "noack-pw-1", permissions: { publish: { allow: [">"], deny: ["$JS.ACK.>"] }, subscribe: ["_INBOX.>"] } }
  ]
}
`,
    });
    const worker = new Worker({
      queues: ["perm"],
      handlers: { add: (p: unknown) => (p as { a: number; b: number }).a + (p as { a: number; b: number }).b },
      config: configSchema.parse({ connection: { servers: [noAck.url], user: "noack", password: "noack-pw-1" } }),
    });
    const errors: Error[] = [];
    worker.on("error", (e) => errors.push(e));
    try {
      expect((await as("operator", ["stream", "init"], noAck)).code).toBe(0);
      await worker.start();
      for (let i = 0; i < 3; i++) expect((await as("operator", ["job", "enqueue", "add", '{"a":1,"b":2}', "--queue", "perm"], noAck)).code).toBe(0);
      await eventually(() => expect(worker.stats.processed).toBe(3));
      await eventually(() => expect(errors.length).toBeGreaterThan(0));
      await new Promise((r) => setTimeout(r, 300));
      const acks = errors.filter((e) => e.message.startsWith("acknowledging jobs of queue perm:"));
      expect(acks).toHaveLength(1);
      expect(acks[0]?.message).toMatch(/permission denied: NATS does not allow this user to publish to "\$JS\.ACK\.naq_jobs\.naq_q_perm\./);
      expect(acks[0]?.message).toMatch(/run again after ack_wait: allow this user to publish to "\$JS\.ACK\.naq_jobs\.>"$/);
    } finally {
      await worker.close({ force: true });
      await noAck[Symbol.asyncDispose]();
    }
  });
});

describe("secrets", () => {
  it("no output above contains a password", () => {
    expect(outputs.length).toBeGreaterThan(15);
    for (const r of outputs) {
      for (const secret of Object.values(PASSWORDS)) {
        expect(r.stdout).not.toContain(secret);
        expect(r.stderr).not.toContain(secret);
      }
    }
  });
});
