/**
 * `naq events tail | history | stats` and the EventService read side against a real
 * nats-server (one for the file, a fresh namespace per test): server-side filters (checked
 * on the consumer the server holds while a tail runs), --count, clean ends on signals and
 * on a closed pipe, a real worker's retries in history, exact stats over a known
 * workload, and that reading leaves nothing behind: no consumer, no message consumed.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstreamManager, type ConsumerInfo, type JetStreamManager } from "@nats-io/jetstream";
import { configSchema, type NaqConfig } from "../../src/config/schema.js";
import { events as eventsApi } from "../../src/events.js";
import type { NaqEvent } from "../../src/model/events.js";
import { ServiceManager } from "../../src/services/base.js";
import { EventService, type EventInput } from "../../src/services/events.js";
import { TopologyService } from "../../src/services/topology.js";
import { Queue } from "../../src/queue.js";
import { Worker } from "../../src/worker/worker.js";
import { eventually, runCli, spawnCli, startServer, NAQ_BIN, type CliOptions, type CliResult, type NatsServer } from "../support/index.js";

let server: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;
let nsCounter = 0;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  server = await startServer();
  nc = await connect({ servers: server.url, name: "events-test" });
  jsm = await jetstreamManager(nc);
});

afterEach(async () => {
  const errors: unknown[] = [];
  for (const fn of cleanups.splice(0).reverse()) await fn().catch((e: unknown) => errors.push(e));
  expect(errors).toEqual([]);
});

afterAll(async () => {
  await nc?.close();
  await server?.[Symbol.asyncDispose]();
});

interface Ns {
  ns: string;
  config: NaqConfig;
  stream: string;
}

/** A fresh namespace with its streams and buckets created. */
async function freshNs(): Promise<Ns> {
  const ns = `ev${++nsCounter}${Math.random().toString(36).slice(2, 6)}`;
  const config = configSchema.parse({ connection: { servers: [server.url] }, namespace: ns });
  const scope = await ServiceManager.open(config);
  try {
    await (await scope.get(TopologyService)).init();
  } finally {
    await scope.close();
  }
  return { ns, config, stream: `${ns}_events` };
}

/**
 * Publishes events through EventService.emit (the producers' and workers' path) and waits
 * until stored, one message each: `started` is not held for folding (see the fold tests).
 */
async function emit(n: Ns, list: EventInput[]): Promise<void> {
  const before = (await jsm.streams.info(n.stream)).state.messages;
  const scope = await ServiceManager.open(unfolded(n.config));
  try {
    const events = await scope.get(EventService);
    for (const e of list) events.emit(e);
    await events.flush();
  } finally {
    await scope.close();
  }
  await eventually(async () => {
    const now = (await jsm.streams.info(n.stream)).state.messages;
    if (now < before + list.length) throw new Error(`${now - before}/${list.length} events stored`);
  });
}

const unfolded = (config: NaqConfig): NaqConfig => ({ ...config, streams: { ...config.streams, events: { ...config.streams.events, foldStarted: 0 } } });

function naq(n: Ns, args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return runCli(["-s", server.url, "--namespace", n.ns, ...args], opts);
}

async function naqJson<T>(n: Ns, args: string[], code = 0): Promise<T> {
  const res = await naq(n, ["--json", ...args]);
  expect(res.code, `naq ${args.join(" ")}\n--- stderr\n${res.stderr}\n--- stdout\n${res.stdout}`).toBe(code);
  return JSON.parse(res.stdout) as T;
}

function tailCli(n: Ns, args: string[]) {
  const t = spawnCli(["-s", server.url, "--namespace", n.ns, "--json", "events", "tail", ...args], { timeoutMs: 30_000 });
  cleanups.push(() => t.stop(2_000));
  return t;
}

async function consumers(n: Ns): Promise<ConsumerInfo[]> {
  return jsm.consumers.list(n.stream).next();
}

/** The one consumer a running tail holds on the events stream. */
async function tailConsumer(n: Ns): Promise<ConsumerInfo> {
  return eventually(async () => {
    const list = await consumers(n);
    if (list.length !== 1) throw new Error(`${list.length} consumers on ${n.stream}`);
    return list[0] as ConsumerInfo;
  });
}

