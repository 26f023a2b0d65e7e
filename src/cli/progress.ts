/**
 * A one-line progress display on stderr for long bulk operations, redrawn at most every
 * 100 ms; only for people (the caller passes `enabled` = stderr is a TTY, not --quiet).
 * With a known total it draws a bar, else a running count and rate.
 */
import type { Writable } from "node:stream";

export class ProgressLine {
  private last = 0;
  private readonly started = Date.now();
  private shown = false;

  constructor(
    private readonly stream: Writable,
    private readonly enabled: boolean,
    private readonly label: string,
  ) {}

  /** `done` items so far; `fraction` of the whole (0..1) when known. */
  update(done: number, fraction?: number, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.last < 100) return;
    this.last = now;
    const secs = Math.max(0.001, (now - this.started) / 1_000);
    const rate = Math.round(done / secs).toLocaleString("en-US");
    let text = `${this.label} ${done.toLocaleString("en-US")} (${rate}/s)`;
    if (fraction !== undefined && Number.isFinite(fraction)) {
      const f = Math.min(1, Math.max(0, fraction));
      const width = 24;
      const full = Math.round(f * width);
      text = `[${"#".repeat(full)}${"-".repeat(width - full)}] ${Math.round(f * 100)}% ${text}`;
    }
    this.stream.write(`\r\x1b[K${text}`);
    this.shown = true;
  }

  /** Removes the line (before the summary is printed). */
  clear(): void {
    if (this.shown) this.stream.write("\r\x1b[K");
    this.shown = false;
  }
}
