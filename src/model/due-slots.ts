/**
 * The due-time index of `<ns>_schedules`, pure: its documents, slots and keys. The
 * scheduler finds what is due by sweeping slots in order, never by listing keys.
 *
 *   slot.<slot>         SlotCounter     how many index entries slot <slot> has handed out
 *   due.<slot>.<i>      IndexEntry      entry i of the slot: "schedule X / job Y is due at T"
 *   cursor              CursorDoc       every slot <= cursor.slot has been swept
 *
 * where <slot> = floor(fireAtMs / SLOT_MS), zero-padded. The index is read with direct
 * gets of literal keys only (never a wildcard listing, which nats-server 2.9 serves in
 * time proportional to every key of the bucket), so a tick costs what is due.
 * The schedule and delayed-job documents are in src/model/schedule.ts.
 */
import type { SCHEDULE_VERSION } from "./schedule.js";

/** Width of one due-time slot of the index. */
export const SLOT_MS = 10_000;

export type IndexKind = "s" | "d";
export interface IndexEntry {
  v: typeof SCHEDULE_VERSION;
  /** "s": recurring schedule `id`; "d": delayed job `id`. */
  k: IndexKind;
  id: string;
  /** Fire time, ms since the epoch. */
  at: number;
}
export interface SlotCounter {
  v: typeof SCHEDULE_VERSION;
  n: number;
}
export interface CursorDoc {
  v: typeof SCHEDULE_VERSION;
  slot: number;
  at: string;
  by?: string;
}

export const slotOf = (ms: number): number => Math.floor(ms / SLOT_MS);
export const slotStart = (slot: number): number => slot * SLOT_MS;
const pad = (slot: number): string => String(slot).padStart(10, "0");
export const slotCounterKey = (slot: number): string => `slot.${pad(slot)}`;
export const dueKey = (slot: number, i: number): string => `due.${pad(slot)}.${i}`;
export const CURSOR_KEY = "cursor";
