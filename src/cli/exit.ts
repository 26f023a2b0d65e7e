/**
 * Error -> one line on stderr + exit code. The only translation from failures to what a
 * shell sees; `bin/naq` sets process.exitCode from what `run` returns.
 */
import { CommanderError } from "commander";
import { ExitCode, NaqError, ReportedError, coerceError, exitCodeOf } from "../model/errors.js";
import type { Output } from "./output.js";

export const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  failure (something went wrong, or a check found a problem)
  2  usage error (bad arguments, options or config; refused without --force)
  3  not found (job, stream, queue, schedule)
  4  timed out
  5  cannot reach or authenticate to NATS (also TLS failures and denied permissions)
  6  the awaited job failed`;

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

/** Prints `err` as one line (plus stack and causes with --verbose); returns the exit code. */
export function reportError(err: unknown, out: Output): number {
  if (err instanceof CommanderError) {
    // Commander already printed its message (usage errors) or help/version (exit 0).
    return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  }
  const e = coerceError(err);
  if (e instanceof ReportedError && !out.verbose) return exitCodeOf(e);
  const messages =
    e instanceof AggregateError && !(e instanceof NaqError)
      ? e.errors.map((x) => oneLine(coerceError(x).message))
      : [oneLine(e.message)];
  for (const m of messages) out.error(m);
  if (out.verbose) {
    let cur: unknown = e;
    while (cur instanceof Error) {
      out.stderr.write(`${cur.stack ?? cur.message}\n`);
      cur = cur.cause;
      if (cur instanceof Error) out.stderr.write("caused by: ");
    }
  }
  return exitCodeOf(e);
}
