/**
 * Authentication against real servers that require it (user/password, token), and the
 * rule that naq never prints a secret: not in output, errors, `config show`, events or
 * job records.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordingCli, startServer, type NatsServer } from "../support/index.js";

const PASSWORD = "pw-Zq8s3cr3t-9001";
const TOKEN = "tok-Xv7s3cr3t-4242";

let userServer: NatsServer;
let tokenServer: NatsServer;

beforeAll(async () => {
  [userServer, tokenServer] = await Promise.all([
    startServer({ config: `authorization { user: "naq", password: "${PASSWORD}" }` }),
    startServer({ config: `authorization { token: "${TOKEN}" }` }),
  ]);
});

afterAll(async () => {
  await Promise.all([userServer?.[Symbol.asyncDispose](), tokenServer?.[Symbol.asyncDispose]()]);
});

const { outputs, naq } = recordingCli();

describe("user and password", () => {
  it("connects with --user/--password and with NAQ_USER/NAQ_PASSWORD", async () => {
    const flags = await naq(["-s", userServer.url, "--user", "naq", "--password", PASSWORD, "--namespace", "auth1", "stream", "init", "--json"]);
    expect(flags.code, flags.stderr).toBe(0);
    const env = await naq(["-s", userServer.url, "--namespace", "auth1", "doctor", "--json"], { NAQ_USER: "naq", NAQ_PASSWORD: PASSWORD });
    expect(env.code, env.stderr).toBe(0);
  });

  it("fails with exit 5 and one clear line without credentials or with a wrong password", async () => {
    for (const args of [[], ["--user", "naq", "--password", "wrong-password"]]) {
      const r = await naq(["-s", userServer.url, ...args, "stream", "list"]);
      expect(r.code).toBe(5);
      const lines = r.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/authoriz/i);
      expect(lines[0]).toContain(`127.0.0.1:${userServer.port}`);
    }
  });

  it("a password in the server URL is redacted in errors", async () => {
    const r = await naq(["-s", `nats://naq:${PASSWORD}@127.0.0.1:1`, "stream", "list"]);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain("nats://naq:***@127.0.0.1:1");
  });

  it("runs a job end to end with credentials from the environment", async () => {
    const env = { NAQ_URL: userServer.url, NAQ_USER: "naq", NAQ_PASSWORD: PASSWORD, NAQ_NAMESPACE: "auth2" };
    const enq = await naq(["job", "enqueue", "secret-task", JSON.stringify({ note: "hello" }), "--json"], env);
    expect(enq.code, enq.stderr).toBe(0);
    const { id } = JSON.parse(enq.stdout) as { id: string };
    const status = await naq(["job", "status", id, "--json"], env);
    expect(status.code, status.stderr).toBe(0);
    const history = await naq(["events", "history", id, "--json"], env);
    expect(history.code, history.stderr).toBe(0);
  });
});

describe("token", () => {
  it("connects with --token and NAQ_TOKEN; without it exits 5", async () => {
    expect((await naq(["-s", tokenServer.url, "--token", TOKEN, "stream", "list", "--json"])).code).toBe(0);
    expect((await naq(["-s", tokenServer.url, "stream", "list", "--json"], { NAQ_TOKEN: TOKEN })).code).toBe(0);
    const r = await naq(["-s", tokenServer.url, "stream", "list"]);
    expect(r.code).toBe(5);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });
});

describe("secrets are never printed", () => {
  it("config show redacts passwords and tokens, from flags and from env", async () => {
    const r = await naq(["--password", PASSWORD, "--user", "naq", "config", "show", "--json"], { NAQ_TOKEN: TOKEN });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("***");
  });

  it("no output of any command above contains a secret", () => {
    expect(outputs.length).toBeGreaterThan(8);
    for (const r of outputs) {
      for (const secret of [PASSWORD, TOKEN]) {
        expect(r.stdout).not.toContain(secret);
        expect(r.stderr).not.toContain(secret);
      }
    }
  });
});
