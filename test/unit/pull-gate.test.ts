/** PullGate: pause state, the open pulls a pause or a stop ends, waking loops, --burst idleness. */
import { describe, expect, it } from "vitest";
import { PullGate } from "../../src/worker/pull-gate.js";

const pull = () => {
  const p = { stopped: 0, stop: () => void p.stopped++ };
  return p;
};

describe("PullGate", () => {
  it("a pause ends that queue's open pulls and wakes waiting loops; repeating it changes nothing", async () => {
    const gate = new PullGate(["a", "b"]);
    const [pa, pb] = [pull(), pull()];
    gate.track(pa, "a");
    gate.track(pb, "b");
    const woke = gate.changed();
    expect(gate.setPaused("a", true)).toBe(true);
    await woke;
    expect([pa.stopped, pb.stopped]).toEqual([1, 0]);
    expect(gate.setPaused("a", true)).toBe(false);
    expect(gate.setPaused("other", true)).toBe(false);
    expect(gate.pausedQueues()).toEqual(["a"]);
    expect(gate.allPaused()).toBe(false);
    gate.setPaused("b", true);
    expect(gate.allPaused()).toBe(true);
    expect(gate.setPaused("a", false)).toBe(true);
    expect(gate.isPaused("a")).toBe(false);
  });

  it("stopAll ends every pull still tracked and wakes every loop", async () => {
    const gate = new PullGate(["a"]);
    const [p1, p2] = [pull(), pull()];
    gate.track(p1, "a");
    gate.track(p2, "a");
    gate.untrack(p2);
    const woke = Promise.all([gate.changed(), gate.changed()]);
    gate.stopAll();
    await woke;
    expect([p1.stopped, p2.stopped]).toEqual([1, 0]);
  });

  it("setIdle says when every queue looks empty", () => {
    const gate = new PullGate(["a", "b"]);
    expect(gate.setIdle("a", true)).toBe(false);
    expect(gate.setIdle("b", true)).toBe(true);
    expect(gate.setIdle("a", false)).toBe(false);
  });
});

describe("PullGate offline (the main connection is down)", () => {
  it("ends every open pull, wakes the loops, and wakes them again when back", async () => {
    const gate = new PullGate(["a", "b"]);
    const [pa, pb] = [pull(), pull()];
    gate.track(pa, "a");
    gate.track(pb, "b");
    const down = gate.changed();
    gate.setOffline(true);
    await down;
    expect(gate.offline).toBe(true);
    expect([pa.stopped, pb.stopped]).toEqual([1, 1]);
    gate.setOffline(true); // no change: nothing stopped twice
    expect([pa.stopped, pb.stopped]).toEqual([1, 1]);
    const back = gate.changed();
    gate.setOffline(false);
    await back;
    expect(gate.offline).toBe(false);
    expect(gate.isPaused("a")).toBe(false);
  });
});
