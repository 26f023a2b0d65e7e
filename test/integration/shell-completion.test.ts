/**
 * The shipped completion scripts in real shells (bash with bash-completion, zsh with
 * compinit, fish). .ci/run installs the shells from Debian; a shell that is missing here
 * is reported as skipped, never silently passed.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "../..");
const has = (cmd: string): boolean => spawnSync(cmd, ["-c", "exit 0"]).status === 0;
const dir = mkdtempSync(join(tmpdir(), "naq-shells-"));
// `naq` on PATH for dynamic completions (they are quiet when no server answers).
mkdirSync(join(dir, "bin"));
writeFileSync(join(dir, "bin", "naq"), `#!/bin/sh\nexec node ${JSON.stringify(join(ROOT, "bin/naq"))} "$@"\n`, { mode: 0o755 });
const env = { ...process.env, PATH: `${join(dir, "bin")}:${process.env.PATH ?? ""}`, NAQ_URL: "nats://127.0.0.1:1", HOME: dir };

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(shell: string, script: string): { status: number | null; stdout: string; stderr: string } {
  const file = join(dir, `script.${shell}`);
  writeFileSync(file, script);
  const r = spawnSync(shell, [file], { encoding: "utf8", env, timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(!has("bash"))("bash", () => {
  const complete = (words: string[]) => `
    [ -f /usr/share/bash-completion/bash_completion ] && source /usr/share/bash-completion/bash_completion
    source ${JSON.stringify(join(ROOT, "completions/naq.bash"))}
    COMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(" ")}); COMP_CWORD=${words.length - 1}; COMPREPLY=()
    _naq
    printf '%s\\n' "\${COMPREPLY[@]}"
  `;

  it("registers a completion for naq after sourcing", () => {
    const r = run("bash", `source ${JSON.stringify(join(ROOT, "completions/naq.bash"))}\ncomplete -p naq`);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("-F _naq naq");
  });

  it.each([
    [["naq", "jo"], ["job", "jobs"]],
    [["naq", "job", "en"], ["enqueue"]],
    [["naq", "-s", "nats://x:4222", "stream", "p"], ["purge"]],
    [["naq", "job", "enqueue", "--re"], ["--retries"]],
    [["naq", "config", "init", "--format", ""], ["yaml", "json", "js"]],
    [["naq", "completion", ""], []],
  ])("completes %j", (words, expected) => {
    const r = run("bash", complete(words));
    expect(r.status, r.stderr).toBe(0);
    const got = r.stdout.split("\n").filter(Boolean);
    for (const e of expected) expect(got).toContain(e);
  });
});

describe.skipIf(!has("fish"))("fish", () => {
  const complete = (line: string) => `source ${JSON.stringify(join(ROOT, "completions/naq.fish"))}\ncomplete -C ${JSON.stringify(line)}\n`;

  it("offers enqueue for 'naq job en'", () => {
    const r = run("fish", complete("naq job en"));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split("\n").map((l) => l.split("\t")[0])).toContain("enqueue");
  });

  it("offers subcommands after an alias and options of the command", () => {
    expect(run("fish", complete("naq jobs st")).stdout).toMatch(/^status\t/m);
    expect(run("fish", complete("naq job enqueue --ret")).stdout).toMatch(/^--retries\t/m);
  });
});

describe.skipIf(!has("zsh"))("zsh", () => {
  it("loads _naq with compinit without errors", () => {
    const fpath = join(dir, "zfunc");
    mkdirSync(fpath, { recursive: true });
    copyFileSync(join(ROOT, "completions/_naq"), join(fpath, "_naq"));
    const r = run(
      "zsh",
      `fpath=(${JSON.stringify(fpath)} $fpath)\nautoload -Uz compinit\ncompinit -u -d ${JSON.stringify(join(dir, ".zcompdump"))}\nprint -r -- "$_comps[naq]"\nautoload -Uz _naq && print ok\n`,
    );
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("_naq");
    expect(r.stdout).toContain("ok");
  });
});
