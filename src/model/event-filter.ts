/**
 * Reading events: what a reader asks for (EventFilter), which server-side subject filters
 * serve it (planEventRead), what is left to check on the client (matchesEvent), and how a
 * stored message becomes a NaqEvent (decodeEvent). Pure: the EventService does the I/O.
 *
 * The subject `<ns>.events.<queue>.<jobId>.<type>` carries the queue, the job id and the
 * type, so those are filtered by the server. Task and worker are only in the body, so
 * they are filtered here. nats-server before 2.10 takes one filter subject per consumer:
 * several types then become one wider subject (type wildcard) plus a client-side check.
 */
import { parseDuration } from "./duration.js";
import { ValidationError } from "./errors.js";
import { EVENT_TYPES, EVENT_VERSION, FOLDS_STARTED, JobEventType, type EventType, type NaqEvent } from "./events.js";
import type { Names } from "./naming.js";
import { checkEvent } from "./records.js";

/**
 * Where a read starts: `"new"` (only events stored from now on), `"all"` (everything the
 * stream still holds), or a time (the first event stored at or after it).
 */
export type EventStart = "new" | "all" | Date;

export interface EventFilter {
  /** Server-side. naq's own queues: `_worker` (worker lifecycle events), `_schedule` (schedules). */
  queue?: string;
  /** Server-side. For worker events this is the worker id. */
  jobId?: string;
  /** Server-side (one type; several on nats-server 2.10+, else client-side). */
  types?: readonly EventType[];
  /** Client-side. */
  task?: string;
  /** Client-side: events published by this worker (job events and its own lifecycle events). */
  worker?: string;
  /** Default: `"new"` for tail, `"all"` for history and finite reads. */
  since?: EventStart;
}

export interface EventReadPlan {
  /** Filter subjects for the consumer (one, or one per type where the server takes several). */
  subjects: string[];
  /** Fields the server filters on. */
  server: Array<"queue" | "jobId" | "type">;
  /** Fields checked on each delivered event. */
  client: Array<"type" | "task" | "worker">;
}

export const SINCE_HINT = 'a duration back from now (30s, 10m, 2h, 1d), an ISO 8601 time (2025-01-15T09:00:00Z), "all" or "new"';

/** Parses `--since`: a duration back from `now`, an ISO 8601 time, `all`, or `new`/`now`. */
export function parseSince(input: string, now: number = Date.now(), field = "--since"): EventStart {
  const text = input.trim();
  const lower = text.toLowerCase();
  if (lower === "all" || lower === "beginning") return "all";
  if (lower === "new" || lower === "now") return "new";
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const ms = Date.parse(text);
    if (Number.isFinite(ms)) return new Date(ms);
  } else if (text !== "" && !/^\d+$/.test(text)) {
    // A bare number is ambiguous (ms? a year? a sequence?): accepted only with a unit.
    try {
      return new Date(now - parseDuration(text, field));
    } catch {
      // fall through to the one error below
    }
  }
  throw new ValidationError(`${field} "${input}" is not valid: use ${SINCE_HINT}`, field);
}

/** Normalizes and checks event type names (`dead-lettered` = `dead_lettered`); removes repeats. */
export function parseEventTypes(values: readonly string[], field = "--type"): EventType[] {
  const out: EventType[] = [];
  for (const raw of values) {
    const t = raw.trim().toLowerCase().replace(/-/g, "_");
    if (!(EVENT_TYPES as readonly string[]).includes(t)) {
      throw new ValidationError(`${field} "${raw}" is not an event type: use one or more of ${EVENT_TYPES.join(", ")}`, field);
    }
    if (!out.includes(t as EventType)) out.push(t as EventType);
  }
  return out;
}

/**
 * The consumer filter subjects for `filter`, and what is left to check per event. A
 * `started` folded into its attempt's end event is stored on that event's subject, so
 * reading `started` reads `completed`, `failed` and `retrying` too and checks the type here.
 */
