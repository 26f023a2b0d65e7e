/**
 * Every stream, subject, consumer and bucket name naq uses comes from here, derived
 * from the namespace, so several apps can share one NATS account. See docs/wire-format.md.
 */
import { ValidationError } from "./errors.js";

/** A subject token naq accepts for queue names, namespaces and ids: no dots, spaces or wildcards. */
const TOKEN = /^[A-Za-z0-9_-]+$/;
export const TOKEN_HINT = "letters, digits, '_' and '-' only (no dots, spaces, '*' or '>'), 1 to 128 characters";

export function validateToken(value: string, field: string, max = 128): string {
  if (typeof value !== "string" || value.length === 0 || value.length > max || !TOKEN.test(value)) {
    const shown = typeof value === "string" ? JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value) : String(value);
    throw new ValidationError(`${field} ${shown} is not valid: use ${TOKEN_HINT.replace("128", String(max))}`, field);
  }
  return value;
}

const QUEUE_MAX = 64;
export const validateQueueName = (q: string): string => {
  validateToken(q, "queue", QUEUE_MAX);
  if (q.startsWith("_")) throw new ValidationError(`queue "${q}" is not valid: names starting with '_' are reserved for naq`, "queue");
  return q;
};
export const validateNamespace = (ns: string): string => validateToken(ns, "namespace", 32);

export interface Names {
  readonly namespace: string;
  readonly jobsStream: string;
  readonly eventsStream: string;
  readonly deadLetterStream: string;
  readonly buckets: {
    readonly results: string;
    readonly workers: string;
    readonly schedules: string;
    readonly leader: string;
    readonly control: string;
    readonly cancels: string;
  };
  /** Subject a job for `queue` is published on. */
  queueSubject(queue: string): string;
  /** Wildcard covering every queue's subject. */
  readonly allQueuesSubject: string;
  /** Durable pull consumer shared by all workers of `queue`. */
  queueConsumer(queue: string): string;
  /** Queue name from a job subject, or undefined when it is not one. */
  queueFromSubject(subject: string): string | undefined;
  /** Subject of one event; `queue` may be the reserved `_worker` for worker events. */
  eventSubject(queue: string, jobId: string, type: string): string;
  /** Filter for events: any part left undefined is a wildcard (an empty string is refused, never a wildcard). */
  eventFilter(filter: { queue?: string; jobId?: string; type?: string }): string;
  readonly allEventsSubject: string;
  /** Dead-letter entry of one job: the job id is in the subject, so lookups are direct. */
  deadLetterSubject(queue: string, jobId: string): string;
  deadLetterFilter(filter: { queue?: string; jobId?: string }): string;
  readonly allDeadLetterSubject: string;
}

export function namesFor(namespace = "naq"): Names {
  const ns = validateNamespace(namespace);
  const queuePrefix = `${ns}.queue.`;
  return {
    namespace: ns,
    jobsStream: `${ns}_jobs`,
    eventsStream: `${ns}_events`,
    deadLetterStream: `${ns}_dlq`,
    buckets: {
      results: `${ns}_results`,
      workers: `${ns}_workers`,
      schedules: `${ns}_schedules`,
      leader: `${ns}_leader`,
      control: `${ns}_control`,
      cancels: `${ns}_cancels`,
    },
    queueSubject: (queue) => `${queuePrefix}${validateQueueName(queue)}`,
    allQueuesSubject: `${queuePrefix}*`,
    queueConsumer: (queue) => `${ns}_q_${validateQueueName(queue)}`,
    queueFromSubject: (subject) => {
      if (!subject.startsWith(queuePrefix)) return undefined;
      const queue = subject.slice(queuePrefix.length);
      // Not "" (from "naq.queue.") nor a wildcard (from "naq.queue.*"): only a valid queue token.
      return TOKEN.test(queue) && queue.length <= QUEUE_MAX ? queue : undefined;
    },
    eventSubject: (queue, jobId, type) =>
      `${ns}.events.${validateToken(queue, "queue", QUEUE_MAX)}.${validateToken(jobId, "id")}.${validateToken(type, "event type", 32)}`,
    eventFilter: (f) =>
      `${ns}.events.${f.queue !== undefined ? validateToken(f.queue, "queue", QUEUE_MAX) : "*"}.${f.jobId !== undefined ? validateToken(f.jobId, "id") : "*"}.${f.type !== undefined ? validateToken(f.type, "event type", 32) : "*"}`,
    allEventsSubject: `${ns}.events.>`,
    deadLetterSubject: (queue, jobId) => `${ns}.dlq.${validateQueueName(queue)}.${validateToken(jobId, "id")}`,
    deadLetterFilter: (f) =>
      `${ns}.dlq.${f.queue !== undefined ? validateQueueName(f.queue) : "*"}.${f.jobId !== undefined ? validateToken(f.jobId, "id") : "*"}`,
    allDeadLetterSubject: `${ns}.dlq.>`,
  };
}
