/**
 * Service scopes against a real nats-server: dependencies are created first, every
 * service of a scope shares one connection, and closing the scope drains it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultConfig, type NaqConfig } from "../../src/config/schema.js";
import { ServiceManager } from "../../src/services/base.js";
import { ConnectionService } from "../../src/services/connection.js";
import { DiagnosticsService } from "../../src/services/diagnostics.js";
import { StreamService } from "../../src/services/streams.js";
import { TopologyService } from "../../src/services/topology.js";
import { eventually, startServer, type NatsServer } from "../support/index.js";

let server: NatsServer;

beforeAll(async () => {
  server = await startServer();
  // The harness's readiness check may still be closing its connection: counts below are relative to a quiet server.
  await eventually(async () => expect((await server.connz()).num_connections).toBe(0), { timeoutMs: 5_000 });
});

afterAll(async () => {
  await server?.[Symbol.asyncDispose]();
});

function configFor(namespace: string): NaqConfig {
  const d = defaultConfig();
  return { ...d, namespace, connection: { ...d.connection, servers: [server.url] } };
}

const totalConnections = async (): Promise<number> => Number((await server.varz()).total_connections);

describe("a service scope on a real server", () => {
  it("get(StreamService) creates ConnectionService first; close drains the connection", async () => {
    // Relative counts: a connection of an earlier test may still be closing on the server.
    const before = (await server.connz()).num_connections;

    const services = await ServiceManager.open(configFor("svc1"));
    expect(services.services).toEqual([]);
    // Lazy: opening a scope does not connect.
    expect((await server.connz()).num_connections).toBe(before);

    const streams = await services.get(StreamService);
    expect(services.services.map((s) => s.constructor.name)).toEqual(["ConnectionService", "StreamService"]);
    const connection = await services.get(ConnectionService);
    expect(services.services[0]).toBe(connection);
    expect((await connection.server()).version).toMatch(/^2\.\d+\.\d+/);

    // It works, over one connection named "naq".
    expect(await streams.find("svc1_nothing")).toBeUndefined();
    const connz = await server.connz();
    expect(connz.num_connections).toBe(before + 1);
    expect(connz.connections.some((c) => c.name === "naq")).toBe(true);
    const nc = await connection.connection();
    expect(nc.isClosed()).toBe(false);

    await services.close();
    expect(nc.isClosed()).toBe(true);
    await eventually(async () => expect((await server.connz()).num_connections).toBe(before), { timeoutMs: 5_000 });
    await expect(services.get(StreamService)).rejects.toThrow(/closed/);
  });

  it("opens exactly one connection however many services the scope uses", async () => {
    const before = await totalConnections();
    {
      await using services = await ServiceManager.open(configFor("svc2"));
      const [diag, topology, streams, connection] = await Promise.all([
        services.get(DiagnosticsService),
        services.get(TopologyService),
        services.get(StreamService),
        services.get(ConnectionService),
      ]);
      await topology.init();
      const report = await diag.report();
      expect(report.resources.every((r) => r.exists)).toBe(true);
      expect((await streams.list("svc2_")).map((s) => s.name)).toEqual(["svc2_dlq", "svc2_events", "svc2_jobs"]);
      await connection.manager();
      await connection.jetstream();
      expect(services.services.map((s) => s.constructor.name)).toEqual([
        "ConnectionService",
        "StreamService",
        "TopologyService",
        "DiagnosticsService",
      ]);
      expect((await server.connz()).num_connections).toBe(1);
    }
    expect((await totalConnections()) - before).toBe(1);
    await eventually(async () => expect((await server.connz()).num_connections).toBe(0), { timeoutMs: 5_000 });
  });

  it("two scopes hold two connections, closed independently", async () => {
    const a = await ServiceManager.open(configFor("svc3"));
    const b = await ServiceManager.open(configFor("svc3"));
    try {
      await Promise.all([a.get(StreamService), b.get(StreamService)]);
      expect((await server.connz()).num_connections).toBe(2);
      await a.close();
      await eventually(async () => expect((await server.connz()).num_connections).toBe(1), { timeoutMs: 5_000 });
      const streams = await b.get(StreamService);
      expect(await streams.list("svc3_")).toEqual([]);
    } finally {
      await a.close();
      await b.close();
    }
    await eventually(async () => expect((await server.connz()).num_connections).toBe(0), { timeoutMs: 5_000 });
  });
});
