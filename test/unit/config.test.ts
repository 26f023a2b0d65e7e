import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { cosmiconfig } from "cosmiconfig";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  configSchema,
  defaultConfig,
  describeConfig,
  ENV_VARS,
  InvalidConfigError,
  loadConfig,
  queueSettings,
  redactedConfig,
  redactUrl,
  starterConfig,
  type LoadConfigOptions,
} from "../../src/config/index.js";
import { ConfigError } from "../../src/model/errors.js";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "naq-config-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Loads with no ambient env and the search confined to the temp dir. */
const load = (opts: LoadConfigOptions = {}) => loadConfig({ cwd: dir, env: {}, stopDir: dir, ...opts });

async function write(name: string, text: string | object): Promise<string> {
  const file = path.join(dir, name);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, typeof text === "string" ? text : JSON.stringify(text, null, 2));
  return file;
}

async function loadError(opts: LoadConfigOptions = {}): Promise<InvalidConfigError> {
  const err: unknown = await load(opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  expect(err).toBeInstanceOf(InvalidConfigError);
  return err as InvalidConfigError;
}

describe("loadConfig precedence", () => {
  it("uses defaults when nothing is set, with every leaf sourced as default", async () => {
    const loaded = await load();
    expect(loaded.config).toEqual(defaultConfig());
    expect(loaded.file).toBeUndefined();
    const keys = describeConfig(loaded).map((e) => e.key);
    expect(keys).toContain("connection.servers");
    expect(keys).toContain("streams.events.maxAge");
    for (const key of keys) expect(loaded.sources.get(key)).toEqual({ kind: "default" });
  });

  it("applies flag > env > file > default and records where each value came from", async () => {
    const file = await write(".naqrc.json", { namespace: "fromfile", timeout: "20s", worker: { concurrency: 5 }, streams: { events: { maxAge: "1d" } } });
    const loaded = await load({
      env: { NAQ_NAMESPACE: "fromenv", NAQ_TIMEOUT: "30s" },
      flags: { timeout: "40s", worker: { grace: undefined } },
    });
    expect(loaded.file).toBe(file);
    expect(loaded.config.timeout).toBe(40_000);
    expect(loaded.config.namespace).toBe("fromenv");
    expect(loaded.config.worker.concurrency).toBe(5);
    expect(loaded.config.worker.grace).toBe(30_000);
    expect(loaded.config.streams.events.maxAge).toBe(86_400_000);
    expect(loaded.config.streams.events.maxBytes).toBe(-1);
    expect(loaded.sources.get("timeout")).toEqual({ kind: "flag", name: "--timeout" });
    expect(loaded.sources.get("namespace")).toEqual({ kind: "env", name: "NAQ_NAMESPACE" });
    expect(loaded.sources.get("worker.concurrency")).toEqual({ kind: "file", path: file });
    expect(loaded.sources.get("streams.events.maxAge")).toEqual({ kind: "file", path: file });
    expect(loaded.sources.get("streams.events.maxBytes")).toEqual({ kind: "default" });
    expect(loaded.sources.get("worker.grace")).toEqual({ kind: "default" });

    const rows = Object.fromEntries(describeConfig(loaded).map((e) => [e.key, e]));
    expect(rows["timeout"]).toEqual({ key: "timeout", value: 40_000, source: "flag --timeout" });
    expect(rows["namespace"]?.source).toBe("env NAQ_NAMESPACE");
    expect(rows["worker.concurrency"]?.source).toBe(file);
    expect(rows["worker.grace"]?.source).toBe("default");
  });

  it("merges objects deeply and replaces arrays", async () => {
    await write(".naqrc.json", { connection: { servers: ["nats://a:4222", "nats://b:4222"], user: "me" } });
    const loaded = await load({ flags: { connection: { servers: ["nats://c:4222"] } }, flagNames: { "connection.servers": "--server" } });
    expect(loaded.config.connection.servers).toEqual(["nats://c:4222"]);
    expect(loaded.config.connection.user).toBe("me");
    expect(loaded.config.connection.connectTimeout).toBe(5_000);
    expect(loaded.sources.get("connection.servers")).toEqual({ kind: "flag", name: "--server" });
  });

  it("NAQ_URL wins over NATS_URL; both take comma-separated servers", async () => {
    const both = await load({ env: { NAQ_URL: "nats://a:1, nats://b:2", NATS_URL: "nats://c:3" } });
    expect(both.config.connection.servers).toEqual(["nats://a:1", "nats://b:2"]);
    expect(both.sources.get("connection.servers")).toEqual({ kind: "env", name: "NAQ_URL" });
    const nats = await load({ env: { NATS_URL: "nats://c:3", NATS_USER: "u", NAQ_USER: "" } });
    expect(nats.config.connection.servers).toEqual(["nats://c:3"]);
    expect(nats.sources.get("connection.servers")).toEqual({ kind: "env", name: "NATS_URL" });
    expect(nats.sources.get("connection.user")).toEqual({ kind: "env", name: "NATS_USER" });
  });

  it("maps every documented env var onto a config key", async () => {
    const loaded = await load({
      env: {
        NAQ_CREDS: "/c.creds",
        NAQ_TLS_CA: "/ca.pem",
        NATS_CERT: "/cert.pem",
        NAQ_TLS_KEY: "/key.pem",
        NAQ_CONNECT_TIMEOUT: "2s",
        NAQ_STREAM_REPLICAS: "3",
        NAQ_STREAM_STORAGE: "memory",
        NAQ_EVENTS_MAX_AGE: "1h",
        NAQ_EVENTS_FOLD_STARTED: "0",
        NAQ_RESULT_TTL: "2d",
        NAQ_MAX_ACK_PENDING: "50",
        NAQ_ACK_WAIT: "1m",
        NAQ_WORKER_CONCURRENCY: "4",
        NAQ_WORKER_GRACE: "5s",
      },
    });
    const c = loaded.config;
    expect(c.connection).toMatchObject({ creds: "/c.creds", tls: { ca: "/ca.pem", cert: "/cert.pem", key: "/key.pem" }, connectTimeout: 2_000 });
    expect(c.streams).toMatchObject({ replicas: 3, storage: "memory", events: { maxAge: 3_600_000, foldStarted: 0 } });
    expect(c.kv.resultTtl).toBe(2 * 86_400_000);
    expect(c.queues.defaults).toEqual({ maxAckPending: 50, ackWait: 60_000 });
    expect(c.worker).toMatchObject({ concurrency: 4, grace: 5_000 });
    expect(loaded.sources.get("connection.tls.cert")).toEqual({ kind: "env", name: "NATS_CERT" });
    for (const v of ENV_VARS) if (v.key) expect(loaded.sources.has(v.key) || v.key.startsWith("connection.")).toBe(true);
  });

  it("strips undefined flags before merging", async () => {
    const loaded = await load({ flags: { namespace: undefined, connection: { servers: undefined, tls: { ca: undefined } } } });
    expect(loaded.config).toEqual(defaultConfig());
    expect(loaded.sources.get("namespace")).toEqual({ kind: "default" });
  });
});

describe("loadConfig files", () => {
  it("finds package.json#naq searching upward from cwd", async () => {
    const pkg = await write("package.json", { name: "app", naq: { namespace: "pkg" } });
    const cwd = path.join(dir, "src", "deep");
    await mkdir(cwd, { recursive: true });
    const loaded = await load({ cwd });
    expect(loaded.file).toBe(pkg);
    expect(loaded.config.namespace).toBe("pkg");
    expect(loaded.sources.get("namespace")).toEqual({ kind: "file", path: pkg });
  });

  it("passes a package.json without naq on the way up, and reads the user config dir last", async () => {
    await write("app/package.json", { name: "app" });
    const rc = await write(".naqrc.yaml", "namespace: above\n");
    const cwd = path.join(dir, "app");
    const before = process.env.XDG_CONFIG_HOME;
    process.env.XDG_CONFIG_HOME = path.join(dir, "xdg");
    try {
      expect((await load({ cwd })).file).toBe(rc);
      await rm(rc);
      expect((await load({ cwd })).file).toBeUndefined();
      const global = await write("xdg/naq/config.yaml", "namespace: global\n");
      const loaded = await load({ cwd });
      expect(loaded.file).toBe(global);
      expect(loaded.config.namespace).toBe("global");
    } finally {
      if (before === undefined) delete process.env.XDG_CONFIG_HOME;
      else process.env.XDG_CONFIG_HOME = before;
    }
  });

  it("reads YAML files", async () => {
    const file = await write(".naqrc.yaml", "namespace: yml\nconnection:\n  servers:\n    - nats://y:4222\nqueues:\n  overrides:\n    emails:\n      ackWait: 2m\n");
    const loaded = await load();
    expect(loaded.file).toBe(file);
    expect(loaded.config.connection.servers).toEqual(["nats://y:4222"]);
    expect(queueSettings(loaded.config, "emails")).toEqual({ maxAckPending: 1_000, ackWait: 120_000 });
    expect(queueSettings(loaded.config, "other")).toEqual({ maxAckPending: 1_000, ackWait: 30_000 });
    expect(loaded.sources.get("queues.overrides.emails.ackWait")).toEqual({ kind: "file", path: file });
  });

  it("loads an explicit file relative to cwd, and NAQ_CONFIG", async () => {
    const file = await write("conf/naq.yml", "namespace: explicit\n");
    expect((await load({ configFile: "conf/naq.yml" })).config.namespace).toBe("explicit");
    expect((await load({ env: { NAQ_CONFIG: file } })).file).toBe(file);
  });

  it("fails on an explicit file that does not exist, naming the path", async () => {
    const missing = path.join(dir, "nope.json");
    const err = await loadError({ configFile: missing });
    expect(err.message).toBe(`config error in ${missing}: config file not found`);
  });

  it("reports JSON and YAML syntax errors naming the file", async () => {
    const json = await write(".naqrc.json", '{ "namespace": "x", }');
    const err = await loadError();
    expect(err.message).toMatch(new RegExp(`^config error in ${json.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: invalid JSON: `));
    expect(err.message).not.toContain("\n");
    await rm(json);
    const yml = await write(".naqrc.yaml", "connection:\n  servers: [a\n namespace: : x\n");
    const err2 = await loadError();
    expect(err2.message.startsWith(`config error in ${yml}: invalid YAML: `)).toBe(true);
    expect(err2.message).not.toContain("\n");
  });
});

describe("loadConfig validation errors", () => {
  it("names file, key, value and what is accepted", async () => {
    const file = await write(".naqrc.json", { streams: { replicas: 2 } });
    const err = await loadError();
    expect(err.message).toBe(`config error in ${file}: streams.replicas = 2 is not accepted (expected 1, 3 or 5)`);
    expect(err.issues).toHaveLength(1);
    expect(err.issues[0]).toMatchObject({ key: "streams.replicas", source: { kind: "file", path: file } });
  });

  it("names unknown keys with the keys known at that level", async () => {
    const file = await write(".naqrc.json", { streems: { replicas: 3 } });
    const err = await loadError();
    expect(err.message).toBe(
      `config error in ${file}: unknown key "streems" (known keys at this level: connection, namespace, timeout, streams, kv, queues, worker)`,
    );
    await write(".naqrc.json", { connection: { server: "nats://x" } });
    const nested = await loadError();
    expect(nested.message).toContain('unknown key "connection.server" (known keys at this level: servers, name, user');
  });

  it("names a bad env number and a bad env duration", async () => {
    const err = await loadError({ env: { NAQ_WORKER_CONCURRENCY: "lots" } });
    expect(err.message).toBe('config error in env NAQ_WORKER_CONCURRENCY: worker.concurrency = "lots" is not accepted (expected a number)');
    const dur = await loadError({ env: { NAQ_TIMEOUT: "soon" } });
    expect(dur.message).toMatch(/^config error in env NAQ_TIMEOUT: timeout = "soon" is not accepted \(expected a duration/);
    const fold = await loadError({ env: { NAQ_EVENTS_FOLD_STARTED: "1m" } });
    expect(fold.message).toBe(
      "config error in env NAQ_EVENTS_FOLD_STARTED: streams.events.foldStarted = \"1m\" is not accepted (expected a duration up to 10s (0 = store every started event on its own))",
    );
    const replicas = await loadError({ env: { NAQ_STREAM_REPLICAS: "2" } });
    expect(replicas.message).toBe("config error in env NAQ_STREAM_REPLICAS: streams.replicas = 2 is not accepted (expected 1, 3 or 5)");
  });

  it("names a bad flag", async () => {
    const err = await loadError({ flags: { timeout: "soon" } });
    expect(err.message).toMatch(/^config error in flag --timeout: timeout = "soon" is not accepted \(expected a duration/);
    const servers = await loadError({ flags: { connection: { servers: [] } } });
    expect(servers.message).toBe("config error in flag --server: connection.servers = [] is not accepted (expected at least one server URL)");
  });

  it("reports the first issue and attaches all of them", async () => {
    const file = await write(".naqrc.json", { namespace: "has.dot", worker: { concurrency: 0 }, bogus: true });
    const err = await loadError({ env: { NAQ_MAX_ACK_PENDING: "x" } });
    expect(err.issues.map((i) => i.key)).toEqual(["queues.defaults.maxAckPending", "namespace", "worker.concurrency", "bogus"]);
    expect(err.message).toContain("env NAQ_MAX_ACK_PENDING");
    expect(err.issues[2]?.message).toBe("worker.concurrency = 0 is not accepted (expected a number >= 1)");
    expect(err.issues[2]?.source).toEqual({ kind: "file", path: file });
  });

  it("never echoes a secret value", async () => {
    await write(".naqrc.json", { connection: { password: 123456789, servers: ["nats://u:hunter2@h:4222", 7] } });
    const err = await loadError();
    const all = err.issues.map((i) => i.message).join("\n");
    expect(all).toContain("connection.password = *** is not accepted (expected a string)");
    expect(all).not.toContain("123456789");
    expect(all).not.toContain("hunter2");
  });
});

describe("describeConfig and redactedConfig", () => {
  it("redacts secret keys and URL passwords", async () => {
    await write(".naqrc.yaml", "connection:\n  servers: [nats://alice:pw1@a:4222, nats://tok@b:4222, nats://c:4222]\n  token: t0k\n  nkey: SUABC\n");
    const loaded = await load({ env: { NAQ_PASSWORD: "pw2", NAQ_USER: "alice" } });
    const rows = Object.fromEntries(describeConfig(loaded).map((e) => [e.key, e]));
    expect(rows["connection.servers"]?.value).toEqual(["nats://alice:***@a:4222", "nats://***@b:4222", "nats://c:4222"]);
    expect(rows["connection.token"]?.value).toBe("***");
    expect(rows["connection.nkey"]?.value).toBe("***");
    expect(rows["connection.password"]).toEqual({ key: "connection.password", value: "***", source: "env NAQ_PASSWORD" });
    expect(rows["connection.user"]?.value).toBe("alice");

    const red = redactedConfig(loaded.config);
    expect(red.connection.password).toBe("***");
    expect(red.connection.token).toBe("***");
    expect(red.connection.servers[0]).toBe("nats://alice:***@a:4222");
    expect(JSON.stringify(red)).not.toMatch(/pw1|pw2|t0k|SUABC/);
    // the original is untouched
    expect(loaded.config.connection.password).toBe("pw2");
    expect(loaded.config.connection.servers[0]).toBe("nats://alice:pw1@a:4222");
  });

  it("redactUrl handles URLs without credentials or scheme", () => {
    expect(redactUrl("nats://h:4222")).toBe("nats://h:4222");
    expect(redactUrl("h:4222")).toBe("h:4222");
    expect(redactUrl("u:p@h:4222")).toBe("u:***@h:4222");
    expect(redactUrl("tls://u:p@ss@h:4222/x@y")).toBe("tls://u:***@h:4222/x@y");
  });
});

describe("starterConfig", () => {
  it("YAML parses back through cosmiconfig and validates to the defaults", async () => {
    const text = starterConfig("yaml");
    expect(text).toContain("# ");
    const file = await write(".naqrc.yaml", text);
    const raw = await cosmiconfig("naq").load(file);
    expect(configSchema.parse(raw?.config)).toEqual(defaultConfig());
    const loaded = await load();
    expect(loaded.file).toBe(file);
    expect(loaded.config).toEqual(defaultConfig());
  });

  it("JSON parses with JSON.parse and validates to the defaults", () => {
    expect(configSchema.parse(JSON.parse(starterConfig("json")))).toEqual(defaultConfig());
  });

  it("JS loads as naq.config.mjs and validates to the defaults", async () => {
    const text = starterConfig("js");
    expect(text).toContain("// ");
    const file = await write("naq.config.mjs", text);
    const loaded = await load();
    expect(loaded.file).toBe(file);
    expect(loaded.config).toEqual(defaultConfig());
  });
});
