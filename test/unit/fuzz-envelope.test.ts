/**
 * Fuzzing the job envelope decoder (what a worker does with every message on a queue
 * subject) with fast-check: random bytes, random JSON, and valid envelopes with one thing
 * broken (a field dropped, retyped or oversized, a wrong version, unicode, deep nesting,
 * huge numbers, prototype keys). The decoder either returns an envelope that is valid and
 * survives the wire unchanged, or throws a ValidationError: never anything else.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/model/errors.js";
import { createEnvelope, decodeEnvelope, encodeEnvelope, validateEnvelope, type JobEnvelope } from "../../src/model/job.js";
import { deepJsonText, deepNest, mutateText, nastyJson, nastyNumber, nastyString, prototypeIsClean, RUNS, typedOutcome } from "../support/fuzz.js";

const encoder = new TextEncoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);

const idArb = fc.stringMatching(/^[A-Za-z0-9-][A-Za-z0-9_-]{0,40}$/);
const queueArb = fc.stringMatching(/^[A-Za-z0-9-][A-Za-z0-9_-]{0,20}$/);
const taskArb = fc.stringMatching(/^[A-Za-z0-9_.:-]{1,40}$/);
const backoffArb = fc.oneof(
  fc.record({ type: fc.constant("fixed" as const), delayMs: fc.nat() }),
  fc.record({ type: fc.constant("exponential" as const), baseMs: fc.nat(), maxMs: fc.nat() }),
  fc.record({ type: fc.constant("list" as const), delaysMs: fc.array(fc.nat(), { minLength: 1, maxLength: 5 }) }),
);
const jitterArb = fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined });

/** A valid v1 envelope as plain data. */
const envelopeArb: fc.Arbitrary<Record<string, unknown>> = fc
  .record(
    {
      v: fc.constant(1),
      id: idArb,
      queue: queueArb,
      task: taskArb,
      payload: fc.jsonValue({ maxDepth: 4 }),
      enqueuedAt: fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true }).map((d) => d.toISOString()),
      attempts: fc.integer({ min: 1, max: 1000 }),
      backoff: fc.tuple(backoffArb, jitterArb).map(([b, j]) => (j === undefined ? b : { ...b, jitter: j })),
      timeoutMs: fc.integer({ min: 1, max: 2_000_000_000 }),
      dependsOn: fc.array(idArb, { maxLength: 3 }),
      labels: fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 }), { maxKeys: 3 }),
    },
    { requiredKeys: ["v", "id", "queue", "task", "payload", "enqueuedAt", "attempts", "backoff"] },
  )
  .map((e) => JSON.parse(JSON.stringify(e)) as Record<string, unknown>); // -0 -> 0, as on the wire

const FIELDS = ["v", "id", "queue", "task", "payload", "enqueuedAt", "attempts", "backoff", "timeoutMs", "dependsOn", "labels"] as const;

/**
 * What must hold for any input: a typed rejection, or an envelope that validates again and
 * encodes to the same bytes after a trip over the wire (nothing that JSON would change, such
 * as Infinity becoming null).
 */
function checkDecoded(text: string): void {
  const r = typedOutcome(() => decodeEnvelope(bytes(text)));
  if (!r.ok) {
    expect(r.error).toBeInstanceOf(ValidationError);
    expect(r.error.message).not.toMatch(/\n/);
    return;
  }
  assertWireStable(r.value);
}

function assertWireStable(env: JobEnvelope): void {
  const wire = encodeEnvelope(env);
  const again = decodeEnvelope(wire);
  expect(new TextDecoder().decode(encodeEnvelope(again))).toBe(new TextDecoder().decode(wire));
  expect(again.id).toMatch(/^[A-Za-z0-9-][A-Za-z0-9_-]*$/);
  expect(again.queue).toMatch(/^[A-Za-z0-9-][A-Za-z0-9_-]*$/);
  expect(Number.isInteger(again.attempts)).toBe(true);
}

