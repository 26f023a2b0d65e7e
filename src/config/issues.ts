/**
 * Problems found while loading naq's config: ConfigIssue (one line naming where the value
 * came from, the key, the value, redacted if secret, and what is accepted), the
 * InvalidConfigError that carries them, and how zod's issues on the merged config become
 * ConfigIssues (including the schema's known keys, for "unknown key" messages).
 */
import { ConfigError } from "../model/errors.js";
import type { Source } from "./load.js";
import { dotted, getAt, type Segment } from "./merge.js";
import { configSchema } from "./schema.js";
import { describeSource, showValue } from "./show.js";

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

interface ZodIssueLike {
  code: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
}

/** The ConfigIssues of one zod issue on `merged`; `sourceOf` tells where the value at a path (or its nearest set ancestor) came from. */
export function toIssues(issue: ZodIssueLike, merged: unknown, sourceOf: (segs: Segment[]) => Source): ConfigIssue[] {
  const segs = issue.path.map((p): Segment => (typeof p === "number" ? p : String(p)));
  if (issue.code === "unrecognized_keys") {
    const known = knownKeys(segs.filter((s): s is string => typeof s === "string"));
    return (issue.keys ?? []).map((k) => {
      const key = dotted([...segs, k]);
      return { source: sourceOf([...segs, k]), key, message: `unknown key "${key}" (known keys at this level: ${known.join(", ")})` };
    });
  }
  const key = dotted(segs);
  const source = sourceOf(segs);
  if (issue.code === "invalid_key") {
    const parent = dotted(segs.slice(0, -1));
    const inner = (issue as { issues?: Array<{ message?: string }> }).issues?.[0]?.message ?? issue.message;
    return [{ source, key, message: `${parent} key ${JSON.stringify(segs.at(-1))} is not accepted (${inner})` }];
  }
  const value = getAt(merged, segs);
  const message = value === undefined ? `${key} is missing (${issue.message})` : `${key} = ${showValue(key, value)} is not accepted (${issue.message})`;
  return [{ source, key, message }];
}

/** zod's per-parse error map: says what is accepted, for issues whose schema gave no message. */
export function expectedMessage(issue: { code?: string; expected?: unknown; origin?: unknown; minimum?: unknown; maximum?: unknown; inclusive?: boolean; values?: unknown[] }): string | undefined {
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
