/**
 * Fuzzing every pure parser of user input the CLI uses, with fast-check: NDJSON job lines,
 * durations, backoff specs, --at / --start-at times, cron expressions and time zones,
 * --every, --since and --type, exec payloads and --env / --allow-exec, labels, counts, names,
 * and whole schedule definitions. Each either returns a value that is sane (finite, in range,
 * never a wildcard) or throws one of naq's typed errors (or Commander's InvalidArgumentError
 * for option parsers, which the CLI reports as a usage error): never a crash.
 */
import { InvalidArgumentError } from "commander";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseBackoffOption, parseCount, parseDurationOption, parsePositive, labelsOf } from "../../src/cli/parse.js";
import { backoffDelay, parseBackoff } from "../../src/model/backoff.js";
import { compileCron, parseTime, validateTimeZone } from "../../src/model/cron.js";
import { MAX_DURATION_MS, parseDuration } from "../../src/model/duration.js";
import { NaqError, ValidationError } from "../../src/model/errors.js";
import { parseEventTypes, parseSince } from "../../src/model/event-filter.js";
import { matchAllowed, parseAllowList, parseEnvAssignment, validateExecPayload } from "../../src/model/exec.js";
import { decodeEnvelope, encodeEnvelope, validateEnvelope, validateJobId, validateTaskName } from "../../src/model/job.js";
import { namesFor, validateNamespace, validateQueueName, validateToken } from "../../src/model/naming.js";
import { envelopeFromLine, LINE_FIELDS } from "../../src/model/ndjson.js";
import { buildSchedule, validateScheduleName, type ScheduleInput } from "../../src/model/schedule.js";
import { nextRun } from "../../src/model/schedule-timing.js";
import { deepJsonText, mutateText, nastyJson, nastyNumber, nastyString, prototypeIsClean, RUNS, typedOutcome } from "../support/fuzz.js";

const NOW = Date.parse("2025-06-01T12:00:00Z");
/** Mostly a valid value, sometimes a hostile one: so that the hostile one meets code past the first check. */
const mostly = <A, B>(valid: fc.Arbitrary<A>, hostile: fc.Arbitrary<B>): fc.Arbitrary<A | B> =>
  fc.oneof({ weight: 3, arbitrary: valid }, { weight: 1, arbitrary: hostile });
const TOKEN = /^[A-Za-z0-9_-]+$/;
/** Error messages are one line for a terminal: no raw control characters (they are shown escaped). */
const hasControlChars = (text: string): boolean => [...text].some((c) => c.charCodeAt(0) < 0x20);

/** For Commander option parsers: a value, or InvalidArgumentError / a NaqError. */
function optionOutcome<T>(fn: () => T): { ok: true; value: T } | { ok: false } {
  try {
    return { ok: true, value: fn() };
  } catch (err) {
    if (err instanceof InvalidArgumentError || err instanceof NaqError) return { ok: false };
    throw new Error(`crashed with ${(err as Error).name}: ${(err as Error).message}`, { cause: err });
  }
}

const validLine = fc.record(
  {
    task: fc.stringMatching(/^[A-Za-z0-9_.:-]{1,20}$/),
    payload: fc.jsonValue({ maxDepth: 3 }),
    queue: fc.stringMatching(/^[A-Za-z0-9-][A-Za-z0-9_-]{0,10}$/),
    id: fc.stringMatching(/^[A-Za-z0-9-][A-Za-z0-9_-]{0,20}$/),
    retries: fc.integer({ min: 0, max: 999 }),
    backoff: fc.constantFrom("fixed:5s", "exp:1s:5m", "list:1s,5s~0.2"),
    timeout: fc.constantFrom("30s", "1h", 1_000),
    dependsOn: fc.array(fc.stringMatching(/^[A-Za-z0-9-]{1,10}$/), { maxLength: 2 }),
    labels: fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 }),
  },
  { requiredKeys: ["task"] },
);

function checkLine(line: string): void {
  const r = typedOutcome(() => envelopeFromLine(line, {}, new Date(NOW)));
  if (!r.ok) {
    expect(r.error).toBeInstanceOf(ValidationError);
    return;
  }
  if (r.value === undefined) return;
  // What a line yields is what a worker will accept, byte for byte.
  const wire = encodeEnvelope(r.value);
  expect(encodeEnvelope(decodeEnvelope(wire))).toEqual(wire);
}

