/** naq's library API. See README "TypeScript library". */
export { Queue, type QueueOptions, type JobOptions } from "./queue.js";
export { Worker, type WorkerOptions, type WorkerEvents, type JobEventInfo, type CloseOptions } from "./worker/worker.js";
export type { WorkerHealth } from "./worker/health.js";
export type { Handler, Handlers, JobContext } from "./worker/handlers.js";
export { ServiceManager, BaseService, type ServiceContext, type Logger } from "./services/base.js";
export { ConnectionService } from "./services/connection.js";
export { StreamService } from "./services/streams.js";
export { KVStoreService } from "./services/kv.js";
export { JobService, type EnqueueResult, type JobState, type DeadLetter } from "./services/jobs.js";
export { EventService, type EventInput, type ReadOptions, type StatsOptions, type StatsResult } from "./services/events.js";
export { events, type EventsOptions } from "./events.js";
export { EventStream } from "./services/event-stream.js";
export { parseSince, type EventFilter, type EventStart } from "./model/event-filter.js";
export type { EventStats, GroupStats, DurationSummary, StatsGroupBy } from "./model/stats.js";
export { WorkerService, type WorkerInfo } from "./services/workers.js";
export { QueueService, type QueueSummary, type QueueDetails } from "./services/queues.js";
export { ControlService, type PauseFlag, type StopRequest } from "./services/control.js";
export { EXEC_TASK, type ExecPayload, type ExecResult } from "./model/exec.js";
export { BackgroundTask } from "./services/background-task.js";
export { loadConfig, type LoadedConfig } from "./config/load.js";
export { configSchema, defaultConfig, type NaqConfig, type NaqConfigInput } from "./config/schema.js";
export * from "./model/errors.js";
export { parseDuration, formatDuration } from "./model/duration.js";
export { parseBackoff, type Backoff } from "./model/backoff.js";
export { JobStatus, type JobEnvelope, type JobRecord, type EnqueueInput, type JsonValue } from "./model/job.js";
export { EVENT_TYPES, JobEventType, WorkerEventType, ScheduleEventType, type EventType, type NaqEvent } from "./model/events.js";
export { Scheduler, type SchedulerOptions, type SchedulerEvents, type SchedulerCloseOptions, type SchedulerHealth } from "./scheduler/scheduler.js";
export { DueScan, type DueScanOptions } from "./scheduler/due-scan.js";
export { LeaderLease, LeaseLostError } from "./scheduler/lease.js";
export {
  SchedulerService,
  type ScheduledJob,
  type ScheduleInfo,
  type FireInfo,
  type SkipInfo,
  type TickReport,
  type LeaseGuard,
} from "./services/scheduler.js";
export { MisfirePolicy, type ScheduleInput, type ScheduleDoc, type ScheduleStatus, type Recurrence } from "./model/schedule.js";
export { parseTime, compileCron } from "./model/cron.js";
