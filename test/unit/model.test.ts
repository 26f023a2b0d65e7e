import { describe, expect, it } from "vitest";
import { formatDuration, msToNanos, nanosToMs, parseDuration } from "../../src/model/duration.js";
import {
  AuthError,
  coerceError,
  ConfigError,
  ConflictError,
  ConnectionError,
  ErrorCode,
  ExitCode,
  exitCodeOf,
  IncompatibleError,
  JobFailedError,
  NaqError,
  NotFoundError,
  ServiceError,
  TimeoutError,
  UnrecoverableError,
  UnsupportedError,
  UsageError,
  ValidationError,
} from "../../src/model/errors.js";
import { namesFor, validateNamespace, validateQueueName, validateToken } from "../../src/model/naming.js";
import { validationErrorOf } from "../support/assertions.js";


describe("parseDuration", () => {
  it.each([
    ["500ms", 500],
    ["30s", 30_000],
    ["5m", 300_000],
    ["2h", 7_200_000],
    ["1d", 86_400_000],
    ["1w", 604_800_000],
    ["1h30m", 5_400_000],
    ["1m30s500ms", 90_500],
    ["1.5s", 1_500],
    [" 10S ", 10_000],
    ["0s", 0],
    ["250", 250],
    ["0", 0],
  ])("parses %j as %i ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it("accepts numbers of milliseconds, rounded", () => {
    expect(parseDuration(250)).toBe(250);
    expect(parseDuration(0)).toBe(0);
    expect(parseDuration(1.6)).toBe(2);
  });

  it.each(["", "   ", "5x", "-1s", "abc", "1h30", "s", "1 s", "1s-"])("rejects %j, naming the field", (text) => {
    const err = validationErrorOf(() => parseDuration(text, "ackWait"));
    expect(err.field).toBe("ackWait");
    expect(err.message).toContain("ackWait");
    expect(err.message).toContain(JSON.stringify(text));
  });

  it.each([-1, Number.NaN, Infinity])("rejects the number %s", (n) => {
    const err = validationErrorOf(() => parseDuration(n, "interval"));
    expect(err.field).toBe("interval");
    expect(err.message).toMatch(/^interval: /);
  });

  it("names 'duration' when no field is given", () => {
    expect(validationErrorOf(() => parseDuration("soon")).field).toBe("duration");
  });
});

describe("formatDuration", () => {
  it.each([
    [0, "0ms"],
    [999, "999ms"],
    [1_000, "1s"],
    [1_500, "1.5s"],
    [59_000, "59s"],
    [60_000, "1m"],
    [90_000, "1m30s"],
    [3_600_000, "1h"],
    [5_400_000, "1h30m"],
    [90_061_000, "1d1h1m1s"],
    // boundaries round up into the next unit instead of printing "1000ms" or "60s"
    [999.6, "1s"],
    [59_960, "1m"],
  ])("formats %d as %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it("prints non-finite values as they are", () => {
    expect(formatDuration(Infinity)).toBe("Infinity");
    expect(formatDuration(Number.NaN)).toBe("NaN");
  });

  it("round-trips through parseDuration", () => {
    for (const ms of [500, 1_500, 90_000, 5_400_000, 90_061_000]) {
      expect(parseDuration(formatDuration(ms))).toBe(ms);
    }
  });

  it("converts to and from JetStream nanoseconds", () => {
    expect(msToNanos(1_500)).toBe(1_500_000_000);
    expect(nanosToMs(1_500_000_000)).toBe(1_500);
  });
});

