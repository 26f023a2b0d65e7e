/**
 * DueIndex: the due-time index in `<ns>_schedules` (layout in src/model/due-slots.ts).
 * Writers add entries through a per-slot compare-and-set counter and then read the sweep
 * cursor, so an entry written into an already swept slot is moved after the cursor; the
 * leader's due scan (src/scheduler/due-scan.ts) reads it through DueIndexIO. A plain
 * helper of SchedulerService, over the scope's KV and connection services.
 */
import { CURSOR_KEY, dueKey, slotCounterKey, slotOf, type CursorDoc, type IndexEntry, type SlotCounter } from "../model/due-slots.js";
import { ConflictError, ValidationError } from "../model/errors.js";
import { checkCursorDoc, checkIndexEntry, checkSlotCounter } from "../model/records.js";
import { SCHEDULE_VERSION } from "../model/schedule.js";
import { kvStreamName } from "../model/topology.js";
import type { ConnectionService } from "./connection.js";
import type { KVStoreService } from "./kv.js";
import { toNaqError } from "./nats-errors.js";

export type ProcessResult = "done" | "wait" | "again";

/** The index I/O a due scan needs (see src/scheduler/due-scan.ts). */
export interface DueIndexIO {
  loadCursor(initial: number): Promise<number>;
  saveCursor(slot: number): Promise<void>;
  slotCount(slot: number): Promise<number>;
  readEntries(slot: number, indexes: readonly number[]): Promise<Array<IndexEntry | undefined>>;
  process(key: string, entry: IndexEntry, nowMs: number): Promise<ProcessResult>;
  /** Re-indexes entries found in an already swept slot after the cursor, and drops the old keys. */
  moveForward(slot: number, entries: ReadonlyArray<{ index: number; entry: IndexEntry }>): Promise<void>;
  dropSlot(slot: number): Promise<void>;
}

/** Something that runs one due scan over an index (a DueScan from src/scheduler/). */
export interface DueScanner {
  tick(nowMs: number, io: DueIndexIO): Promise<{ processed: number; nextWakeAt?: number; more: boolean }>;
}

/** Compare-and-set attempts on one document of `<ns>_schedules` before giving up. */
export const CAS_ATTEMPTS = 20;

