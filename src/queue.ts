/**
 * Queue: the library API for producers. Opens its own service scope on first use and
 * closes it in close() (or `await using queue = new Queue("emails")`).
 *
 *   const emails = new Queue("emails");
 *   const { id } = await emails.enqueue("send-welcome", { user: 42 }, { retries: 5 });
 *   const record = await emails.getResult(id, { wait: true, timeoutMs: 30_000 });
 */
import { loadConfig } from "./config/load.js";
import { configSchema, type NaqConfig, type NaqConfigInput } from "./config/schema.js";
import { DEFAULT_QUEUE, type EnqueueInput, type JobRecord, type JsonValue } from "./model/job.js";
import { validateQueueName } from "./model/naming.js";
import { ServiceManager, type Logger } from "./services/base.js";
import { JobService, type EnqueueResult, type JobState } from "./services/jobs.js";
import { SchedulerService, type ScheduledJob } from "./services/scheduler.js";
import { parseDuration } from "./model/duration.js";
import { parseTime } from "./model/cron.js";

export interface QueueOptions {
  /** Validated config, or input to validate; default: loaded like the CLI does (files + env). */
  config?: NaqConfig | NaqConfigInput;
  /** Share an existing scope instead of opening one (it is then not closed by close()). */
  services?: ServiceManager;
  logger?: Logger;
}

/** Everything enqueue accepts besides the task, payload and queue. */
export type JobOptions = Omit<EnqueueInput, "task" | "payload" | "queue">;

export class Queue implements AsyncDisposable {
  readonly name: string;
  private scope?: Promise<ServiceManager>;
  private readonly owned: boolean;

  constructor(
    name: string = DEFAULT_QUEUE,
    private readonly opts: QueueOptions = {},
  ) {
    this.name = validateQueueName(name);
    this.owned = opts.services === undefined;
    if (opts.services) this.scope = Promise.resolve(opts.services);
  }

  /** The service scope this queue uses (for advanced use: StreamService, KVStoreService...). */
  services(): Promise<ServiceManager> {
    this.scope ??= (async () => {
      const cfg = this.opts.config;
      const config = cfg === undefined ? (await loadConfig()).config : configSchema.parse(cfg);
      return ServiceManager.open(config, { logger: this.opts.logger, longLived: true });
    })();
    return this.scope;
  }

  private async jobs(): Promise<JobService> {
    return (await this.services()).get(JobService);
  }

  enqueue(task: string, payload: JsonValue = null, options: JobOptions = {}): Promise<EnqueueResult> {
    return this.jobs().then((j) => j.enqueue({ ...options, task, payload, queue: this.name }));
  }

  /**
   * Enqueues a job to run `delay` from now (ms, or a duration such as "10m"). Its status is
   * `scheduled` until a running scheduler (`naq scheduler start`, or a Scheduler) fires it.
   */
  enqueueIn(delay: number | string, task: string, payload: JsonValue = null, options: JobOptions = {}): Promise<ScheduledJob> {
    const ms = parseDuration(delay, "delay");
    return this.enqueueAt(Date.now() + ms, task, payload, options);
  }

  /** Enqueues a job to run at `at` (a Date, ms since the epoch, or ISO 8601 with an offset); at once if that has passed. */
  async enqueueAt(at: Date | number | string, task: string, payload: JsonValue = null, options: JobOptions = {}): Promise<ScheduledJob> {
    const ms = typeof at === "string" ? parseTime(at, { field: "at" }) : at instanceof Date ? at.getTime() : at;
    const scheduler = await (await this.services()).get(SchedulerService);
    return scheduler.scheduleJob({ ...options, task, payload, queue: this.name }, ms);
  }

  /** Pipelined enqueue of many jobs; results in input order (an Error where one failed). */
  async enqueueMany(
    jobs: Iterable<Omit<EnqueueInput, "queue"> & { queue?: string }>,
    opts: { window?: number } = {},
  ): Promise<Array<EnqueueResult | Error>> {
    const service = await this.jobs();
    return service.enqueueMany(jobs, { ...opts, queue: this.name });
  }

  getJob(id: string): Promise<JobState> {
    return this.jobs().then((j) => j.status(id));
  }

  getResult(id: string, opts: { wait?: boolean; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<JobRecord> {
    return this.jobs().then((j) => j.result(id, opts));
  }

  /** Cancels a job; a delayed job is also taken off the schedule. */
  async cancel(id: string, reason?: string): Promise<JobRecord> {
    return (await (await this.services()).get(SchedulerService)).cancel(id, reason);
  }

  async close(): Promise<void> {
    if (this.owned && this.scope) await (await this.scope).close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
