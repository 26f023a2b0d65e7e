/**
 * Size limits, pure: every message naq publishes (job, dead-letter entry, job record,
 * event) must fit the server's max_payload (1 MiB by default), headers included. What
 * does not fit is refused up front with a PayloadTooLargeError naming the size and the
 * limit (jobs, results), or cut down to fit and marked as cut (dead-letter entries, the
 * errors and reasons of records and events), so a worker never loops on a publish that
 * can never succeed. See docs/wire-format.md ("Size limits").
 */
import type { JobEnvelope, JobError } from "./job.js";

/** Bytes naq keeps free for headers (Nats-Msg-Id, ...) when it checks a message against max_payload. */
export const HEADER_ROOM = 256;
/** The longest error message (characters) naq stores in a record, event or dead-letter entry. */
export const MAX_ERROR_MESSAGE = 8 * 1024;
/** The longest error stack (characters) naq stores (only with --verbose). */
export const MAX_ERROR_STACK = 16 * 1024;
/** What is left of an error message or reason when a dead-letter entry must shrink to fit. */
const SHRUNK_TEXT = 1024;

const encoder = new TextEncoder();
export const byteLength = (text: string): number => encoder.encode(text).length;
const jsonBytes = (value: unknown): number => byteLength(JSON.stringify(value));

/** `text` cut to `max` characters, saying how much was cut. */
export function truncateText(text: string, max: number): string {
  if (text.length <= max) return text;
  return `${text.slice(0, max)}… (${text.length - max} more characters cut)`;
}

/** An error with its message (and stack) cut to the limits naq stores. */
export function boundedError(e: JobError, maxMessage = MAX_ERROR_MESSAGE, maxStack = MAX_ERROR_STACK): JobError {
  return {
    name: truncateText(e.name, 200),
    message: truncateText(e.message, maxMessage),
    ...(e.stack !== undefined ? { stack: truncateText(e.stack, maxStack) } : {}),
  };
}

/** What fitDeadLetter needs of a dead-letter entry (src/services/dead-letters.ts). */
export interface FittableEntry {
  reason: string;
  error?: JobError;
  job?: JobEnvelope;
  raw?: string;
  truncated?: boolean;
  size?: number;
}

/**
 * A dead-letter entry cut down until its JSON takes at most `limit` bytes: first the error
 * (no stack, short message) and the reason; then, if the job itself is too big, `job` is
 * replaced by `raw` (base64) holding the first bytes of the message that fit. A cut entry
 * has `truncated: true`, `size` (the message's original bytes), and a reason saying so.
 * Returns the entry unchanged when it fits.
 */
export function fitDeadLetter<T extends FittableEntry>(entry: T, limit: number, messageBytes?: Uint8Array): T {
  if (jsonBytes(entry) <= limit) return entry;
  const shrink = (max: number): T => ({
    ...entry,
    reason: truncateText(entry.reason, max),
    truncated: true,
    ...(entry.error ? { error: { name: truncateText(entry.error.name, 100), message: truncateText(entry.error.message, max) } } : {}),
  });
  let out = shrink(SHRUNK_TEXT);
  if (jsonBytes(out) <= limit) return out;
  // The message itself does not fit beside the entry: keep its first bytes only.
  const bytes = messageBytes ?? (entry.job ? encoder.encode(JSON.stringify(entry.job)) : entry.raw !== undefined ? Buffer.from(entry.raw, "base64") : new Uint8Array());
  for (const max of [SHRUNK_TEXT, 128]) {
    out = shrink(max);
    delete out.job;
    out.size = bytes.length;
    out.reason = `${out.reason} [dead-letter entry cut to fit max_payload (${limit} bytes): only the first bytes of the ${bytes.length}-byte job are kept in raw; it cannot be retried with naq job retry]`;
    out.raw = "";
    if (jsonBytes(out) <= limit) break;
  }
  const room = limit - jsonBytes(out);
  // base64 takes 4 bytes per 3; keep a little slack for rounding.
  const keep = Math.max(0, Math.min(bytes.length, Math.floor((room - 8) / 4) * 3));
  out.raw = Buffer.from(bytes.subarray(0, keep)).toString("base64");
  return out;
}