const filterOf = (ci: ConsumerInfo): string[] =>
  ci.config.filter_subjects?.length ? [...ci.config.filter_subjects].sort() : [ci.config.filter_subject ?? ""];

function job(queue: string, jobId: string, type: EventInput["type"], extra: Partial<EventInput> = {}): EventInput {
  return { type, queue, jobId, task: "send", ...extra };
}

const oneLine = (res: CliResult): string => {
  const lines = res.stderr.split("\n").filter((l) => l.trim() !== "");
  expect(lines, res.stderr).toHaveLength(1);
  expect(res.stderr).not.toMatch(/\n\s+at /);
  return lines[0] as string;
};

const serverAtLeast210 = (): boolean => {
  const [a = 0, b = 0] = (nc.info?.version ?? "0.0").split(".").map(Number);
  return a > 2 || (a === 2 && b >= 10);
};

// ---------------------------------------------------------------------------------------

describe("events tail", () => {
  it("--queue: the server filters on the queue (consumer filter subject, and only matches delivered)", async () => {
    const n = await freshNs();
    const tail = tailCli(n, ["--queue", "emails"]);
    const ci = await tailConsumer(n);
    expect(filterOf(ci)).toEqual([`${n.ns}.events.emails.*.*`]);
    expect(ci.config.durable_name).toBeUndefined();

    // Non-matching first, so that once the matches arrive everything before was processed.
    await emit(n, [
      ...Array.from({ length: 5 }, (_, i) => job("sms", `s${i}`, "enqueued")),
      { type: "worker_started", queue: "_worker", jobId: "w1", worker: "w1" },
    ]);
    await emit(n, [job("emails", "e1", "enqueued"), job("emails", "e1", "started"), job("emails", "e2", "enqueued")]);
    await tail.waitForLines(3);
    const after = await jsm.consumers.info(n.stream, ci.name);
    expect(after.delivered.consumer_seq).toBe(3); // the server sent only the three matches
    expect(after.delivered.stream_seq).toBe(9);

    tail.signal("SIGINT");
    const res = await tail.exited;
    expect(res.code).toBe(0);
    expect(res.stderr).toBe("");
    const got = tail.json<NaqEvent>();
    expect(got.map((e) => [e.queue, e.jobId, e.type])).toEqual([
      ["emails", "e1", "enqueued"],
      ["emails", "e1", "started"],
      ["emails", "e2", "enqueued"],
    ]);
    expect(await consumers(n)).toEqual([]); // nothing left on the server
  });

  it("--job: one job's events only, filtered by the server, from --since all; ends 0 on SIGTERM", async () => {
    const n = await freshNs();
    await emit(n, [
      job("emails", "A", "enqueued"),
      job("emails", "B", "enqueued"),
      job("emails", "A", "started", { worker: "w1", attempt: 1 }),
      job("sms", "C", "enqueued"),
      job("emails", "A", "completed", { worker: "w1", attempt: 1, durationMs: 4 }),
      job("emails", "B", "started"),
    ]);
    const tail = tailCli(n, ["--job", "A", "--since", "all"]);
    await tail.waitForLines(3);
    const ci = await tailConsumer(n);
    expect(filterOf(ci)).toEqual([`${n.ns}.events.*.A.*`]);
    expect(ci.delivered.consumer_seq).toBe(3);
    await emit(n, [job("emails", "B", "completed"), job("emails", "A", "progress", { log: "late" })]);
    await tail.waitForLines(4);
    tail.signal("SIGTERM");
    const res = await tail.exited;
    expect(res.code).toBe(0);
    expect(res.stderr).toBe("");
    expect(tail.json<NaqEvent>().map((e) => `${e.jobId}:${e.type}`)).toEqual(["A:enqueued", "A:started", "A:completed", "A:progress"]);
    expect(await consumers(n)).toEqual([]);
  });

  it("--queue with --job is one subject; --task and --worker are checked here", async () => {
    const n = await freshNs();
    const scope = await ServiceManager.open(n.config);
    cleanups.push(() => scope.close());
    const service = await scope.get(EventService);
    const stream = service.tail({ queue: "emails", jobId: "A", task: "send", worker: "w1" });
    await stream.ready();
    expect(stream.subjects).toEqual([`${n.ns}.events.emails.A.*`]);
    expect(stream.plan.client).toEqual(["task", "worker"]);
    expect(filterOf(await tailConsumer(n))).toEqual([`${n.ns}.events.emails.A.*`]);
    await emit(n, [
      job("emails", "A", "started", { worker: "w2" }),
      job("emails", "A", "started", { task: "other", worker: "w1" }),
      job("emails", "A", "started", { worker: "w1", attempt: 2 }),
    ]);
    const got: NaqEvent[] = [];
    for await (const ev of stream) {
      got.push(ev);
      break;
    }
    expect(got.map((e) => [e.worker, e.attempt])).toEqual([["w1", 2]]);
    expect(stream.delivered).toBe(3);
    expect(await consumers(n)).toEqual([]); // break closed the stream and deleted its consumer
  });

  it("--type a,b: one filter per type on 2.10+, a type wildcard plus a client-side check on 2.9", async () => {
    const n = await freshNs();
    await emit(n, [
      job("emails", "A", "enqueued"),
      job("emails", "A", "started"),
      job("emails", "A", "retrying", { delayMs: 100, error: { name: "Error", message: "boom" } }),
      job("emails", "A", "started"),
      job("emails", "A", "failed", { reason: "failed after 2 attempts" }),
      job("sms", "B", "failed", { reason: "x" }),
    ]);
    const tail = tailCli(n, ["--queue", "emails", "--type", "failed,retrying", "--since", "all"]);
    await tail.waitForLines(2);
    const ci = await tailConsumer(n);
    expect(filterOf(ci)).toEqual(
      serverAtLeast210() ? [`${n.ns}.events.emails.*.failed`, `${n.ns}.events.emails.*.retrying`] : [`${n.ns}.events.emails.*.*`],
    );
    tail.signal("SIGINT");
    expect((await tail.exited).code).toBe(0);
    expect(tail.json<NaqEvent>().map((e) => e.type)).toEqual(["retrying", "failed"]);
  });

  it("--count N exits 0 after N matching events; --max-wait without them exits 4", async () => {
    const n = await freshNs();
    const tail = tailCli(n, ["--queue", "emails", "--count", "3"]);
    await tailConsumer(n);
    await emit(n, [
      job("sms", "s1", "enqueued"),
      ...Array.from({ length: 5 }, (_, i) => job("emails", `e${i}`, "enqueued")),
    ]);
    const res = await tail.exited;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toBe("");
    expect(tail.json<NaqEvent>().map((e) => e.jobId)).toEqual(["e0", "e1", "e2"]);
    expect(await consumers(n)).toEqual([]);

    const waited = await naq(n, ["events", "tail", "--queue", "emails", "--count", "5", "--max-wait", "300ms"]);
    expect(waited.code).toBe(4);
    expect(oneLine(waited)).toMatch(/saw 0 of 5 events in 300ms/);
    expect(await consumers(n)).toEqual([]);
  });

  it("`naq events tail --json | head -1` exits 0 without a stack and leaves no consumer", async () => {
    const n = await freshNs();
    // More than a pipe buffer (64 KiB) of events, so the tail writes after head has gone.
    await emit(n, Array.from({ length: 1_500 }, (_, i) => job("emails", `j${i}`, "enqueued", { maxAttempts: 4 })));
    const cmd = `"${process.execPath}" "${NAQ_BIN}" -s ${server.url} --namespace ${n.ns} events tail --since all --json | head -1; echo "naq=\${PIPESTATUS[0]}" >&2`;
    const { spawnSync } = await import("node:child_process");
    const res = spawnSync("bash", ["-c", cmd], { encoding: "utf8", timeout: 20_000 });
    expect(res.stderr.trim()).toBe("naq=0");
    const lines = res.stdout.split("\n").filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ type: "enqueued", queue: "emails", jobId: "j0" });
    expect(await consumers(n)).toEqual([]);
  });

  it("human lines; bad input is one line and exit 2; a missing events stream is exit 3 with the fix", async () => {
    const n = await freshNs();
    await emit(n, [job("emails", "A", "retrying", { worker: "w1", attempt: 1, maxAttempts: 3, durationMs: 12, delayMs: 1_000, error: { name: "Error", message: "SMTP 451" } })]);
    const human = await naq(n, ["events", "tail", "--since", "all", "--count", "1"]);
    expect(human.code).toBe(0);
    expect(human.stdout.trim().split(/\s{2,}/).slice(1)).toEqual(["retrying", "emails", "send", "A", "w1", "12ms", "attempt 1/3 failed: SMTP 451; retry in 1s"]);

    expect(oneLine(await naq(n, ["events", "tail", "--type", "fail"]))).toMatch(/--type "fail" is not an event type/);
    expect((await naq(n, ["events", "tail", "--type", "fail"])).code).toBe(2);
    const since = await naq(n, ["events", "tail", "--since", "yesterday"]);
    expect(since.code).toBe(2);
    expect(oneLine(since)).toMatch(/--since "yesterday" is not valid: use a duration/);
    const queue = await naq(n, ["events", "tail", "--queue", "a.b"]);
    expect(queue.code).toBe(2);
    expect(oneLine(queue)).toMatch(/--queue "a\.b" is not valid/);
    const by = await naq(n, ["events", "stats", "--by", "colour"]);
    expect(by.code).toBe(2);

    const missing = await runCli(["-s", server.url, "--namespace", "nothinghere", "events", "tail"]);
    expect(missing.code).toBe(3);
    expect(oneLine(missing)).toMatch(/events stream nothinghere_events does not exist: run `naq stream init`/);
  });
});