describe("NDJSON job lines (naq job enqueue --ndjson)", () => {
  it("random text and random JSON (600 runs)", () => {
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.json({ maxDepth: 3 }), nastyString), checkLine), RUNS(600));
  });

  it("valid lines with one field replaced by a hostile value (1000 runs)", () => {
    fc.assert(
      fc.property(validLine, fc.constantFrom(...LINE_FIELDS, "__proto__", "constructor", "v"), nastyJson, (line, field, value) => {
        const obj: Record<string, unknown> = { ...line };
        Object.defineProperty(obj, field, { value, enumerable: true, writable: true, configurable: true });
        checkLine(JSON.stringify(obj));
      }),
      RUNS(1000),
    );
  });

  it("text mutations of valid lines (800 runs)", () => {
    fc.assert(
      fc.property(validLine, fc.nat(), fc.integer(), nastyString, (line, how, at, insert) => {
        checkLine(mutateText(JSON.stringify(line), how, at, insert));
        expect(prototypeIsClean()).toBe(true);
      }),
      RUNS(800),
    );
  });

  it("deep payloads and huge numbers are refused on the line, before anything is published", () => {
    expect(() => envelopeFromLine(`{"task":"t","payload":${deepJsonText(10_000)}}`)).toThrow(/nested more than 100 levels/);
    expect(() => envelopeFromLine(`{"task":"t","payload":[1e999]}`)).toThrow(/finite/);
    expect(() => envelopeFromLine(`{"task":"t","timeoutMs":1e999}`)).toThrow(ValidationError);
    expect(() => envelopeFromLine(`{"task":"t","timeout":"99999999999999999999w"}`)).toThrow(/too long/);
    expect(() => envelopeFromLine(`{"task":"t","backoff":{"type":"list","delaysMs":[1e999]}}`)).toThrow(/delaysMs/);
  });
});

describe("durations, backoff specs, counts", () => {
  const durationText = fc.oneof(
    nastyString,
    fc.stringMatching(/^\d{0,25}(\.\d{0,3})?(ms|s|m|h|d|w)?(\d{0,5}(ms|s|m|h|d|w))?$/),
    fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String),
  );

  it("parseDuration: a whole number of ms from 0 to 100 years, or a ValidationError (1000 runs)", () => {
    fc.assert(
      fc.property(fc.oneof(durationText, nastyNumber), (input) => {
        const r = typedOutcome(() => parseDuration(input, "d"));
        if (r.ok) {
          expect(Number.isSafeInteger(r.value)).toBe(true);
          expect(r.value).toBeGreaterThanOrEqual(0);
          expect(r.value).toBeLessThanOrEqual(MAX_DURATION_MS);
          expect(() => new Date(Date.now() + r.value).toISOString()).not.toThrow();
        }
      }),
      RUNS(1000),
    );
  });

  it("parseDuration refuses what would overflow, with a message saying so", () => {
    expect(() => parseDuration("9".repeat(400))).toThrow(/too long/);
    expect(() => parseDuration("99999999999w")).toThrow(/too long/);
    expect(() => parseDuration(1e300)).toThrow(/too long/);
    expect(parseDuration("100w")).toBe(100 * 604_800_000);
  });

  it("parseBackoff and its option parser: a backoff that validates inside an envelope, or a typed error (800 runs)", () => {
    const spec = fc.oneof(
      nastyString,
      fc.tuple(fc.constantFrom("fixed", "exp", "exponential", "list", "", "x"), fc.array(durationText, { maxLength: 4 }), fc.option(fc.oneof(nastyString, fc.double().map(String))))
        .map(([k, parts, j]) => `${k}:${parts.join(k === "list" ? "," : ":")}${j === null ? "" : `~${j}`}`),
    );
    fc.assert(
      fc.property(spec, (text) => {
        const r = typedOutcome(() => parseBackoff(text));
        if (r.ok) {
          const env = validateEnvelope({ v: 1, id: "a", queue: "q", task: "t", payload: null, enqueuedAt: "2025-01-01T00:00:00Z", attempts: 3, backoff: r.value });
          for (const n of [2, 3, 50]) expect(Number.isFinite(backoffDelay(env.backoff, n))).toBe(true);
        }
        optionOutcome(() => parseBackoffOption(text));
      }),
      RUNS(800),
    );
  });

  it("count, positive and duration options (600 runs)", () => {
    fc.assert(
      fc.property(fc.oneof(nastyString, fc.bigInt({ min: -5n, max: 10n ** 25n }).map(String)), (text) => {
        for (const parse of [parseCount, parsePositive]) {
          const r = optionOutcome(() => parse(text, "--n"));
          if (r.ok) expect(Number.isSafeInteger(r.value)).toBe(true);
        }
        const d = optionOutcome(() => parseDurationOption(text, "--d"));
        if (d.ok) expect(d.value).toBeLessThanOrEqual(MAX_DURATION_MS);
      }),
      RUNS(600),
    );
  });

  it("labels: key=value pairs or a UsageError (300 runs)", () => {
    fc.assert(
      fc.property(fc.array(nastyString, { maxLength: 4 }), (labels) => {
        const r = typedOutcome(() => labelsOf(labels));
        if (r.ok && r.value) for (const v of Object.values(r.value)) expect(typeof v).toBe("string");
        expect(prototypeIsClean()).toBe(true);
      }),
      RUNS(300),
    );
  });
});

