/**
 * Loading naq's configuration: defaults → file → env → flags. Later layers win; objects
 * merge deeply, arrays (e.g. `connection.servers`) replace. The merged result is validated
 * once with `configSchema`; a bad value fails with one line naming where it came from
 * (file path, env var or flag), the key, the value (redacted if secret) and what is accepted.
 *
 * The file is found with cosmiconfig (module name `naq`, see SEARCH_PLACES), searching from
 * `cwd` upward to the home directory and then the user config dir (~/.config/naq/config*),
 * unless `configFile` (or NAQ_CONFIG) names one. JS config files are loaded (executed).
 *
 * Environment variables (ENV_VARS below; empty values count as unset; when two variables
 * map to one key, the first listed wins, so NAQ_* beats NATS_*):
 *
 *   Variable                 Key                              Type
 *   NAQ_CONFIG               (config file to load)            path
 *   NAQ_URL, NATS_URL        connection.servers               comma-separated URLs
 *   NAQ_NAMESPACE            namespace                        string
 *   NAQ_CREDS, NATS_CREDS    connection.creds                 path
 *   NAQ_TOKEN                connection.token                 string (secret)
 *   NAQ_USER, NATS_USER      connection.user                  string
 *   NAQ_PASSWORD, NATS_PASSWORD connection.password          string (secret)
 *   NAQ_NKEY, NATS_NKEY      connection.nkey                  seed or path (secret)
 *   NAQ_TLS_CA, NATS_CA      connection.tls.ca                path
 *   NAQ_TLS_CERT, NATS_CERT  connection.tls.cert              path
 *   NAQ_TLS_KEY, NATS_KEY    connection.tls.key               path
 *   NAQ_CONNECT_TIMEOUT      connection.connectTimeout        duration
 *   NAQ_TIMEOUT              timeout                          duration
 *   NAQ_STREAM_REPLICAS      streams.replicas                 number (1, 3 or 5)
 *   NAQ_STREAM_STORAGE       streams.storage                  file | memory
 *   NAQ_EVENTS_MAX_AGE       streams.events.maxAge            duration
 *   NAQ_RESULT_TTL           kv.resultTtl                     duration
 *   NAQ_MAX_ACK_PENDING      queues.defaults.maxAckPending    number
 *   NAQ_ACK_WAIT             queues.defaults.ackWait          duration
 *   NAQ_WORKER_CONCURRENCY   worker.concurrency               number
 *   NAQ_WORKER_GRACE         worker.grace                     duration
 */
import { stat } from "node:fs/promises";
import path from "node:path";
import { cosmiconfig, defaultLoaders } from "cosmiconfig";
import { ConfigError, coerceError } from "../model/errors.js";
import { configSchema, defaultConfig, type NaqConfig, type NaqConfigInput } from "./schema.js";
import { describeSource, isPlainObject, isSecretKey, leafPaths, REDACTED, redactValue } from "./show.js";

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

/** One problem found while loading; `message` is one line without the "config error in X:" prefix. */
export interface ConfigIssue {
  source: Source;
  /** Dotted key path the problem is about ("" for the file as a whole). */
  key: string;
  message: string;
}

/** A ConfigError carrying every issue found; its message is the first one. */
export class InvalidConfigError extends ConfigError {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[], options?: { cause?: unknown }) {
    super(issues.length > 0 ? formatIssue(issues[0] as ConfigIssue) : "config error", options);
    this.issues = issues;
  }
}

export function formatIssue(issue: ConfigIssue): string {
  return `config error in ${describeSource(issue.source)}: ${issue.message}`;
}

export const SEARCH_PLACES: readonly string[] = [
  "package.json",
  ".naqrc",
  ".naqrc.json",
  ".naqrc.yaml",
  ".naqrc.yml",
  ".naqrc.js",
  ".naqrc.cjs",
  ".naqrc.mjs",
  "naq.config.js",
  "naq.config.cjs",
  "naq.config.mjs",
];

export const CONFIG_FILE_ENV = "NAQ_CONFIG";

export interface EnvVar {
  name: string;
  /** Dotted config key; absent for NAQ_CONFIG, which names the file instead. */
  key?: string;
  type: "string" | "list" | "number" | "duration" | "path";
  description: string;
}