describe("events history", () => {
  it("a job that failed twice then succeeded (real worker): 3 started, 2 retrying, 1 completed, in order; twice the same", async () => {
    const n = await freshNs();
    const queue = new Queue("flaky", { config: n.config });
    cleanups.push(() => queue.close());
    const attempts = new Map<string, number>();
    const worker = new Worker({
      config: n.config,
      queues: ["flaky"],
      name: "hist",
      handlers: {
        wobbly: (_payload: unknown, ctx: { id: string }) => {
          const a = (attempts.get(ctx.id) ?? 0) + 1;
          attempts.set(ctx.id, a);
          if (a < 3) throw new Error(`attempt ${a} failed`);
          return { ok: true };
        },
      },
    });
    cleanups.push(() => worker.close({ force: true }));
    await worker.start();
    const { id } = await queue.enqueue("wobbly", { n: 1 }, { retries: 2, backoff: { type: "fixed", delayMs: 100 } });
    expect((await queue.getResult(id, { wait: true, timeoutMs: 15_000 })).status).toBe("completed");
    await worker.close(); // flushes its events

    const first = await naqJson<{ jobId: string; status: string; attempts: number; events: NaqEvent[] }>(n, ["events", "history", id]);
    expect(first).toMatchObject({ jobId: id, queue: "flaky", task: "wobbly", status: "completed", attempts: 3 });
    const life = first.events.filter((e) => e.type !== "progress");
    expect(life.map((e) => e.type)).toEqual(["enqueued", "started", "retrying", "started", "retrying", "started", "completed"]);
    expect(life.filter((e) => e.type === "started").map((e) => e.attempt)).toEqual([1, 2, 3]);
    expect(life.filter((e) => e.type === "retrying").map((e) => [e.attempt, e.delayMs, e.error?.message])).toEqual([
      [1, 100, "attempt 1 failed"],
      [2, 100, "attempt 2 failed"],
    ]);
    expect(life.at(-1)).toMatchObject({ type: "completed", attempt: 3, worker: worker.id });

    // Reading consumed nothing: the same answer again, the same messages stored, no consumer left.
    const stored = (await jsm.streams.info(n.stream)).state.messages;
    const second = await naqJson<typeof first>(n, ["events", "history", id]);
    expect(second).toEqual(first);
    expect((await jsm.streams.info(n.stream)).state.messages).toBe(stored);
    expect(await consumers(n)).toEqual([]);

    const human = await naq(n, ["events", "history", id]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`job ${id}  queue flaky  task wobbly  completed after 3 attempts, 7 events`);
    expect(human.stdout).toMatch(/retrying .*attempt 2\/3 failed: attempt 2 failed; retry in 100ms/);

    // The worker's own lifecycle, by type (worker_started / worker_stopped on the _worker queue).
    const lifecycle = await naq(n, ["--json", "events", "tail", "--type", "worker_started,worker_stopped", "--since", "all", "--count", "2"]);
    expect(lifecycle.code, lifecycle.stderr).toBe(0);
    const wl = lifecycle.stdout.trim().split("\n").map((l) => JSON.parse(l) as NaqEvent);
    expect(wl.map((e) => [e.type, e.queue, e.jobId])).toEqual([
      ["worker_started", "_worker", worker.id],
      ["worker_stopped", "_worker", worker.id],
    ]);
  });

  it("an unknown job is exit 3 with one line", async () => {
    const n = await freshNs();
    const res = await naq(n, ["events", "history", "01NOPE"]);
    expect(res.code).toBe(3);
    expect(oneLine(res)).toMatch(new RegExp(`no events for job 01NOPE in ${n.stream} \\(events are kept 7d\\)`));
    expect(res.stdout).toBe("");
  });
});

