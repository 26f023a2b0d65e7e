/**
 * The built-in `exec` task: its payload, and which commands a worker may run.
 *
 * A worker runs exec jobs only with `--allow-exec <cmd>[,<cmd>...]`. Matching is strict
 * and exact, on argv[0] as the job wrote it:
 * - a bare name (`rsync`) allows argv[0] === "rsync" and nothing else; the worker resolves
 *   the name on its own PATH once, at start, and always runs that file (a job's env
 *   cannot change which program runs);
 * - an absolute path (`/opt/jobs/backup.sh`) allows exactly that argv[0];
 * - `*`, relative paths (`./x`, `bin/x`) and empty entries are refused.
 * A job whose argv[0] is `/usr/bin/rsync` is not allowed by the name `rsync`: list the
 * path too if jobs use it. Nothing goes through a shell.
 */
import { ValidationError } from "./errors.js";

export const EXEC_TASK = "exec";

export interface ExecPayload {
  /** The program and its arguments; argv[0] must be allowed by the worker. */
  argv: string[];
  /** Working directory (default: the worker's). */
  cwd?: string;
  /** Added to (and overriding) the worker's environment. */
  env?: Record<string, string>;
}

/** What an exec job's result is: exit status and the tails of its output. */
export interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  /** The last 64 KiB of stdout (UTF-8). */
  stdout: string;
  stderr: string;
  /** Bytes dropped from the front of each stream to keep the tails. */
  truncated?: { stdout: number; stderr: number };
  durationMs: number;
}

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Environment variables a job may not set: each lets a job inject code into an allowed
 * program (dynamic loader, shell startup files, interpreter options).
 */
const FORBIDDEN_ENV = /^(LD_.*|DYLD_.*|BASH_ENV|ENV|BASHOPTS|SHELLOPTS|PS4|IFS|NODE_OPTIONS|PYTHONPATH|PYTHONSTARTUP|PYTHONHOME|PERL5LIB|PERL5OPT|PERLLIB|RUBYOPT|RUBYLIB|GCONV_PATH)$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

export function validateEnvKey(key: string, field = "env"): string {
  if (!ENV_KEY.test(key)) throw new ValidationError(`${field}: "${key}" is not a valid environment variable name (letters, digits and '_', not starting with a digit)`, field);
  if (FORBIDDEN_ENV.test(key)) {
    throw new ValidationError(`${field}: ${key} may not be set by a job (it could inject code into the command); set it in the worker's environment instead`, field);
  }
  return key;
}

/** Checks an exec job's payload; throws ValidationError naming the field. */
export function validateExecPayload(value: unknown): ExecPayload {
  if (!isObject(value)) throw new ValidationError('exec payload must be an object: {"argv": ["cmd", "arg", ...], "cwd"?: "...", "env"?: {...}}', "payload");
  const { argv, cwd, env } = value;
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === "string")) {
    throw new ValidationError("exec payload: argv must be a non-empty list of strings", "payload.argv");
  }
  if (argv[0] === "" || argv.some((a) => (a as string).includes("\0"))) {
    throw new ValidationError("exec payload: argv[0] must not be empty and no argument may contain a NUL byte", "payload.argv");
  }
  if (cwd !== undefined && (typeof cwd !== "string" || cwd === "" || cwd.includes("\0"))) {
    throw new ValidationError("exec payload: cwd must be a non-empty path", "payload.cwd");
  }
  if (env !== undefined) {
    if (!isObject(env)) throw new ValidationError("exec payload: env must be an object of strings", "payload.env");
    for (const [k, v] of Object.entries(env)) {
      validateEnvKey(k, "payload.env");
      if (typeof v !== "string" || v.includes("\0")) throw new ValidationError(`exec payload: env.${k} must be a string without NUL bytes`, "payload.env");
    }
  }
  for (const key of Object.keys(value)) {
    if (key !== "argv" && key !== "cwd" && key !== "env") {
      throw new ValidationError(`exec payload: unknown field "${key}" (accepted: argv, cwd, env)`, "payload");
    }
  }
  return value as unknown as ExecPayload;
}

/** Parses `KEY=value` (the value may contain '=' and ','). */
export function parseEnvAssignment(text: string, field = "--env"): [string, string] {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new ValidationError(`${field} takes KEY=value, got "${text}"`, field);
  return [validateEnvKey(text.slice(0, eq), field), text.slice(eq + 1)];
}

export type AllowRule = { kind: "name"; name: string } | { kind: "path"; path: string };

/** Parses `--allow-exec` entries; refuses `*`, relative paths and empty entries. */
export function parseAllowList(entries: readonly string[]): AllowRule[] {
  const rules: AllowRule[] = [];
  for (const raw of entries) {
    const e = raw.trim();
    if (e === "") throw new ValidationError("--allow-exec: empty command name", "--allow-exec");
    if (e.includes("*") || e.includes("?")) {
      throw new ValidationError(`--allow-exec: "${e}" is refused: wildcards are not accepted; list each command by name or absolute path`, "--allow-exec");
    }
    if (e.startsWith("/")) {
      if (e.endsWith("/") || e.split("/").some((part) => part === "." || part === "..")) {
        throw new ValidationError(`--allow-exec: "${e}" must be the absolute path of a file, without "." or ".." parts`, "--allow-exec");
      }
      rules.push({ kind: "path", path: e.replace(/\/+/g, "/") });
    } else if (e.includes("/")) {
      throw new ValidationError(`--allow-exec: "${e}" is a relative path: give a command name (found on the worker's PATH) or an absolute path`, "--allow-exec");
    } else {
      rules.push({ kind: "name", name: e });
    }
  }
  return rules;
}

/** The rule that allows argv[0], if any (exact match only; see the header). */
export function matchAllowed(argv0: string, rules: readonly AllowRule[]): AllowRule | undefined {
  const normalized = argv0.startsWith("/") ? argv0.replace(/\/+/g, "/") : argv0;
  return rules.find((r) => (r.kind === "name" ? r.name === argv0 : r.path === normalized));
}

/** A one-line description of the allow list, for refusal reasons. */
export function describeAllowList(rules: readonly AllowRule[]): string {
  return rules.length === 0 ? "none" : rules.map((r) => (r.kind === "name" ? r.name : r.path)).join(", ");
}
