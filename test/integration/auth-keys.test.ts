/**
 * Key-based authentication against real servers: an nkey user (`--nkey`, NAQ_NKEY) and an
 * operator-mode server with a user .creds file (`--creds`, NAQ_CREDS), keys and JWTs made
 * in the test with @nats-io/nkeys. The CLI and a worker connect and run a job; without the
 * credentials, or with the wrong ones, every command exits 5 with one clear line; and no
 * seed, JWT or signing key ever appears in any output (including job records, events and
 * the environment an exec job sees).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExecResult } from "../../src/model/exec.js";
import type { JobRecord } from "../../src/model/job.js";
import { recordingCli, startServer, type CliResult, type NatsServer } from "../support/index.js";
import { nkeyUser, operatorMode, type NkeyUser, type OperatorMode } from "../support/security.js";

const TASKS = "export function add(p) { return p.a + p.b; }\n";

let dir: string;
let nkeyServer: NatsServer;
let credsServer: NatsServer;
let user: NkeyUser;
let stranger: NkeyUser;
let op: OperatorMode;
const file = (name: string) => path.join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "naq-auth-keys-"));
  user = nkeyUser();
  stranger = nkeyUser();
  op = operatorMode();
  await Promise.all([
    writeFile(file("tasks.mjs"), TASKS),
    writeFile(file("user.nk"), `${user.seed}\n`, { mode: 0o600 }),
    writeFile(file("stranger.nk"), `${stranger.seed}\n`, { mode: 0o600 }),
    writeFile(file("not-a-seed.nk"), "hello\n"),
    writeFile(file("user.creds"), op.creds, { mode: 0o600 }),
    writeFile(file("stranger.creds"), op.strangerCreds, { mode: 0o600 }),
    writeFile(file("broken.creds"), "this is not a creds file\n"),
  ]);
  [nkeyServer, credsServer] = await Promise.all([
    startServer({ config: `authorization { users = [ { nkey: ${user.publicKey} } ] }` }),
    startServer({ config: op.config }),
  ]);
});

afterAll(async () => {
  await Promise.all([nkeyServer?.[Symbol.asyncDispose](), credsServer?.[Symbol.asyncDispose]()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const { outputs, naq } = recordingCli(() => dir);

/** Exit 5 and one stderr line that matches `pattern` and names the server. */
function expectRefused(r: CliResult, server: NatsServer, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(5);
  const lines = r.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(lines[0]).toContain(`127.0.0.1:${server.port}`);
  expect(r.stdout).toBe("");
}

/** Enqueue a job, run a burst worker with `auth`, and read the job's record back. */
async function jobThroughWorker(env: Record<string, string>, extraWorkerArgs: string[] = []): Promise<JobRecord> {
  const enq = await naq(["job", "enqueue", "add", '{"a":2,"b":40}', "--queue", "keys", "--json"], env);
  expect(enq.code, enq.stderr).toBe(0);
  const { id } = JSON.parse(enq.stdout) as { id: string };
  const worker = await naq(["worker", "start", "keys", "--handlers", "tasks.mjs", "--burst", ...extraWorkerArgs], env, 40_000);
  expect(worker.code, worker.stderr).toBe(0);
  const status = await naq(["job", "status", id, "--json"], env);
  expect(status.code, status.stderr).toBe(0);
  const history = await naq(["events", "history", id, "--json"], env);
  expect(history.code, history.stderr).toBe(0);
  const result = await naq(["job", "result", id, "--json"], env);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as JobRecord;
}

describe("nkey", () => {
  it("connects with --nkey <seed file>, --nkey <seed> and NAQ_NKEY; a worker runs a job", { timeout: 60_000 }, async () => {
    const init = await naq(["-s", nkeyServer.url, "--nkey", "user.nk", "--namespace", "nk1", "stream", "init", "--json"]);
    expect(init.code, init.stderr).toBe(0);
    const raw = await naq(["-s", nkeyServer.url, "--nkey", user.seed, "--namespace", "nk1", "stream", "list", "--json"]);
    expect(raw.code, raw.stderr).toBe(0);
    expect((JSON.parse(raw.stdout) as unknown[]).length).toBeGreaterThan(0);

    const env = { NAQ_URL: nkeyServer.url, NAQ_NKEY: file("user.nk"), NAQ_NAMESPACE: "nk1" };
    const record = await jobThroughWorker(env);
    expect(record).toMatchObject({ status: "completed", result: 42 });
  });

  it("without an nkey, with another user's seed, or with a file that holds no seed: refused with one clear line", async () => {
    const none = await naq(["-s", nkeyServer.url, "stream", "list"]);
    expectRefused(none, nkeyServer, /authorization failed.*the server requires credentials: give --user\/--password, --token, --nkey or --creds/);
    const wrong = await naq(["-s", nkeyServer.url, "--nkey", "stranger.nk", "stream", "list"]);
    expectRefused(wrong, nkeyServer, /authorization failed.*the server refused the credentials given \(--nkey\)/);
    const worker = await naq(["worker", "start", "keys", "--handlers", "tasks.mjs"], { NAQ_URL: nkeyServer.url, NAQ_NKEY: stranger.seed });
    expectRefused(worker, nkeyServer, /authorization failed.*refused the credentials given \(--nkey\)/);

    const notSeed = await naq(["-s", nkeyServer.url, "--nkey", "not-a-seed.nk", "stream", "list"]);
    expect(notSeed.code).toBe(2);
    expect(notSeed.stderr.trim()).toBe("error: --nkey: file not-a-seed.nk does not hold a user nkey seed (SU...)");
    // A value that is neither a seed nor a file is not printed: it may be a mistyped secret.
    const typo = user.seed.replace(/^SU/, "XU");
    const mistyped = await naq(["-s", nkeyServer.url, "--nkey", typo, "stream", "list"]);
    expect(mistyped.code).toBe(2);
    expect(mistyped.stderr.trim()).toBe("error: --nkey: the value is neither a user nkey seed (SU...) nor a readable file (ENOENT)");
  });
});