describe("started folded into its attempt's end (streams.events.foldStarted)", () => {
  /** The events stored for one job, in stream order, as [type, body]. */
  async function stored(n: Ns, jobId: string): Promise<Array<[string, NaqEvent]>> {
    const out: Array<[string, NaqEvent]> = [];
    const last = (await jsm.streams.info(n.stream)).state.last_seq;
    for (let seq = 1; seq <= last; seq++) {
      const m = await jsm.streams.getMessage(n.stream, { seq }).catch(() => null);
      if (m && m.subject.split(".")[3] === jobId) out.push([m.subject.split(".")[4] as string, m.json<NaqEvent>()]);
    }
    return out;
  }
  const types = (list: Array<[string, NaqEvent]>): string[] => list.map(([t]) => t).sort();

  it("a short attempt stores one end event carrying startedAt; history, tail --type started and stats still see its start", async () => {
    const n = await freshNs();
    const queue = new Queue("fold", { config: n.config });
    cleanups.push(() => queue.close());
    const worker = new Worker({
      config: n.config,
      queues: ["fold"],
      name: "folder",
      handlers: {
        quick: () => ({ ok: true }),
        // Returns once its own `started` is stored, so that is proven to happen while it runs.
        slow: async (_p: unknown, ctx: { id: string }) => {
          const subject = `${n.ns}.events.fold.${ctx.id}.started`;
          await eventually(
            async () => {
              if (!(await jsm.streams.getMessage(n.stream, { last_by_subj: subject }))) throw new Error(`nothing on ${subject} yet`);
            },
            { timeoutMs: 5_000 },
          );
          return { sawStarted: true };
        },
        chatty: (_p: unknown, ctx: { progress(v: number): void }) => {
          ctx.progress(50);
          return 1;
        },
      },
    });
    cleanups.push(() => worker.close({ force: true }));
    await worker.start();
    const [quick, slow, chatty] = await Promise.all(["quick", "slow", "chatty"].map((task) => queue.enqueue(task, null)));
    for (const j of [quick, slow, chatty]) expect((await queue.getResult(j!.id, { wait: true, timeoutMs: 15_000 })).status).toBe("completed");
    await worker.close(); // flushes what it still holds

    const q = await stored(n, quick!.id);
    expect(types(q)).toEqual(["completed", "enqueued"]);
    const end = q.find(([t]) => t === "completed")![1];
    expect(end.startedAt).toEqual(expect.any(String));
    expect(Date.parse(end.at) - Date.parse(end.startedAt!)).toBeGreaterThanOrEqual(0);
    expect(types(await stored(n, slow!.id))).toEqual(["completed", "enqueued", "started"]);
    expect((await stored(n, slow!.id)).find(([t]) => t === "completed")![1].startedAt).toBeUndefined();
    // progress lets the held `started` go first, so the job's events keep their order
    expect((await stored(n, chatty!.id)).map(([t]) => t).filter((t) => t !== "enqueued")).toEqual(["started", "progress", "completed"]);

    const history = await naqJson<{ attempts: number; events: NaqEvent[] }>(n, ["events", "history", quick!.id]);
    expect(history.attempts).toBe(1);
    expect(history.events.map((e) => e.type)).toEqual(["enqueued", "started", "completed"]);
    expect(history.events[1]).toMatchObject({ type: "started", at: end.startedAt, worker: worker.id, attempt: 1, task: "quick", queue: "fold" });

    const logs = await naq(n, ["--json", "job", "logs", quick!.id]);
    expect(logs.code, logs.stderr).toBe(0);
    const logged = logs.stdout.trim().split("\n").map((l) => JSON.parse(l) as NaqEvent);
    expect(logged.map((e) => e.type).sort()).toEqual(["completed", "enqueued", "started"]);

    const tail = await naq(n, ["--json", "events", "tail", "--type", "started", "--since", "all", "--count", "3"]);
    expect(tail.code, tail.stderr).toBe(0);
    const starts = tail.stdout.trim().split("\n").map((l) => JSON.parse(l) as NaqEvent);
    expect(starts.map((e) => e.type)).toEqual(["started", "started", "started"]);
    expect(starts.map((e) => e.jobId).sort()).toEqual([quick!.id, slow!.id, chatty!.id].sort());
    expect(await eventsApi.read({ types: ["started", "completed"] }, { config: n.config })).toHaveLength(6);
  });

  it("foldStarted 0 stores every started event on its own", async () => {
    const n = await freshNs();
    const config = unfolded(n.config);
    const queue = new Queue("plain", { config });
    cleanups.push(() => queue.close());
    const worker = new Worker({ config, queues: ["plain"], handlers: { quick: () => 1 } });
    cleanups.push(() => worker.close({ force: true }));
    await worker.start();
    const { id } = await queue.enqueue("quick", null);
    expect((await queue.getResult(id, { wait: true, timeoutMs: 15_000 })).status).toBe("completed");
    await worker.close();
    const list = await stored(n, id);
    expect(types(list)).toEqual(["completed", "enqueued", "started"]);
    expect(list.every(([, e]) => e.startedAt === undefined)).toBe(true);
  });
});

