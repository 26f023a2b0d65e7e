/**
 * Showing configuration to people: leaf keys with the source of each value, and secrets
 * redacted. Used by `naq config show` (table or `--json`) and by the loader's error
 * messages, so a bad password is never echoed back.
 */
import type { LoadedConfig, Source } from "./load.js";
import { SECRET_KEYS, type NaqConfig } from "./schema.js";

export const REDACTED = "***";

export interface ConfigEntry {
  /** Dotted leaf path, e.g. "streams.events.maxAge". */
  key: string;
  /** The validated value (durations in milliseconds), secrets replaced by "***". */
  value: unknown;
  /** "default", the file path, "env NAQ_X" or "flag --x". */
  source: string;
}

/** How a source is named in messages and in `naq config show`. */
export function describeSource(source: Source): string {
  switch (source.kind) {
    case "default":
      return "default";
    case "file":
      return source.path;
    case "env":
      return `env ${source.name}`;
    case "flag":
      return `flag ${source.name}`;
  }
}

/**
 * Redacts the user info of a server URL: nats://user:pass@host -> nats://user:***@host, and
 * nats://secret@host -> nats://***@host (NATS reads a lone user part as a token).
 */
export function redactUrl(url: string): string {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)?([^/\s]*)@/.exec(url);
  if (!m) return url;
  const info = m[2] ?? "";
  const colon = info.indexOf(":");
  const shown = colon >= 0 ? `${info.slice(0, colon)}:${REDACTED}` : REDACTED;
  return `${m[1] ?? ""}${shown}@${url.slice(m[0].length)}`;
}

/** True when the value at this dotted path (array indices ignored) must never be shown. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEYS.has(key.replace(/\[\d+\]/g, ""));
}

/** Redacts one value found at `key` (a dotted path); returns a copy, never the original. */
export function redactValue(key: string, value: unknown): unknown {
  const bare = key.replace(/\[\d+\]/g, "");
  if (value === undefined) return undefined;
  if (SECRET_KEYS.has(bare)) return REDACTED;
  if (bare === "connection.servers") {
    if (typeof value === "string") return redactUrl(value);
    if (Array.isArray(value)) return value.map((v) => (typeof v === "string" ? redactUrl(v) : v));
  }
  if (Array.isArray(value)) return value.map((v, i) => redactValue(`${key}[${i}]`, v));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = redactValue(key === "" ? k : `${key}.${k}`, v);
    return out;
  }
  return value;
}

/** A deep copy of the config with secrets redacted, for JSON output. */
export function redactedConfig(config: NaqConfig): NaqConfig {
  return redactValue("", config) as NaqConfig;
}

/** Every leaf key of the config with its (redacted) value and where it came from, in schema order. */
export function describeConfig(loaded: LoadedConfig): ConfigEntry[] {
  return leafPaths(loaded.config).map(([key, value]) => {
    const source = loaded.sources.get(key) ?? { kind: "default" as const };
    return { key, value: redactValue(key, value), source: describeSource(source) };
  });
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * The leaves of a plain-object tree as [dotted path, value] pairs, in key order. Arrays and
 * empty objects are leaves; `undefined` values are skipped.
 */
export function leafPaths(value: unknown, prefix = ""): Array<[string, unknown]> {
  if (!isPlainObject(value)) return prefix === "" || value === undefined ? [] : [[prefix, value]];
  const entries = Object.entries(value).filter(([, v]) => v !== undefined);
  if (entries.length === 0) return prefix === "" ? [] : [[prefix, {}]];
  return entries.flatMap(([k, v]) => leafPaths(v, prefix === "" ? k : `${prefix}.${k}`));
}

/** The one-line rendering of a value in the loader's messages; secrets become "***". */
export function showValue(key: string, value: unknown): string {
  if (isSecretKey(key)) return REDACTED;
  const v = redactValue(key, value);
  const text = typeof v === "string" ? JSON.stringify(v) : typeof v === "object" && v !== null ? (JSON.stringify(v) ?? String(v)) : String(v);
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}
