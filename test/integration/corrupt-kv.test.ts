/**
 * Values in naq's KV buckets that are not what naq wrote (someone ran `nats kv put`, another
 * program shares the account), against a real nats-server: a worker never crashes on them.
 * A pause key with garbage still pauses the queue (the key is what pauses it) until resumed;
 * a garbage stop request is ignored; a garbage heartbeat is left out of the worker list.
 */
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { ControlService } from "../../src/services/control.js";
import { WorkerService } from "../../src/services/workers.js";
import { Queue } from "../../src/queue.js";
import { Worker } from "../../src/worker/worker.js";
import { eventually, useLibraryFixture } from "../support/index.js";

const lib = useLibraryFixture("kvbad");

describe("corrupted control values", () => {
  it("garbage pause flag: the worker starts, treats the queue as paused, and runs the job once resumed; garbage stop and heartbeat are ignored", { timeout: 40_000 }, async () => {
    const config = lib.freshConfig();
    const queue = new Queue("default", { config });
    lib.cleanup(() => queue.close());
    const scope = await queue.services();
    const control = await scope.get(ControlService);
    await control.resume("default"); // creates the bucket
    const nc = await connect({ servers: lib.server.url });
    lib.cleanup(() => nc.close());
    const kvm = new Kvm(nc);
    const controlKv = await kvm.open(`${config.namespace as string}_control`);
    await controlKv.put("pause.default", "not json at all");

    const errors: Error[] = [];
    const worker = new Worker({ config, handlers: { ping: () => "pong" }, graceMs: 1_000 });
    worker.on("error", (e) => errors.push(e));
    lib.cleanup(() => worker.close({ force: true }));
    await worker.start();

    const flag = await control.pauseFlag("default");
    expect(flag?.reason).toMatch(/the pause flag's value is not readable: .*naq queue resume default removes it/);
    const { id } = await queue.enqueue("ping");
    await new Promise((r) => setTimeout(r, 1_500));
    await expect(queue.getResult(id)).rejects.toThrow(/not finished/);

    // Garbage where a stop request and a heartbeat belong.
    await controlKv.put(`stop.${worker.id}`, "[1,2,3]");
    const workersKv = await kvm.open(`${config.namespace as string}_workers`);
    await workersKv.put("ghost-1-abcdef", '{"v":1,"id":42}');
    await eventually(async () => expect((await (await scope.get(WorkerService)).list()).map((w) => w.id)).toEqual([worker.id]), { timeoutMs: 5_000 });

    await control.resume("default");
    expect(await queue.getResult(id, { wait: true, timeoutMs: 10_000 })).toMatchObject({ status: "completed", result: "pong" });
    expect(errors).toEqual([]);
  });
});