describe("times, time zones, cron, --every, --since", () => {
  const timeText = fc.oneof(
    nastyString,
    fc
      .tuple(
        fc.integer({ min: 0, max: 99_999 }),
        fc.integer({ min: -1, max: 13 }),
        fc.integer({ min: 0, max: 32 }),
        fc.integer({ min: 0, max: 25 }),
        fc.integer({ min: 0, max: 61 }),
        fc.constantFrom("Z", "+01:00", "-18:00", "+19:00", "", "+0530", "z"),
      )
      .map(([y, mo, d, h, mi, z]) => `${String(y).padStart(4, "0")}-${String(mo).padStart(2, "0")}-${String(d).padStart(2, "0")}T${String(h).padStart(2, "0")}:${String(mi).padStart(2, "0")}:00${z}`),
  );
  const zone = fc.oneof(nastyString, fc.constantFrom("UTC", "Europe/Berlin", "America/New_York", "Etc/GMT+14", "Asia/Kathmandu", "utc", "Mars/Olympus"));

  it("parseTime: an instant a Date can hold, or a ValidationError (800 runs)", () => {
    fc.assert(
      fc.property(timeText, fc.option(zone, { nil: undefined }), (text, tz) => {
        const r = typedOutcome(() => parseTime(text, { tz, field: "--at" }));
        if (r.ok) {
          expect(Number.isFinite(r.value)).toBe(true);
          expect(() => new Date(r.value).toISOString()).not.toThrow();
        }
      }),
      RUNS(800),
    );
  });

  it("validateTimeZone (300 runs)", () => {
    fc.assert(fc.property(zone, (tz) => void typedOutcome(() => validateTimeZone(tz))), RUNS(300));
  });

  it("cron expressions: compile and next() never crash (600 runs)", () => {
    const field = fc.oneof(
      fc.constantFrom("*", "*/5", "0", "1-5", "L", "?", "#", "5#3", "MON-FRI", "JAN", "*/0", "-1", "99", "1,2,3", "1-", "/", "W", "LW", "7"),
      fc.stringMatching(/^[0-9*/,#LW?-]{1,6}$/),
    );
    const expr = fc.oneof(
      nastyString,
      fc.array(field, { minLength: 1, maxLength: 7 }).map((f) => f.join(" ")),
      fc.constantFrom("@daily", "@hourly", "@yearly", "@reboot", "@every 5m", "0 0 31 2 *", "0 0 30 2 *"),
    );
    fc.assert(
      fc.property(expr, fc.option(zone, { nil: undefined }), (text, tz) => {
        const r = typedOutcome(() => compileCron(text, tz));
        if (r.ok) {
          const next = typedOutcome(() => r.value.next(NOW));
          if (next.ok && next.value !== undefined) expect(next.value).toBeGreaterThan(NOW);
        }
      }),
      RUNS(600),
    );
  });

  it("parseSince: 'all', 'new' or a valid Date, or a ValidationError (800 runs)", () => {
    fc.assert(
      fc.property(fc.oneof(nastyString, timeText, fc.stringMatching(/^\d{1,30}(ms|s|m|h|d|w)$/)), (text) => {
        const r = typedOutcome(() => parseSince(text, NOW));
        if (r.ok && r.value instanceof Date) expect(() => r.value.toString() !== "Invalid Date" && (r.value as Date).toISOString()).not.toThrow();
      }),
      RUNS(800),
    );
    expect(() => parseSince("99999999999999999999w", NOW)).toThrow(ValidationError);
    expect(() => parseSince("275760-09-14", NOW)).toThrow(ValidationError);
  });

  it("parseEventTypes (300 runs)", () => {
    fc.assert(fc.property(fc.array(nastyString, { maxLength: 3 }), (types) => void typedOutcome(() => parseEventTypes(types))), RUNS(300));
  });

  it("whole schedule definitions (naq scheduler add): a schedule that can be stored and run, or a typed error (600 runs)", () => {
    const name = fc.oneof(nastyString, fc.stringMatching(/^[A-Za-z0-9-][A-Za-z0-9_-]{0,20}$/));
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.record(
          {
            name: mostly(fc.constant("nightly"), name),
            task: mostly(fc.constant("report"), nastyString),
            payload: nastyJson,
            queue: mostly(fc.constant("reports"), nastyString),
            startAt: mostly(fc.constant(undefined), fc.oneof(nastyNumber, fc.date())),
            endAt: mostly(fc.constant(undefined), fc.oneof(nastyNumber, fc.date())),
            limit: mostly(fc.integer({ min: 1, max: 5 }), nastyNumber),
            jitterMs: mostly(fc.nat(60_000), nastyNumber),
            retries: mostly(fc.nat(10), nastyNumber),
            timeoutMs: mostly(fc.integer({ min: 1, max: 60_000 }), nastyNumber),
            labels: fc.dictionary(nastyString, nastyString, { maxKeys: 2 }),
          },
          { requiredKeys: ["name", "task"] },
        ),
        mostly(
          fc.oneof(
            fc.record({ cron: mostly(fc.constantFrom("0 9 * * 1-5", "*/10 * * * * *", "0 0 31 2 *"), nastyString), tz: fc.oneof(zone, fc.constant(undefined)) }),
            fc.record({ every: mostly(fc.constantFrom("15m", "1s", 5_000, "100w"), fc.oneof(nastyString, nastyNumber)) }),
          ),
          fc.record({ cron: nastyString, every: nastyString, tz: zone }, { requiredKeys: [] }),
        ),
        (base, timing) => {
          const input = { ...base, ...timing };
          const r = typedOutcome(() => buildSchedule(input as ScheduleInput, NOW));
          if (!r.ok) return;
          accepted++;
          // It survives being stored as JSON unchanged (no Infinity/NaN turned into null).
          const doc = JSON.parse(JSON.stringify(r.value)) as typeof r.value;
          expect(JSON.stringify(doc)).toBe(JSON.stringify(r.value));
          for (const v of [doc.limit, doc.jitterMs, doc.job.retries, doc.job.timeoutMs]) expect(v).not.toBeNull();
          expect(doc.name).toMatch(TOKEN);
          if (doc.nextRunAt) {
            expect(Number.isFinite(Date.parse(doc.nextRunAt))).toBe(true);
            const later = typedOutcome(() => nextRun(doc, Date.parse(doc.nextRunAt as string), 1));
            expect(later.ok).toBe(true);
          }
        },
      ),
      RUNS(600),
    );
    expect(accepted).toBeGreaterThan(20); // the hostile values met the code past the first checks
  });
});