describe("decodeEnvelope under fuzzing", () => {
  it("valid envelopes are accepted and round-trip byte for byte (300 runs)", () => {
    fc.assert(
      fc.property(envelopeArb, (e) => {
        const text = JSON.stringify(e);
        const env = decodeEnvelope(bytes(text));
        expect(new TextDecoder().decode(encodeEnvelope(env))).toBe(text);
      }),
      RUNS(300),
    );
  });

  it("random bytes: a ValidationError or a valid envelope, never a crash (500 runs)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (data) => {
        const r = typedOutcome(() => decodeEnvelope(data));
        if (r.ok) assertWireStable(r.value);
      }),
      RUNS(500),
    );
  });

  it("random JSON documents and JSON-ish text (500 runs)", () => {
    fc.assert(fc.property(fc.oneof(fc.json({ maxDepth: 4 }), fc.string({ maxLength: 200 })), checkDecoded), RUNS(500));
  });

  it("one field dropped or replaced by a hostile value (1000 runs)", () => {
    fc.assert(
      fc.property(envelopeArb, fc.constantFrom(...FIELDS), fc.oneof(nastyJson, fc.constant(undefined)), (e, field, value) => {
        const copy: Record<string, unknown> = { ...e };
        if (value === undefined) delete copy[field];
        else copy[field] = value;
        checkDecoded(JSON.stringify(copy));
      }),
      RUNS(1000),
    );
  });

  it("backoff fields replaced by hostile numbers and values (500 runs)", () => {
    fc.assert(
      fc.property(
        envelopeArb,
        fc.constantFrom("type", "delayMs", "baseMs", "maxMs", "delaysMs", "jitter"),
        fc.oneof(nastyNumber, nastyJson, fc.array(nastyNumber, { maxLength: 3 })),
        (e, field, value) => {
          const backoff = { ...(e.backoff as Record<string, unknown>), [field]: value };
          // JSON.stringify writes Infinity and NaN as null; the text form keeps them as overflow.
          const text = JSON.stringify({ ...e, backoff }).replace(/null/g, () => "1e999");
          checkDecoded(text);
        },
      ),
      RUNS(500),
    );
  });

  it("text-level mutations: truncation, junk, 1e999, __proto__/constructor keys, duplicate keys (1000 runs)", () => {
    fc.assert(
      fc.property(envelopeArb, fc.nat(), fc.integer(), nastyString, (e, how, at, insert) => {
        checkDecoded(mutateText(JSON.stringify(e), how, at, insert));
        expect(prototypeIsClean()).toBe(true);
      }),
      RUNS(1000),
    );
  });

  it("prototype keys are plain data: they neither validate a field nor pollute Object.prototype", () => {
    const valid = JSON.stringify({
      v: 1,
      id: "a",
      queue: "q",
      task: "t",
      payload: null,
      enqueuedAt: "2025-01-01T00:00:00.000Z",
      attempts: 1,
      backoff: { type: "fixed", delayMs: 0 },
    });
    for (const text of [
      `{"__proto__":${valid}}`,
      `{"constructor":${valid}}`,
      valid.replace(`"payload":null,`, `"__proto__":{"payload":1},`),
      valid.replace(`"labels"`, `"x"`).replace(/}$/, `,"labels":{"__proto__":"x","constructor":"y"}}`),
    ]) {
      checkDecoded(text);
    }
    expect(() => decodeEnvelope(bytes(`{"__proto__":${valid}}`))).toThrow(ValidationError);
    expect(() => decodeEnvelope(bytes(valid.replace(`"payload":null,`, `"__proto__":{"payload":1},`)))).toThrow(/payload/);
    const labelled = decodeEnvelope(bytes(valid.replace(/}$/, `,"labels":{"__proto__":"x"}}`)));
    expect(Object.hasOwn(labelled.labels ?? {}, "__proto__")).toBe(true);
    expect(prototypeIsClean()).toBe(true);
  });

  it("deep nesting: refused with a ValidationError at any depth, never a stack overflow", () => {
    for (const n of [50, 101, 1_000, 5_000, 100_000]) {
      const text = `{"v":1,"id":"a","queue":"q","task":"t","payload":${deepJsonText(n)},"enqueuedAt":"2025-01-01T00:00:00.000Z","attempts":1,"backoff":{"type":"fixed","delayMs":0}}`;
      checkDecoded(text);
    }
    expect(() => decodeEnvelope(bytes(`{"v":1,"id":"a","queue":"q","task":"t","payload":${deepJsonText(5_000)},"enqueuedAt":"2025-01-01T00:00:00.000Z","attempts":1,"backoff":{"type":"fixed","delayMs":0}}`))).toThrow(
      /nested/,
    );
  });

  it("huge numbers (1e999 parses to Infinity) are refused where they would not survive JSON", () => {
    const base = { v: 1, id: "a", queue: "q", task: "t", payload: null, enqueuedAt: "2025-01-01T00:00:00.000Z", attempts: 1, backoff: { type: "fixed", delayMs: 0 } };
    const text = JSON.stringify(base);
    for (const patched of [
      text.replace(`"payload":null`, `"payload":1e999`),
      text.replace(`"payload":null`, `"payload":{"n":[1,-1e999]}`),
      text.replace(/}$/, `,"timeoutMs":1e999}`),
      text.replace(`"delayMs":0`, `"delayMs":1e999`),
      text.replace(`{"type":"fixed","delayMs":0}`, `{"type":"list","delaysMs":[1,1e999]}`),
      text.replace(`"attempts":1`, `"attempts":1e999`),
    ]) {
      expect(() => decodeEnvelope(bytes(patched)), patched).toThrow(ValidationError);
    }
  });

  it("enqueuedAt must be an ISO 8601 time, not anything Date.parse happens to accept", () => {
    const base = { v: 1, id: "a", queue: "q", task: "t", payload: null, attempts: 1, backoff: { type: "fixed", delayMs: 0 } };
    for (const enqueuedAt of ["1", "0", "Tue", "March 7", "2025", "2025-13-01T00:00:00Z", "2025-01-01T00:00:00Z\n"]) {
      expect(() => validateEnvelope({ ...base, enqueuedAt }), enqueuedAt).toThrow(ValidationError);
    }
    for (const enqueuedAt of ["2025-01-01T00:00:00Z", "2025-01-01T00:00:00.123Z", "2025-01-01T01:00:00+01:00", "2025-01-01T00:00:00.123456789Z"]) {
      expect(validateEnvelope({ ...base, enqueuedAt }).enqueuedAt).toBe(enqueuedAt);
    }
  });
});

