/**
 * A delayed job claimed by a leader that then died (or froze) before publishing it: the next
 * leader must publish it. Past the Msg-Id dedup window it first looks for a trace of the
 * job (a record, or an event of its run) and publishes only if there is none; the job's own
 * `scheduled` event, written when it was scheduled, is not such a trace. (Found by the
 * scheduler-stop chaos scenario: with a short duplicate window, claimed delayed jobs were
 * dropped instead of published.)
 */
import { describe, expect, it } from "vitest";
import { configSchema, type NaqConfigInput } from "../../src/config/schema.js";
import { delayedKey, type DelayedDoc } from "../../src/model/schedule.js";
import { Scheduler } from "../../src/scheduler/scheduler.js";
import { ServiceManager } from "../../src/services/base.js";
import { EventService } from "../../src/services/events.js";
import { JobService } from "../../src/services/jobs.js";
import { KVStoreService } from "../../src/services/kv.js";
import { SchedulerService } from "../../src/services/scheduler.js";
import { StreamService } from "../../src/services/streams.js";
import { eventually, useLibraryFixture } from "../support/index.js";

const { freshConfig, cleanup } = useLibraryFixture("sc");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A config whose jobs stream forgets Msg-Ids after 1 s, so a second publish would be a second job. */
function shortDedupConfig(): NaqConfigInput {
  return freshConfig({ kv: { leaderTtl: "2s" }, streams: { jobs: { duplicateWindow: "1s" } } });
}

async function scope(config: NaqConfigInput): Promise<ServiceManager> {
  const s = await ServiceManager.open(configSchema.parse(config), { longLived: true });
  cleanup(() => s.close());
  return s;
}

/** Job ids stored in the jobs stream (what was really enqueued, after Msg-Id dedup). */
async function storedJobIds(services: ServiceManager): Promise<string[]> {
  const streams = await services.get(StreamService);
  const names = services.ctx.names;
  const info = await streams.find(names.jobsStream);
  if (!info || info.state.messages === 0) return [];
  const ids: string[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await streams.bySequence(names.jobsStream, seq);
    if (m) ids.push((JSON.parse(new TextDecoder().decode(m.data)) as { id: string }).id);
  }
  return ids;
}

/** Marks delayed job `id` as claimed by a scheduler that is gone, `agoMs` ago. */
async function claimAsDeadLeader(services: ServiceManager, id: string, agoMs: number): Promise<DelayedDoc> {
  const kv = await services.get(KVStoreService);
  const bucket = services.ctx.names.buckets.schedules;
  const cur = await kv.getJson<DelayedDoc>(bucket, delayedKey(id));
  if (!cur) throw new Error(`delayed job ${id} not found`);
  await kv.updateJson<DelayedDoc>(bucket, delayedKey(id), { ...cur.value, firing: { at: new Date(Date.now() - agoMs).toISOString(), by: "dead-leader" } }, cur.revision);
  return cur.value;
}

async function runScheduler(config: NaqConfigInput): Promise<Scheduler> {
  const s = new Scheduler({ config, id: "next", tickMs: 250 });
  cleanup(() => s.close());
  await s.start();
  return s;
}

describe("a delayed job claimed by a leader that died before publishing it", () => {
  it("is published by the next leader, even long after the claim (past the dedup window)", { timeout: 20_000 }, async () => {
    const config = shortDedupConfig();
    const services = await scope(config);
    const scheduling = await services.get(SchedulerService);
    const job = await scheduling.scheduleJob({ id: "claimed-unpublished", task: "hello", queue: "default" }, Date.now() + 300);
    await sleep(500);
    await claimAsDeadLeader(services, job.id, 10 * 60_000);

    await runScheduler(config);
    await eventually(async () => expect(await storedJobIds(services)).toEqual([job.id]), { timeoutMs: 8_000, intervalMs: 100 });
    await eventually(async () => expect(await scheduling.getDelayed(job.id)).toBeUndefined(), { timeoutMs: 5_000, intervalMs: 100 });
    expect((await (await services.get(JobService)).status(job.id)).status).toBe("queued");
  });

  it("is not published again when it was published before the leader died (it has an `enqueued` event)", { timeout: 20_000 }, async () => {
    const config = shortDedupConfig();
    const services = await scope(config);
    const scheduling = await services.get(SchedulerService);
    const job = await scheduling.scheduleJob({ id: "claimed-published", task: "hello", queue: "default" }, Date.now() + 300);
    await sleep(500);
    const doc = await claimAsDeadLeader(services, job.id, 10 * 60_000);
    // The dead leader got as far as publishing it; its Msg-Id is forgotten after 1 s.
    const jobs = await services.get(JobService);
    await jobs.publish(doc.job);
    await (await services.get(EventService)).flush();
    await sleep(1_500);

    await runScheduler(config);
    await eventually(async () => expect(await scheduling.getDelayed(job.id)).toBeUndefined(), { timeoutMs: 8_000, intervalMs: 100 });
    await sleep(500);
    expect(await storedJobIds(services)).toEqual([job.id]);
  });
});
