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
 * The environment variables and their keys are listed in src/config/env.ts (ENV_VARS); the
 * merge and path helpers are in src/config/merge.ts.
 */
import { existsSync, readFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { ConfigError, coerceError } from "../model/errors.js";
import { CONFIG_FILE_ENV, envLayer, nonEmpty } from "./env.js";
import { deeperThan, dotted, getAt, MAX_CONFIG_DEPTH, merge, related, stripUndefined, type Segment, type Tree } from "./merge.js";
import { configSchema, defaultConfig, type NaqConfig, type NaqConfigInput } from "./schema.js";
import { describeSource, isPlainObject, leafPaths, showValue } from "./show.js";

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
  // One line, whatever a key or flag name in a file held: control characters are shown escaped.
  // eslint-disable-next-line no-control-regex
  return `config error in ${describeSource(issue.source)}: ${issue.message}`.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
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

/** Where cosmiconfig looks for its own options ("meta config"), in process.cwd(). */
const META_SEARCH_PLACES = ["package.json", "package.yaml", ".config/config.json", ".config/config.yaml", ".config/config.yml", ".config/config.js", ".config/config.ts", ".config/config.cjs", ".config/config.mjs"];
/** What cosmiconfig's global search ("global" strategy) tries in the user config directory. */
const GLOBAL_SEARCH_PLACES = ["config", "config.json", "config.yaml", "config.yml", "config.js", "config.ts", "config.cjs", "config.mjs"];

/** cosmiconfig's user config directory for "naq" (its env-paths dependency, suffix ""). */
function globalConfigDir(): string {
  const home = homedir();
  if (process.platform === "darwin") return path.join(home, "Library", "Preferences", "naq");
  if (process.platform === "win32") return path.join(process.env.APPDATA || path.join(home, "AppData", "Roaming"), "naq", "Config");
  return path.join(process.env.XDG_CONFIG_HOME || path.join(home, ".config"), "naq");
}

/** Whether a package.json may matter: it has `key`, or it is something only cosmiconfig should judge. */
function packageJsonHas(file: string, key: string): boolean {
  try {
    const data: unknown = JSON.parse(readFileSync(file, "utf8"));
    return !isPlainObject(data) || (data[key] !== undefined && data[key] !== null);
  } catch {
    return true;
  }
}

/**
 * False when cosmiconfig's search (the same directories and file names) surely finds no file:
 * then naq does not load cosmiconfig (and its YAML and JSON parsers) at all, which is most of
 * a short command's config loading. Any candidate that exists, or a meta config of
 * cosmiconfig's own, sends the search to cosmiconfig.
 */
function configFileMayExist(cwd: string, stopDir: string | undefined): boolean {
  const exists = (dir: string, place: string, packageKey: string): boolean => {
    const file = path.join(dir, place);
    return existsSync(file) && (place !== "package.json" || packageJsonHas(file, packageKey));
  };
  if (META_SEARCH_PLACES.some((place) => exists(process.cwd(), place, "cosmiconfig"))) return true;
  const stop = path.resolve(stopDir ?? homedir());
  for (let dir = cwd; ; ) {
    if (SEARCH_PLACES.some((place) => exists(dir, place, "naq"))) return true;
    const parent = path.dirname(dir);
    if (dir === stop || parent === dir) break;
    dir = parent;
  }
  const global = globalConfigDir();
  return GLOBAL_SEARCH_PLACES.some((place) => existsSync(path.join(global, place)));
}

async function readConfigFile(cwd: string, configFile: string | undefined, stopDir?: string): Promise<{ path: string; data: Tree } | undefined> {
  if (configFile === undefined && !configFileMayExist(cwd, stopDir)) return undefined;
  const { cosmiconfig, defaultLoaders } = await import("cosmiconfig");
  const yamlLoader = defaultLoaders[".yaml"];
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
  if (deeperThan(data)) {
    throw new InvalidConfigError([{ source: { kind: "file", path: result.filepath }, key: "", message: `values are nested more than ${MAX_CONFIG_DEPTH} levels deep` }]);
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

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
