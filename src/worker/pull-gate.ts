/**
 * PullGate: what a worker's pull loops wait on. Which of its queues are paused, whether
 * its main connection is down, the open pulls of each queue (so a pause or a stop ends
 * them: the server drops a pull request nobody listens to), the loops waiting for a
 * change (resume, reconnect, stop), and which queues looked empty last (for --burst).
 */
export class PullGate {
  private readonly paused = new Set<string>();
  /** What ends each queue's open pulls. */
  private readonly pulls = new Map<{ stop(): void }, string>();
  private waiters: Array<() => void> = [];
  private readonly idle = new Set<string>();
  private down = false;

  constructor(private readonly queues: readonly string[]) {}

  /** Whether the worker's main connection (results, events) is down. */
  get offline(): boolean {
    return this.down;
  }

  /**
   * The main connection went down (true) or came back (false). Pulls go on a connection
   * of their own, which may come back first after a server restart: jobs it delivered
   * then could not store their results and would run again. Offline ends every open pull
   * and holds new ones; back online wakes the loops.
   */
  setOffline(offline: boolean): void {
    if (this.down === offline) return;
    this.down = offline;
    if (offline) for (const pull of this.pulls.keys()) pull.stop();
    this.wake();
  }

  isPaused(queue: string): boolean {
    return this.paused.has(queue);
  }

  /** This worker's paused queues, in its priority order. */
  pausedQueues(): string[] {
    return this.queues.filter((q) => this.paused.has(q));
  }

  /** Whether every queue of the worker is paused. */
  allPaused(): boolean {
    return this.paused.size === this.queues.length;
  }

  /**
   * Pauses or resumes one of the worker's queues; a pause ends its open pulls. Wakes the
   * waiting loops and returns true when something changed (false: not this worker's
   * queue, or already so).
   */
  setPaused(queue: string, paused: boolean): boolean {
    if (!this.queues.includes(queue) || this.paused.has(queue) === paused) return false;
    if (paused) {
      this.paused.add(queue);
      for (const [pull, q] of this.pulls) if (q === queue) pull.stop();
    } else {
      this.paused.delete(queue);
    }
    this.wake();
    return true;
  }

  track(pull: { stop(): void }, queue: string): void {
    this.pulls.set(pull, queue);
  }

  untrack(pull: { stop(): void }): void {
    this.pulls.delete(pull);
  }

  /** Stopping: ends every open pull and wakes every waiting loop. */
  stopAll(): void {
    for (const pull of this.pulls.keys()) pull.stop();
    this.wake();
  }

  /** Resolves at the next pause/resume/stop change. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Records whether a queue looked empty; returns whether all of them do now. */
  setIdle(queue: string, idle: boolean): boolean {
    if (idle) this.idle.add(queue);
    else this.idle.delete(queue);
    return this.idle.size === this.queues.length;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }
}
