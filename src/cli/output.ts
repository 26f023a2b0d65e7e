/**
 * The one place that decides how results reach people and scripts: JSON on stdout with
 * --json, otherwise tables / key-value views / plain lines; colour only for a TTY without
 * NO_COLOR; diagnostics and spinners on stderr, and chatter only when stderr is a TTY.
 */
import type { Writable } from "node:stream";
import { Chalk, type ChalkInstance } from "chalk";
import Table from "cli-table3";

export interface OutputOptions {
  json?: boolean;
  quiet?: boolean;
  color?: boolean;
  verbose?: boolean;
}

export interface Column<T> {
  header: string;
  value: (row: T) => string | number | undefined;
  align?: "left" | "right";
}

export interface Spinner {
  update(text: string): void;
  succeed(text?: string): void;
  fail(text?: string): void;
  stop(): void;
}

const noSpinner: Spinner = { update() {}, succeed() {}, fail() {}, stop() {} };

const isTty = (s: Writable): boolean => (s as Writable & { isTTY?: boolean }).isTTY === true;

export class Output {
  readonly json: boolean;
  readonly quiet: boolean;
  readonly verbose: boolean;
  readonly c: ChalkInstance;
  /** Whether stderr chatter (progress, hints) is shown: a person is watching. */
  readonly interactive: boolean;

  constructor(
    opts: OutputOptions = {},
    readonly stdout: Writable = process.stdout,
    readonly stderr: Writable = process.stderr,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.json = opts.json ?? false;
    this.quiet = opts.quiet ?? false;
    this.verbose = opts.verbose ?? false;
    const colorWanted = opts.color !== false && env.NO_COLOR === undefined && (isTty(stdout) || env.FORCE_COLOR !== undefined);
    this.c = new Chalk({ level: colorWanted ? 1 : 0 });
    this.interactive = isTty(stderr) && !this.quiet;
  }

  /** Prints a result: JSON with --json, else what `human` renders (nothing when it returns ""). */
  result(value: unknown, human: () => string): void {
    if (this.json) {
      this.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
      return;
    }
    const text = human();
    if (text !== "") this.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  }

  /** One NDJSON record or one human line, for streams of results. */
  line(value: unknown, human: () => string): void {
    this.stdout.write(this.json ? `${JSON.stringify(value)}\n` : `${human()}\n`);
  }

  table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
    if (rows.length === 0) return this.c.dim("(none)");
    const table = new Table({
      head: columns.map((col) => this.c.bold(col.header)),
      colAligns: columns.map((col) => col.align ?? "left"),
      style: { head: [], border: [], compact: true },
      chars: { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" },
    });
    for (const row of rows) table.push(columns.map((col) => String(col.value(row) ?? "")));
    return table.toString();
  }

  /** A key: value view, keys aligned. */
  keyValues(pairs: ReadonlyArray<readonly [string, unknown]>): string {
    const width = Math.max(0, ...pairs.map(([k]) => k.length));
    return pairs.map(([k, v]) => `${this.c.bold(k.padEnd(width))}  ${v === undefined ? "" : String(v)}`).join("\n");
  }

  /** Progress and hints for people: stderr, TTY only, not with --quiet. */
  info(message: string): void {
    if (this.interactive) this.stderr.write(`${message}\n`);
  }

  /** Always shown on stderr unless --quiet. */
  warn(message: string): void {
    if (!this.quiet) this.stderr.write(`${this.c.yellow("warning:")} ${message}\n`);
  }

  /** Always shown on stderr. */
  error(message: string): void {
    this.stderr.write(`${this.c.red("error:")} ${message}\n`);
  }

  debug(message: string): void {
    if (this.verbose) this.stderr.write(`${this.c.dim(message)}\n`);
  }

  /** A spinner on stderr when a person is watching; a no-op otherwise. */
  async spinner(text: string): Promise<Spinner> {
    if (!this.interactive || this.json) return noSpinner;
    const { default: ora } = await import("ora");
    const s = ora({ text, stream: this.stderr, discardStdin: false }).start();
    return {
      update: (t) => void (s.text = t),
      succeed: (t) => void s.succeed(t),
      fail: (t) => void s.fail(t),
      stop: () => void s.stop(),
    };
  }
}
