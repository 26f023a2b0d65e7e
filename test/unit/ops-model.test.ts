/**
 * Pure parts of the day-2 operations: NDJSON job lines, the exec payload and --allow-exec
 * matching, the output tail / line splitting / log batching of exec jobs, and check
 * thresholds. No server.
 */
import { describe, expect, it, vi } from "vitest";
import { checkQueue, checkWorkers } from "../../src/model/check.js";
import { ValidationError } from "../../src/model/errors.js";
import { matchAllowed, parseAllowList, parseEnvAssignment, validateExecPayload } from "../../src/model/exec.js";
import { envelopeFromLine, parseJobLine } from "../../src/model/ndjson.js";
import { LineSplitter, LogBatcher, TailBuffer } from "../../src/worker/output-tail.js";
import { ExecRunner, whichSync } from "../../src/worker/exec-task.js";
import { createEnvelope } from "../../src/model/job.js";

describe("NDJSON job lines", () => {
  it("parses a full line, with defaults for what it leaves out", () => {
    const input = parseJobLine(
      '{"task":"resize","payload":{"img":1},"id":"img-1","retries":5,"backoff":"fixed:2s","timeout":"30s","dependsOn":"a","labels":{"b":"7"}}',
      { queue: "images", labels: { src: "cli" } },
    );
    expect(input).toEqual({
      task: "resize",
      payload: { img: 1 },
      queue: "images",
      id: "img-1",
      retries: 5,
      backoff: { type: "fixed", delayMs: 2_000 },
      timeoutMs: 30_000,
      dependsOn: ["a"],
      labels: { src: "cli", b: "7" },
    });
    expect(parseJobLine('{"task":"t","queue":"q2","timeoutMs":5}', { queue: "images", retries: 1, timeoutMs: 9 })).toEqual({
      task: "t",
      payload: null,
      queue: "q2",
      retries: 1,
      timeoutMs: 5,
    });
  });

  it("skips blank lines and tolerates CR and surrounding space", () => {
    expect(parseJobLine("")).toBeUndefined();
    expect(parseJobLine("   \r")).toBeUndefined();
    expect(parseJobLine(' {"task":"t"}\r')).toEqual({ task: "t", payload: null });
  });

  it.each([
    ["not json", /not valid JSON/],
    ["[1,2]", /must be a JSON object/],
    ['{"payload":1}', /"task" is missing/],
    ['{"task":"t","paylod":1}', /unknown field "paylod".*accepted: task, payload/],
    ['{"task":"t","retries":"3"}', /"retries" must be a whole number/],
    ['{"task":"t","timeout":"soon"}', /timeout: "soon" is not a duration/],
    ['{"task":"t","timeout":"1s","timeoutMs":5}', /not both/],
    ['{"task":"t","backoff":"slow"}', /backoff "slow" is not valid/],
    ['{"task":"t","labels":{"a":1}}', /"labels" must be an object of strings/],
    ['{"task":"exec","payload":{"argv":[]}}', /argv must be a non-empty list/],
  ])("rejects %s", (line, message) => {
    expect(() => parseJobLine(line)).toThrow(ValidationError);
    expect(() => parseJobLine(line)).toThrow(message);
  });

  it("builds a validated envelope; invalid names are caught there", () => {
    const env = envelopeFromLine('{"task":"t","payload":[1],"retries":0}', { queue: "q" });
    expect(env).toMatchObject({ v: 1, task: "t", queue: "q", payload: [1], attempts: 1 });
    expect(() => envelopeFromLine('{"task":"bad task"}')).toThrow(/task "bad task" is not valid/);
    expect(() => envelopeFromLine('{"task":"t","queue":"a.b"}')).toThrow(/queue "a.b" is not valid/);
    expect(() => envelopeFromLine('{"task":"t","retries":-1}')).toThrow(/retries must be a whole number/);
  });
});

