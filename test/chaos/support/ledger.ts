/**
 * The ledger: every handler execution that finished appends "<job id> <attempt> <pid> <epoch
 * ms> <enqueuedAt ms>\n" to one file (O_APPEND writes of a short line are atomic, so several
 * worker processes can share it, and a kill -9 loses at most the line being written).
 * Counting it says which jobs ran, and how many times.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync } from "node:fs";

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

/** One ledger line: a handler execution that succeeded. */
export interface LedgerEntry {
  id: string;
  attempt: number;
  /** The worker process that ran it. */
  pid: number;
  /** When it was written (epoch ms; 0 for a line without a time). */
  at: number;
  /**
   * The enqueuedAt of the message that ran (epoch ms; 0 if absent): two runs of one id with
   * different values were two stored messages (e.g. a producer retry stored twice), with
   * the same value two deliveries of one message (a redelivery).
   */
  enqueuedAt: number;
}

export function parseLedgerLine(line: string): LedgerEntry | undefined {
  const [id, attempt, pid, at, enqueuedAt] = line.split(" ");
  if (!id) return undefined;
  return { id, attempt: Number(attempt), pid: Number(pid), at: Number(at ?? 0) || 0, enqueuedAt: Number(enqueuedAt ?? 0) || 0 };
}

/** Every line of a ledger file, parsed. */
export function readLedgerEntries(file: string): LedgerEntry[] {
  if (!existsSync(file)) return [];
  const out: LedgerEntry[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const e = parseLedgerLine(line);
    if (e) out.push(e);
  }
  return out;
}

/**
 * Reads a ledger as it grows: each poll() parses only the bytes appended since the last one
 * (cheap at 100k lines), and keeps the runs per id and every entry.
 */
export class LedgerReader {
  private offset = 0;
  private partial = "";
  private readonly buf = Buffer.alloc(1 << 20);
  readonly entries: LedgerEntry[] = [];
  readonly runs = new Map<string, number>();

  constructor(readonly file: string) {}

  /** Reads what was appended; returns the new entries. */
  poll(): LedgerEntry[] {
    if (!existsSync(this.file)) return [];
    const added: LedgerEntry[] = [];
    const fd = openSync(this.file, "r");
    try {
      for (;;) {
        const n = readSync(fd, this.buf, 0, this.buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        const parts = (this.partial + this.buf.subarray(0, n).toString("utf8")).split("\n");
        this.partial = parts.pop() ?? "";
        for (const p of parts) {
          const e = parseLedgerLine(p);
          if (!e) continue;
          added.push(e);
          this.entries.push(e);
          this.runs.set(e.id, (this.runs.get(e.id) ?? 0) + 1);
        }
      }
    } finally {
      closeSync(fd);
    }
    return added;
  }

  /** Distinct ids that ran at least once. */
  get distinct(): number {
    return this.runs.size;
  }

  /** The counts so far, in the shape tally() takes. */
  counts(): LedgerCounts {
    return { runs: this.runs, executions: this.entries.length };
  }
}
