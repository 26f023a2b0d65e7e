/**
 * Helpers of the cluster-failover and scheduler-stop scenarios: worker processes
 * (harness.ts's spawnWorker, awaited until ready), and a ledger that is read as it grows, so a scenario can
 * tell when a given job first ran.
 */
import type { ServiceManager } from "../../../src/services/base.js";
import { ConnectionService } from "../../../src/services/connection.js";
import { spawnWorker, type WorkerChild, type WorkerSpec } from "./harness.js";
import { LedgerReader, type LedgerEntry } from "./ledger.js";

/** A worker-child.mjs process (harness.ts), resolved once it is pulling jobs. */
export async function startWorkerProc(spec: WorkerSpec): Promise<WorkerChild> {
  const worker = spawnWorker(spec);
  await worker.ready;
  return worker;
}

/**
 * Reads a ledger file as it grows (polling every `everyMs`) and hands each new line to
 * `onLine`, with `at` (when the worker wrote it) and `seenAt` (when this process read it).
 */
export class LedgerTail {
  private readonly reader: LedgerReader;
  private readonly timer: NodeJS.Timeout;

  constructor(
    file: string,
    private readonly onLine: (line: LedgerEntry & { seenAt: number }) => void = () => undefined,
    everyMs = 50,
  ) {
    this.reader = new LedgerReader(file);
    this.timer = setInterval(() => this.poll(), everyMs);
    this.timer.unref();
  }

  /** Every line read so far. */
  get lines(): readonly LedgerEntry[] {
    return this.reader.entries;
  }

  poll(): void {
    const seenAt = Date.now();
    for (const e of this.reader.poll()) this.onLine({ ...e, seenAt });
  }

  stop(): void {
    clearInterval(this.timer);
    this.poll();
  }
}

/**
 * Events stored per job id for one queue and event type, read from the events stream's
 * per-subject counts (`<ns>.events.<queue>.<id>.<type>`): a stream info with a subject
 * filter, paged by nats.js; no consumer, so nothing can cut the read short.
 */
export async function eventCounts(services: ServiceManager, queue: string, type: string): Promise<Map<string, number>> {
  const names = services.ctx.names;
  const jsm = await (await services.get(ConnectionService)).manager();
  const si = await jsm.streams.info(names.eventsStream, { subjects_filter: names.eventFilter({ queue, type }) });
  const out = new Map<string, number>();
  const prefix = `${names.namespace}.events.${queue}.`;
  for (const [subject, n] of Object.entries(si.state.subjects ?? {})) {
    const id = subject.slice(prefix.length, subject.length - type.length - 1);
    out.set(id, (out.get(id) ?? 0) + n);
  }
  return out;
}
