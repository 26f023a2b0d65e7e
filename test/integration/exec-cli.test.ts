/**
 * exec jobs (shell commands as jobs) from the CLI against a real nats-server: an allowed
 * command's output in `naq job result`; a disallowed one dead-lettered and never run; a
 * command past its timeout killed with its child processes; cancel kills a running
 * command; a worker without --allow-exec dead-letters exec jobs with a clear reason (and
 * never spawns them); argv is never passed through a shell.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ExecResult } from "../../src/model/exec.js";
import type { JobRecord } from "../../src/model/job.js";
import type { DeadLetter } from "../../src/services/jobs.js";
import { alive, eventually, useCliFixture, workerStarted } from "../support/index.js";

const cli = useCliFixture({ namespacePrefix: "x", tmpPrefix: "naq-exec-cli-", tasks: "export function add(p) { return p.a + p.b; }\n" });
const { fresh } = cli;

describe("exec jobs", () => {
  it("an allowed command's stdout is in naq job result; a disallowed one is dead-lettered and never runs", { timeout: 50_000 }, async () => {
    const t = fresh();
    const worker = t.spawn(["worker", "start", "--allow-exec", "echo,sh", "--handlers", "tasks.mjs"]);
    await workerStarted(worker);

    const waited = await t.run(["job", "enqueue", "--exec", "--wait", "--", "echo", "hello", "from exec"]);
    expect(waited).toMatchObject({ code: 0, stdout: "hello from exec\n", stderr: "" });

    const id = (await t.run(["job", "enqueue", "--exec", "--env", "GREETING=a=b,c", "--cwd", cli.dir, "--", "sh", "-c", 'echo "$GREETING in $(pwd) job $NAQ_JOB_ID"; echo oops >&2'])).stdout.trim();
    const record = await t.json<JobRecord>(["job", "result", id, "--wait", "--wait-timeout", "10s"]);
    const result = record.result as unknown as ExecResult;
    expect(record).toMatchObject({ status: "completed", task: "exec", attempts: 1 });
    expect(result).toMatchObject({ exitCode: 0, signal: null, stdout: `a=b,c in ${cli.dir} job ${id}\n`, stderr: "oops\n" });
    expect(typeof result.durationMs).toBe("number");
    expect((await t.run(["job", "result", id])).stdout).toBe(`a=b,c in ${cli.dir} job ${id}\n`);
    // Both streams went to the job's log.
    expect((await t.run(["job", "logs", id])).stdout).toBe(`a=b,c in ${cli.dir} job ${id}\noops\n`);

    // A non-zero exit fails the attempt with the exit code and the end of stderr.
    const failed = await t.run(["job", "enqueue", "--exec", "--retries", "0", "--wait", "--", "sh", "-c", "echo broken >&2; exit 3"]);
    expect(failed.code).toBe(6);
    expect(failed.stderr).toMatch(/command sh exited with code 3: broken/);

    const marker = path.join(cli.dir, `marker-${t.namespace}`);
    const refused = (await t.run(["job", "enqueue", "--exec", "--", "touch", marker])).stdout.trim();
    const viaPath = (await t.run(["job", "enqueue", "--exec", "--", "/usr/bin/touch", marker])).stdout.trim();
    for (const rid of [refused, viaPath]) {
      const r = await t.json<JobRecord>(["job", "result", rid, "--wait", "--wait-timeout", "10s"]).catch(() => undefined);
      expect(r).toBeUndefined(); // exit 6: failed
    }
    const dead = await t.json<DeadLetter[]>(["job", "failed"]);
    const byId = new Map(dead.map((d) => [d.id, d]));
    expect(byId.get(refused)?.reason).toBe('exec: command "touch" is not allowed on this worker (--allow-exec: echo, sh)');
    expect(byId.get(viaPath)?.reason).toMatch(/command "\/usr\/bin\/touch" is not allowed/);
    expect(byId.get(refused)?.attempts).toBe(0);
    expect(existsSync(marker)).toBe(false);
    expect(worker.stderr()).not.toMatch(/touch.*completed/);
  });

  it("argv never goes through a shell: `; rm -rf`, `$(...)`, globs and quotes reach the command as literal arguments", { timeout: 50_000 }, async () => {
    const t = fresh();
    const victim = path.join(cli.dir, `victim-${t.namespace}`);
    await mkdir(victim);
    await writeFile(path.join(victim, "keep"), "x");
    const pwned = path.join(cli.dir, `pwned-${t.namespace}`);
    const worker = t.spawn(["worker", "start", "--allow-exec", "printf"]);
    await workerStarted(worker);
    const args = [`a; rm -rf ${victim}`, `$(touch ${pwned})`, `\`touch ${pwned}\``, "*", `x && touch ${pwned}`, "| cat", `'single' "double" $HOME`];
    const r = await t.run(["job", "enqueue", "--exec", "--wait", "--", "printf", "[%s]\\n", ...args]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toBe(args.map((a) => `[${a}]\n`).join(""));
    expect(existsSync(path.join(victim, "keep"))).toBe(true);
    expect(existsSync(pwned)).toBe(false);
  });

  it("a command past its timeout is killed with its child processes; cancel kills a running command", { timeout: 50_000 }, async () => {
    const t = fresh();
    const worker = t.spawn(["worker", "start", "--allow-exec", "sh"]);
    await workerStarted(worker);
    const pidFile = path.join(cli.dir, `pids-${t.namespace}`);
    // sh starts a background child (sleep) that a kill of sh alone would leave running.
    const script = `sleep 60 & echo $! > ${pidFile}; echo $$ >> ${pidFile}; echo started; wait`;
    const id = (await t.run(["job", "enqueue", "--exec", "--timeout", "1s", "--retries", "0", "--", "sh", "-c", script])).stdout.trim();
    const res = await t.run(["job", "result", id, "--wait", "--wait-timeout", "15s"]);
    expect(res.code).toBe(6);
    expect(res.stderr).toMatch(/timed out after 1000ms/);
    const pids = (await readFile(pidFile, "utf8")).trim().split("\n").map(Number);
    expect(pids).toHaveLength(2);
    await eventually(() => expect(pids.filter(alive)).toEqual([]), { timeoutMs: 8_000, intervalMs: 100 });
    expect((await t.run(["job", "logs", id])).stdout).toBe("started\n");

    // A command that ignores SIGTERM is SIGKILLed after the grace period.
    const stubborn = `trap '' TERM; echo $$ > ${pidFile}; while :; do sleep 0.1; done`;
    const id2 = (await t.run(["job", "enqueue", "--exec", "--", "sh", "-c", stubborn])).stdout.trim();
    await eventually(async () => expect((await t.json<{ status: string }>(["job", "status", id2])).status).toBe("running"), { timeoutMs: 10_000 });
    await eventually(async () => expect((await readFile(pidFile, "utf8")).trim()).toMatch(/^\d+$/), { timeoutMs: 5_000 });
    const pid2 = Number((await readFile(pidFile, "utf8")).trim());
    expect(alive(pid2)).toBe(true);
    expect((await t.run(["job", "cancel", id2])).code).toBe(0);
    await eventually(() => expect(alive(pid2)).toBe(false), { timeoutMs: 10_000, intervalMs: 100 });
    expect(await t.json<JobRecord>(["job", "status", id2])).toMatchObject({ status: "cancelled" });
  });

  it("without --allow-exec, exec jobs are dead-lettered with a clear reason; * and exec handlers are refused", { timeout: 50_000 }, async () => {
    const t = fresh();
    const marker = path.join(cli.dir, `never-${t.namespace}`);
    const id = (await t.run(["job", "enqueue", "--exec", "--", "touch", marker])).stdout.trim();
    expect((await t.run(["worker", "start", "--handlers", "tasks.mjs", "--burst"])).code).toBe(0);
    const [dl] = await t.json<DeadLetter[]>(["job", "failed"]);
    expect(dl).toMatchObject({ id, reason: "exec jobs are not allowed on this worker: start it with --allow-exec <command>[,<command>...]" });
    expect(existsSync(marker)).toBe(false);

    const star = await t.run(["worker", "start", "--allow-exec", "*"]);
    expect(star.code).toBe(2);
    expect(star.stderr).toMatch(/wildcards are not accepted/);
    const missing = await t.run(["worker", "start", "--allow-exec", "no-such-command-xyz"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/not found on the worker's PATH/);
    await writeFile(path.join(cli.dir, "exec-task.mjs"), "export function exec() {}\n");
    const reserved = await t.run(["worker", "start", "--handlers", "exec-task.mjs"]);
    expect(reserved.code).toBe(2);
    expect(reserved.stderr).toMatch(/"exec" is reserved/);
    const noCommand = await t.run(["job", "enqueue", "--exec"]);
    expect(noCommand.code).toBe(2);
    expect(noCommand.stderr).toMatch(/--exec needs a command/);
    const badEnv = await t.run(["job", "enqueue", "--exec", "--env", "LD_PRELOAD=/x.so", "--", "echo"]);
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toMatch(/LD_PRELOAD may not be set by a job/);
  });
});
