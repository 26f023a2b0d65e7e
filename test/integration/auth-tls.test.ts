/**
 * TLS against a real server that requires client certificates (`tls { verify: true }`),
 * with a test CA made by openssl in the setup. The CLI and a worker connect with
 * --tls-ca/--tls-cert/--tls-key (and NAQ_TLS_*); an untrusted server certificate, a
 * missing client certificate, a client certificate from another CA, and a tls:// URL to a
 * server without TLS each exit 5 with one line saying what was wrong; no private key's
 * contents ever appear in any output.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobRecord } from "../../src/model/job.js";
import { recordingCli, startServer, type CliResult, type NatsServer } from "../support/index.js";
import { makeTestPki, pemBodyLines, type TestPki } from "../support/security.js";

let dir: string;
let pki: TestPki;
let server: NatsServer;
let plain: NatsServer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "naq-auth-tls-"));
  await writeFile(path.join(dir, "tasks.mjs"), "export function add(p) { return p.a + p.b; }\n");
  pki = await makeTestPki(dir);
  [server, plain] = await Promise.all([startServer({ config: pki.serverConfig }), startServer({ jetstream: false })]);
});

afterAll(async () => {
  await Promise.all([server?.[Symbol.asyncDispose](), plain?.[Symbol.asyncDispose]()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const { outputs, naq } = recordingCli(() => dir);

const tlsFlags = () => ["--tls-ca", pki.ca, "--tls-cert", pki.clientCert, "--tls-key", pki.clientKey];
const tlsEnv = () => ({ NAQ_TLS_CA: pki.ca, NAQ_TLS_CERT: pki.clientCert, NAQ_TLS_KEY: pki.clientKey });

function expectRefused(r: CliResult, where: string, pattern: RegExp): void {
  expect(r.code, r.stderr).toBe(5);
  const lines = r.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: cannot connect to NATS at /);
  expect(lines[0]).toContain(where);
  expect(lines[0]).toMatch(pattern);
}

describe("TLS with client certificates", () => {
  it("the CLI and a worker connect with --tls-ca/--tls-cert/--tls-key and NAQ_TLS_*", { timeout: 60_000 }, async () => {
    const init = await naq(["-s", server.url, ...tlsFlags(), "--namespace", "tls1", "stream", "init", "--json"]);
    expect(init.code, init.stderr).toBe(0);
    // tls:// with the host name the certificate names.
    const byName = await naq(["-s", `tls://localhost:${server.port}`, ...tlsFlags(), "--namespace", "tls1", "stream", "list", "--json"]);
    expect(byName.code, byName.stderr).toBe(0);

    const env = { NAQ_URL: server.url, NAQ_NAMESPACE: "tls1", ...tlsEnv() };
    const enq = await naq(["job", "enqueue", "add", '{"a":1,"b":2}', "--queue", "tls", "--json"], env);
    expect(enq.code, enq.stderr).toBe(0);
    const { id } = JSON.parse(enq.stdout) as { id: string };
    const worker = await naq(["worker", "start", "tls", "--handlers", "tasks.mjs", "--burst"], env, 40_000);
    expect(worker.code, worker.stderr).toBe(0);
    const result = await naq(["job", "result", id, "--json"], env);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout) as JobRecord).toMatchObject({ status: "completed", result: 3 });
  });

  it("an untrusted server certificate: exit 5, one line naming --tls-ca", async () => {
    const none = await naq(["-s", server.url, "stream", "list"]);
    expectRefused(none, `127.0.0.1:${server.port}`, /TLS: the server's certificate is not trusted \(.+\); give the CA that signed it with --tls-ca$/);
    const certOnly = await naq(["-s", server.url, "--tls-cert", pki.clientCert, "--tls-key", pki.clientKey, "stream", "list"]);
    expectRefused(certOnly, `127.0.0.1:${server.port}`, /certificate is not trusted/);
    // A worker fails the same way at start.
    const worker = await naq(["worker", "start", "tls", "--handlers", "tasks.mjs"], { NAQ_URL: server.url });
    expectRefused(worker, `127.0.0.1:${server.port}`, /certificate is not trusted/);
  });

  it("no client certificate, or one from another CA: exit 5, one line saying so", { timeout: 40_000 }, async () => {
    // The server refuses the client after the TLS 1.3 handshake: naq finds out why.
    const noCert = await naq(["-s", server.url, "--tls-ca", pki.ca, "--timeout", "2s", "stream", "list"]);
    expectRefused(noCert, `127.0.0.1:${server.port}`, /TLS: the server requires a client certificate \(.+\): give --tls-cert and --tls-key$/);
    const rogue = await naq(["-s", server.url, "--tls-ca", pki.ca, "--tls-cert", pki.rogueCert, "--tls-key", pki.rogueKey, "--timeout", "2s", "stream", "list"]);
    expectRefused(rogue, `127.0.0.1:${server.port}`, new RegExp(`TLS: the server refused the client certificate ${pki.rogueCert.replace(/[.]/g, "\\.")} \\(.+\\)$`));
    const worker = await naq(["worker", "start", "tls", "--handlers", "tasks.mjs"], { NAQ_URL: server.url, NAQ_TLS_CA: pki.ca, NAQ_TIMEOUT: "2s" });
    expectRefused(worker, `127.0.0.1:${server.port}`, /requires a client certificate/);
  });

  it("a tls:// URL refuses a server without TLS instead of connecting in the clear", async () => {
    const r = await naq(["-s", `tls://127.0.0.1:${plain.port}`, "stream", "list"]);
    expectRefused(r, `tls://127.0.0.1:${plain.port}`, /TLS: the server does not offer TLS/);
  });

  it("a client certificate without its key is a usage error", async () => {
    const r = await naq(["-s", server.url, "--tls-ca", pki.ca, "--tls-cert", pki.clientCert, "stream", "list"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("error: TLS client certificate needs both --tls-cert and --tls-key");
  });

  it("no output of any command above contains a private key", async () => {
    expect(outputs.length).toBeGreaterThan(10);
    const keyLines = (await pki.keyContents()).flatMap(pemBodyLines);
    expect(keyLines.length).toBeGreaterThan(4);
    for (const r of outputs) {
      for (const line of keyLines) {
        expect(r.stdout).not.toContain(line);
        expect(r.stderr).not.toContain(line);
      }
    }
  });
});
