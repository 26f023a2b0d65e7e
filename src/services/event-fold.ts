/**
 * StartedFold: holds each attempt's `started` event for a short while so that an attempt
 * that ends within it stores one event instead of two. Its end event (`completed`,
 * `failed` or `retrying` of the same attempt) then carries `startedAt`, and readers get the
 * `started` back from it (expandFolded in src/model/events.ts).
 *
 * Storing an event is most of what nats-server spends on a short job beyond the job
 * itself, so a trivial job's audit trail costs two stored messages per attempt, not three.
 * A `started` still held when anything else happens to its job (progress, a log line, a
 * new attempt) is let go first, so a job's events keep their order; a longer job's
 * `started` is stored when the hold ends, a little late. A worker that dies while
 * holding one loses it (the job itself is redelivered as always).
 *
 * No timers or I/O here: EventService asks for what is due and when to look again.
 */
import { FOLDS_STARTED, JobEventType, type NaqEvent } from "../model/events.js";

interface Held {
  event: NaqEvent;
  due: number;
}

export class StartedFold {
  /**
   * By job id, in the order they were held, which is the order they fall due (one hold
   * time for all). The same id on another queue is another job: it lets the held one go.
   */
  private readonly held = new Map<string, Held>();

  constructor(private readonly holdMs: number) {}

  /** `started` events being held. */
  get size(): number {
    return this.held.size;
  }

  /**
   * Takes one event (and owns it: a folding end event gets `startedAt` set) and hands
   * `publish` what is to be published now, in order: nothing (a `started` is held), the
   * event with `startedAt` (its `started` was held), or a held `started` of the same job
   * that the event does not end, then the event.
   */
  accept(e: NaqEvent, now: number, publish: (e: NaqEvent) => void): void {
    if (this.held.size === 0 && e.type !== JobEventType.started) return publish(e);
    const key = e.jobId;
    const before = this.held.get(key);
    if (before) this.held.delete(key);
    if (e.type === JobEventType.started) {
      if (before) publish(before.event);
      this.held.set(key, { event: e, due: now + this.holdMs });
      return;
    }
    if (before) {
      const ends = FOLDS_STARTED.has(e.type) && e.queue === before.event.queue && e.attempt === before.event.attempt && e.startedAt === undefined;
      if (ends) e.startedAt = before.event.at;
      else publish(before.event);
    }
    publish(e);
  }

  /** Held events whose hold is over at `now`, oldest first. */
  due(now: number): NaqEvent[] {
    const out: NaqEvent[] = [];
    for (const [key, h] of this.held) {
      if (h.due > now) break;
      this.held.delete(key);
      out.push(h.event);
    }
    return out;
  }

  /** When the oldest held event falls due; undefined when none is held. */
  nextDue(): number | undefined {
    for (const h of this.held.values()) return h.due;
    return undefined;
  }

  /** Everything held, oldest first (a flush: nothing is held after). */
  drain(): NaqEvent[] {
    const out = [...this.held.values()].map((h) => h.event);
    this.held.clear();
    return out;
  }
}
