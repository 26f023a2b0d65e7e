/**
 * Cleanup of `naq bench`: removes everything a run made on its throwaway queue, also after
 * a failure or Ctrl-C: the queue's consumer and stored jobs, its events and the worker's,
 * dead letters of the queue, the jobs' result records and the worker's heartbeat entry.
 */
import { WORKER_EVENTS_QUEUE } from "../../model/events.js";
import type { ServiceManager } from "../../services/base.js";
import { EventService } from "../../services/events.js";
import { KVStoreService } from "../../services/kv.js";
import { QueueService } from "../../services/queues.js";
import { StreamService } from "../../services/streams.js";
import type { Worker } from "../../worker/worker.js";

export interface BenchCleanup {
  /** The queue's durable consumer was deleted. */
  consumer: boolean;
  /** Jobs still stored for the queue (none after a complete run). */
  jobs: number;
  events: number;
  deadLetters: number;
  /** Messages of the result records (and of the worker's heartbeat entry). */
  records: number;
  worker?: string;
}

/** Everything the run made that cleanup needs to find, filled in as it goes. */
export interface BenchTrace {
  ids: string[];
  worker?: Worker;
}

/** Removes everything the run left: see the file comment. Runs after a failure too. */
export async function cleanupBench(services: ServiceManager, queueName: string, trace: BenchTrace): Promise<BenchCleanup> {
  const worker = trace.worker;
  if (worker) await worker.close({ graceMs: 5_000 });
  const names = services.ctx.names;
  const [events, queues, streams, kv] = await Promise.all([
    services.get(EventService),
    services.get(QueueService),
    services.get(StreamService),
    services.get(KVStoreService),
  ]);
  // This scope's `enqueued` events: sent before purging them.
  await events.flush();
  const { consumer, jobs } = await queues.discard(queueName);
  const purgeAll = async (stream: string, subjects: string[]): Promise<number> => {
    if (!(await streams.find(stream))) return 0;
    let n = 0;
    // Events are plain publishes: one sent just before may be stored just after a purge.
    for (let attempt = 0; attempt < 3; attempt++) {
      for (const subject of subjects) n += await streams.purge(stream, { subject });
      await new Promise((r) => setTimeout(r, 200));
      let left = 0;
      for (const subject of subjects) left += await streams.countSubject(stream, subject);
      if (left === 0) break;
    }
    return n;
  };
  const eventSubjects = [names.eventFilter({ queue: queueName })];
  if (worker) eventSubjects.push(names.eventFilter({ queue: WORKER_EVENTS_QUEUE, jobId: worker.id }));
  const removedEvents = await purgeAll(names.eventsStream, eventSubjects);
  const deadLetters = await purgeAll(names.deadLetterStream, [names.deadLetterFilter({ queue: queueName })]);
  let records = trace.ids.length > 0 ? await kv.removeKeys(names.buckets.results, trace.ids) : 0;
  if (worker) records += await kv.removeKeys(names.buckets.workers, [worker.id]);
  return { consumer, jobs, events: removedEvents, deadLetters, records, ...(worker ? { worker: worker.id } : {}) };
}