const iso = (ms: number): string => new Date(ms).toISOString();
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class DueIndex {
  constructor(
    private readonly connection: ConnectionService,
    private readonly kv: KVStoreService,
    readonly bucket: string,
  ) {}

  /**
   * Adds index entries. Each slot hands out entry numbers with a compare-and-set counter;
   * after writing, the cursor is read: an entry in a slot the scheduler has already swept
   * is written again after the cursor (so it is never left behind, whatever the clocks say).
   */
  async index(entries: ReadonlyArray<Omit<IndexEntry, "v">>, attempt = 0): Promise<void> {
    const bySlot = new Map<number, Array<Omit<IndexEntry, "v">>>();
    for (const e of entries) {
      const s = slotOf(e.at);
      bySlot.set(s, [...(bySlot.get(s) ?? []), e]);
    }
    return this.indexInto(bySlot, attempt);
  }

  private async indexInto(bySlot: Map<number, Array<Omit<IndexEntry, "v">>>, attempt: number): Promise<void> {
    const written: Array<{ slot: number; key: string; entry: Omit<IndexEntry, "v"> }> = [];
    await Promise.all(
      [...bySlot].map(async ([slot, list]) => {
        const first = await this.allocate(slot, list.length);
        await Promise.all(
          list.map((entry, j) => {
            const key = dueKey(slot, first + j);
            written.push({ slot, key, entry });
            return this.kv.putJson<IndexEntry>(this.bucket, key, { v: SCHEDULE_VERSION, ...entry });
          }),
        );
      }),
    );
    const cursor = await this.loadCursor(slotOf(Date.now()) - 1);
    const behind = written.filter((w) => w.slot <= cursor);
    if (behind.length === 0) return;
    if (attempt >= 10) throw new ConflictError("could not index a due time: the scheduler's cursor kept moving past it");
    await this.indexInto(new Map([[cursor + 1, behind.map((b) => b.entry)]]), attempt + 1);
    await Promise.all(behind.map((b) => this.purgeKey(b.key)));
  }

  /** Reserves `count` entry numbers in `slot`; returns the first. */
  private async allocate(slot: number, count: number): Promise<number> {
    const key = slotCounterKey(slot);
    for (let attempt = 0; ; attempt++) {
      const cur = await this.kv.getJson<SlotCounter>(this.bucket, key, checkSlotCounter);
      try {
        if (!cur) {
          await this.kv.createJson<SlotCounter>(this.bucket, key, { v: SCHEDULE_VERSION, n: count });
          return 0;
        }
        await this.kv.updateJson<SlotCounter>(this.bucket, key, { v: SCHEDULE_VERSION, n: cur.value.n + count }, cur.revision);
        return cur.value.n;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= 100) throw err;
        await pause(Math.random() * Math.min(50, 2 ** attempt));
      }
    }
  }

  /** The cursor (every slot <= it has been swept), created at `initial` when there is none. */
  async loadCursor(initial: number): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      const cur = await this.kv.getJson<CursorDoc>(this.bucket, CURSOR_KEY, checkCursorDoc);
      if (cur) return cur.value.slot;
      try {
        await this.kv.createJson<CursorDoc>(this.bucket, CURSOR_KEY, { v: SCHEDULE_VERSION, slot: initial, at: iso(Date.now()) });
        return initial;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= CAS_ATTEMPTS) throw err;
      }
    }
  }

  /** Moves the cursor forward (never back), with compare-and-set. */
  async saveCursor(slot: number, by?: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const cur = await this.kv.getJson<CursorDoc>(this.bucket, CURSOR_KEY, checkCursorDoc);
      if (cur && cur.value.slot >= slot) return;
      const doc: CursorDoc = { v: SCHEDULE_VERSION, slot, at: iso(Date.now()), ...(by ? { by } : {}) };
      try {
        if (cur) await this.kv.updateJson(this.bucket, CURSOR_KEY, doc, cur.revision);
        else await this.kv.createJson(this.bucket, CURSOR_KEY, doc);
        return;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= CAS_ATTEMPTS) throw err;
      }
    }
  }

  /** How many entry numbers `slot` has handed out (0 when it has no counter). */
  async slotCount(slot: number): Promise<number> {
    return (await this.kv.getJson<SlotCounter>(this.bucket, slotCounterKey(slot), checkSlotCounter))?.value.n ?? 0;
  }

  /** The entries of `slot` at `indexes` (undefined where there is none). */
  readEntries(slot: number, indexes: readonly number[]): Promise<Array<IndexEntry | undefined>> {
    return Promise.all(
      indexes.map(async (i) => {
        try {
          return (await this.kv.getJson<IndexEntry>(this.bucket, dueKey(slot, i), checkIndexEntry))?.value;
        } catch (err) {
          // Not an index entry (corrupted): removed, so the scan sees a hole, never a crash.
          if (!(err instanceof ValidationError)) throw err;
          await this.purgeKey(dueKey(slot, i));
          return undefined;
        }
      }),
    );
  }

  /** Re-indexes entries found in an already swept slot after the cursor, and drops the old keys. */
  async moveForward(slot: number, list: ReadonlyArray<{ index: number; entry: IndexEntry }>): Promise<void> {
    await this.index(list.map((l) => ({ k: l.entry.k, id: l.entry.id, at: l.entry.at })));
    await Promise.all(list.map((l) => this.purgeKey(dueKey(slot, l.index))));
  }

  /** Drops a swept slot's counter. */
  dropSlot(slot: number): Promise<void> {
    return this.purgeKey(slotCounterKey(slot));
  }

  /** Removes a key and its history without leaving a delete marker (a literal-subject purge). */
  async purgeKey(key: string, upToRevision?: number): Promise<void> {
    const jsm = await this.connection.manager();
    const filter = `$KV.${this.bucket}.${key}`;
    try {
      await jsm.streams.purge(kvStreamName(this.bucket), upToRevision !== undefined ? { filter, seq: upToRevision + 1 } : { filter });
    } catch (err) {
      throw toNaqError(err, `removing ${this.bucket}/${key}`);
    }
  }
}
