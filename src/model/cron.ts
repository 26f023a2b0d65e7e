/**
 * Time for the scheduler, pure: cron expressions with an IANA time zone (via croner,
 * which handles DST gaps and repeats), time zones, and ISO 8601 times as people type
 * them (`2026-12-01T09:00:00Z`; a time without an offset only together with a zone).
 *
 * DST, as croner does it (and Vixie cron): a fixed-time job (`30 2 * * *`) whose local
 * time does not exist (spring forward) runs at the first valid time after the gap, and
 * runs once when its local time occurs twice (fall back); an interval job (`*\/30 * * * *`)
 * skips times in the gap and runs on both occurrences of a repeated time.
 */
import { Cron } from "croner";
import { ValidationError } from "./errors.js";

export const CRON_HINT =
  'a cron expression of 5 fields (minute hour day-of-month month day-of-week, e.g. "0 9 * * 1-5") or 6 with seconds first ("*/10 * * * * *")';
export const TIME_HINT = "an ISO 8601 time with a zone, e.g. 2026-12-01T09:00:00Z or 2026-12-01T10:00:00+01:00";

const zoneCache = new Map<string, boolean>();

/** Checks an IANA time zone name (Europe/Berlin, UTC, America/New_York). */
export function validateTimeZone(tz: string, field = "tz"): string {
  let ok = zoneCache.get(tz);
  if (ok === undefined) {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: tz });
      ok = tz.length > 0;
    } catch {
      ok = false;
    }
    zoneCache.set(tz, ok);
  }
  if (!ok) throw new ValidationError(`${field} "${tz}" is not a time zone: use an IANA name such as Europe/Berlin, America/New_York or UTC`, field);
  return tz;
}

/** A compiled cron expression: the next run strictly after a time, or undefined if there is none. */
export interface CronSchedule {
  readonly expr: string;
  readonly tz?: string;
  next(afterMs: number): number | undefined;
}

const cronCache = new Map<string, CronSchedule>();
const CRON_CACHE_MAX = 1_000;

export function compileCron(expr: string, tz?: string, field = "cron"): CronSchedule {
  const key = `${tz ?? ""}\u0000${expr}`;
  const cached = cronCache.get(key);
  if (cached) return cached;
  if (tz !== undefined) validateTimeZone(tz, "tz");
  const text = expr.trim().replace(/\s+/g, " ");
  const parts = text.split(" ").length;
  if (!text.startsWith("@") && (parts < 5 || parts > 6)) {
    throw new ValidationError(`${field} "${expr}" has ${parts} field${parts === 1 ? "" : "s"}: expected ${CRON_HINT}`, field);
  }
  let cron: Cron;
  try {
    cron = new Cron(text, { paused: true, timezone: tz, mode: "5-or-6-parts" });
  } catch (err) {
    const why = (err as Error).message.replace(/^CronPattern:\s*/, "");
    throw new ValidationError(`${field} "${expr}" is not valid (${why}): expected ${CRON_HINT}`, field);
  }
  const schedule: CronSchedule = {
    expr: text,
    tz,
    next(afterMs) {
      const d = cron.nextRun(new Date(afterMs));
      return d ? d.getTime() : undefined;
    },
  };
  if (cronCache.size >= CRON_CACHE_MAX) cronCache.delete(cronCache.keys().next().value as string);
  cronCache.set(key, schedule);
  return schedule;
}

interface LocalFields {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  ms: number;
}

/** Offset of `tz` from UTC at instant `ms`, in milliseconds (Berlin in winter: +3_600_000). */
export function zoneOffsetMs(ms: number, tz: string): number {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone: tz,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  }).formatToParts(new Date(ms));
  const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
  const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour"), get("minute"), get("second"));
  return asUtc - (ms - (((ms % 1000) + 1000) % 1000));
}

/**
 * The instant a local wall-clock time names in `tz`. A time in a DST gap (it does not
 * exist) moves forward by the gap; a time that occurs twice is the first (earlier) one.
 */
export function zonedTimeToUtc(f: LocalFields, tz: string): number {
  const wall = Date.UTC(f.year, f.month - 1, f.day, f.hour, f.minute, f.second, f.ms);
  // Offsets on both sides of the wall time; try each, keep those that map back to it.
  const candidates = [zoneOffsetMs(wall - 86_400_000, tz), zoneOffsetMs(wall + 86_400_000, tz), zoneOffsetMs(wall, tz)];
  const exact = [...new Set(candidates)].map((o) => wall - o).filter((t) => t + zoneOffsetMs(t, tz) === wall);
  if (exact.length > 0) return Math.min(...exact);
  // In a gap: read the wall time with the offset in force before the gap (moves it forward).
  return wall - zoneOffsetMs(wall - 86_400_000, tz);
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * Parses an ISO 8601 time. With an offset (`Z`, `+01:00`) it is exact; without one it is
 * read in `tz`, and rejected when no zone is given. A date alone is midnight.
 */
export function parseTime(text: string, opts: { tz?: string; field?: string } = {}): number {
  const field = opts.field ?? "time";
  const m = ISO.exec(text.trim());
  if (!m) throw new ValidationError(`${field} "${text}" is not ${TIME_HINT}`, field);
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const f: LocalFields = {
    year: Number(y),
    month: Number(mo),
    day: Number(d),
    hour: Number(h ?? 0),
    minute: Number(mi ?? 0),
    second: Number(s ?? 0),
    ms: frac ? Math.floor(Number(`0.${frac}`) * 1000) : 0,
  };
  const probe = new Date(Date.UTC(f.year, f.month - 1, f.day, f.hour, f.minute, f.second));
  if (
    probe.getUTCFullYear() !== f.year ||
    probe.getUTCMonth() !== f.month - 1 ||
    probe.getUTCDate() !== f.day ||
    f.hour > 23 ||
    f.minute > 59 ||
    f.second > 59
  ) {
    throw new ValidationError(`${field} "${text}" is not a real date and time`, field);
  }
  if (zone) {
    const sign = zone.startsWith("-") ? -1 : 1;
    const offset = zone.toUpperCase() === "Z" ? 0 : sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(-2)));
    if (Math.abs(offset) > 18 * 60) throw new ValidationError(`${field} "${text}" has an offset beyond ±18:00`, field);
    return Date.UTC(f.year, f.month - 1, f.day, f.hour, f.minute, f.second, f.ms) - offset * 60_000;
  }
  if (!opts.tz) {
    throw new ValidationError(
      `${field} "${text}" has no time zone: add Z or an offset (e.g. ${text.trim().replace(" ", "T")}Z), or give --tz (e.g. --tz Europe/Berlin)`,
      field,
    );
  }
  return zonedTimeToUtc(f, validateTimeZone(opts.tz, "tz"));
}