describe("namesFor", () => {
  it("derives every name from the default namespace 'naq'", () => {
    const names = namesFor();
    expect(names).toMatchObject({
      namespace: "naq",
      jobsStream: "naq_jobs",
      eventsStream: "naq_events",
      deadLetterStream: "naq_dlq",
      buckets: {
        results: "naq_results",
        workers: "naq_workers",
        schedules: "naq_schedules",
        leader: "naq_leader",
        control: "naq_control",
        cancels: "naq_cancels",
      },
      allQueuesSubject: "naq.queue.*",
      allEventsSubject: "naq.events.>",
      allDeadLetterSubject: "naq.dlq.>",
    });
  });

  it("builds subjects and consumer names for a queue", () => {
    const names = namesFor("shop");
    expect(names.jobsStream).toBe("shop_jobs");
    expect(names.queueSubject("emails")).toBe("shop.queue.emails");
    expect(names.queueConsumer("emails")).toBe("shop_q_emails");
    expect(names.eventSubject("emails", "job1", "completed")).toBe("shop.events.emails.job1.completed");
    expect(names.deadLetterSubject("emails", "job1")).toBe("shop.dlq.emails.job1");
    expect(names.eventFilter({ jobId: "job1" })).toBe("shop.events.*.job1.*");
    expect(names.eventFilter({ queue: "emails", type: "failed" })).toBe("shop.events.emails.*.failed");
    expect(names.deadLetterFilter({ queue: "emails" })).toBe("shop.dlq.emails.*");
  });

  it("rejects ids and event parts that would change the subject's shape", () => {
    const names = namesFor();
    expect(validationErrorOf(() => names.eventSubject("q", "a.b", "started")).field).toBe("id");
    expect(validationErrorOf(() => names.eventFilter({ jobId: ">" })).field).toBe("id");
    expect(validationErrorOf(() => names.deadLetterSubject("q", "*")).field).toBe("id");
  });

  it("reserves queue names starting with '_'", () => {
    expect(validationErrorOf(() => namesFor().queueSubject("_worker")).field).toBe("queue");
  });

  it("validates queue names where subjects are built", () => {
    const names = namesFor();
    for (const build of [names.queueSubject, names.queueConsumer, (q: string) => names.deadLetterSubject(q, "id1")]) {
      expect(validationErrorOf(() => build("a.b")).field).toBe("queue");
    }
  });

  it.each(["bad.ns", "a b", "*", "", "x".repeat(33)])("rejects the namespace %j", (ns) => {
    expect(validationErrorOf(() => namesFor(ns)).field).toBe("namespace");
  });

  it("reads the queue back from a job subject", () => {
    const names = namesFor();
    expect(names.queueFromSubject("naq.queue.emails")).toBe("emails");
    expect(names.queueFromSubject(names.queueSubject("high-priority_2"))).toBe("high-priority_2");
    expect(names.queueFromSubject("naq.queue.a.b")).toBeUndefined();
    expect(names.queueFromSubject("naq.queue.")).toBeUndefined();
    expect(names.queueFromSubject("naq.queue.*")).toBeUndefined();
    expect(names.queueFromSubject("naq.queue.>")).toBeUndefined();
    expect(names.queueFromSubject("naq.queueemails")).toBeUndefined();
    expect(names.queueFromSubject("naq.events.emails.j.completed")).toBeUndefined();
    expect(names.queueFromSubject("other.queue.emails")).toBeUndefined();
    expect(namesFor("shop").queueFromSubject("naq.queue.emails")).toBeUndefined();
  });
});

describe("validateToken", () => {
  it.each(["emails", "high-priority_2", "A1", "x".repeat(128)])("accepts %j", (token) => {
    expect(validateToken(token, "id")).toBe(token);
  });

  it.each(["a.b", "a b", "*", ">", "q*", "", "x".repeat(129), "tab\t", "ünï"])("rejects %j, naming the field", (token) => {
    const err = validationErrorOf(() => validateToken(token, "jobId"));
    expect(err.field).toBe("jobId");
    expect(err.message).toMatch(/^jobId /);
    expect(err.code).toBe(ErrorCode.validation);
  });

  it("honours a custom maximum and says so", () => {
    expect(validateToken("abcd", "x", 4)).toBe("abcd");
    expect(validationErrorOf(() => validateToken("abcde", "x", 4)).message).toContain("1 to 4 characters");
  });

  it("shortens long values in the message", () => {
    const err = validationErrorOf(() => validateToken(`${"a".repeat(100)}.`, "id"));
    expect(err.message).toContain("…");
    expect(err.message.length).toBeLessThan(250);
  });

  it("rejects a non-string without crashing", () => {
    expect(validationErrorOf(() => validateToken(42 as unknown as string, "id")).message).toContain("42");
  });

  it("caps queue names at 64 and namespaces at 32 characters", () => {
    expect(validateQueueName("q".repeat(64))).toHaveLength(64);
    expect(validationErrorOf(() => validateQueueName("q".repeat(65))).field).toBe("queue");
    expect(validateNamespace("n".repeat(32))).toHaveLength(32);
    expect(validationErrorOf(() => validateNamespace("n".repeat(33))).field).toBe("namespace");
  });
});