describe("creds file (operator mode, JWTs signed in the test)", () => {
  it("connects with --creds and NAQ_CREDS; a worker runs a job", { timeout: 60_000 }, async () => {
    const init = await naq(["-s", credsServer.url, "--creds", "user.creds", "--namespace", "cr1", "stream", "init", "--json"]);
    expect(init.code, init.stderr).toBe(0);
    const env = { NAQ_URL: credsServer.url, NAQ_CREDS: file("user.creds"), NAQ_NAMESPACE: "cr1" };
    const record = await jobThroughWorker(env);
    expect(record).toMatchObject({ status: "completed", result: 42 });
    const doctor = await naq(["doctor", "--json"], env);
    expect(doctor.code, doctor.stderr).not.toBe(5);
  });

  it("without creds, or with a user of an account the server does not know: refused with one clear line", async () => {
    const none = await naq(["-s", credsServer.url, "stream", "list"]);
    expectRefused(none, credsServer, /authorization failed.*the server requires credentials/);
    const stranger = await naq(["-s", credsServer.url, "--creds", "stranger.creds", "stream", "list"]);
    expectRefused(stranger, credsServer, /authorization failed.*the server refused the credentials given \(--creds\)/);
    const worker = await naq(["worker", "start", "keys", "--handlers", "tasks.mjs"], { NAQ_URL: credsServer.url });
    expectRefused(worker, credsServer, /authorization failed/);

    const broken = await naq(["-s", credsServer.url, "--creds", "broken.creds", "stream", "list"]);
    expect(broken.code).toBe(2);
    expect(broken.stderr.trim()).toMatch(/^error: creds file broken.creds is not a NATS credentials file/);
    const missing = await naq(["-s", credsServer.url, "--creds", "missing.creds", "stream", "list"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toBe("error: cannot read creds file missing.creds: ENOENT");
  });
});

describe("secrets are never printed", () => {
  it("an exec job does not see the worker's seed in its environment", { timeout: 60_000 }, async () => {
    const env = { NAQ_URL: nkeyServer.url, NAQ_NKEY: user.seed, NAQ_NAMESPACE: "nk2" };
    const enq = await naq(["job", "enqueue", "--exec", "--queue", "keys", "--json", "--", "env"], env);
    expect(enq.code, enq.stderr).toBe(0);
    const { id } = JSON.parse(enq.stdout) as { id: string };
    const worker = await naq(["worker", "start", "keys", "--allow-exec", "env", "--burst"], env, 40_000);
    expect(worker.code, worker.stderr).toBe(0);
    const result = await naq(["job", "result", id, "--json"], env);
    expect(result.code, result.stderr).toBe(0);
    const record = JSON.parse(result.stdout) as JobRecord;
    const out = (record.result as unknown as ExecResult).stdout;
    expect(out).toContain(`NAQ_JOB_ID=${id}`);
    expect(out).not.toContain("NAQ_NKEY");
  });

  it("config show redacts the seed", async () => {
    const r = await naq(["--nkey", user.seed, "--creds", "user.creds", "config", "show", "--json"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("***");
  });

  it("no output of any command above contains a seed, a JWT or a signing key", () => {
    expect(outputs.length).toBeGreaterThan(20);
    const secrets = [user.seed, stranger.seed, op.userSeed, op.userJwt, ...op.signingSeeds];
    // A JWT is long: a leak of a part of it is a leak too.
    const jwtParts = op.userJwt.split(".").filter((p) => p.length > 40);
    for (const r of outputs) {
      for (const secret of [...secrets, ...jwtParts]) {
        expect(r.stdout).not.toContain(secret);
        expect(r.stderr).not.toContain(secret);
      }
    }
  });
});