export function planEventRead(names: Names, filter: EventFilter, multiFilter: boolean): EventReadPlan {
  const types = filter.types && filter.types.length > 0 ? [...new Set(filter.types)] : undefined;
  const serverTypes = types?.includes(JobEventType.started) ? [...new Set([...types, ...FOLDS_STARTED])] : types;
  const base = { queue: filter.queue, jobId: filter.jobId };
  const server: EventReadPlan["server"] = [];
  if (filter.queue) server.push("queue");
  if (filter.jobId) server.push("jobId");
  const client: EventReadPlan["client"] = [];
  let subjects: string[];
  if (!serverTypes || !types) {
    subjects = [names.eventFilter(base)];
  } else if (serverTypes.length === 1 || multiFilter) {
    // Distinct types give non-overlapping subjects, which 2.10+ requires of filter_subjects.
    subjects = serverTypes.map((type) => names.eventFilter({ ...base, type }));
    server.push("type");
    if (serverTypes.length > types.length) client.push("type");
  } else {
    subjects = [names.eventFilter(base)];
    client.push("type");
  }
  if (filter.task) client.push("task");
  if (filter.worker) client.push("worker");
  return { subjects, server, client };
}

/** Whether `ev` passes every part of `filter` (server-side parts are checked again: cheap, and safe). */
export function matchesEvent(ev: NaqEvent, filter: EventFilter): boolean {
  if (filter.queue !== undefined && ev.queue !== filter.queue) return false;
  if (filter.jobId !== undefined && ev.jobId !== filter.jobId) return false;
  if (filter.types && filter.types.length > 0 && !filter.types.includes(ev.type)) return false;
  if (filter.task !== undefined && ev.task !== filter.task) return false;
  if (filter.worker !== undefined && ev.worker !== filter.worker) return false;
  return true;
}

const decoder = new TextDecoder();

/**
 * A stored event, or undefined when the message is not one (not JSON, not an object).
 * The subject is what the server filtered on, so its queue, job id and type win over the
 * body's; a body without `at` gets the time the server stored the message.
 */
export function decodeEvent(names: Names, subject: string, data: Uint8Array, storedAt?: Date): NaqEvent | undefined {
  const prefix = `${names.namespace}.events.`;
  if (!subject.startsWith(prefix)) return undefined;
  const tokens = subject.slice(prefix.length).split(".");
  if (tokens.length !== 3) return undefined;
  const [queue, jobId, type] = tokens as [string, string, string];
  let body: unknown;
  try {
    body = JSON.parse(decoder.decode(data));
  } catch {
    return undefined;
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) return undefined;
  const b = body as Partial<NaqEvent>;
  const ev = {
    ...b,
    v: typeof b.v === "number" ? b.v : EVENT_VERSION,
    type: type as EventType,
    at: typeof b.at === "string" ? b.at : (storedAt ?? new Date(0)).toISOString(),
    queue,
    jobId,
  } as NaqEvent;
  try {
    return checkEvent(ev, subject); // optional fields of the wrong type (error: "x", attempt: "2"): not an event
  } catch {
    return undefined;
  }
}

const ENDS_A_RUN: ReadonlySet<EventType> = new Set([JobEventType.completed, JobEventType.failed, JobEventType.deadLettered, JobEventType.cancelled]);

/**
 * One job's events in the order of its life: the order the stream stored them, except
 * for one race. A producer publishes `enqueued` only once the server has confirmed the
 * job, so a fast worker's first events of that run can be stored before it. Each
 * `enqueued` event is therefore placed before the events stored ahead of it since the
 * job's previous end (completed, failed, dead_lettered, cancelled) or previous enqueue.
 */
export function orderJobHistory(events: readonly NaqEvent[]): NaqEvent[] {
  const out: NaqEvent[] = [];
  for (const e of events) {
    if (e.type !== JobEventType.enqueued) {
      out.push(e);
      continue;
    }
    let at = out.length;
    while (at > 0) {
      const before = (out[at - 1] as NaqEvent).type;
      if (ENDS_A_RUN.has(before) || before === JobEventType.enqueued) break;
      at--;
    }
    out.splice(at, 0, e);
  }
  return out;
}
