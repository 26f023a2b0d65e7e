/**
 * Task handlers: a map from task name to function. From the CLI they come from modules
 * (`--handlers ./dist/tasks.js`): every exported function is a task, and so is every
 * function-valued key of a default-exported object. ESM and CJS both load.
 */
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import type { JobEnvelope, JsonValue } from "../model/job.js";
import { UsageError } from "../model/errors.js";

export interface JobContext {
  /** The job as it was enqueued. */
  readonly job: JobEnvelope;
  readonly id: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Fires when the job times out, is cancelled, or the worker is forced to stop. */
  readonly signal: AbortSignal;
  /** Reports progress (a number 0..100 or any JSON); becomes a `progress` event. */
  progress(value: JsonValue): void;
  /** A line for the job's log (a `progress` event with `log`). */
  log(line: string): void;
}

export type Handler = (payload: JsonValue, ctx: JobContext) => unknown;
export type Handlers = Record<string, Handler>;

function collect(mod: Record<string, unknown>, from: string, into: Map<string, Handler>): void {
  const add = (name: string, fn: unknown) => {
    if (typeof fn !== "function") return;
    if (into.has(name)) throw new UsageError(`task "${name}" is defined twice (again in ${from})`);
    into.set(name, fn as Handler);
  };
  for (const [name, value] of Object.entries(mod)) {
    if (name === "default") continue;
    add(name, value);
  }
  const def = mod.default;
  if (def && typeof def === "object") {
    for (const [name, value] of Object.entries(def as Record<string, unknown>)) add(name, value);
  } else if (typeof def === "function" && def.name && !into.has(def.name)) {
    add(def.name, def);
  }
}

/** Loads handler modules (paths relative to `cwd`) into one task map. */
export async function loadHandlerModules(paths: readonly string[], cwd = process.cwd()): Promise<Map<string, Handler>> {
  const out = new Map<string, Handler>();
  for (const p of paths) {
    const file = resolve(cwd, p);
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === "ERR_MODULE_NOT_FOUND" && e.message.includes(file) ? "file not found" : e.message.split("\n")[0];
      throw new UsageError(`cannot load handlers from ${p}: ${why}`, { cause: err });
    }
    collect(mod, p, out);
  }
  return out;
}

export function handlersFromObject(h: Handlers): Map<string, Handler> {
  const out = new Map<string, Handler>();
  for (const [name, fn] of Object.entries(h)) {
    if (typeof fn !== "function") throw new UsageError(`handler for task "${name}" is not a function`);
    out.set(name, fn);
  }
  return out;
}