describe("exec payload and --allow-exec", () => {
  it("validates the payload", () => {
    expect(validateExecPayload({ argv: ["ls", "-l"], cwd: "/tmp", env: { A: "1" } })).toEqual({ argv: ["ls", "-l"], cwd: "/tmp", env: { A: "1" } });
    expect(() => validateExecPayload(["ls"])).toThrow(/must be an object/);
    expect(() => validateExecPayload({ argv: ["ls", 1] })).toThrow(/list of strings/);
    expect(() => validateExecPayload({ argv: [""] })).toThrow(/argv\[0\] must not be empty/);
    expect(() => validateExecPayload({ argv: ["ls"], shell: true })).toThrow(/unknown field "shell"/);
    expect(() => validateExecPayload({ argv: ["ls"], env: { LD_PRELOAD: "/x.so" } })).toThrow(/LD_PRELOAD may not be set by a job/);
    expect(() => validateExecPayload({ argv: ["ls"], env: { "1A": "x" } })).toThrow(/not a valid environment variable name/);
  });

  it("parses KEY=value (values keep '=' and ',')", () => {
    expect(parseEnvAssignment("A=b=c,d")).toEqual(["A", "b=c,d"]);
    expect(parseEnvAssignment("EMPTY=")).toEqual(["EMPTY", ""]);
    expect(() => parseEnvAssignment("=x")).toThrow(/KEY=value/);
    expect(() => parseEnvAssignment("NODE_OPTIONS=--require x")).toThrow(/may not be set/);
  });

  it("refuses wildcards, relative paths and empty entries", () => {
    expect(() => parseAllowList(["*"])).toThrow(/wildcards are not accepted/);
    expect(() => parseAllowList(["ba*"])).toThrow(/wildcards/);
    expect(() => parseAllowList(["./run.sh"])).toThrow(/relative path/);
    expect(() => parseAllowList(["bin/run"])).toThrow(/relative path/);
    expect(() => parseAllowList(["/opt/../bin/sh"])).toThrow(/without "." or ".." parts/);
    expect(() => parseAllowList([" "])).toThrow(/empty/);
  });

  it("matches argv[0] exactly: names only bare, paths only as listed", () => {
    const rules = parseAllowList(["echo", "/opt/jobs/backup.sh"]);
    expect(matchAllowed("echo", rules)).toEqual({ kind: "name", name: "echo" });
    expect(matchAllowed("/opt/jobs/backup.sh", rules)).toEqual({ kind: "path", path: "/opt/jobs/backup.sh" });
    expect(matchAllowed("/opt//jobs/backup.sh", rules)).toBeDefined();
    expect(matchAllowed("/tmp/evil/echo", rules)).toBeUndefined(); // a name does not allow any file of that name
    expect(matchAllowed("/bin/echo", rules)).toBeUndefined();
    expect(matchAllowed("backup.sh", rules)).toBeUndefined();
    expect(matchAllowed("./echo", rules)).toBeUndefined();
    expect(matchAllowed("rm", rules)).toBeUndefined();
  });

  it("the runner resolves names on PATH at start and refuses what it cannot run", () => {
    const echo = whichSync("echo") as string;
    expect(echo).toMatch(/^\/.*\/echo$/);
    expect(() => new ExecRunner({ allow: ["no-such-command-here"] })).toThrow(/not found on the worker's PATH/);
    expect(() => new ExecRunner({ allow: ["/no/such/file"] })).toThrow(/not an executable file/);
    expect(() => new ExecRunner({ allow: ["*"] })).toThrow(/wildcards/);
    const job = (payload: unknown) => createEnvelope({ task: "exec", payload: payload as never });
    const off = new ExecRunner();
    expect(off.refuse(job({ argv: ["echo"] }))).toMatch(/exec jobs are not allowed on this worker: start it with --allow-exec/);
    expect(off.refuse(createEnvelope({ task: "other" }))).toBeUndefined();
    const on = new ExecRunner({ allow: ["echo"] });
    expect(on.refuse(job({ argv: ["echo", "hi"] }))).toBeUndefined();
    expect(on.refuse(job({ argv: ["touch", "/tmp/x"] }))).toMatch(/command "touch" is not allowed on this worker \(--allow-exec: echo\)/);
    expect(on.refuse(job({ argv: [echo] }))).toMatch(/is not allowed/);
    expect(on.refuse(job({ argv: "echo" }))).toMatch(/invalid exec job/);
  });
});

describe("exec output", () => {
  it("TailBuffer keeps the last N bytes", () => {
    const t = new TailBuffer(10);
    t.push("hello ");
    t.push("world, ");
    expect(t.text()).toBe("lo world, ");
    expect(t.length).toBe(10);
    expect(t.dropped).toBe(3);
    t.push("0123456789abc");
    expect(t.text()).toBe("3456789abc");
    expect(t.dropped).toBe(3 + 10 + 13 - 10);
    const small = new TailBuffer(4);
    small.push("ab");
    expect(small.text()).toBe("ab");
    expect(small.dropped).toBe(0);
  });

  it("TailBuffer never starts with half a character", () => {
    const t = new TailBuffer(5);
    t.push(Buffer.from("aé€x")); // a(1) é(2) €(3) x(1) = 7 bytes: the tail starts inside é
    expect(t.text()).toBe("€x");
  });

  it("LineSplitter joins chunks, strips CR, handles UTF-8 split across chunks, cuts long lines", () => {
    const s = new LineSplitter(8);
    expect(s.push("one\r\ntw")).toEqual(["one"]);
    expect(s.push("o\nthr")).toEqual(["two"]);
    const euro = Buffer.from("€\n");
    expect(s.push(euro.subarray(0, 1))).toEqual([]);
    expect(s.push(euro.subarray(1))).toEqual(["thr€"]);
    expect(s.push("0123456789ab\n")).toEqual(["01234567", "89ab"]);
    expect(s.push("no newline")).toEqual(["no newli"]);
    expect(s.end()).toEqual(["ne"]);
    expect(s.end()).toEqual([]);
  });

  it("LogBatcher groups lines by time and size, in order", () => {
    vi.useFakeTimers();
    try {
      const out: string[] = [];
      const b = new LogBatcher((t) => out.push(t), { intervalMs: 100, maxChars: 12 });
      b.add("a");
      b.add("b");
      expect(out).toEqual([]);
      vi.advanceTimersByTime(100);
      expect(out).toEqual(["a\nb"]);
      b.add("12345");
      b.add("67890"); // 12 chars with newlines: flushed at once
      expect(out).toEqual(["a\nb", "12345\n67890"]);
      b.add("last");
      b.flush();
      b.flush();
      expect(out).toEqual(["a\nb", "12345\n67890", "last"]);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe("check thresholds", () => {
  const values = { waiting: 10, running: 2, oldestAgeMs: 90_000, failed: 0, paused: false };

  it("is OK at or under every threshold, and without thresholds", () => {
    const r = checkQueue("emails", values, { maxWaiting: 10, maxAgeMs: 90_000, maxFailed: 0 });
    expect(r.ok).toBe(true);
    expect(r.summary).toBe("OK queue emails: waiting 10, running 2, oldest 1m30s, failed 0");
    expect(checkQueue("emails", values, {}).ok).toBe(true);
  });

  it("fails over a threshold and says which", () => {
    const r = checkQueue("emails", { ...values, failed: 3, paused: true }, { maxWaiting: 9, maxAgeMs: 60_000, maxFailed: 2 });
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual(["waiting 10 > 9", "oldest waiting 1m30s > 1m", "failed 3 > 2"]);
    expect(r.summary).toMatch(/^FAIL queue emails: waiting 10 > 9; oldest waiting 1m30s > 1m; failed 3 > 2 \(.*paused\)$/);
    expect(r.thresholds).toEqual({ maxWaiting: 9, maxAgeMs: 60_000, maxFailed: 2 });
  });

  it("an empty queue has no age to judge", () => {
    expect(checkQueue("q", { ...values, waiting: 0, oldestAgeMs: null }, { maxAgeMs: 1 }).ok).toBe(true);
  });

  it("workers: fewer than --min fails", () => {
    expect(checkWorkers(2, 2)).toMatchObject({ ok: true, summary: "OK workers: 2 live (min 2)" });
    expect(checkWorkers(1, 2, "emails")).toMatchObject({ ok: false, summary: "FAIL workers for queue emails: 1 live worker for queue emails < 2" });
  });
});
