/**
 * Durations as people write them: `500ms`, `30s`, `5m`, `2h`, `1d`, combinations such
 * as `1h30m`, or a bare number of milliseconds.
 */
import { ValidationError } from "./errors.js";

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
type Unit = keyof typeof UNIT_MS;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/gy;

export const DURATION_HINT = "a duration such as 500ms, 30s, 5m, 2h, 1d (or a number of milliseconds)";
/**
 * The longest duration naq accepts: 100 years. Longer ones are typos (or 1e999), and they
 * would not fit JetStream's nanosecond fields (int64: 292 years) or a Date.
 */
export const MAX_DURATION_MS = 3_155_760_000_000;
/** The longest delay a Node timer takes (2^31-1 ms, about 24.8 days): longer ones fire after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;
/** A delay for setTimeout/setInterval: capped at MAX_TIMER_MS, so a long duration never fires at once. */
export const timerDelay = (ms: number): number => Math.min(Math.max(0, ms), MAX_TIMER_MS);

/** Parses a duration to milliseconds; throws ValidationError naming `field`. */
export function parseDuration(input: string | number, field = "duration"): number {
  if (typeof input === "number") {
    if (Number.isFinite(input) && input >= 0) return capped(Math.round(input), String(input), field);
    throw new ValidationError(`${field}: ${input} is not ${DURATION_HINT}`, field);
  }
  if (typeof input !== "string") throw new ValidationError(`${field}: expected ${DURATION_HINT}`, field);
  const text = input.trim().toLowerCase();
  if (/^\d+$/.test(text)) return capped(Number(text), input, field);
  let total = 0;
  let consumed = 0;
  PART.lastIndex = 0;
  for (let m = PART.exec(text); m; m = PART.exec(text)) {
    total += Number(m[1]) * UNIT_MS[m[2] as Unit];
    consumed = PART.lastIndex;
  }
  if (text.length === 0 || consumed !== text.length) {
    throw new ValidationError(`${field}: "${shorten(input)}" is not ${DURATION_HINT}`, field);
  }
  return capped(Math.round(total), input, field);
}

const shorten = (text: string): string => (text.length > 40 ? `${text.slice(0, 40)}…` : text);

function capped(ms: number, input: string, field: string): number {
  if (!(ms <= MAX_DURATION_MS)) throw new ValidationError(`${field}: "${shorten(input)}" is too long: the longest duration is 100 years`, field);
  return ms;
}

/** Formats milliseconds compactly for people: 1500 -> "1.5s", 90000 -> "1m30s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  // Compare rounded values, so 999.6 is "1s" (not "1000ms") and 59_960 is "1m" (not "60s").
  if (Math.round(ms) < 1_000) return `${Math.round(ms)}ms`;
  const seconds = Math.round(ms / 100) / 10;
  if (seconds < 60) return `${seconds}s`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1_000);
  for (const [unit, size] of [["d", 86_400], ["h", 3_600], ["m", 60], ["s", 1]] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * size;
  }
  return parts.join("");
}

/** JetStream expresses durations in nanoseconds. */
export const msToNanos = (ms: number): number => ms * 1_000_000;
export const nanosToMs = (ns: number): number => Math.round(ns / 1_000_000);