describe("exec payloads, --env, --allow-exec", () => {
  it("validateExecPayload: argv of strings without NUL, no code-injecting env, or a ValidationError (800 runs)", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          nastyJson,
          fc.record(
            { argv: fc.oneof(fc.array(nastyString, { maxLength: 3 }), nastyJson), cwd: fc.oneof(nastyString, nastyJson), env: fc.oneof(fc.dictionary(nastyString, nastyString, { maxKeys: 3 }), nastyJson) },
            { requiredKeys: [] },
          ),
        ),
        (payload) => {
          const r = typedOutcome(() => validateExecPayload(payload));
          if (r.ok) {
            expect(r.value.argv.length).toBeGreaterThan(0);
            expect(r.value.argv.every((a) => typeof a === "string" && !a.includes("\0"))).toBe(true);
            for (const k of Object.keys(r.value.env ?? {})) expect(k).not.toMatch(/^(LD_|DYLD_|NODE_OPTIONS$|BASH_ENV$)/);
          }
        },
      ),
      RUNS(800),
    );
  });

  it("--env KEY=value and --allow-exec entries (500 runs)", () => {
    fc.assert(
      fc.property(nastyString, fc.array(nastyString, { maxLength: 3 }), nastyString, (assignment, allow, argv0) => {
        typedOutcome(() => parseEnvAssignment(assignment));
        const rules = typedOutcome(() => parseAllowList(allow));
        if (rules.ok) {
          for (const rule of rules.value) expect(rule.kind === "name" ? rule.name : rule.path).not.toMatch(/[*?]/);
          const match = matchAllowed(argv0, rules.value);
          if (match && match.kind === "name") expect(argv0).toBe(match.name);
        }
      }),
      RUNS(500),
    );
  });
});

