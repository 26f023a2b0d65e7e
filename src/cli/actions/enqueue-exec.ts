/** `naq job enqueue --exec -- <cmd> [args...]`: the built-in exec task's job, and how its result reads. */
import { UsageError, ValidationError } from "../../model/errors.js";
import { EXEC_TASK, parseEnvAssignment, validateExecPayload, type ExecPayload } from "../../model/exec.js";
import type { JobRecord, JsonValue } from "../../model/job.js";

export interface ExecOpts {
  data?: string;
  cwd?: string;
  env?: string[];
}

/** The task and payload of an exec job from the command line (everything after `--`). */
export function execJobOf(args: unknown[], opts: ExecOpts): { task: string; payload: JsonValue } {
  if (opts.data !== undefined) throw new UsageError("--data does not go with --exec: the command and its arguments come after --");
  const argv = [args[0], args[1], ...((args[2] as string[] | undefined) ?? [])].filter((a): a is string => typeof a === "string");
  if (argv.length === 0) throw new UsageError("--exec needs a command: naq job enqueue --exec [options] -- <command> [args...]");
  const payload: ExecPayload = { argv };
  if (opts.cwd !== undefined) payload.cwd = opts.cwd;
  try {
    if (opts.env) payload.env = Object.fromEntries(opts.env.map((e) => parseEnvAssignment(e)));
    validateExecPayload(payload);
  } catch (err) {
    if (err instanceof ValidationError) throw new UsageError(err.message);
    throw err;
  }
  return { task: EXEC_TASK, payload: payload as unknown as JsonValue };
}

/**
 * A completed job's result for people: an exec job's stdout as the command printed it
 * (so `naq job result $id` reads like the command's output); any other job's result as JSON.
 */
export function humanResult(record: JobRecord): string {
  const r = record.result;
  if (record.task === EXEC_TASK && r !== null && typeof r === "object" && !Array.isArray(r) && typeof r.stdout === "string") {
    return r.stdout;
  }
  return JSON.stringify(r ?? null);
}