describe("createEnvelope under fuzzing (the library producer)", () => {
  it("hostile inputs from JavaScript callers: a ValidationError or a wire-stable envelope (1000 runs)", () => {
    const anyValue = fc.oneof(nastyJson, nastyNumber, fc.constant(undefined), fc.bigInt(), fc.constant(() => 1), fc.constant(Symbol("s")), fc.date());
    fc.assert(
      fc.property(
        fc.record(
          {
            task: fc.oneof(taskArb, nastyString, anyValue),
            payload: anyValue,
            queue: fc.oneof(queueArb, nastyString),
            id: fc.oneof(idArb, nastyString),
            retries: fc.oneof(fc.integer({ min: -2, max: 1_100 }), nastyNumber),
            timeoutMs: nastyNumber,
            dependsOn: fc.array(fc.oneof(idArb, nastyString), { maxLength: 3 }),
            labels: fc.dictionary(nastyString, fc.oneof(fc.string(), anyValue), { maxKeys: 3 }),
          },
          { requiredKeys: ["task"] },
        ),
        (input) => {
          const r = typedOutcome(() => {
            const env = createEnvelope(input as Parameters<typeof createEnvelope>[0]);
            encodeEnvelope(env);
            return env;
          });
          if (r.ok) assertWireStable(r.value);
        },
      ),
      RUNS(1000),
    );
  });

  it("a non-object input (from JavaScript) is a ValidationError, not a TypeError (100 runs)", () => {
    fc.assert(
      fc.property(fc.oneof(nastyJson, fc.constant(undefined), fc.constant(null)), (input) => {
        const r = typedOutcome(() => createEnvelope(input as Parameters<typeof createEnvelope>[0]));
        if (r.ok) assertWireStable(r.value);
      }),
      RUNS(100),
    );
  });

  it("payloads JSON cannot carry are refused with a ValidationError naming the payload", () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    for (const payload of [10n, { n: 1n }, circular, deepNest(5_000), Number.NaN, { x: Number.POSITIVE_INFINITY }, [() => 1]]) {
      const err = (() => {
        try {
          encodeEnvelope(createEnvelope({ task: "t", payload: payload as never }));
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err, String(typeof payload)).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe("payload");
    }
  });
});
