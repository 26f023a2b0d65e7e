/**
 * Loading naq's configuration: defaults → file → env → flags. Later layers win; objects
 * merge deeply, arrays (e.g. `connection.servers`) replace. The merged result is validated
 * once with `configSchema`; a bad value fails with one line naming where it came from
 * (file path, env var or flag), the key, the value (redacted if secret) and what is accepted.
 *
 * Its parts:
 *   src/config/file.ts    finding and reading the config file (cosmiconfig; NAQ_CONFIG)
 *   src/config/env.ts     the environment variables and their keys (ENV_VARS)
 *   src/config/merge.ts   the merge and path helpers
 *   src/config/issues.ts  ConfigIssue, InvalidConfigError, and zod's issues turned into them
 */
import path from "node:path";
import { CONFIG_FILE_ENV, envLayer, nonEmpty } from "./env.js";
import { readConfigFile } from "./file.js";
import { expectedMessage, InvalidConfigError, toIssues, type ConfigIssue } from "./issues.js";
import { deeperThan, dotted, getAt, MAX_CONFIG_DEPTH, merge, related, stripUndefined, type Segment, type Tree } from "./merge.js";
import { configSchema, defaultConfig, type NaqConfig, type NaqConfigInput } from "./schema.js";
import { leafPaths } from "./show.js";

export { SEARCH_PLACES } from "./file.js";
export { formatIssue, InvalidConfigError, type ConfigIssue } from "./issues.js";

export type Source =
  | { kind: "default" }
  | { kind: "file"; path: string }
  | { kind: "env"; name: string }
  | { kind: "flag"; name: string };

export interface LoadedConfig {
  config: NaqConfig;
  /** Every leaf dotted path of `config` ("connection.servers", "streams.events.maxAge") → its source. */
  sources: Map<string, Source>;
  /** The config file used, if any. */
  file?: string;
}

type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> | undefined }
    : T;
/** Structured overrides (from flags); `undefined` values are ignored. */
export type ConfigOverrides = DeepPartial<NaqConfigInput>;

export interface LoadConfigOptions {
  /** Where the file search starts, and what a relative `configFile` is resolved against. */
  cwd?: string;
  /** Load this file instead of searching; it must exist. Falls back to env NAQ_CONFIG. */
  configFile?: string;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Already-structured overrides, e.g. `{ connection: { servers: [...] } }`. */
  flags?: ConfigOverrides | Readonly<Record<string, unknown>>;
  /** Dotted key → flag name ("--server") for messages and sources; FLAG_NAMES fills the gaps. */
  flagNames?: Readonly<Record<string, string>>;
  /** Where the upward search stops (default: the home directory). */
  stopDir?: string;
}

/** Flag names used in messages for overrides; other keys become `--a-b-c`. */
export const FLAG_NAMES: Readonly<Record<string, string>> = {
  "connection.servers": "--server",
  "connection.creds": "--creds",
  "connection.token": "--token",
  "connection.user": "--user",
  "connection.password": "--password",
  "connection.nkey": "--nkey",
  "connection.tls.ca": "--tls-ca",
  "connection.tls.cert": "--tls-cert",
  "connection.tls.key": "--tls-key",
  "connection.connectTimeout": "--timeout",
  namespace: "--namespace",
  timeout: "--timeout",
  "worker.concurrency": "--concurrency",
  "worker.grace": "--grace",
};

interface Layer {
  data: Tree;
  sourceAt(key: string): Source;
}

export async function loadConfig(opts: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const cwd = path.resolve(opts.cwd ?? process.cwd());
  const env = opts.env ?? process.env;
  const issues: ConfigIssue[] = [];

  const layers: Layer[] = [{ data: defaultConfig() as unknown as Tree, sourceAt: () => ({ kind: "default" }) }];
  const configFile = opts.configFile ?? nonEmpty(env[CONFIG_FILE_ENV]);
  const file = await readConfigFile(cwd, configFile, opts.stopDir);
  if (file) layers.push({ data: file.data, sourceAt: () => ({ kind: "file", path: file.path }) });

  const fromEnv = envLayer(env, issues);
  layers.push({ data: fromEnv.data, sourceAt: (key) => ({ kind: "env", name: fromEnv.names.get(related(fromEnv.names.keys(), key) ?? "") ?? "NAQ_?" }) });

  if (deeperThan(opts.flags)) {
    throw new InvalidConfigError([{ source: { kind: "flag", name: "(flags)" }, key: "", message: `values are nested more than ${MAX_CONFIG_DEPTH} levels deep` }]);
  }
  const flags = (stripUndefined(opts.flags) ?? {}) as Tree;
  const flagKeys = leafPaths(flags).map(([k]) => k);
  const flagName = (key: string): string => {
    // Own keys only: a flag key such as "__proto__" or "constructor" must not find Object.prototype's.
    const own = (table: Readonly<Record<string, string>> | undefined) => (table && Object.hasOwn(table, key) ? table[key] : undefined);
    const name = own(opts.flagNames) ?? own(FLAG_NAMES) ?? key.split(".").map(kebab).join("-");
    return name.startsWith("-") ? name : `--${name}`;
  };
  layers.push({ data: flags, sourceAt: (key) => ({ kind: "flag", name: flagName(related(flagKeys, key) ?? key) }) });

  const merged = layers.reduce<unknown>((acc, layer) => merge(acc, layer.data), {});
  const parsed = configSchema.safeParse(merged, { error: expectedMessage });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) issues.push(...toIssues(issue, merged, (segs) => sourceOf(segs, layers)));
  }
  if (issues.length > 0 || !parsed.success) throw new InvalidConfigError(issues);

  const sources = new Map<string, Source>();
  for (const [key] of leafPaths(parsed.data)) {
    const segs = key.split(".");
    const layer = [...layers].reverse().find((l) => getAt(l.data, segs) !== undefined);
    sources.set(key, layer ? layer.sourceAt(key) : { kind: "default" });
  }
  return file ? { config: parsed.data, sources, file: file.path } : { config: parsed.data, sources };
}

/** The source of the value at `segs`, or of its nearest ancestor some layer set. */
function sourceOf(segs: Segment[], layers: Layer[]): Source {
  for (let depth = segs.length; depth > 0; depth--) {
    const prefix = segs.slice(0, depth);
    for (let i = layers.length - 1; i >= 0; i--) {
      const layer = layers[i] as Layer;
      if (getAt(layer.data, prefix) !== undefined) return layer.sourceAt(dotted(segs));
    }
  }
  return { kind: "default" };
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
