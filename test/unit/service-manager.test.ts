/**
 * ServiceManager and BaseService without a server: small services defined here record
 * what the manager does to them (construct, initialize, clean up) in one shared log.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { defaultConfig } from "../../src/config/schema.js";
import { ServiceError } from "../../src/model/errors.js";
import { BaseService, ServiceManager, type ServiceContext } from "../../src/services/base.js";

let log: string[] = [];

beforeEach(() => {
  log = [];
});

const tick = (ms = 0) => new Promise<void>((r) => setTimeout(r, ms));

/** Logs its lifecycle under its class name; `initDelayMs` makes initialization take a while. */
abstract class Recorded extends BaseService {
  static initDelayMs = 0;
  constructor(ctx: ServiceContext) {
    super(ctx);
    log.push(`new ${this.constructor.name}`);
  }
  protected override async onInitialize(): Promise<void> {
    const delay = (this.constructor as typeof Recorded).initDelayMs;
    if (delay > 0) await tick(delay);
    log.push(`init ${this.constructor.name}`);
  }
  protected override async onCleanup(): Promise<void> {
    log.push(`close ${this.constructor.name}`);
  }
}

class Conn extends Recorded {
  static override initDelayMs = 5;
}

class Store extends Recorded {
  static readonly deps = [Conn] as const;
  constructor(
    ctx: ServiceContext,
    readonly conn: Conn,
  ) {
    super(ctx);
  }
}

class Events extends Recorded {
  static readonly deps = [Conn, Store] as const;
  constructor(
    ctx: ServiceContext,
    readonly conn: Conn,
    readonly store: Store,
  ) {
    super(ctx);
  }
}

class Jobs extends Recorded {
  static readonly deps = [Store, Events] as const;
  constructor(
    ctx: ServiceContext,
    readonly store: Store,
    readonly events: Events,
  ) {
    super(ctx);
  }
}

class Failing extends Recorded {
  protected override async onCleanup(): Promise<void> {
    log.push(`close ${this.constructor.name}`);
    throw new Error(`${this.constructor.name} cleanup broke`);
  }
}
class FailingA extends Failing {}
class FailingB extends Failing {}

class FailsToStart extends Recorded {
  static attempts = 0;
  protected override async onInitialize(): Promise<void> {
    FailsToStart.attempts++;
    if (FailsToStart.attempts === 1) throw new Error("first start fails");
    log.push("init FailsToStart");
  }
}

// A dependency cycle: A -> B -> A (getters, because B is declared after A).
class CycleA extends Recorded {
  static get deps() {
    return [CycleB];
  }
}
class CycleB extends Recorded {
  static get deps() {
    return [CycleA];
  }
}
class SelfCycle extends Recorded {
  static get deps() {
    return [SelfCycle];
  }
}
/** A slow dependency first, then a cycle: X <- P -> Q -> P. */
class Slow extends Recorded {
  static override initDelayMs = 20;
}
class CycleP extends Recorded {
  static get deps() {
    return [Slow, CycleQ];
  }
}
class CycleQ extends Recorded {
  static get deps() {
    return [CycleP];
  }
}
class UsesCycle extends Recorded {
  static get deps() {
    return [CycleA];
  }
}

const open = () => ServiceManager.open(defaultConfig());

describe("ServiceManager: creation", () => {
  it("creates nothing until a service is asked for", async () => {
    await using services = await open();
    await tick(10);
    expect(log).toEqual([]);
    expect(services.services).toEqual([]);
    expect(services.closed).toBe(false);
  });

  it("creates dependencies first and injects them", async () => {
    await using services = await open();
    const jobs = await services.get(Jobs);
    expect(jobs).toBeInstanceOf(Jobs);
    expect(jobs.initialized).toBe(true);
    expect(log).toEqual(["new Conn", "init Conn", "new Store", "init Store", "new Events", "init Events", "new Jobs", "init Jobs"]);
    expect(services.services.map((s) => s.constructor.name)).toEqual(["Conn", "Store", "Events", "Jobs"]);
    // The diamond (Jobs -> Store, Jobs -> Events -> Store) shares one Store and one Conn.
    expect(jobs.events.store).toBe(jobs.store);
    expect(jobs.events.conn).toBe(jobs.store.conn);
    expect(await services.get(Conn)).toBe(jobs.store.conn);
  });

  it("returns one instance per scope for two gets in a row", async () => {
    await using services = await open();
    const a = await services.get(Store);
    const b = await services.get(Store);
    expect(b).toBe(a);
    expect(log.filter((l) => l.startsWith("new "))).toEqual(["new Conn", "new Store"]);
  });

  it("returns one instance per scope for concurrent gets", async () => {
    await using services = await open();
    // Conn takes a few ms to start, so all of these overlap.
    const got = await Promise.all([services.get(Store), services.get(Store), services.get(Events), services.get(Conn)]);
    expect(got[1]).toBe(got[0]);
    expect((got[2] as Events).store).toBe(got[0]);
    expect(got[3]).toBe((got[0] as Store).conn);
    expect(log.filter((l) => l.startsWith("new ")).sort()).toEqual(["new Conn", "new Events", "new Store"]);
    expect(log.filter((l) => l === "init Conn")).toHaveLength(1);
  });

  it("gives each scope its own instances", async () => {
    await using one = await open();
    await using two = await open();
    const [a, b] = await Promise.all([one.get(Store), two.get(Store)]);
    expect(a).not.toBe(b);
    expect(a.conn).not.toBe(b.conn);
  });

  it("lets a get be retried after a service failed to start, and does not keep the failed one", async () => {
    FailsToStart.attempts = 0;
    await using services = await open();
    await expect(services.get(FailsToStart)).rejects.toThrow("first start fails");
    expect(services.services).toEqual([]);
    const ok = await services.get(FailsToStart);
    expect(ok.initialized).toBe(true);
    expect(FailsToStart.attempts).toBe(2);
  });
});

