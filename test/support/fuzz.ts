/**
 * Helpers for the fuzz tests (fast-check): hostile input generators and the one property
 * every parser of outside input must have: it returns, or it throws one of naq's typed
 * errors (a NaqError), never a TypeError, RangeError or anything else.
 */
import fc from "fast-check";
import { NaqError } from "../../src/model/errors.js";

/** Runs `fn`; a NaqError is a fine outcome ("rejected"); anything else thrown fails the property with what it was. */
export function typedOutcome<T>(fn: () => T): { ok: true; value: T } | { ok: false; error: NaqError } {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (err instanceof NaqError) {
      if (typeof err.message !== "string" || err.message.length === 0) throw new Error(`a ${err.name} without a message`);
      return { ok: false, error: err };
    }
    const e = err instanceof Error ? err : new Error(String(err));
    throw new Error(`crashed with ${e.name}: ${e.message} (not a NaqError)`, { cause: e });
  }
}

/** As typedOutcome, for async functions. */
export async function typedOutcomeAsync<T>(fn: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: NaqError }> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    if (err instanceof NaqError) return { ok: false, error: err };
    const e = err instanceof Error ? err : new Error(String(err));
    throw new Error(`crashed with ${e.name}: ${e.message} (not a NaqError)`, { cause: e });
  }
}

/** Bounded runs: the fuzz files must stay fast (a few seconds each). A fixed seed can be set with FUZZ_SEED. */
export const RUNS = (n: number): fc.Parameters<unknown> => {
  const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
  return { numRuns: n, ...(seed !== undefined ? { seed } : {}) };
};

/** Strings that break naive code: empty, huge, control characters, lone surrogates, RTL, wildcards, prototype keys. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    "",
    " ",
    ".",
    "*",
    ">",
    "a.b",
    "a b",
    "a*",
    "a>",
    "\u0000",
    "\n",
    "\r\n",
    "\t",
    "\u001b[31m",
    "\u202e",
    "\ud800",
    "\udfff",
    "é",
    "日本",
    "🙂",
    "__proto__",
    "constructor",
    "prototype",
    "toString",
    "hasOwnProperty",
    "NaN",
    "Infinity",
    "-0",
    "1e999",
    "null",
    "undefined",
    "true",
    "{}",
    "[]",
    "$KV.x.>",
    "x".repeat(300),
    "a".repeat(129),
    "_reserved",
  ),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ maxLength: 400 }),
);

/** Numbers that break naive code. */
export const nastyNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, -0, -1, 0.5, 1e-300, 1e21, 1e300, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, 2 ** 31, 2 ** 53, Number.MAX_VALUE, -Number.MAX_VALUE),
  fc.double(),
  fc.integer(),
);

/** Any JSON value, including deep nesting and nasty keys and strings. */
export const nastyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
  { weight: 2, arbitrary: nastyString },
  { weight: 2, arbitrary: nastyNumber.filter(Number.isFinite) },
  { weight: 1, arbitrary: fc.dictionary(nastyString, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 3_000 }).map((n) => deepNest(n)) },
);

/** `[[[...]]]` n deep, built as a value. */
export function deepNest(n: number): unknown {
  let v: unknown = null;
  for (let i = 0; i < n; i++) v = i % 2 ? [v] : { a: v };
  return v;
}

/** JSON text n levels deep (also deeper than any recursive code can follow). */
export const deepJsonText = (n: number): string => `${"[".repeat(n)}${"]".repeat(n)}`;

/** Text mutations of a JSON document: number overflow, duplicate/prototype keys, truncation, byte flips. */
export function mutateText(text: string, how: number, at: number, insert: string): string {
  const i = Math.abs(at) % (text.length + 1);
  switch (how % 8) {
    case 0:
      return text.slice(0, i); // truncated
    case 1:
      return text.slice(0, i) + insert + text.slice(i); // inserted junk
    case 2:
      return text.replace(/\d+/, "1e999"); // a number that parses to Infinity
    case 3:
      return text.replace("{", `{"__proto__":{"v":1,"polluted":true},`);
    case 4:
      return text.replace("{", `{"constructor":{"prototype":{"polluted":true}},`);
    case 5:
      return text.replace(/}$/, `,"v":2}`); // duplicate key: the last one wins
    case 6:
      return text.slice(0, i) + String.fromCharCode(at & 0xffff) + text.slice(i + 1); // one character flipped
    default:
      return text.replace(/"[^"]*"/, JSON.stringify(insert)); // first key renamed
  }
}

/** Whether Object.prototype got polluted by something a test ran. */
export function prototypeIsClean(): boolean {
  const probe: Record<string, unknown> = {};
  return probe.polluted === undefined && Object.getOwnPropertyNames(Object.prototype).every((k) => k !== "polluted" && k !== "v");
}
