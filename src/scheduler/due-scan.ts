/**
 * DueScan: the leader's walk over the due-time index, one tick at a time. All I/O comes in
 * through DueIndexIO (src/services/due-index.ts; SchedulerService provides it), so this
 * logic is unit-tested without a server.
 *
 * Per slot (10 s of fire times) between the cursor and now:
 *
 *   unread ──read counter + new entries──> waiting (entry not due yet: remembered, woken for)
 *                                            └─ due ──process──> done (the entry is purged)
 *   allocated but not written yet: a hole, read again on the next few ticks
 *
 * A slot is complete once it lies wholly in the past and nothing in it waits. The cursor
 * then moves over it and is stored; only after that is the slot swept: its counter and
 * holes are read once more and anything found is moved after the cursor. Writers read the
 * cursor after writing an entry, so an entry is either seen by that sweep or moved forward
 * by its writer: nothing is left behind in a swept slot. Then the slot's counter is dropped.
 *
 * Cost of a tick: one counter read per slot scanned (normally one: the current slot) plus
 * one read per new entry: it grows with what is due, never with what is scheduled later.
 */
import { dueKey, slotOf, type IndexEntry } from "../model/due-slots.js";
import type { DueIndexIO } from "../services/due-index.js";

interface SlotState {
  /** Entry numbers below this have been read. */
  read: number;
  /** Read but not processed yet, by entry number. */
  waiting: Map<number, IndexEntry>;
  /** Allocated entries that were missing when read, with how often they were read. */
  holes: Map<number, number>;
}

export interface DueScanOptions {
  /** Slots scanned in one tick at most (a leader catching up after a long outage). Default 360 (1 hour). */
  maxSlotsPerTick?: number;
  /** Entries processed in one tick at most. Default 1000. */
  maxEntriesPerTick?: number;
  /** How many ticks a hole in a slot not yet complete is read again. Default 3. */
  holeRereads?: number;
  /** Entries (of different schedules or jobs) processed at once. Default 16. */
  concurrency?: number;
}

export interface ScanResult {
  processed: number;
  nextWakeAt?: number;
  more: boolean;
}

export class DueScan {
  private cursor?: number;
  private readonly slots = new Map<number, SlotState>();
  private readonly maxSlots: number;
  private readonly maxEntries: number;
  private readonly holeRereads: number;
  private readonly concurrency: number;

  constructor(opts: DueScanOptions = {}) {
    this.maxSlots = opts.maxSlotsPerTick ?? 360;
    this.maxEntries = opts.maxEntriesPerTick ?? 1_000;
    this.holeRereads = opts.holeRereads ?? 3;
    this.concurrency = Math.max(1, opts.concurrency ?? 16);
  }

  /** Forget everything (leadership changed hands): the next tick starts from the stored cursor. */
  reset(): void {
    this.cursor = undefined;
    this.slots.clear();
  }

  /** The last slot known to be swept (undefined before the first tick). */
  get cursorSlot(): number | undefined {
    return this.cursor;
  }

  async tick(nowMs: number, io: DueIndexIO): Promise<ScanResult> {
    const nowSlot = slotOf(nowMs);
    this.cursor ??= await io.loadCursor(nowSlot - 1);
    const start = this.cursor;
    const last = Math.min(nowSlot, start + this.maxSlots);
    let budget = this.maxEntries;
    let more = last < nowSlot;
    let processed = 0;
    let nextWakeAt: number | undefined;

    for (let slot = start + 1; slot <= last; slot++) {
      const st = this.slots.get(slot) ?? { read: 0, waiting: new Map(), holes: new Map() };
      this.slots.set(slot, st);
      const n = await io.slotCount(slot);
      const retry = [...st.holes].filter(([, times]) => times < this.holeRereads).map(([i]) => i);
      await this.read(io, slot, st, [...retry, ...range(st.read, n)]);
      st.read = Math.max(st.read, n);
      // Due entries, oldest first, grouped by target: groups run concurrently, a group in order.
      const groups = new Map<string, Array<[number, IndexEntry]>>();
      for (const [i, entry] of [...st.waiting].sort((a, b) => a[1].at - b[1].at)) {
        if (entry.at > nowMs) {
          nextWakeAt = Math.min(nextWakeAt ?? entry.at, entry.at);
          continue;
        }
        if (budget <= 0) {
          more = true;
          break;
        }
        budget--;
        const target = `${entry.k}.${entry.id}`;
        groups.set(target, [...(groups.get(target) ?? []), [i, entry]]);
      }
      await pool([...groups.values()], this.concurrency, async (group) => {
        for (const [i, entry] of group) {
          const r = await io.process(dueKey(slot, i), entry, nowMs);
          processed++;
          if (r === "done") st.waiting.delete(i);
          else if (r === "again") more = true;
        }
      });
    }

    // Slots wholly in the past with nothing waiting are complete: store the cursor, then sweep.
    let cursor = start;
    while (cursor + 1 < nowSlot && cursor + 1 <= last && (this.slots.get(cursor + 1)?.waiting.size ?? 1) === 0) cursor++;
    if (cursor > start) {
      await io.saveCursor(cursor);
      this.cursor = cursor;
      for (let slot = start + 1; slot <= cursor; slot++) {
        const st = this.slots.get(slot) as SlotState;
        const n = await io.slotCount(slot);
        const late = await this.read(io, slot, { ...st, waiting: new Map() }, [...st.holes.keys(), ...range(st.read, n)]);
        if (late.length > 0) {
          await io.moveForward(slot, late);
          more = true;
        }
        await io.dropSlot(slot);
        this.slots.delete(slot);
      }
    }
    return { processed, nextWakeAt, more };
  }

  /** Reads entries `indexes` of `slot` into `st.waiting` (missing ones become holes); returns those found. */
  private async read(io: DueIndexIO, slot: number, st: SlotState, indexes: number[]): Promise<Array<{ index: number; entry: IndexEntry }>> {
    if (indexes.length === 0) return [];
    const entries = await io.readEntries(slot, indexes);
    const found: Array<{ index: number; entry: IndexEntry }> = [];
    indexes.forEach((i, k) => {
      const entry = entries[k];
      if (entry) {
        st.holes.delete(i);
        st.waiting.set(i, entry);
        found.push({ index: i, entry });
      } else {
        st.holes.set(i, (st.holes.get(i) ?? 0) + 1);
      }
    });
    return found;
  }
}

/** Runs `fn` over `items`, at most `limit` at once; the first failure is thrown after all settled. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const run = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item).catch((err: unknown) => void errors.push(err));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  if (errors.length > 0) throw errors[0];
}

function range(from: number, to: number): number[] {
  const out: number[] = [];
  for (let i = from; i < to; i++) out.push(i);
  return out;
}
