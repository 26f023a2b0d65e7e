/**
 * The ledger: every handler execution that finished appends "<job id> <attempt> <pid>\n" to
 * one file (O_APPEND writes of a short line are atomic, so several worker processes can
 * share it, and a kill -9 loses at most the line being written). Counting it says which
 * jobs ran, and how many times.
 */
import { existsSync, readFileSync } from "node:fs";

export interface LedgerCounts {
  /** Executions per job id. */
  runs: Map<string, number>;
  /** Total lines. */
  executions: number;
}

export function readLedger(file: string): LedgerCounts {
  const runs = new Map<string, number>();
  let executions = 0;
  if (!existsSync(file)) return { runs, executions };
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const id = line.split(" ")[0];
    if (!id) continue;
    executions += 1;
    runs.set(id, (runs.get(id) ?? 0) + 1);
  }
  return { runs, executions };
}

export interface Tally {
  sent: number;
  /** Sent ids that ran at least once. */
  ran: number;
  /** Sent ids that never ran. */
  lost: string[];
  /** Executions beyond the first, over all sent ids. */
  duplicated: number;
  /** Ids in the ledger that were never sent (must be none). */
  unexpected: string[];
}

export function tally(sentIds: Iterable<string>, ledger: LedgerCounts): Tally {
  const sent = new Set(sentIds);
  const lost: string[] = [];
  let ran = 0;
  let duplicated = 0;
  for (const id of sent) {
    const n = ledger.runs.get(id) ?? 0;
    if (n === 0) lost.push(id);
    else {
      ran += 1;
      duplicated += n - 1;
    }
  }
  const unexpected = [...ledger.runs.keys()].filter((id) => !sent.has(id));
  return { sent: sent.size, ran, lost, duplicated, unexpected };
}