/** Every environment variable naq reads, in precedence order (first wins per key). */
export const ENV_VARS: readonly EnvVar[] = [
  { name: CONFIG_FILE_ENV, type: "path", description: "config file to load instead of searching (like --config)" },
  { name: "NAQ_URL", key: "connection.servers", type: "list", description: "NATS server URLs, comma-separated" },
  { name: "NATS_URL", key: "connection.servers", type: "list", description: "as NAQ_URL, which wins" },
  { name: "NAQ_NAMESPACE", key: "namespace", type: "string", description: "prefix of every stream, bucket and subject" },
  { name: "NAQ_CREDS", key: "connection.creds", type: "path", description: "NATS .creds file" },
  { name: "NATS_CREDS", key: "connection.creds", type: "path", description: "as NAQ_CREDS, which wins" },
  { name: "NAQ_TOKEN", key: "connection.token", type: "string", description: "auth token" },
  { name: "NAQ_USER", key: "connection.user", type: "string", description: "user name" },
  { name: "NATS_USER", key: "connection.user", type: "string", description: "as NAQ_USER, which wins" },
  { name: "NAQ_PASSWORD", key: "connection.password", type: "string", description: "password" },
  { name: "NATS_PASSWORD", key: "connection.password", type: "string", description: "as NAQ_PASSWORD, which wins" },
  { name: "NAQ_NKEY", key: "connection.nkey", type: "string", description: "nkey seed, or the path of a file holding one" },
  { name: "NATS_NKEY", key: "connection.nkey", type: "string", description: "as NAQ_NKEY, which wins" },
  { name: "NAQ_TLS_CA", key: "connection.tls.ca", type: "path", description: "CA certificate file" },
  { name: "NATS_CA", key: "connection.tls.ca", type: "path", description: "as NAQ_TLS_CA, which wins" },
  { name: "NAQ_TLS_CERT", key: "connection.tls.cert", type: "path", description: "client certificate file" },
  { name: "NATS_CERT", key: "connection.tls.cert", type: "path", description: "as NAQ_TLS_CERT, which wins" },
  { name: "NAQ_TLS_KEY", key: "connection.tls.key", type: "path", description: "client key file" },
  { name: "NATS_KEY", key: "connection.tls.key", type: "path", description: "as NAQ_TLS_KEY, which wins" },
  { name: "NAQ_CONNECT_TIMEOUT", key: "connection.connectTimeout", type: "duration", description: "time allowed to connect" },
  { name: "NAQ_TIMEOUT", key: "timeout", type: "duration", description: "timeout of one request / one-shot command" },
  { name: "NAQ_STREAM_REPLICAS", key: "streams.replicas", type: "number", description: "stream replicas: 1, 3 or 5" },
  { name: "NAQ_STREAM_STORAGE", key: "streams.storage", type: "string", description: "stream storage: file or memory" },
  { name: "NAQ_EVENTS_MAX_AGE", key: "streams.events.maxAge", type: "duration", description: "how long events are kept" },
  { name: "NAQ_RESULT_TTL", key: "kv.resultTtl", type: "duration", description: "how long results and finished jobs are kept" },
  { name: "NAQ_MAX_ACK_PENDING", key: "queues.defaults.maxAckPending", type: "number", description: "jobs in flight per queue, across workers" },
  { name: "NAQ_ACK_WAIT", key: "queues.defaults.ackWait", type: "duration", description: "silence before a job is redelivered" },
  { name: "NAQ_WORKER_CONCURRENCY", key: "worker.concurrency", type: "number", description: "jobs one worker runs at once" },
  { name: "NAQ_WORKER_GRACE", key: "worker.grace", type: "duration", description: "time running jobs get to finish on shutdown" },
];

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

type Segment = string | number;
type Tree = Record<string, unknown>;
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

  const flags = (stripUndefined(opts.flags) ?? {}) as Tree;
  const flagKeys = leafPaths(flags).map(([k]) => k);
  const flagName = (key: string): string => {
    const name = opts.flagNames?.[key] ?? FLAG_NAMES[key] ?? key.split(".").map(kebab).join("-");
    return name.startsWith("-") ? name : `--${name}`;
  };
  layers.push({ data: flags, sourceAt: (key) => ({ kind: "flag", name: flagName(related(flagKeys, key) ?? key) }) });

  const merged = layers.reduce<unknown>((acc, layer) => merge(acc, layer.data), {});
  const parsed = configSchema.safeParse(merged, { error: expectedMessage });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) issues.push(...toIssues(issue, merged, layers));
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

// ---------------------------------------------------------------------------------- file

const yamlLoader = defaultLoaders[".yaml"];

