/**
 * Retry backoff: fixed, exponential (base, max) or an explicit list of delays, with
 * optional jitter. Written on the command line as `fixed:5s`, `exp:1s:5m`,
 * `list:1s,5s,30s`, each optionally followed by `~0.2` for ±20% jitter.
 */
import { parseDuration } from "./duration.js";
import { ValidationError } from "./errors.js";

export type Backoff =
  | { type: "fixed"; delayMs: number; jitter?: number }
  | { type: "exponential"; baseMs: number; maxMs: number; jitter?: number }
  | { type: "list"; delaysMs: number[]; jitter?: number };

export const DEFAULT_BACKOFF: Backoff = { type: "exponential", baseMs: 1_000, maxMs: 300_000, jitter: 0.1 };

export const BACKOFF_HINT = "fixed:<delay>, exp:<base>:<max> or list:<d1>,<d2>,... (e.g. fixed:5s, exp:1s:5m, list:1s,5s,30s), optionally with ~<jitter 0..1>";

export function parseBackoff(text: string): Backoff {
  const parts = text.trim().split("~");
  const [spec = "", jitterText] = parts;
  if (parts.length > 2 || jitterText?.trim() === "") {
    throw new ValidationError(`backoff "${text}" is not valid: expected ${BACKOFF_HINT}`, "backoff");
  }
  const jitter = jitterText === undefined ? undefined : Number(jitterText);
  if (jitter !== undefined && !(jitter >= 0 && jitter <= 1)) {
    throw new ValidationError(`backoff: jitter "${jitterText}" must be a number from 0 to 1`, "backoff");
  }
  const [kind, ...rest] = spec.split(":");
  const withJitter = <T extends Backoff>(b: T): T => (jitter === undefined ? b : { ...b, jitter });
  try {
    switch (kind) {
      case "fixed":
        if (rest.length === 1) return withJitter({ type: "fixed", delayMs: parseDuration(rest[0] as string, "backoff") });
        break;
      case "exp":
      case "exponential":
        if (rest.length === 2) {
          const baseMs = parseDuration(rest[0] as string, "backoff");
          const maxMs = parseDuration(rest[1] as string, "backoff");
          if (maxMs < baseMs) throw new ValidationError("backoff: max must be >= base", "backoff");
          return withJitter({ type: "exponential", baseMs, maxMs });
        }
        break;
      case "list":
        if (rest.length === 1 && rest[0]) {
          return withJitter({ type: "list", delaysMs: (rest[0] as string).split(",").map((d) => parseDuration(d, "backoff")) });
        }
        break;
    }
  } catch (err) {
    if (err instanceof ValidationError) throw new ValidationError(`backoff "${text}": ${err.message}; expected ${BACKOFF_HINT}`, "backoff");
    throw err;
  }
  throw new ValidationError(`backoff "${text}" is not valid: expected ${BACKOFF_HINT}`, "backoff");
}

/**
 * Delay before attempt `nextAttempt` (2 = the first retry). `random` is injectable for tests.
 */
export function backoffDelay(b: Backoff, nextAttempt: number, random: () => number = Math.random): number {
  const retry = Math.max(1, nextAttempt - 1);
  let base: number;
  switch (b.type) {
    case "fixed":
      base = b.delayMs;
      break;
    case "exponential":
      base = Math.min(b.maxMs, b.baseMs * 2 ** (retry - 1));
      break;
    case "list":
      base = b.delaysMs[Math.min(retry, b.delaysMs.length) - 1] ?? 0;
      break;
  }
  if (!b.jitter) return base;
  const spread = base * b.jitter;
  return Math.max(0, Math.round(base - spread + random() * 2 * spread));
}
