/**
 * Output handling for exec jobs, pure and unit-tested:
 * - TailBuffer keeps the last N bytes of a stream (the result's stdout/stderr tails);
 * - LineSplitter turns chunks into lines (UTF-8 safe across chunk edges, long lines cut);
 * - LogBatcher groups lines into few log events (one per flush interval or size limit),
 *   so a chatty command cannot flood the events stream with one event per line.
 */
import { StringDecoder } from "node:string_decoder";

export const DEFAULT_TAIL_BYTES = 64 * 1024;

export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  private droppedBytes = 0;

  constructor(readonly limit: number = DEFAULT_TAIL_BYTES) {
    if (!(limit > 0)) throw new RangeError("limit must be > 0");
  }

  push(chunk: Buffer | string): void {
    let buf = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    if (buf.length === 0) return;
    if (buf.length >= this.limit) {
      this.droppedBytes += this.size + buf.length - this.limit;
      buf = buf.subarray(buf.length - this.limit);
      this.chunks = [buf];
      this.size = buf.length;
      return;
    }
    this.chunks.push(buf);
    this.size += buf.length;
    while (this.size > this.limit) {
      const head = this.chunks[0] as Buffer;
      const excess = this.size - this.limit;
      if (head.length <= excess) {
        this.chunks.shift();
        this.size -= head.length;
        this.droppedBytes += head.length;
      } else {
        this.chunks[0] = head.subarray(excess);
        this.size -= excess;
        this.droppedBytes += excess;
      }
    }
  }

  /** Bytes dropped from the front so far. */
  get dropped(): number {
    return this.droppedBytes;
  }

  get length(): number {
    return this.size;
  }

  /** The kept bytes as UTF-8; a character cut by the front edge is left out, not garbled. */
  text(): string {
    let buf = Buffer.concat(this.chunks, this.size);
    if (this.droppedBytes > 0) {
      let start = 0;
      // Skip UTF-8 continuation bytes (10xxxxxx) left over from a cut character.
      while (start < buf.length && start < 4 && ((buf[start] as number) & 0xc0) === 0x80) start++;
      buf = buf.subarray(start);
    }
    return buf.toString("utf8");
  }
}

export const DEFAULT_MAX_LINE = 8 * 1024;

export class LineSplitter {
  private readonly decoder = new StringDecoder("utf8");
  private partial = "";

  constructor(readonly maxLine: number = DEFAULT_MAX_LINE) {}

  /** Complete lines in `chunk` (without their newline); a line longer than maxLine is cut into pieces. */
  push(chunk: Buffer | string): string[] {
    const text = this.partial + (typeof chunk === "string" ? chunk : this.decoder.write(chunk));
    const parts = text.split("\n");
    this.partial = parts.pop() as string;
    const lines: string[] = [];
    for (const p of parts) this.cut(p.endsWith("\r") ? p.slice(0, -1) : p, lines);
    while (this.partial.length > this.maxLine) {
      lines.push(this.partial.slice(0, this.maxLine));
      this.partial = this.partial.slice(this.maxLine);
    }
    return lines;
  }

  /** What is left after the stream ended (a last line without a newline), if anything. */
  end(): string[] {
    const rest = this.partial + this.decoder.end();
    this.partial = "";
    const lines: string[] = [];
    if (rest !== "") this.cut(rest, lines);
    return lines;
  }

  private cut(line: string, into: string[]): void {
    if (line.length <= this.maxLine) {
      into.push(line);
      return;
    }
    for (let i = 0; i < line.length; i += this.maxLine) into.push(line.slice(i, i + this.maxLine));
  }
}

export interface LogBatcherOptions {
  /** Flush at least this often while lines come in (default 100 ms). */
  intervalMs?: number;
  /** Flush when this many characters are buffered (default 16 KiB). */
  maxChars?: number;
}

/** Groups lines into batches handed to `emit` (joined by "\n"), in order. */
export class LogBatcher {
  private lines: string[] = [];
  private chars = 0;
  private timer?: NodeJS.Timeout;
  private readonly intervalMs: number;
  private readonly maxChars: number;

  constructor(
    private readonly emit: (text: string) => void,
    opts: LogBatcherOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 100;
    this.maxChars = opts.maxChars ?? 16 * 1024;
  }

  add(line: string): void {
    this.lines.push(line);
    this.chars += line.length + 1;
    if (this.chars >= this.maxChars) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.intervalMs);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.lines.length === 0) return;
    const text = this.lines.join("\n");
    this.lines = [];
    this.chars = 0;
    this.emit(text);
  }
}
