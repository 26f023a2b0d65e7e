/**
 * WorkerService: worker heartbeats in a KV bucket whose TTL is a few heartbeats, so a
 * worker that dies disappears by itself; register, beat, deregister, list.
 */
import { ValidationError } from "../model/errors.js";
import { JOB_VERSION } from "../model/job.js";
import { versionedDoc } from "../model/records.js";
import { BaseService, type ServiceContext } from "./base.js";
import { KVStoreService } from "./kv.js";

export interface WorkerInfo {
  v: typeof JOB_VERSION;
  id: string;
  name?: string;
  host: string;
  pid: number;
  queues: string[];
  concurrency: number;
  status: "starting" | "running" | "paused" | "stopping";
  running: string[];
  /** Jobs running per queue (the ids in `running` do not say which queue they came from). */
  runningByQueue?: Record<string, number>;
  /** Queues of this worker that are paused (it does not fetch from them). */
  paused?: string[];
  /** Commands this worker runs as `exec` jobs (its --allow-exec list), if any. */
  allowExec?: string[];
  processed: number;
  failed: number;
  startedAt: string;
  lastHeartbeat: string;
  version: string;
}

/** Checks a heartbeat read back from `<ns>_workers`. */
export function checkWorkerInfo(value: unknown, where: string): WorkerInfo {
  const f = versionedDoc(value, where);
  f.str("id");
  f.optStr("name");
  f.str("host");
  f.num("pid");
  f.strList("queues");
  f.num("concurrency");
  f.oneOf("status", ["starting", "running", "paused", "stopping"]);
  f.strList("running");
  f.optRecordOf("runningByQueue", "an object of numbers", (n) => typeof n === "number");
  f.optStrList("paused");
  f.optStrList("allowExec");
  f.num("processed");
  f.num("failed");
  f.str("startedAt");
  f.str("lastHeartbeat");
  f.str("version");
  return f.doc as unknown as WorkerInfo;
}

export class WorkerService extends BaseService {
  static readonly deps = [KVStoreService] as const;

  constructor(
    ctx: ServiceContext,
    private readonly kv: KVStoreService,
  ) {
    super(ctx);
  }

  private get bucket(): string {
    return this.names.buckets.workers;
  }

  /** Writes the worker's heartbeat (registering it if new). */
  async heartbeat(info: WorkerInfo): Promise<void> {
    await this.kv.putJson(this.bucket, info.id, { ...info, lastHeartbeat: new Date().toISOString() });
  }

  register(info: WorkerInfo): Promise<void> {
    return this.heartbeat(info);
  }

  async deregister(id: string): Promise<void> {
    await this.kv.delete(this.bucket, id);
  }

  async get(id: string): Promise<WorkerInfo | undefined> {
    return (await this.kv.getJson<WorkerInfo>(this.bucket, id, checkWorkerInfo))?.value;
  }

  /** Live workers (their heartbeat has not expired), by id. */
  async list(): Promise<WorkerInfo[]> {
    const keys = await this.kv.keys(this.bucket);
    // An unreadable heartbeat (corrupted, not naq's) is left out: it expires with the bucket's TTL.
    const infos = await Promise.all(
      keys.map((k) =>
        this.get(k).catch((err: unknown) => {
          if (err instanceof ValidationError) return undefined;
          throw err;
        }),
      ),
    );
    return infos.filter((w): w is WorkerInfo => w !== undefined).sort((a, b) => a.id.localeCompare(b.id));
  }
}