async function readConfigFile(cwd: string, configFile: string | undefined, stopDir?: string): Promise<{ path: string; data: Tree } | undefined> {
  const explorer = cosmiconfig("naq", {
    searchPlaces: [...SEARCH_PLACES],
    mergeSearchPlaces: false,
    searchStrategy: "global",
    stopDir,
    cache: false,
    // An explicit file with another extension (naq.conf) is read as YAML, which includes JSON.
    loaders: yamlLoader ? { default: yamlLoader } : {},
  });
  let result: Awaited<ReturnType<typeof explorer.search>>;
  if (configFile !== undefined) {
    const abs = path.resolve(cwd, configFile);
    const fileIssue = (message: string) => new InvalidConfigError([{ source: { kind: "file", path: abs }, key: "", message }]);
    try {
      if ((await stat(abs)).isDirectory()) throw fileIssue("is a directory, not a config file");
    } catch (err) {
      if (err instanceof InvalidConfigError) throw err;
      const e = coerceError(err) as Error & { code?: unknown };
      throw fileIssue(e.code === "ENOENT" ? "config file not found" : `cannot read: ${e.message}`);
    }
    try {
      result = await explorer.load(abs);
    } catch (err) {
      throw loadError(abs, err);
    }
    result ??= { filepath: abs, config: undefined, isEmpty: true };
  } else {
    try {
      result = await explorer.search(cwd);
    } catch (err) {
      throw loadError(undefined, err);
    }
    if (!result) return undefined;
  }
  const data: unknown = result.config ?? {};
  if (!isPlainObject(data)) {
    const found = Array.isArray(data) ? "a list" : typeof data;
    throw new InvalidConfigError([{ source: { kind: "file", path: result.filepath }, key: "", message: `expected an object of settings at the top level, found ${found}` }]);
  }
  return { path: result.filepath, data };
}

function loadError(file: string | undefined, err: unknown): InvalidConfigError {
  const e = coerceError(err);
  const where = (e as Error & { filepath?: unknown }).filepath;
  const filepath = typeof where === "string" ? where : (file ?? "config file");
  const syntax = /^(JSON|YAML) Error in [^\n]*?:[ \t]*\n/.exec(e.message);
  const text = syntax ? e.message.slice(syntax[0].length) : e.message;
  // Skip code frames ("> 1 | {...", "    |   ^") and parse-json's quote of the input: they may hold secrets.
  const line = (text.split("\n").map((l) => l.trim()).find((l) => l.length > 0 && !/^(>\s*)?\d*\s*\|/.test(l)) ?? e.name).replace(/ while parsing .*$/, "");
  const what = syntax ? `invalid ${syntax[1]}` : "cannot load";
  return new InvalidConfigError([{ source: { kind: "file", path: filepath }, key: "", message: `${what}: ${line}` }], { cause: e });
}

// ----------------------------------------------------------------------------------- env

function envLayer(env: NodeJS.ProcessEnv, issues: ConfigIssue[]): { data: Tree; names: Map<string, string> } {
  const data: Tree = {};
  const names = new Map<string, string>();
  for (const v of ENV_VARS) {
    const raw = nonEmpty(env[v.name]);
    if (v.key === undefined || raw === undefined || names.has(v.key)) continue;
    names.set(v.key, v.name);
    let value: unknown = raw;
    if (v.type === "list") {
      value = raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
    } else if (v.type === "number") {
      const text = raw.trim();
      value = /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(text) ? Number(text) : Number.NaN;
      if (Number.isNaN(value)) {
        issues.push({ source: { kind: "env", name: v.name }, key: v.key, message: `${v.key} = ${showValue(v.key, raw)} is not accepted (expected a number)` });
        continue;
      }
    }
    setAt(data, v.key.split("."), value);
  }
  return { data, names };
}

// ------------------------------------------------------------------------------ validation

interface ZodIssueLike {
  code: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
}

