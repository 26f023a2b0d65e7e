/**
 * Every stream and KV bucket naq needs, as plain specs derived from config and names.
 * StreamService/KVStoreService turn these into JetStream configs; `naq stream init` and
 * `naq doctor` compare them against what the server has.
 */
import type { NaqConfig } from "../config/schema.js";
import type { Names } from "./naming.js";

export type Retention = "limits" | "workqueue" | "interest";
export type Storage = "file" | "memory";

export interface StreamSpec {
  name: string;
  /** What the stream is for, shown by `stream list` and `doctor`. */
  role: string;
  subjects: string[];
  retention: Retention;
  storage: Storage;
  replicas: number;
  /** 0 = keep forever. */
  maxAgeMs: number;
  /** -1 = no limit. */
  maxBytes: number;
  duplicateWindowMs: number;
  maxMsgsPerSubject?: number;
  maxMsgSize?: number;
  discard?: "old" | "new";
  allowRollup?: boolean;
  denyDelete?: boolean;
  allowDirect?: boolean;
}

export interface BucketSpec {
  bucket: string;
  role: string;
  history: number;
  /** Entries expire this long after their last write; 0 = never. */
  ttlMs: number;
  replicas: number;
  storage: Storage;
}

export interface Topology {
  streams: StreamSpec[];
  buckets: BucketSpec[];
}

const TWO_MINUTES = 120_000;

/** A duplicate window may not exceed the stream's max age. */
export function duplicateWindowFor(maxAgeMs: number, wanted = TWO_MINUTES): number {
  return maxAgeMs > 0 ? Math.min(maxAgeMs, wanted) : wanted;
}

/** The JetStream stream that backs KV bucket `bucket`. */
export const kvStreamName = (bucket: string): string => `KV_${bucket}`;

/** The stream behind a bucket, with the settings nats.js KV clients expect. */
export function bucketStreamSpec(b: BucketSpec): StreamSpec {
  return {
    name: kvStreamName(b.bucket),
    role: b.role,
    subjects: [`$KV.${b.bucket}.>`],
    retention: "limits",
    storage: b.storage,
    replicas: b.replicas,
    maxAgeMs: b.ttlMs,
    maxBytes: -1,
    duplicateWindowMs: duplicateWindowFor(b.ttlMs),
    maxMsgsPerSubject: b.history,
    discard: "new",
    allowRollup: true,
    denyDelete: true,
    allowDirect: true,
  };
}

export function topology(config: NaqConfig, names: Names): Topology {
  const { streams, kv } = config;
  const replicas = streams.replicas;
  const kvReplicas = kv.replicas ?? replicas;
  const storage = streams.storage;
  const bucket = (name: string, role: string, ttlMs: number, history = 1): BucketSpec => ({
    bucket: name,
    role,
    history,
    ttlMs,
    replicas: kvReplicas,
    storage,
  });
  return {
    streams: [
      {
        name: names.jobsStream,
        role: "jobs waiting to run, one subject per queue (work-queue retention)",
        subjects: [names.allQueuesSubject],
        retention: "workqueue",
        storage,
        replicas,
        maxAgeMs: streams.jobs.maxAge,
        maxBytes: streams.jobs.maxBytes,
        duplicateWindowMs: duplicateWindowFor(streams.jobs.maxAge, streams.jobs.duplicateWindow),
        discard: "new",
      },
      {
        name: names.eventsStream,
        role: "every job and worker event (limits retention; reading never deletes)",
        subjects: [names.allEventsSubject],
        retention: "limits",
        storage,
        replicas,
        maxAgeMs: streams.events.maxAge,
        maxBytes: streams.events.maxBytes,
        duplicateWindowMs: duplicateWindowFor(streams.events.maxAge),
        discard: "old",
      },
      {
        name: names.deadLetterStream,
        role: "jobs that exhausted their attempts or could not be decoded",
        subjects: [names.allDeadLetterSubject],
        retention: "limits",
        storage,
        replicas,
        maxAgeMs: streams.deadLetter.maxAge,
        maxBytes: streams.deadLetter.maxBytes,
        duplicateWindowMs: duplicateWindowFor(streams.deadLetter.maxAge),
        discard: "old",
      },
    ],
    buckets: [
      bucket(names.buckets.results, "terminal job records: status, result or error, attempts", kv.resultTtl),
      bucket(names.buckets.workers, "worker heartbeats", kv.workerTtl),
      bucket(names.buckets.schedules, "delayed and recurring schedules", 0),
      bucket(names.buckets.leader, "scheduler leader lease", kv.leaderTtl),
      bucket(names.buckets.control, "queue control flags (pause) and worker stop requests", 0),
      bucket(names.buckets.cancels, "cancellation requests workers watch (expire with results)", kv.resultTtl),
    ],
  };
}