describe("events stats", () => {
  /** 300 jobs on two queues: 30 fail after 3 attempts (2 retries each), 270 complete in i ms. */
  function workload(prefix: string): EventInput[] {
    const out: EventInput[] = [];
    for (let i = 1; i <= 300; i++) {
      const q = i % 3 === 0 ? "sms" : "emails";
      const id = `${prefix}${i}`;
      const w = { worker: i % 2 ? "w1" : "w2", maxAttempts: 3 };
      out.push(job(q, id, "enqueued", { maxAttempts: 3 }));
      if (i % 10 === 0) {
        for (const attempt of [1, 2]) {
          out.push(job(q, id, "started", { ...w, attempt }));
          out.push(job(q, id, "retrying", { ...w, attempt, delayMs: 100, durationMs: 1, error: { name: "Error", message: "no" } }));
        }
        out.push(job(q, id, "started", { ...w, attempt: 3 }));
        out.push(job(q, id, "failed", { ...w, attempt: 3, reason: "failed after 3 attempts" }));
        out.push(job(q, id, "dead_lettered", { ...w, attempt: 3, reason: "failed after 3 attempts" }));
      } else {
        out.push(job(q, id, "started", { ...w, attempt: 1 }));
        out.push(job(q, id, "completed", { ...w, attempt: 1, durationMs: i }));
      }
    }
    return out;
  }

  interface StatsJson {
    window: { from: string; to: string; ms: number };
    total: { events: number; counts: Record<string, number>; completed: number; failed: number; failureRate: number; throughput: { perSecond: number } | null; durationMs: Record<string, number> };
    groups: Array<{ key: string; completed: number; failed: number; failureRate: number; counts: Record<string, number> }>;
    workers: { started: number; stopped: number; open: string[]; lost: string[] | null };
    read: { startSeq: number; endSeq: number; delivered: number };
  }

  it("300 jobs with 30 failures: exact counts, failure rate and percentiles, read from the window's start", async () => {
    const n = await freshNs();
    // Older events, then the window's start, then the workload: the window must not count (nor read) the old ones.
    const old = Array.from({ length: 200 }, (_, i) => job("emails", `old${i}`, "enqueued"));
    await emit(n, old);
    await new Promise((r) => setTimeout(r, 150));
    const boundary = new Date();
    await new Promise((r) => setTimeout(r, 150));
    const work = workload("j");
    await emit(n, [...work, { type: "worker_started", queue: "_worker", jobId: "ghost", worker: "ghost" }]);

    const s = await naqJson<StatsJson>(n, ["events", "stats", "--since", boundary.toISOString(), "--by", "queue"]);
    expect(s.total.counts).toMatchObject({
      enqueued: 300,
      started: 270 + 90,
      retrying: 60,
      completed: 270,
      failed: 30,
      dead_lettered: 30,
      worker_started: 1,
      worker_stopped: 0,
    });
    expect([s.total.completed, s.total.failed]).toEqual([270, 30]);
    expect(s.total.failureRate).toBeCloseTo(0.1, 12);
    const durations = Array.from({ length: 300 }, (_, i) => i + 1).filter((i) => i % 10 !== 0);
    expect(s.total.durationMs).toMatchObject({ count: 270, min: 1, max: 299, p50: durations[134], p95: durations[256], p99: durations[267] });
    expect(s.total.throughput?.perSecond).toBeGreaterThan(0);
    expect(s.window.from).toBe(boundary.toISOString());
    expect(s.groups.map((g) => [g.key, g.counts.enqueued, g.completed, g.failed])).toEqual([
      ["emails", 200, 180, 20],
      ["sms", 100, 90, 10],
    ]);
    // Read from the window's start: the 200 older events were never delivered.
    expect(s.read.startSeq).toBe(old.length + 1);
    expect(s.read.delivered).toBe(work.length + 1);
    // A worker that started, never stopped and has no heartbeat: gone without stopping.
    expect(s.workers).toEqual({ started: 1, stopped: 0, open: ["ghost"], lost: ["ghost"] });

    const all = await naqJson<StatsJson>(n, ["events", "stats", "--since", "all"]);
    expect(all.total.counts.enqueued).toBe(500);
    expect(all.read.delivered).toBe(old.length + work.length + 1);

    const human = await naq(n, ["events", "stats", "--since", boundary.toISOString(), "--by", "queue"]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/Failure rate\s+10\.0%/);
    expect(human.stdout).toMatch(/emails\s.*\s200\s.*\s180\s.*\s20\s/);
    expect(human.stdout).toMatch(/1 gone without stopping \(heartbeat missed\): ghost/);
    expect(await consumers(n)).toEqual([]);
  });

  it("an empty window is zeros, not an error; the default window is the last hour", async () => {
    const n = await freshNs();
    const s = await naqJson<StatsJson>(n, ["events", "stats"]);
    expect(s.total.events).toBe(0);
    expect(s.total.failureRate).toBeNull();
    expect(s.total.durationMs).toBeNull();
    expect(Date.parse(s.window.to) - Date.parse(s.window.from)).toBeGreaterThanOrEqual(3_600_000 - 1);
    expect(Date.parse(s.window.to) - Date.parse(s.window.from)).toBeLessThan(3_600_000 + 5_000);
  });
});

