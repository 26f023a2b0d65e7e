/**
 * SlotPool: a worker's concurrency as slots shared by its queues' pull loops.
 *
 * States of a slot: free -> reserved (a pull is asking for it) -> busy (a job runs in it)
 * -> free. A pull loop reserves slots before pulling, so a worker never holds more
 * delivered jobs than it can run (every delivered job starts at once; none waits in a
 * client buffer while its ack_wait runs out). When several loops wait, the one with the
 * lowest priority number (the queue listed first) is served first.
 */

interface Waiter {
  priority: number;
  max: number;
  resolve: (n: number) => void;
}

export class SlotPool {
  private free: number;
  private waiters: Waiter[] = [];
  private idleWaiters: Array<() => void> = [];

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError("capacity must be a whole number >= 1");
    this.free = capacity;
  }

  get available(): number {
    return this.free;
  }

  /** Slots reserved or busy. */
  get used(): number {
    return this.capacity - this.free;
  }

  /** Waits until at least one slot is free, then takes up to `max` of them. */
  reserve(priority: number, max: number = this.capacity): Promise<number> {
    if (this.free > 0 && this.waiters.every((w) => w.priority > priority)) {
      const n = Math.min(this.free, Math.max(1, max));
      this.free -= n;
      return Promise.resolve(n);
    }
    return new Promise((resolve) => {
      this.waiters.push({ priority, max: Math.max(1, max), resolve });
      this.waiters.sort((a, b) => a.priority - b.priority);
    });
  }

  /** Takes up to `max` free slots at once if no one with higher priority waits; 0 if none. */
  tryReserve(priority: number, max: number): number {
    if (this.free === 0 || max < 1 || this.waiters.some((w) => w.priority <= priority)) return 0;
    const n = Math.min(this.free, max);
    this.free -= n;
    return n;
  }

  /** Returns `n` slots (unused reservations, or a finished job's slot). */
  release(n = 1): void {
    this.free = Math.min(this.capacity, this.free + n);
    while (this.free > 0 && this.waiters.length > 0) {
      const w = this.waiters.shift() as Waiter;
      const take = Math.min(this.free, w.max);
      this.free -= take;
      w.resolve(take);
    }
    if (this.free === this.capacity) {
      const idle = this.idleWaiters;
      this.idleWaiters = [];
      for (const fn of idle) fn();
    }
  }

  /** Resolves when every slot is free. */
  whenIdle(): Promise<void> {
    if (this.free === this.capacity) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Wakes every waiting reservation with 0 slots (used on shutdown). */
  cancelWaiters(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w.resolve(0);
  }
}