describe("ServiceManager: dependency cycles", () => {
  it("rejects a two-service cycle with an error naming the chain", async () => {
    await using services = await open();
    const err = await services.get(CycleA).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceError);
    expect((err as Error).message).toMatch(/dependency cycle/);
    expect((err as Error).message).toContain("CycleA -> CycleB -> CycleA");
    expect(log).toEqual([]);
  });

  it("rejects a service that depends on itself, and a service whose dependency is in a cycle", async () => {
    await using services = await open();
    await expect(services.get(SelfCycle)).rejects.toThrow(/dependency cycle: SelfCycle -> SelfCycle/);
    await expect(services.get(UsesCycle)).rejects.toThrow(/dependency cycle: CycleA -> CycleB -> CycleA/);
  });

  it("detects a cycle even when two gets enter it from different ends at once (no hang)", async () => {
    const services = await open();
    const results = await Promise.race([
      Promise.allSettled([services.get(CycleP), services.get(CycleQ)]),
      tick(2_000).then(() => "hung" as const),
    ]);
    // (Not `await using`: if the gets hung, close() would wait for them forever.)
    expect(results).not.toBe("hung");
    await services.close();
    for (const r of results as PromiseSettledResult<unknown>[]) {
      expect(r.status).toBe("rejected");
      expect(String((r as PromiseRejectedResult).reason)).toMatch(/dependency cycle/);
    }
  });
});

describe("ServiceManager: closing", () => {
  it("closes services in reverse creation order", async () => {
    const services = await open();
    await services.get(Jobs);
    log = [];
    await services.close();
    expect(log).toEqual(["close Jobs", "close Events", "close Store", "close Conn"]);
    expect(services.closed).toBe(true);
  });

  it("closes a service once, however often close() is called", async () => {
    const services = await open();
    await services.get(Store);
    log = [];
    await Promise.all([services.close(), services.close()]);
    await services.close();
    await services[Symbol.asyncDispose]();
    expect(log).toEqual(["close Store", "close Conn"]);
  });

  it("keeps closing past a throwing service and raises its error", async () => {
    const services = await open();
    await services.get(Conn);
    await services.get(FailingA);
    await services.get(Store);
    log = [];
    await expect(services.close()).rejects.toThrow("FailingA cleanup broke");
    expect(log).toEqual(["close Store", "close FailingA", "close Conn"]);
  });

  it("aggregates the errors of several throwing services", async () => {
    const services = await open();
    await services.get(FailingA);
    await services.get(Conn);
    await services.get(FailingB);
    log = [];
    const err = await services.close().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AggregateError);
    const agg = err as AggregateError;
    expect(agg.errors.map((e: Error) => e.message)).toEqual(["FailingB cleanup broke", "FailingA cleanup broke"]);
    expect(agg.message).toContain("FailingA cleanup broke");
    expect(agg.message).toContain("FailingB cleanup broke");
    expect(log).toEqual(["close FailingB", "close Conn", "close FailingA"]);
  });

  it("closes services through `await using`", async () => {
    {
      await using services = await open();
      await services.get(Store);
      log = [];
    }
    expect(log).toEqual(["close Store", "close Conn"]);
  });

  it("rejects get() after close, without creating anything", async () => {
    const services = await open();
    await services.get(Conn);
    await services.close();
    log = [];
    const err = await services.get(Store).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceError);
    expect((err as Error).message).toMatch(/closed/);
    await expect(services.get(Conn)).rejects.toThrow(/closed/);
    expect(log).toEqual([]);
  });

  it("cleans up a service that finishes starting after close began, and rejects its get", async () => {
    const services = await open();
    const pending = services.get(Store); // Conn takes 5 ms to start
    const closing = services.close();
    await expect(pending).rejects.toThrow(/closed/);
    await closing;
    // Nothing is left initialized: whatever was created was also closed.
    const created = log.filter((l) => l.startsWith("init ")).map((l) => l.slice(5));
    const closed = log.filter((l) => l.startsWith("close ")).map((l) => l.slice(6));
    expect(closed.sort()).toEqual(created.sort());
  });
});

describe("BaseService", () => {
  it("initializes once for concurrent callers and cleans up only what started", async () => {
    const ctx = (await open()).ctx;
    const never = new Conn(ctx);
    await never.cleanup();
    expect(log).toEqual(["new Conn"]); // never initialized: nothing to clean up

    const conn = new Conn(ctx);
    await Promise.all([conn.initialize(), conn.initialize()]);
    expect(log.filter((l) => l === "init Conn")).toHaveLength(1);
    await conn.cleanup();
    await conn.cleanup();
    expect(log.filter((l) => l === "close Conn")).toHaveLength(1);
    expect(conn.initialized).toBe(false);
    await expect(conn.initialize()).rejects.toThrow(/closed/);
  });
});
