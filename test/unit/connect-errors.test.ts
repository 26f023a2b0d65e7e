/**
 * How connection and permission failures become naq errors (exit 5, one line), and what
 * naq's connection options ask nats.js for. No server: the integration tests
 * (auth-cli, auth-keys, auth-tls, permissions) check the same against real ones.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { errors as natsErrors } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import type { ConnectionConfig } from "../../src/config/schema.js";
import { AuthError, ConfigError, ConnectionError, ExitCode } from "../../src/model/errors.js";
import { describeAuth, natsOptions } from "../../src/services/connect-options.js";
import { connectError, describeDenial, permissionDenial, toNaqError } from "../../src/services/nats-errors.js";

const cfg = (over: Partial<ConnectionConfig> = {}): ConnectionConfig => ({ servers: ["nats://127.0.0.1:4222"], tls: {}, connectTimeout: 5_000, ...over });

describe("permission denials", () => {
  const pv = natsErrors.PermissionViolationError.parse('Permissions Violation for Publish to "$JS.API.STREAM.PURGE.naq_jobs"');

  it("are found through nats.js's RequestError and become AuthError (exit 5) naming the subject", () => {
    expect(pv).not.toBeNull();
    const wrapped = new natsErrors.RequestError(String(pv?.message), { cause: pv });
    expect(permissionDenial(wrapped)).toEqual({ operation: "publish", subject: "$JS.API.STREAM.PURGE.naq_jobs" });
    const e = toNaqError(wrapped, "stream naq_jobs");
    expect(e).toBeInstanceOf(AuthError);
    expect((e as AuthError).exitCode).toBe(ExitCode.connection);
    expect(e.message).toBe('stream naq_jobs: permission denied: NATS does not allow this user to publish to "$JS.API.STREAM.PURGE.naq_jobs"');
  });

  it("name subscriptions as such", () => {
    const sub = natsErrors.PermissionViolationError.parse('Permissions Violation for Subscription to "_INBOX.abc.*"');
    const d = permissionDenial(sub);
    expect(d).toEqual({ operation: "subscription", subject: "_INBOX.abc.*" });
    expect(describeDenial(d as NonNullable<typeof d>)).toBe('permission denied: NATS does not allow this user to subscribe to "_INBOX.abc.*"');
    expect(permissionDenial(new Error("other"))).toBeUndefined();
  });
});

describe("connectError", () => {
  const servers = ["nats://app:hunter2@127.0.0.1:4222"];

  it("says whether credentials were missing or refused, and never prints the URL's password", () => {
    const auth = new natsErrors.AuthorizationError("Authorization Violation");
    const none = connectError(auth, servers);
    expect(none).toBeInstanceOf(AuthError);
    expect(none.message).toBe(
      "cannot connect to NATS at nats://app:***@127.0.0.1:4222: authorization failed (Authorization Violation): the server requires credentials: give --user/--password, --token, --nkey or --creds",
    );
    expect(connectError(auth, servers, { auth: "--creds" }).message).toMatch(/: the server refused the credentials given \(--creds\)$/);
  });

  it("explains TLS failures in one line", () => {
    const untrusted = Object.assign(new Error("unable to verify the first certificate"), { code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" });
    expect(connectError(untrusted, servers).message).toMatch(/TLS: the server's certificate is not trusted \(unable to verify the first certificate\); give the CA that signed it with --tls-ca$/);
    const hostname = Object.assign(new Error("Hostname/IP does not match certificate's altnames"), { code: "ERR_TLS_CERT_ALTNAME_INVALID" });
    expect(connectError(hostname, servers).message).toMatch(/TLS: the server's certificate does not match the host name/);
    const noTls = new natsErrors.ConnectionError("server does not support 'tls'");
    expect(connectError(noTls, servers).message).toMatch(/TLS: the server does not offer TLS/);
  });

  it("a timeout is a timeout, unless a TLS probe found why", () => {
    const timeout = new natsErrors.TimeoutError();
    const plain = connectError(timeout, servers);
    expect(plain).toBeInstanceOf(ConnectionError);
    expect(plain.message).toMatch(/: timed out$/);
    const probed = connectError(timeout, servers, { tlsRefusal: "TLS: the server requires a client certificate" });
    expect(probed).toBeInstanceOf(AuthError);
    expect(probed.message).toMatch(/: TLS: the server requires a client certificate$/);
  });
});

describe("connection options", () => {
  it("describeAuth names the kinds of credentials given, never their values", () => {
    expect(describeAuth(cfg())).toBeUndefined();
    expect(describeAuth(cfg({ nkey: "SUSECRET", token: "tok" }))).toBe("--nkey, --token");
    expect(describeAuth(cfg({ servers: ["nats://a:b@h:1"] }))).toBe("credentials in the server URL");
  });

  it("a tls:// URL makes nats.js require TLS", async () => {
    expect((await natsOptions(cfg({ servers: ["tls://h:4222"] }), false)).tls).toEqual({});
    expect((await natsOptions(cfg(), false)).tls).toBeUndefined();
  });

  it("a bad --nkey value is refused without printing it", async () => {
    const secretish = "XUAMISTYPEDSEEDVALUE";
    const err = await natsOptions(cfg({ nkey: secretish }), false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain(secretish);
  });

  it("a creds file without the JWT and seed blocks is refused (exit 2)", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "naq-creds-"));
    try {
      const file = path.join(dir, "x.creds");
      await writeFile(file, "nope\n");
      const err = await natsOptions(cfg({ creds: file }), false).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/is not a NATS credentials file/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
