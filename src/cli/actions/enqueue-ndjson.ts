/**
 * `naq job enqueue --ndjson [file|-]`: one job per line (see src/model/ndjson.ts), published
 * pipelined with a bounded window of unacknowledged publishes, streaming (input is not
 * read whole, except with --strict, which checks every line before enqueueing any).
 *
 * stdout: one line per job in input order (its id; with --json `{"line","id","queue","seq","duplicate"}`).
 * stderr: each bad line with its number (the first 100), a progress line and the summary
 * on a terminal. Exit 0: all enqueued; 1: some lines failed (the others were enqueued);
 * 2: --strict found a bad line (nothing enqueued) or the options do not fit.
 */
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { coerceError, NaqError, UsageError, ValidationError } from "../../model/errors.js";
import type { JobEnvelope } from "../../model/job.js";
import { validateQueueName } from "../../model/naming.js";
import { envelopeFromLine, type LineDefaults } from "../../model/ndjson.js";
import { JobService, type EnqueueResult } from "../../services/jobs.js";
import { openServices, type CliContext } from "../context.js";
import { labelsOf } from "../parse.js";
import { ProgressLine } from "../progress.js";
import type { EnqueueOpts } from "./job.js";

const MAX_REPORTED = 100;

class LinesFailed extends NaqError {
  override name = "LinesFailed";
}

interface Item {
  line: number;
  env: JobEnvelope;
}

async function openInput(source: string | boolean | undefined): Promise<{ stream: Readable; size?: number; name: string }> {
  if (source === true || source === undefined || source === "-") return { stream: process.stdin, name: "stdin" };
  const file = String(source);
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new UsageError(`--ndjson ${file}: not a file`);
    return { stream: createReadStream(file), size: st.size, name: file };
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`--ndjson: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? "unreadable"}`);
  }
}

export async function enqueueNdjson(ctx: CliContext, args: unknown[], opts: EnqueueOpts): Promise<void> {
  if (args[0] !== undefined) throw new UsageError("--ndjson reads the jobs from its input: give no task argument (each line names its task)");
  for (const [flag, set, hint] of [
    ["--id", opts.id !== undefined, ' (give "id" per line)'],
    ["--data", opts.data !== undefined, ' (give "payload" per line)'],
    ["--depends-on", opts.dependsOn !== undefined, ' (give "dependsOn" per line)'],
    ["--wait", opts.wait === true, " (wait with naq job result <id> --wait)"],
    ["--exec", opts.exec === true, ' (write {"task": "exec", "payload": {"argv": [...]}} lines)'],
    ["--cwd", opts.cwd !== undefined, ' (give "payload.cwd" per exec line)'],
    ["--env", opts.env !== undefined, ' (give "payload.env" per exec line)'],
  ] as const) {
    if (set) throw new UsageError(`${flag} does not go with --ndjson${hint}`);
  }
  const defaults: LineDefaults = {
    queue: opts.queue,
    retries: opts.retries,
    backoff: opts.backoff,
    timeoutMs: opts.attemptTimeout ?? opts.timeout,
    labels: labelsOf(opts.label),
  };
  // A bad --queue is one usage error (exit 2) before anything is read, not one error per line.
  if (opts.queue !== undefined) validateQueueName(opts.queue);
  const input = await openInput(opts.ndjson);
  if (input.stream === process.stdin && process.stdin.isTTY) ctx.out.info("reading jobs from the terminal, one JSON object per line; end with Ctrl-D");

  await using services = await openServices(ctx);
  const jobs = await services.get(JobService);

  let bytes = 0;
  if (input.size !== undefined) input.stream.on("data", (chunk: Buffer | string) => (bytes += chunk.length));
  const rl = createInterface({ input: input.stream, crlfDelay: Number.POSITIVE_INFINITY });
  const progress = new ProgressLine(ctx.out.stderr, ctx.out.interactive, "enqueued");
  let lines = 0;
  let bad = 0;
  let failedPublish = 0;
  let firstBadLine: number | undefined;
  let reported = 0;
  const report = (line: number, message: string) => {
    firstBadLine ??= line;
    if (reported < MAX_REPORTED) {
      progress.clear();
      ctx.out.error(`line ${line}: ${message}`);
    } else if (reported === MAX_REPORTED) ctx.out.error(`more failed lines are not shown (only the first ${MAX_REPORTED})`);
    reported++;
  };

  async function* parsed(): AsyncGenerator<Item> {
    for await (const text of rl) {
      lines++;
      try {
        const env = envelopeFromLine(text, defaults);
        // --strict promises nothing is enqueued if a line is bad: a job over max_payload is bad too.
        if (env && opts.strict) jobs.assertPublishable(env);
        if (env) yield { line: lines, env };
      } catch (err) {
        if (opts.strict) throw new ValidationError(`line ${lines}: ${coerceError(err).message}; nothing was enqueued (--strict)`);
        bad++;
        report(lines, coerceError(err).message);
      }
    }
  }

  let source: AsyncIterable<Item> | Item[] = parsed();
  if (opts.strict) {
    const all: Item[] = [];
    for await (const item of source) all.push(item);
    source = all;
  }

  let out = "";
  const flush = () => {
    if (out !== "") ctx.out.stdout.write(out);
    out = "";
  };
  const started = performance.now();
  let enqueued = 0;
  let duplicates = 0;
  for await (const [item, r] of jobs.enqueueStream(source, (i) => i.env, { window: opts.window })) {
    if (r instanceof Error) {
      failedPublish++;
      report(item.line, `job ${item.env.id}: ${r.message}`);
      continue;
    }
    enqueued++;
    if (r.duplicate) duplicates++;
    const rec: EnqueueResult & { line: number } = { line: item.line, ...r };
    out += ctx.out.json ? `${JSON.stringify(rec)}\n` : `${r.id}\n`;
    if (out.length >= 64 * 1024) flush();
    progress.update(enqueued, input.size ? bytes / input.size : undefined);
  }
  flush();
  progress.clear();
  const secs = (performance.now() - started) / 1_000;
  const failed = bad + failedPublish;
  const rate = secs > 0 ? Math.round(enqueued / secs).toLocaleString("en-US") : "-";
  ctx.out.info(
    `enqueued ${enqueued} job${enqueued === 1 ? "" : "s"}${duplicates ? ` (${duplicates} already enqueued: duplicates)` : ""} from ${lines} line${lines === 1 ? "" : "s"} of ${input.name} in ${secs.toFixed(2)}s (${rate} jobs/s)`,
  );
  if (failed > 0) {
    throw new LinesFailed(
      `${failed} of ${lines} lines failed (first: line ${firstBadLine}${bad && failedPublish ? `; ${bad} invalid, ${failedPublish} not published` : ""}); the other ${enqueued} jobs were enqueued`,
    );
  }
}
