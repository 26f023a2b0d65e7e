/**
 * The three systems the bench compares, behind one small interface so every scenario
 * does exactly the same thing to each:
 *
 *   naq     the library from ../dist (Queue.enqueue / enqueueMany, Worker with a noop handler;
 *           results in naq's result KV, events on its events stream, as in production)
 *   raw     nats.js v3 doing the minimal equivalent work (the floor): JetStream publish with a
 *           Msg-Id, pipelined with a window; a durable pull consumer, consume() + one awaited
 *           KV put of the result record + ack. Connected with noAsyncTraces: true.
 *   bullmq  BullMQ on the bench's own redis: Queue.add / addBulk, Worker with concurrency and
 *           its defaults (removeOnComplete: false, i.e. results stored).
 *
 *   const q = await openSystem("naq", { natsUrl, name: "b1", create: true });
 *   await q.enqueue({ payload: { i: 1 } });
 *   const w = await q.startWorker({ concurrency: 10, onDone: (id) => ... });
 *   await w.close(); await q.close(); await q.destroy();
 *
 * `name` isolates a run: the naq namespace, the raw stream/bucket prefix, the BullMQ queue name.
 */
import { connect, nuid, nanos } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, AckPolicy, DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";

export const SYSTEMS = ["naq", "raw", "bullmq"];
export const QUEUE = "bench";
const TASK = "noop";
/** Pipelining window of raw publish; the same as naq's enqueueMany default (256). */
export const RAW_WINDOW = 256;
const RESULT_TTL_MS = 7 * 86_400_000; // naq's default result TTL
const encoder = new TextEncoder();
const decoder = new TextDecoder();

let seq = 0;
/** A fresh run name (valid as a naq namespace, a stream prefix and a BullMQ queue name). */
export function runName(tag = "") {
  const base = `b${process.pid.toString(36)}${Date.now().toString(36).slice(-5)}${(seq++).toString(36)}${tag}`;
  return base.replace(/[^A-Za-z0-9_-]/g, "").slice(0, 32);
}

export async function openSystem(system, opts) {
  if (system === "naq") return openNaq(opts);
  if (system === "raw") return openRaw(opts);
  if (system === "bullmq") return openBullmq(opts);
  throw new Error(`unknown system ${system}`);
}

// ---------------------------------------------------------------------------------------
// naq

let naqModule;
async function naqLib() {
  naqModule ??= import("naq").catch((err) => {
    throw new Error(`cannot load naq (its package entry, dist/lib/naq.js; run \`npm run build\` first): ${err.message}`);
  });
  return naqModule;
}

export function naqConfig(natsUrl, namespace) {
  return { connection: { servers: [natsUrl] }, namespace };
}

async function openNaq({ natsUrl, name, create = false }) {
  const { Queue, Worker, QueueService, KVStoreService } = await naqLib();
  const config = naqConfig(natsUrl, name);
  const queue = new Queue(QUEUE, { config });
  const services = await queue.services();
  if (create) {
    await (await services.get(QueueService)).ensureJobsStream();
    await (await services.get(KVStoreService)).bucket(services.ctx.names.buckets.results);
  }
  const errors = [];
  return {
    system: "naq",
    name,
    errors,
    enqueue(job = {}) {
      return queue.enqueue(TASK, job.payload ?? null, job.id ? { id: job.id } : {});
    },
    async enqueueMany(jobs) {
      const res = await queue.enqueueMany(jobs.map((j) => ({ task: TASK, payload: j.payload ?? null, ...(j.id ? { id: j.id } : {}) })));
      const failed = res.find((r) => r instanceof Error);
      if (failed) throw failed;
      return res.length;
    },
    async startWorker({ concurrency, onStart, onDone }) {
      const worker = new Worker({
        queues: [QUEUE],
        handlers: {
          [TASK]: async (_payload, ctx) => {
            onStart?.(ctx.id);
            return null;
          },
        },
        concurrency,
        config,
        graceMs: 2_000,
      });
      worker.on("job", (info) => {
        if (info.outcome === "completed") onDone?.(info.id);
        else errors.push(new Error(`job ${info.id} ${info.outcome}: ${info.error ?? info.reason ?? ""}`));
      });
      worker.on("error", (err) => errors.push(err));
      await worker.start();
      return { pid: process.pid, close: () => worker.close({ graceMs: 2_000 }) };
    },
    close: () => queue.close(),
    destroy: () => deleteStreams(natsUrl, (s) => s.startsWith(`${name}_`) || s.startsWith(`KV_${name}_`)),
  };
}

// ---------------------------------------------------------------------------------------
// raw nats.js

/** The same fields naq's envelope has (so the bytes moved are comparable), without naq's code. */
function rawEnvelope(id, payload) {
  return {
    v: 1,
    id,
    queue: QUEUE,
    task: TASK,
    payload,
    enqueuedAt: new Date().toISOString(),
    attempts: 4,
    backoff: { type: "exponential", baseMs: 1000, maxMs: 300000, jitter: 0.1 },
  };
}

export async function rawConnect(natsUrl) {
  return connect({ servers: [natsUrl], noAsyncTraces: true, name: "naq-bench-raw" });
}