describe("names: what is accepted is a plain subject token, never a wildcard", () => {
  const name = fc.oneof(nastyString, fc.stringMatching(/^[A-Za-z0-9_.*> -]{0,140}$/), fc.string({ unit: "binary", maxLength: 140 }));

  it("queues, namespaces, ids, schedule names, tokens (1500 runs)", () => {
    fc.assert(
      fc.property(name, (text) => {
        for (const [validate, max] of [
          [validateQueueName, 64],
          [validateNamespace, 32],
          [validateJobId, 128],
          [validateScheduleName, 100],
          [(t: string) => validateToken(t, "worker id"), 128],
        ] as const) {
          const r = typedOutcome(() => validate(text));
          if (r.ok) {
            expect(r.value).toMatch(TOKEN);
            expect(r.value.length).toBeLessThanOrEqual(max);
          } else {
            expect(r.error.message).toMatch(/letters, digits|reserved/);
            expect(r.error.message.length).toBeLessThan(300);
            expect(hasControlChars(r.error.message)).toBe(false);
          }
        }
        const task = typedOutcome(() => validateTaskName(text));
        if (task.ok) expect(task.value).toMatch(/^[A-Za-z0-9_.:-]{1,128}$/);
        else expect(hasControlChars(task.error.message)).toBe(false);
      }),
      RUNS(1500),
    );
  });

  it("subjects and filters built from names have exactly their tokens, with wildcards only where nothing was given (800 runs)", () => {
    const names = namesFor("naq");
    fc.assert(
      fc.property(name, name, (queue, id) => {
        const subjects = [
          () => names.queueSubject(queue),
          () => names.queueConsumer(queue),
          () => names.eventSubject(queue, id, "started"),
          () => names.eventFilter({ queue, jobId: id }),
          () => names.deadLetterSubject(queue, id),
          () => names.deadLetterFilter({ queue }),
          () => names.eventFilter({ jobId: id }),
        ];
        for (const make of subjects) {
          const r = typedOutcome(make);
          if (!r.ok) continue;
          const tokens = r.value.split(".");
          expect(tokens.every((t) => t.length > 0)).toBe(true);
          expect(tokens).not.toContain(">");
          expect(tokens.includes(queue) || tokens.includes(id) || r.value === `naq_q_${queue}`).toBe(true);
        }
        expect(names.queueFromSubject(`naq.queue.${queue}`) === undefined || TOKEN.test(queue)).toBe(true);
      }),
      RUNS(800),
    );
  });

  it("a wildcard given as a name is refused with the accepted characters, never used as a filter", () => {
    const names = namesFor("naq");
    for (const bad of ["*", ">", "a.*", "a.>", "", " ", "a b", "x".repeat(300), "tab\there", "é", "\u0000"]) {
      expect(() => names.eventFilter({ queue: bad })).toThrow(/letters, digits, '_' and '-' only/);
      expect(() => names.eventFilter({ jobId: bad })).toThrow(/letters, digits, '_' and '-' only/);
      expect(() => names.deadLetterFilter({ queue: bad })).toThrow(/letters, digits, '_' and '-' only/);
      expect(() => names.queueSubject(bad)).toThrow(ValidationError);
      expect(() => namesFor(bad)).toThrow(ValidationError);
      expect(() => validateScheduleName(bad)).toThrow(ValidationError);
      expect(() => validateTaskName(bad)).toThrow(ValidationError);
    }
    // Empty parts of a filter are the only wildcards.
    expect(names.eventFilter({ queue: "emails" })).toBe("naq.events.emails.*.*");
  });
});
