/**
 * Finding and reading naq's config file. The file is found with cosmiconfig (module name
 * `naq`, see SEARCH_PLACES), searching from `cwd` upward to the home directory and then
 * the user config dir (~/.config/naq/config*), unless `configFile` (or NAQ_CONFIG) names
 * one. JS config files are loaded (executed). When no candidate file exists, cosmiconfig
 * is not loaded at all. A file that cannot be read or parsed is an InvalidConfigError of
 * one line, without the parser's code frame (the file may hold secrets).
 */
import { existsSync, readFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import { homedir } from "node:os";
import path from "node:path";
import { coerceError } from "../model/errors.js";
import { InvalidConfigError } from "./issues.js";
import { deeperThan, MAX_CONFIG_DEPTH, type Tree } from "./merge.js";
import { isPlainObject } from "./show.js";

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

/** The config file to use (`configFile`, else the search from `cwd`) and its settings; undefined when the search finds none. */
export async function readConfigFile(cwd: string, configFile: string | undefined, stopDir?: string): Promise<{ path: string; data: Tree } | undefined> {
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
