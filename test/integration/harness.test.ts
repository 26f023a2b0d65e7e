/**
 * Proves the real-NATS test harness (test/support): servers start, report through the
 * monitoring endpoints, restart on the same port with their JetStream data, run side by
 * side, form a JetStream cluster, and leave nothing behind.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { cliEnv, eventually, NAQ_BIN, REPO_ROOT, runCli, startCluster, startServer } from "../support/index.js";

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("startServer", () => {
  it("starts one JetStream server that reports through /varz, /connz and /jsz", async () => {
    await using server = await startServer();
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    expect(server.monitorUrl).toBe(`http://127.0.0.1:${server.monitorPort}`);
    expect(server.pid).toBeGreaterThan(0);

    const varz = await server.varz();
    expect(varz.port).toBe(server.port);
    expect(varz.version).toMatch(/^2\.\d+\.\d+/);
    expect(varz.jetstream?.config?.store_dir).toContain(server.storeDir);

    const nc = await connect({ servers: server.url, name: "harness-test" });
    try {
      const connz = await server.connz();
      expect(connz.num_connections).toBe(1);
      expect(connz.connections[0]?.name).toBe("harness-test");
    } finally {
      await nc.close();
    }
    const jsz = await server.jsz();
    expect(jsz.disabled ?? false).toBe(false);
  });

  it("runs two servers at once on different ports", async () => {
    await using a = await startServer();
    await using b = await startServer();
    expect(a.port).not.toBe(b.port);
    expect(a.monitorPort).not.toBe(b.monitorPort);
    expect(a.storeDir).not.toBe(b.storeDir);
    const [va, vb] = await Promise.all([a.varz(), b.varz()]);
    expect(va.server_id).not.toBe(vb.server_id);
  });

  it("restart() keeps the port and the JetStream store; kill() + start() too", async () => {
    await using server = await startServer();
    const { port, storeDir } = server;
    const pid1 = server.pid;

    let nc = await connect({ servers: server.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "HARNESS", subjects: ["harness.>"] });
    await jetstream(nc).publish("harness.one", "kept across restarts");
    await nc.close();

    await server.restart();
    expect(server.port).toBe(port);
    expect(server.storeDir).toBe(storeDir);
    expect(server.pid).not.toBe(pid1);
    expect(pid1 !== undefined && isAlive(pid1)).toBe(false);

    nc = await connect({ servers: server.url });
    let msg = await (await jetstreamManager(nc)).streams.getMessage("HARNESS", { seq: 1 });
    expect(msg?.string()).toBe("kept across restarts");
    await nc.close();

    // A hard crash (SIGKILL) and a cold start: the stream survives as well.
    await server.kill();
    expect(server.running).toBe(false);
    await server.start();
    nc = await connect({ servers: server.url });
    msg = await (await jetstreamManager(nc)).streams.getMessage("HARNESS", { seq: 1 });
    expect(msg?.string()).toBe("kept across restarts");
    await nc.close();
  });

  it("suspend() freezes the server and resume() brings it back", async () => {
    await using server = await startServer();
    await server.suspend();
    await expect(
      fetch(`${server.monitorUrl}/varz`, { signal: AbortSignal.timeout(300) }),
    ).rejects.toThrow();
    await server.resume();
    expect((await server.varz()).port).toBe(server.port);
  });

  it("supports jetstream: false, monitor: false and extra config", async () => {
    await using plain = await startServer({ jetstream: false, config: "max_payload: 65536" });
    const varz = await plain.varz();
    expect(varz.jetstream?.config).toBeUndefined();
    expect(varz.max_payload).toBe(65536);

    await using quiet = await startServer({ monitor: false });
    expect(quiet.monitorPort).toBe(0);
    await expect(quiet.varz()).rejects.toThrow(/monitoring is off/);
    const nc = await connect({ servers: quiet.url });
    const info = await (await jetstreamManager(nc)).getAccountInfo();
    expect(info.streams).toBe(0);
    await nc.close();
  });

  it("disposal stops the process and removes the temp dir", async () => {
    let pid: number | undefined;
    let dir = "";
    {
      await using server = await startServer();
      pid = server.pid;
      dir = server.dir;
      expect(existsSync(server.storeDir)).toBe(true);
    }
    expect(pid !== undefined && isAlive(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });

  it("fails with the server's log when nats-server cannot start", async () => {
    await expect(startServer({ config: "this is not { valid" })).rejects.toThrow(/exited .* before it was ready/s);
  });
});

describe("startCluster", () => {
  it(
    "forms a 3-node JetStream cluster with a meta leader and takes an R3 stream",
    async () => {
      await using cluster = await startCluster(3);
      expect(cluster.servers).toHaveLength(3);
      expect(new Set(cluster.urls).size).toBe(3);

      const leader = await cluster.waitForMetaLeader();
      expect(["n1", "n2", "n3"]).toContain(leader);
      for (const s of cluster.servers) {
        const jsz = await s.jsz();
        expect(jsz.meta_cluster?.leader).toBe(leader);
        expect(jsz.meta_cluster?.cluster_size).toBe(3);
      }

      const nc = await connect({ servers: cluster.urls });
      try {
        const jsm = await jetstreamManager(nc);
        const si = await jsm.streams.add({ name: "R3", subjects: ["r3.>"], num_replicas: 3 });
        expect(si.config.num_replicas).toBe(3);
        expect(si.cluster?.replicas).toHaveLength(2);
        await jetstream(nc).publish("r3.a", "one");

        // Lose the stream's leader: R3 keeps working with 2 of 3 once a new leader is
        // elected (the client reconnects elsewhere if it was connected to the victim).
        const streamLeader = await cluster.waitForStreamLeader("R3");
        expect((await jsm.streams.info("R3")).cluster?.leader).toBe(streamLeader);
        const victim = cluster.server(streamLeader);
        await victim.kill();
        await cluster.waitForMetaLeader(30_000);
        // Publishes get "no responders" until a new stream leader is elected among the two left.
        const newLeader = await cluster.waitForStreamLeader("R3");
        expect(newLeader).not.toBe(streamLeader);
        await eventually(() => jetstream(nc).publish("r3.a", "two", { timeout: 2000 }), { timeoutMs: 30_000 });

        // It comes back on the same ports with its store and catches up.
        await victim.start();
        await cluster.waitForMetaLeader(30_000);
        const info = await jsm.streams.info("R3");
        expect(info.state.messages).toBe(2);
      } finally {
        await nc.close();
      }
    },
    90_000,
  );
});

describe("cli helpers", () => {
  it("cliEnv removes NATS_URL, NAQ_*, NO_COLOR and FORCE_COLOR unless given", () => {
    const saved = { ...process.env };
    try {
      process.env.NATS_URL = "nats://elsewhere:4222";
      process.env.NAQ_NAMESPACE = "leak";
      process.env.NO_COLOR = "1";
      process.env.FORCE_COLOR = "1";
      const env = cliEnv({ NAQ_URL: "nats://127.0.0.1:1", NO_COLOR: "1" });
      expect(env.NATS_URL).toBeUndefined();
      expect(env.NAQ_NAMESPACE).toBeUndefined();
      expect(env.FORCE_COLOR).toBeUndefined();
      expect(env.NAQ_URL).toBe("nats://127.0.0.1:1");
      expect(env.NO_COLOR).toBe("1");
      expect(env.PATH).toBe(process.env.PATH);
    } finally {
      for (const k of ["NATS_URL", "NAQ_NAMESPACE", "NO_COLOR", "FORCE_COLOR"]) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  });

  const built = existsSync(NAQ_BIN) && existsSync(path.join(REPO_ROOT, "dist", "cli", "main.js"));
  it.skipIf(!built)("runCli runs the built CLI without a TTY", async () => {
    const res = await runCli(["--help"]);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/naq/);
    expect(res.signal).toBeNull();
    expect(res.durationMs).toBeGreaterThan(0);
  });
});
