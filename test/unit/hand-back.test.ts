import { describe, expect, it } from "vitest";
import { createEnvelope, encodeEnvelope } from "../../src/model/job.js";
import type { Delivery } from "../../src/services/queues.js";
import { HandBacks } from "../../src/worker/hand-back.js";

function delivery(data: Uint8Array, log: string[]): Delivery {
  return {
    queue: "default",
    data,
    subject: "naq.queue.default",
    seq: 1,
    deliveryCount: 1,
    ack: () => void log.push("ack"),
    nak: () => void log.push("nak"),
    term: () => void log.push("term"),
    working: () => void log.push("working"),
  };
}

const job = encodeEnvelope(createEnvelope({ task: "t", id: "j1" }));

describe("HandBacks", () => {
  it("counts the delivery as not an attempt, then NAKs it", async () => {
    const log: string[] = [];
    const hb = new HandBacks(async (id) => {
      await new Promise((r) => setTimeout(r, 5));
      log.push(`release ${id}`);
    });
    hb.handBack(delivery(job, log));
    expect(log).toEqual([]);
    await hb.settle();
    expect(log).toEqual(["release j1", "nak"]);
  });

  it("NAKs anyway when the count cannot be written, or the message is not a job", async () => {
    const log: string[] = [];
    const hb = new HandBacks(async () => {
      throw new Error("NATS is down");
    });
    hb.handBack(delivery(job, log));
    hb.handBack(delivery(new TextEncoder().encode("not json"), log));
    await hb.settle();
    expect(log).toEqual(["nak", "nak"]);
  });

  it("a NAK that throws (connection closed) is swallowed: the server redelivers after ack_wait", async () => {
    const hb = new HandBacks(async () => undefined);
    hb.handBack({ ...delivery(job, []), nak: () => { throw new Error("closed"); } });
    await expect(hb.settle()).resolves.toBeUndefined();
  });
});
