/** Option parsers shared by commands: each rejects bad input with one clear line (exit 2). */
import { InvalidArgumentError } from "commander";
import { parseBackoff, type Backoff } from "../model/backoff.js";
import { DURATION_HINT, parseDuration } from "../model/duration.js";
import { UsageError } from "../model/errors.js";

export function parseCount(value: string, flag: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError(`${flag} must be a whole number >= 0, got "${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`);
  }
  return Number(value);
}

export function parseDurationOption(value: string, flag: string): number {
  try {
    return parseDuration(value, flag);
  } catch {
    const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    throw new InvalidArgumentError(`${flag} must be ${DURATION_HINT}, at most 100 years, got "${shown}"`);
  }
}

export function parsePositive(value: string, flag: string): number {
  const n = parseCount(value, flag);
  if (n < 1) throw new InvalidArgumentError(`${flag} must be a whole number >= 1, got "${value}"`);
  return n;
}

export function parseBackoffOption(value: string): Backoff {
  try {
    return parseBackoff(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** Collects a repeatable option's values; comma-separated values are split too. */
export function collect(value: string, previous: string[] = []): string[] {
  return previous.concat(value.split(",").map((v) => v.trim()).filter(Boolean));
}

/** The values of a repeatable `--label key=value` as a record; one that is not key=value (non-empty key) is a UsageError. */
export function labelsOf(labels: string[] | undefined): Record<string, string> | undefined {
  if (!labels) return undefined;
  const out: Record<string, string> = {};
  for (const l of labels) {
    const eq = l.indexOf("=");
    if (eq <= 0) throw new UsageError(`--label takes key=value, got "${l}"`);
    out[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return out;
}

/** Collects a repeatable option's values as given (no comma splitting: for KEY=value pairs). */
export function collectRaw(value: string, previous: string[] = []): string[] {
  return previous.concat(value);
}
