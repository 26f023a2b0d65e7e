/** Confirmation for destructive commands: --force skips it; no TTY and no --force refuses. */
import { createInterface } from "node:readline/promises";
import { NaqError, UsageError } from "../model/errors.js";
import type { Output } from "./output.js";

export class AbortedError extends NaqError {
  override name = "AbortedError";
}

export async function confirm(question: string, opts: { force?: boolean; out: Output; what: string }): Promise<void> {
  if (opts.force) return;
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new UsageError(`refusing to ${opts.what} without confirmation: no terminal to ask on; pass --force to do it anyway`);
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(`${question} [y/N] `)).trim().toLowerCase();
    if (answer !== "y" && answer !== "yes") throw new AbortedError(`aborted: did not ${opts.what}`);
  } finally {
    rl.close();
  }
}