describe("library API and retention", () => {
  it("for await (const ev of events.tail(filter)) follows new events; history and read match the CLI", async () => {
    const n = await freshNs();
    const got: NaqEvent[] = [];
    const reading = (async () => {
      for await (const ev of eventsApi.tail({ queue: "emails", types: ["completed"] }, { config: n.config })) {
        got.push(ev);
        if (got.length === 2) break;
      }
    })();
    await tailConsumer(n);
    await emit(n, [job("emails", "A", "started"), job("emails", "A", "completed"), job("sms", "B", "completed"), job("emails", "C", "completed")]);
    await reading;
    expect(got.map((e) => e.jobId)).toEqual(["A", "C"]);
    expect(await consumers(n)).toEqual([]);

    expect((await eventsApi.history("A", { config: n.config })).map((e) => e.type)).toEqual(["started", "completed"]);
    expect(await eventsApi.read({ types: ["completed"] }, { config: n.config })).toHaveLength(3);
    expect((await eventsApi.stats({ since: "all" }, { config: n.config })).total.completed).toBe(3);
  });

  it("a tail survives a server restart: its consumer is recreated where it was, nothing replayed", async () => {
    // Its own server: this one is restarted. Nothing is delivered before the restart, the
    // case where an ordered consumer created with deliver_policy "new" would restart from
    // sequence 1 and replay the whole stream (nats.js 3.4); naq starts at a sequence.
    await using own = await startServer();
    const config = configSchema.parse({ connection: { servers: [own.url] }, namespace: "rs" });
    const admin = await ServiceManager.open(config);
    await (await admin.get(TopologyService)).init();
    const publisher = await admin.get(EventService);
    for (let i = 0; i < 5; i++) publisher.emit(job("q", `old${i}`, "enqueued"));
    await admin.close(); // flushes

    const reader = await ServiceManager.open(config, { longLived: true });
    cleanups.push(() => reader.close());
    const stream = (await reader.get(EventService)).tail();
    await stream.ready();
    const first = stream.consumerName;
    const got: string[] = [];
    const reading = (async () => {
      for await (const ev of stream) if (got.push(ev.jobId) === 2) break;
    })();
    await new Promise((r) => setTimeout(r, 300)); // the first pull is out
    await own.restart();
    const again = await ServiceManager.open(config);
    const publisher2 = await again.get(EventService);
    publisher2.emit(job("q", "after1", "enqueued"));
    publisher2.emit(job("q", "after2", "enqueued"));
    await again.close();
    await reading;
    expect(got).toEqual(["after1", "after2"]);
    expect(stream.consumerName).not.toBe(first);
  });

  it("a finite read ends even when the events it would end on vanish while it reads (purge, max age)", async () => {
    const n = await freshNs();
    await emit(n, Array.from({ length: 5_000 }, (_, i) => job("q", `j${i}`, "enqueued")));
    const scope = await ServiceManager.open(n.config);
    cleanups.push(() => scope.close());
    const stream = (await scope.get(EventService)).read();
    let count = 0;
    const started = Date.now();
    for await (const _ of stream) {
      if (count++ === 0) await jsm.streams.purge(n.stream); // the rest, and the end, are gone
    }
    expect(count).toBeGreaterThan(0);
    expect(count).toBeLessThan(5_000);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await consumers(n)).toEqual([]);
  });

  it("a signal ends a tail normally; closing the scope closes reads still open", async () => {
    const n = await freshNs();
    const scope = await ServiceManager.open(n.config);
    const service = await scope.get(EventService);
    const controller = new AbortController();
    const stream = service.tail({}, { signal: controller.signal });
    const done = (async () => {
      let count = 0;
      for await (const _ of stream) count++;
      return count;
    })();
    await tailConsumer(n);
    controller.abort();
    expect(await done).toBe(0);

    const open = service.tail({ queue: "x" });
    await open.ready();
    expect(await consumers(n)).toHaveLength(1);
    await scope.close();
    expect(await consumers(n)).toEqual([]);
  });

  it("the events stream keeps 7 days by default, and `naq stream info` shows its limits", async () => {
    const n = await freshNs();
    const info = await naqJson<{ maxAgeMs: number; maxBytes: number; retention: string }>(n, ["stream", "info", n.stream]);
    expect(info).toMatchObject({ maxAgeMs: 7 * 86_400_000, maxBytes: -1, retention: "limits" });
    const human = await naq(n, ["stream", "info", n.stream]);
    expect(human.stdout).toMatch(/Max age\s+7d/);
    expect(human.stdout).toMatch(/Max bytes\s+unlimited/);
  });
});
