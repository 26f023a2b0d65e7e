/**
 * ISO 8601 times for the hot path. A worker writes several per job (event times, the
 * record's startedAt/finishedAt); `new Date(ms).toISOString()` allocates a Date and formats
 * every time, while jobs finishing in the same millisecond share one string here.
 */
let lastMs = Number.NaN;
let lastIso = "";

/** `new Date(ms).toISOString()`, remembered for the last millisecond asked for. */
export function isoTime(ms: number): string {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
}
