/**
 * Plain-object helpers of the config loader: dotted paths, reading and setting values at a
 * path, and the deep merge of layers (objects merge key by key; arrays and everything else
 * replace; undefined is skipped).
 */
import { isPlainObject } from "./show.js";

export type Segment = string | number;
export type Tree = Record<string, unknown>;

/** How deep a config value may nest; naq's deepest key is 4 levels. Deeper input would overflow the recursive helpers. */
export const MAX_CONFIG_DEPTH = 32;

/** Whether `value` nests objects or arrays more than `max` levels deep (iterative: safe on any input). */
export function deeperThan(value: unknown, max = MAX_CONFIG_DEPTH): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const [v, depth] = stack.pop() as [unknown, number];
    if (typeof v !== "object" || v === null || seen.has(v)) continue;
    if (depth >= max) return true;
    seen.add(v);
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/** `["a", "b", 0]` -> "a.b[0]". */
export function dotted(segs: readonly Segment[]): string {
  return segs.reduce<string>((acc, s) => (typeof s === "number" ? `${acc}[${s}]` : acc === "" ? s : `${acc}.${s}`), "");
}

/** Among `keys`, the one equal to `key`, else an ancestor of it, else a descendant. */
export function related(keys: Iterable<string>, key: string): string | undefined {
  const all = [...keys];
  return (
    all.find((k) => k === key) ??
    all.find((k) => key.startsWith(`${k}.`) || key.startsWith(`${k}[`)) ??
    all.find((k) => k.startsWith(`${key}.`))
  );
}

export function getAt(value: unknown, segs: readonly Segment[]): unknown {
  let cur = value;
  for (const s of segs) {
    if (Array.isArray(cur) && typeof s === "number") cur = cur[s];
    else if (isPlainObject(cur) && Object.hasOwn(cur, s)) cur = cur[s];
    else return undefined;
  }
  return cur;
}

export function setAt(tree: Tree, segs: readonly string[], value: unknown): void {
  let cur = tree;
  for (const s of segs.slice(0, -1)) {
    if (!isPlainObject(cur[s])) cur[s] = {};
    cur = cur[s] as Tree;
  }
  cur[segs.at(-1) as string] = value;
}

/** Deep merge: plain objects merge key by key, anything else (arrays too) replaces; undefined is skipped. */
export function merge(base: unknown, over: unknown): unknown {
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
export function stripUndefined(value: unknown): unknown {
  if (!isPlainObject(value)) return value;
  const out: Tree = {};
  for (const [k, v] of Object.entries(value)) {
    const s = stripUndefined(v);
    if (s !== undefined) Object.defineProperty(out, k, { value: s, enumerable: true, writable: true, configurable: true });
  }
  return Object.keys(out).length === 0 ? undefined : out;
}
