/**
 * The worker's hot-path plumbing against a real nats-server: the long-lived pull channel
 * (exact accounting of jobs asked for: deliveries, 408s with Nats-Pending-Messages, stop
 * with drain, a server restart) and the AckedPublisher behind KV puts (PubAck, errors,
 * Msg-Id de-duplication).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultConfig, type NaqConfig } from "../../src/config/schema.js";
import { ServiceManager } from "../../src/services/base.js";
import { ConnectionService } from "../../src/services/connection.js";
import { JobService } from "../../src/services/jobs.js";
import { KVStoreService } from "../../src/services/kv.js";
import { QueueService, type Delivery } from "../../src/services/queues.js";
import type { PullChannel, PullListener } from "../../src/services/pull-channel.js";
import { eventually, startServer, type NatsServer } from "../support/index.js";

let server: NatsServer;
let count = 0;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await server?.[Symbol.asyncDispose]();
});

function config(): NaqConfig {
  const d = defaultConfig();
  return { ...d, namespace: `pc${++count}`, connection: { ...d.connection, servers: [server.url] } };
}

/** A listener that records what the channel reports. */
function recorder(onDelivery: (d: Delivery) => void = (d) => d.ack()) {
  const r = { delivered: [] as Delivery[], unexpected: 0, returned: 0, empty: 0, errors: [] as Error[] };
  const listener: PullListener = {
    delivery(d, expected) {
      if (!expected) r.unexpected++;
      r.delivered.push(d);
      onDelivery(d);
    },
    returned(n, empty) {
      r.returned += n;
      if (empty) r.empty++;
    },
    error(err, n) {
      r.returned += n;
      r.errors.push(err);
    },
  };
  return { r, listener };
}

async function setup(): Promise<{ services: ServiceManager; queues: QueueService; jobs: JobService; open: (l: PullListener) => Promise<PullChannel> }> {
  const services = await ServiceManager.open(config(), { longLived: true });
  const [queues, jobs] = await Promise.all([services.get(QueueService), services.get(JobService)]);
  await queues.consumer("q");
  return { services, queues, jobs, open: (l) => queues.channel("q", l) };
}

describe("PullChannel", () => {
  it("counts what a pull asked for: deliveries, then the rest back with the 408", { timeout: 20_000 }, async () => {
    const { services, jobs, open } = await setup();
    try {
      for (let i = 0; i < 3; i++) await jobs.enqueue({ task: "t", queue: "q", payload: i });
      const { r, listener } = recorder();
      const ch = await open(listener);
      ch.pull(5, 1_000);
      expect(ch.outstanding).toBe(5);
      await eventually(() => expect(r.delivered).toHaveLength(3));
      expect(ch.outstanding).toBe(2);
      expect(r.delivered.map((d) => d.deliveryCount)).toEqual([1, 1, 1]);
      expect(new Set(r.delivered.map((d) => d.seq)).size).toBe(3);
      await eventually(() => expect(r.returned).toBe(2), { timeoutMs: 5_000 });
      expect(ch.outstanding).toBe(0);
      expect(ch.openPulls).toBe(0);
      expect(r.empty).toBe(0);
      // A pull on an empty queue comes back whole and says it found nothing.
      ch.pull(4, 1_000);
      await eventually(() => expect(r.returned).toBe(6), { timeoutMs: 5_000 });
      expect(r.empty).toBe(1);
      expect(r.unexpected).toBe(0);
      expect(r.errors).toEqual([]);
      await ch.close();
    } finally {
      await services.close();
    }
  });

  it("stop() ends open pulls: what was asked for comes back, later jobs stay queued", { timeout: 20_000 }, async () => {
    const { services, queues, jobs, open } = await setup();
    try {
      const { r, listener } = recorder();
      const ch = await open(listener);
      ch.pull(10, 30_000);
      ch.pull(10, 30_000);
      expect(ch.openPulls).toBe(2);
      ch.stop();
      await eventually(() => expect(r.returned).toBe(20));
      expect(ch.outstanding).toBe(0);
      for (let i = 0; i < 3; i++) await jobs.enqueue({ task: "t", queue: "q", payload: i });
      await new Promise((res) => setTimeout(res, 300));
      expect(r.delivered).toHaveLength(0);
      expect((await queues.depth("q")).waiting).toBe(3);
      // Pulling again (a fresh inbox) gets them.
      ch.pull(3, 2_000);
      await eventually(() => expect(r.delivered).toHaveLength(3));
      expect(r.unexpected).toBe(0);
      await ch.close();
    } finally {
      await services.close();
    }
  });

  it("close() drains: jobs the server sent before are handed over, the rest comes back", { timeout: 20_000 }, async () => {
    const { services, jobs, open } = await setup();
    try {
      for (let i = 0; i < 5; i++) await jobs.enqueue({ task: "t", queue: "q", payload: i });
      const { r, listener } = recorder((d) => d.nak());
      const ch = await open(listener);
      ch.pull(8, 30_000);
      await ch.close();
      expect(r.delivered.length + r.returned).toBe(8);
      expect(ch.outstanding).toBe(0);
      expect(() => ch.pull(1, 1_000)).toThrow(/closing/);
    } finally {
      await services.close();
    }
  });

  it("a server restart gives back what the lost pulls asked for; pulls after it are served", { timeout: 40_000 }, async () => {
    const { services, jobs, open } = await setup();
    try {
      const { r, listener } = recorder();
      const ch = await open(listener);
      ch.pull(6, 30_000);
      await server.restart();
      await eventually(() => expect(r.returned).toBe(6), { timeoutMs: 10_000 });
      // Same id: a retry while JetStream comes back is one job.
      await eventually(() => jobs.enqueue({ task: "t", queue: "q", id: "after-restart", payload: 1 }), { timeoutMs: 15_000 });
      ch.pull(1, 5_000);
      await eventually(() => expect(r.delivered).toHaveLength(1), { timeoutMs: 15_000 });
      expect(r.unexpected).toBe(0);
      await ch.close();
    } finally {
      await services.close();
    }
  });
});

describe("AckedPublisher (KV puts)", () => {
  it("returns the revision, de-duplicates by Msg-Id, and fails like nats.js would", { timeout: 20_000 }, async () => {
    const services = await ServiceManager.open(config(), { longLived: true });
    try {
      const kv = await services.get(KVStoreService);
      const bucket = services.ctx.names.buckets.results;
      const r1 = await kv.putJson(bucket, "a", { v: 1 });
      const r2 = await kv.putJson(bucket, "a", { v: 1, n: 2 });
      expect(r2).toBeGreaterThan(r1);
      expect((await kv.getJson<{ v: number; n?: number }>(bucket, "a"))?.value).toEqual({ v: 1, n: 2 });
      await expect(kv.put(bucket, "bad key", "x")).rejects.toThrow(/invalid KV key/);

      const publisher = await (await services.get(ConnectionService)).publisher();
      const data = new TextEncoder().encode("{}");
      const first = await publisher.publish(`$KV.${bucket}.m`, data, { msgId: "same" });
      const again = await publisher.publish(`$KV.${bucket}.m`, data, { msgId: "same" });
      expect(again).toEqual({ ...first, duplicate: true });
      // No stream takes the subject: no responders, as `isNoStreamForSubject` expects.
      await expect(publisher.publish("nowhere.at.all", data)).rejects.toMatchObject({ name: "NoResponders" });
      expect(publisher.inFlight).toBe(0);
    } finally {
      await services.close();
    }
  });
});
