/**
 * How a command that streams until stopped (`naq events tail`) ends cleanly. The first
 * SIGINT or SIGTERM, or the reader of stdout going away (EPIPE, as in `naq events tail |
 * head -1`), aborts `signal`; the command then finishes like any other: its consumer is
 * deleted, the connection drained, exit 0, no stack. A second signal gets Node's default
 * action and ends the process at once.
 *
 * While active, it stands in for bin/naq's stdout EPIPE handler (which exits on the spot,
 * before the command could clean up) and hands any other stdout error to it.
 */
import type { Writable } from "node:stream";

export type StopReason = "SIGINT" | "SIGTERM" | "EPIPE" | "deadline";

export interface Interruption extends Disposable {
  readonly signal: AbortSignal;
  /** Why the command was stopped, if it was. */
  readonly reason: StopReason | undefined;
  /** Stops the command for `reason` (e.g. a deadline). */
  stop(reason: StopReason): void;
}

type ErrorListener = (err: Error) => void;

export function interruption(stdout: Writable = process.stdout): Interruption {
  const controller = new AbortController();
  let reason: StopReason | undefined;
  const stop = (why: StopReason) => {
    if (reason) return;
    reason = why;
    controller.abort(why);
  };

  const signals = ["SIGINT", "SIGTERM"] as const;
  const onSignal = (sig: NodeJS.Signals) => {
    // The next signal gets the default action: leave at once.
    for (const s of signals) process.removeListener(s, onSignal);
    stop(sig as StopReason);
  };
  for (const s of signals) process.once(s, onSignal);

  const previous = stdout.listeners("error") as ErrorListener[];
  const onError: ErrorListener = (err) => {
    if ((err as NodeJS.ErrnoException).code === "EPIPE") stop("EPIPE");
    else for (const l of previous) l.call(stdout, err);
  };
  stdout.removeAllListeners("error");
  stdout.on("error", onError);

  return {
    signal: controller.signal,
    get reason() {
      return reason;
    },
    stop,
    [Symbol.dispose]() {
      for (const s of signals) process.removeListener(s, onSignal);
      stdout.removeListener("error", onError);
      for (const l of previous) stdout.on("error", l);
    },
  };
}
