/**
 * Jobs a worker gives back without running them: a delivery that arrives while the worker
 * is stopping, or one no pull was waiting for when no slot is free. JetStream counts every
 * delivery, and naq's attempt number is that count less the deliveries that did not run:
 * before the NAK, the job's "released" counter (beside its record, see
 * JobService.recordRelease) goes up by one, so its next run is not taken for a retry.
 *
 * Best effort: if the job cannot be decoded or the counter cannot be written, it is handed
 * back anyway and that delivery counts as an attempt (the safe side: a poison or
 * crash-looping job still runs out of attempts).
 */
import { decodeEnvelope } from "../model/job.js";
import type { Delivery } from "../services/queues.js";

export class HandBacks {
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly recordRelease: (id: string) => Promise<void>) {}

  /** Counts `d` as not an attempt, then NAKs it (redelivered at once, here or elsewhere). */
  handBack(d: Delivery): void {
    const done = this.countThenNak(d);
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
  }

  /** Resolves when every hand-back has been NAKed (call before closing the connection). */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private async countThenNak(d: Delivery): Promise<void> {
    try {
      await this.recordRelease(decodeEnvelope(d.data).id);
    } catch {
      // Undecodable (a poison message: dead-lettered when it runs) or not written.
    }
    try {
      d.nak();
    } catch {
      // The connection is gone: the server redelivers after ack_wait.
    }
  }
}
