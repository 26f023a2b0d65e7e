/**
 * Lazy command actions: the command tree is declared up front (for parsing, help,
 * completions), but an action's implementation, and everything it imports, loads only
 * when that command runs.
 */
import type { Command } from "commander";
import type { CliContext } from "./context.js";

export type Action<O> = (ctx: CliContext, args: unknown[], opts: O) => Promise<void>;

export interface ActOptions {
  /** False for commands that load configuration themselves (`config validate`). */
  loadConfig?: boolean;
}

export function act<O>(load: () => Promise<Action<O>>, options: ActOptions = {}): (...all: unknown[]) => Promise<void> {
  return async (...all: unknown[]) => {
    const cmd = all[all.length - 1] as Command;
    const [fn, { makeContext }] = await Promise.all([load(), import("./context.js")]);
    const ctx = await makeContext(cmd, options.loadConfig ?? true);
    await fn(ctx, cmd.processedArgs, cmd.opts<O & object>());
  };
}
