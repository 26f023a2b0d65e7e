/**
 * One job per line for `naq job enqueue --ndjson`: parsing and validating a line into
 * EnqueueInput, with defaults from the command line for what a line leaves out.
 *
 *   {"task": "resize", "payload": {"img": 1}, "queue": "images", "id": "img-1", "retries": 5,
 *    "backoff": "exp:1s:5m", "timeout": "30s", "dependsOn": ["a"], "labels": {"batch": "7"}}
 *
 * Blank lines are skipped. Anything else that is not a valid job is an error naming the
 * field; the caller reports it with the line number.
 */
import { parseBackoff, type Backoff } from "./backoff.js";
import { parseDuration } from "./duration.js";
import { ValidationError } from "./errors.js";
import { EXEC_TASK, validateExecPayload } from "./exec.js";
import { createEnvelope, type EnqueueInput, type JobEnvelope, type JsonValue } from "./job.js";

export interface LineDefaults {
  queue?: string;
  retries?: number;
  backoff?: Backoff;
  timeoutMs?: number;
  labels?: Record<string, string>;
}

export const LINE_FIELDS = ["task", "payload", "queue", "id", "retries", "backoff", "timeout", "timeoutMs", "dependsOn", "labels"] as const;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function shorten(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** Parses one line; undefined for a blank line; ValidationError for anything invalid. */
export function parseJobLine(line: string, defaults: LineDefaults = {}): EnqueueInput | undefined {
  const text = line.trim();
  if (text === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ValidationError(`not valid JSON (${(err as Error).message}): ${shorten(text)}`, "");
  }
  if (!isObject(value)) throw new ValidationError(`a job line must be a JSON object such as {"task": "name", "payload": {...}}, got ${shorten(text)}`, "");
  for (const key of Object.keys(value)) {
    if (!(LINE_FIELDS as readonly string[]).includes(key)) {
      throw new ValidationError(`unknown field "${key}" (accepted: ${LINE_FIELDS.join(", ")})`, key);
    }
  }
  if (typeof value.task !== "string") throw new ValidationError('"task" is missing or not a string', "task");
  const input: EnqueueInput = { task: value.task, payload: (value.payload ?? null) as JsonValue };
  const queue = value.queue ?? defaults.queue;
  if (queue !== undefined) {
    if (typeof queue !== "string") throw new ValidationError('"queue" must be a string', "queue");
    input.queue = queue;
  }
  if (value.id !== undefined) {
    if (typeof value.id !== "string") throw new ValidationError('"id" must be a string', "id");
    input.id = value.id;
  }
  const retries = value.retries ?? defaults.retries;
  if (retries !== undefined) {
    if (typeof retries !== "number") throw new ValidationError('"retries" must be a whole number', "retries");
    input.retries = retries;
  }
  if (value.backoff !== undefined) {
    if (typeof value.backoff === "string") input.backoff = parseBackoff(value.backoff);
    else if (isObject(value.backoff)) input.backoff = value.backoff as unknown as Backoff; // validated by createEnvelope
    else throw new ValidationError('"backoff" must be a spec such as "exp:1s:5m" or a backoff object', "backoff");
  } else if (defaults.backoff) input.backoff = defaults.backoff;
  if (value.timeout !== undefined && value.timeoutMs !== undefined) throw new ValidationError('give "timeout" or "timeoutMs", not both', "timeout");
  if (value.timeout !== undefined) {
    if (typeof value.timeout !== "string" && typeof value.timeout !== "number") throw new ValidationError('"timeout" must be a duration such as "30s"', "timeout");
    input.timeoutMs = parseDuration(value.timeout, "timeout");
  } else if (value.timeoutMs !== undefined) {
    if (typeof value.timeoutMs !== "number") throw new ValidationError('"timeoutMs" must be a number of milliseconds', "timeoutMs");
    input.timeoutMs = value.timeoutMs;
  } else if (defaults.timeoutMs !== undefined) input.timeoutMs = defaults.timeoutMs;
  if (input.timeoutMs !== undefined && !(input.timeoutMs > 0)) throw new ValidationError('"timeout" must be more than 0', "timeout");
  if (value.dependsOn !== undefined) {
    const deps = typeof value.dependsOn === "string" ? [value.dependsOn] : value.dependsOn;
    if (!Array.isArray(deps) || !deps.every((d) => typeof d === "string")) throw new ValidationError('"dependsOn" must be a job id or a list of job ids', "dependsOn");
    input.dependsOn = deps as string[];
  }
  if (value.labels !== undefined || defaults.labels) {
    const labels = value.labels ?? {};
    if (!isObject(labels) || !Object.values(labels).every((l) => typeof l === "string")) throw new ValidationError('"labels" must be an object of strings', "labels");
    input.labels = { ...defaults.labels, ...(labels as Record<string, string>) };
  }
  if (input.task === EXEC_TASK) validateExecPayload(input.payload);
  return input;
}

/** parseJobLine + createEnvelope: a complete, validated envelope, or undefined for a blank line. */
export function envelopeFromLine(line: string, defaults: LineDefaults = {}, now = new Date()): JobEnvelope | undefined {
  const input = parseJobLine(line, defaults);
  return input ? createEnvelope(input, now) : undefined;
}