async function openRaw({ natsUrl, name, create = false }) {
  const nc = await rawConnect(natsUrl);
  const js = jetstream(nc);
  const stream = `${name}_jobs`;
  const subject = `${name}.queue.${QUEUE}`;
  const durable = `${name}_q_${QUEUE}`;
  const bucket = `${name}_results`;
  if (create) {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: stream,
      subjects: [`${name}.queue.*`],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: 1,
      discard: DiscardPolicy.New,
      duplicate_window: nanos(120_000),
    });
    await jsm.consumers.add(stream, {
      durable_name: durable,
      filter_subject: subject,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(30_000),
      max_ack_pending: 1_000,
      max_deliver: -1,
    });
    await new Kvm(js).create(bucket, { history: 1, ttl: RESULT_TTL_MS });
  }
  const kvp = new Kvm(js).open(bucket);
  const publish = (job) => {
    const id = job.id ?? nuid.next();
    return js.publish(subject, encoder.encode(JSON.stringify(rawEnvelope(id, job.payload ?? null))), { msgID: id });
  };
  const errors = [];
  return {
    system: "raw",
    name,
    errors,
    nc,
    enqueue: (job = {}) => publish(job),
    /** Pipelined publish: at most RAW_WINDOW acks outstanding. */
    async enqueueMany(jobs) {
      const inflight = new Set();
      for (const job of jobs) {
        const p = publish(job);
        inflight.add(p);
        void p.then(
          () => inflight.delete(p),
          () => inflight.delete(p),
        );
        if (inflight.size >= RAW_WINDOW) await Promise.race(inflight);
      }
      await Promise.all(inflight);
      return jobs.length;
    },
    /** consume() + decode + one awaited KV put of the result record + ack, `concurrency` at once. */
    async startWorker({ concurrency, onStart, onDone }) {
      const kv = await kvp;
      const consumer = await js.consumers.get(stream, durable);
      const messages = await consumer.consume({ max_messages: Math.max(1, concurrency) });
      let inflight = 0;
      let wake;
      const handle = async (m) => {
        const job = JSON.parse(decoder.decode(m.data));
        const startedAt = Date.now();
        onStart?.(job.id);
        const result = null; // the trivial job
        const finishedAt = Date.now();
        const record = {
          v: 1,
          id: job.id,
          queue: job.queue,
          task: job.task,
          status: "completed",
          attempts: m.info.deliveryCount,
          maxAttempts: job.attempts,
          enqueuedAt: job.enqueuedAt,
          startedAt: new Date(startedAt).toISOString(),
          finishedAt: new Date(finishedAt).toISOString(),
          durationMs: finishedAt - startedAt,
          worker: "raw",
          result,
        };
        await kv.put(job.id, encoder.encode(JSON.stringify(record)));
        m.ack();
        onDone?.(job.id);
      };
      const loop = (async () => {
        for await (const m of messages) {
          inflight++;
          handle(m)
            .catch((err) => errors.push(err))
            .finally(() => {
              inflight--;
              const w = wake;
              wake = undefined;
              w?.();
            });
          if (inflight >= concurrency) await new Promise((r) => (wake = r));
        }
      })();
      return {
        pid: process.pid,
        async close() {
          await messages.close();
          await loop.catch(() => undefined);
          while (inflight > 0) await new Promise((r) => setTimeout(r, 5));
        },
      };
    },
    close: () => nc.drain(),
    destroy: () => deleteStreams(natsUrl, (s) => s === stream || s === `KV_${bucket}`),
  };
}

/** Deletes the streams whose names match (KV buckets are streams too). */
async function deleteStreams(natsUrl, match) {
  const nc = await rawConnect(natsUrl);
  try {
    const jsm = await jetstreamManager(nc);
    const names = [];
    for await (const s of jsm.streams.names()) if (match(s)) names.push(s);
    for (const s of names) await jsm.streams.delete(s).catch(() => undefined);
  } finally {
    await nc.close();
  }
}

// ---------------------------------------------------------------------------------------
// BullMQ

let bullModules;
export async function bullLibs() {
  bullModules ??= Promise.all([import("bullmq"), import("ioredis")]).then(([bullmq, ioredis]) => ({ bullmq, Redis: ioredis.Redis ?? ioredis.default }));
  return bullModules;
}

async function openBullmq({ redisUrl, name }) {
  if (!redisUrl) throw new Error("BullMQ needs a redis URL");
  const { bullmq, Redis } = await bullLibs();
  const conns = [];
  const conn = () => {
    const c = new Redis(redisUrl, { maxRetriesPerRequest: null });
    conns.push(c);
    return c;
  };
  const queue = new bullmq.Queue(name, { connection: conn() });
  await queue.waitUntilReady();
  const errors = [];
  return {
    system: "bullmq",
    name,
    errors,
    enqueue: (job = {}) => queue.add(TASK, job.payload ?? null, job.id ? { jobId: job.id } : undefined),
    async enqueueMany(jobs) {
      await queue.addBulk(jobs.map((j) => ({ name: TASK, data: j.payload ?? null, ...(j.id ? { opts: { jobId: j.id } } : {}) })));
      return jobs.length;
    },
    async startWorker({ concurrency, onStart, onDone }) {
      const connection = conn();
      const worker = new bullmq.Worker(
        name,
        async (job) => {
          onStart?.(job.id);
          return null;
        },
        { connection, concurrency, autorun: false },
      );
      worker.on("completed", (job) => onDone?.(job.id));
      worker.on("failed", (job, err) => errors.push(new Error(`job ${job?.id} failed: ${err?.message}`)));
      worker.on("error", (err) => errors.push(err));
      await worker.waitUntilReady();
      void worker.run().catch((err) => errors.push(err));
      return {
        pid: process.pid,
        async close() {
          await worker.close();
          connection.disconnect();
        },
      };
    },
    async close() {
      await queue.close();
      for (const c of conns) c.disconnect();
    },
    async destroy() {
      const q = new bullmq.Queue(name, { connection: conn() });
      try {
        await q.obliterate({ force: true });
      } finally {
        await q.close();
        for (const c of conns) c.disconnect();
      }
    },
  };
}