function toIssues(issue: ZodIssueLike, merged: unknown, layers: Layer[]): ConfigIssue[] {
  const segs = issue.path.map((p): Segment => (typeof p === "number" ? p : String(p)));
  if (issue.code === "unrecognized_keys") {
    const known = knownKeys(segs.filter((s): s is string => typeof s === "string"));
    return (issue.keys ?? []).map((k) => {
      const key = dotted([...segs, k]);
      return { source: sourceOf([...segs, k], layers), key, message: `unknown key "${key}" (known keys at this level: ${known.join(", ")})` };
    });
  }
  const key = dotted(segs);
  const source = sourceOf(segs, layers);
  if (issue.code === "invalid_key") {
    const parent = dotted(segs.slice(0, -1));
    const inner = (issue as { issues?: Array<{ message?: string }> }).issues?.[0]?.message ?? issue.message;
    return [{ source, key, message: `${parent} key ${JSON.stringify(segs.at(-1))} is not accepted (${inner})` }];
  }
  const value = getAt(merged, segs);
  const message = value === undefined ? `${key} is missing (${issue.message})` : `${key} = ${showValue(key, value)} is not accepted (${issue.message})`;
  return [{ source, key, message }];
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

/** zod's per-parse error map: says what is accepted, for issues whose schema gave no message. */
function expectedMessage(issue: { code?: string; expected?: unknown; origin?: unknown; minimum?: unknown; maximum?: unknown; inclusive?: boolean; values?: unknown[] }): string | undefined {
  switch (issue.code) {
    case "invalid_type": {
      const kinds: Record<string, string> = { number: "a number", int: "a whole number", string: "a string", array: "a list", object: "an object", boolean: "true or false" };
      return `expected ${kinds[String(issue.expected)] ?? String(issue.expected)}`;
    }
    case "too_small":
    case "too_big": {
      const small = issue.code === "too_small";
      const bound = String(small ? issue.minimum : issue.maximum);
      if (issue.origin === "array") return `expected ${small ? "at least" : "at most"} ${bound} item(s)`;
      if (issue.origin === "string") return `expected ${small ? "at least" : "at most"} ${bound} character(s)`;
      return `expected a number ${small ? ">" : "<"}${issue.inclusive === false ? "" : "="} ${bound}`;
    }
    case "invalid_value": {
      const values = (issue.values ?? []).map((v) => JSON.stringify(v));
      return `expected ${values.length > 1 ? `${values.slice(0, -1).join(", ")} or ${values.at(-1)}` : (values[0] ?? "another value")}`;
    }
    default:
      return undefined;
  }
}

interface SchemaDef {
  type: string;
  innerType?: unknown;
  in?: unknown;
  shape?: Record<string, unknown>;
  valueType?: unknown;
  element?: unknown;
}
const defOf = (schema: unknown): SchemaDef => (schema as { _zod: { def: SchemaDef } })._zod.def;

/** The keys the schema accepts in the object at `segs`. */
function knownKeys(segs: string[]): string[] {
  let schema: unknown = configSchema;
  for (let i = 0; ; ) {
    let def = defOf(schema);
    while (["default", "optional", "nullable", "prefault", "readonly", "pipe"].includes(def.type)) {
      schema = def.type === "pipe" ? def.in : def.innerType;
      def = defOf(schema);
    }
    if (i === segs.length) return def.type === "object" ? Object.keys(def.shape ?? {}) : [];
    const seg = segs[i++] as string;
    if (def.type === "object") schema = def.shape?.[seg];
    else if (def.type === "record") schema = def.valueType;
    else return [];
    if (schema === undefined) return [];
  }
}

// ------------------------------------------------------------------------------- helpers

/** The one-line rendering of a value in messages; secrets become "***". */
function showValue(key: string, value: unknown): string {
  if (isSecretKey(key)) return REDACTED;
  const v = redactValue(key, value);
  const text = typeof v === "string" ? JSON.stringify(v) : typeof v === "object" && v !== null ? (JSON.stringify(v) ?? String(v)) : String(v);
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

function dotted(segs: readonly Segment[]): string {
  return segs.reduce<string>((acc, s) => (typeof s === "number" ? `${acc}[${s}]` : acc === "" ? s : `${acc}.${s}`), "");
}

/** Among `keys`, the one equal to `key`, else an ancestor of it, else a descendant. */
function related(keys: Iterable<string>, key: string): string | undefined {
  const all = [...keys];
  return (
    all.find((k) => k === key) ??
    all.find((k) => key.startsWith(`${k}.`) || key.startsWith(`${k}[`)) ??
    all.find((k) => k.startsWith(`${key}.`))
  );
}

function getAt(value: unknown, segs: readonly Segment[]): unknown {
  let cur = value;
  for (const s of segs) {
    if (Array.isArray(cur) && typeof s === "number") cur = cur[s];
    else if (isPlainObject(cur) && Object.hasOwn(cur, s)) cur = cur[s];
    else return undefined;
  }
  return cur;
}

function setAt(tree: Tree, segs: readonly string[], value: unknown): void {
  let cur = tree;
  for (const s of segs.slice(0, -1)) {
    if (!isPlainObject(cur[s])) cur[s] = {};
    cur = cur[s] as Tree;
  }
  cur[segs.at(-1) as string] = value;
}

/** Deep merge: plain objects merge key by key, anything else (arrays too) replaces; undefined is skipped. */
function merge(base: unknown, over: unknown): unknown {
  if (over === undefined) return base;
  if (!isPlainObject(base) || !isPlainObject(over)) return over;
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    // defineProperty keeps a "__proto__" key an own property (so it is reported as unknown).
    Object.defineProperty(out, k, { value: merge(Object.hasOwn(out, k) ? out[k] : undefined, v), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Removes undefined values, and objects left empty, from a flags object. */
function stripUndefined(value: unknown): unknown {
  if (!isPlainObject(value)) return value;
  const out: Tree = {};
  for (const [k, v] of Object.entries(value)) {
    const s = stripUndefined(v);
    if (s !== undefined) Object.defineProperty(out, k, { value: s, enumerable: true, writable: true, configurable: true });
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value;
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