describe("errors", () => {
  it.each([
    [() => new NaqError("m"), "NaqError", ErrorCode.internal, ExitCode.failure],
    [() => new UsageError("m"), "UsageError", ErrorCode.usage, ExitCode.usage],
    [() => new ConfigError("m"), "ConfigError", ErrorCode.config, ExitCode.usage],
    [() => new ValidationError("m", "f"), "ValidationError", ErrorCode.validation, ExitCode.usage],
    [() => new NotFoundError("m"), "NotFoundError", ErrorCode.notFound, ExitCode.notFound],
    [() => new TimeoutError("m"), "TimeoutError", ErrorCode.timeout, ExitCode.timeout],
    [() => new ConnectionError("m"), "ConnectionError", ErrorCode.connection, ExitCode.connection],
    [() => new AuthError("m"), "AuthError", ErrorCode.auth, ExitCode.connection],
    [() => new ConflictError("m"), "ConflictError", ErrorCode.conflict, ExitCode.failure],
    [() => new IncompatibleError("m"), "IncompatibleError", ErrorCode.incompatible, ExitCode.failure],
    [() => new UnsupportedError("m"), "UnsupportedError", ErrorCode.unsupported, ExitCode.failure],
    [() => new JobFailedError("m"), "JobFailedError", ErrorCode.jobFailed, ExitCode.jobFailed],
    [() => new ServiceError("m"), "ServiceError", ErrorCode.service, ExitCode.failure],
  ] as const)("%#: %s has its code and exit code", (make, name, code, exit) => {
    const err = make();
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(NaqError);
    expect(err.name).toBe(name);
    expect(err.code).toBe(code);
    expect(err.exitCode).toBe(exit);
    expect(exitCodeOf(err)).toBe(exit);
    expect(String(err)).toBe(`${name}: m`);
  });

  it("AuthError is a ConnectionError; ValidationError keeps its field; causes are kept", () => {
    expect(new AuthError("no")).toBeInstanceOf(ConnectionError);
    expect(new ValidationError("bad", "queue").field).toBe("queue");
    const cause = new Error("root");
    expect(new ServiceError("wrapped", { cause }).cause).toBe(cause);
    expect(new ValidationError("bad", "f", { cause }).cause).toBe(cause);
  });

  it("UnrecoverableError is for handlers, not a NaqError", () => {
    const err = new UnrecoverableError("give up");
    expect(err.name).toBe("UnrecoverableError");
    expect(err).not.toBeInstanceOf(NaqError);
    expect(exitCodeOf(err)).toBe(ExitCode.failure);
  });
});

describe("coerceError", () => {
  it("returns Errors unchanged", () => {
    const err = new TypeError("t");
    expect(coerceError(err)).toBe(err);
    const naq = new NotFoundError("n");
    expect(coerceError(naq)).toBe(naq);
  });

  it("wraps strings, objects and other values with a readable message", () => {
    const cases: Array<[unknown, string]> = [
      ["plain text", "plain text"],
      [{ code: 42, reason: "x" }, '{"code":42,"reason":"x"}'],
      [42, "42"],
      [null, "null"],
      [undefined, "undefined"],
      [Symbol("s"), "Symbol(s)"],
      [10n, "10"],
    ];
    for (const [value, message] of cases) {
      const err = coerceError(value);
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toBe(message);
    }
  });

  it("survives objects JSON cannot serialize", () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(coerceError(circular).message).toBe("[object Object]");
  });
});

describe("exitCodeOf", () => {
  it("maps non-naq errors and non-errors to failure", () => {
    expect(exitCodeOf(new Error("x"))).toBe(ExitCode.failure);
    expect(exitCodeOf("x")).toBe(ExitCode.failure);
    expect(exitCodeOf(undefined)).toBe(ExitCode.failure);
  });

  it("uses the first naq error inside an AggregateError", () => {
    expect(exitCodeOf(new AggregateError([new Error("a"), new NotFoundError("b"), new TimeoutError("c")]))).toBe(ExitCode.notFound);
    expect(exitCodeOf(new AggregateError([new Error("a"), new Error("b")]))).toBe(ExitCode.failure);
    expect(exitCodeOf(new AggregateError([]))).toBe(ExitCode.failure);
  });
});
