/**
 * What every chaos scenario reports: one JSON file per scenario in the results dir, read by
 * test/chaos/run.mjs to write the table in docs/reliability.md. A scenario also prints its
 * figures, so a failed run still shows what was counted.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** `npm run test:chaos -- --long` sets this: full-size scenarios (CI runs the fast ones). */
export const LONG = process.env.NAQ_CHAOS_LONG === "1";

/** Picks the fast or the long value of a scenario parameter. */
export function scale<T>(fast: T, long: T): T {
  return LONG ? long : fast;
}

export const RESULTS_DIR =
  process.env.NAQ_CHAOS_RESULTS ?? path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "results");

export interface ScenarioResult {
  /** Short name, also the file name: "worker-kill", "server-restart", ... */
  id: string;
  /** One line for the table: what was done. */
  scenario: string;
  /** Jobs sent (acknowledged by the server). */
  jobs: number;
  /** Jobs whose terminal record says completed (or failed, where the scenario expects failures). */
  completed: number;
  lost: number;
  /** Handler executions beyond the first per job (at-least-once redeliveries). */
  duplicated: number;
  /** Longest time from a fault to work flowing again, ms (null when not meaningful). */
  recoveryMs: number | null;
  /** Highest RSS of the processes watched, MiB (null when not measured). */
  peakRssMiB: number | null;
  /** Anything else worth a column in the notes: bounds, first-vs-last minute, etc. */
  notes?: string;
  /** Extra figures kept in the JSON only. */
  extra?: Record<string, number | string | boolean | null>;
}

export function recordScenario(result: ScenarioResult): void {
  const full = { ...result, mode: LONG ? "long" : "fast", finishedAt: new Date().toISOString() };
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(path.join(RESULTS_DIR, `${result.id}.json`), JSON.stringify(full, null, 2) + "\n");
  const rss = result.peakRssMiB === null ? "-" : `${result.peakRssMiB.toFixed(1)} MiB`;
  const rec = result.recoveryMs === null ? "-" : `${Math.round(result.recoveryMs)} ms`;
  console.log(
    `[chaos] ${result.id}: jobs=${result.jobs} completed=${result.completed} lost=${result.lost} ` +
      `duplicated=${result.duplicated} recovery=${rec} peakRss=${rss}${result.notes ? ` (${result.notes})` : ""}`,
  );
}
