/** Actions of `naq stream ...`. */
import { formatDuration } from "../../model/duration.js";
import { NotFoundError } from "../../model/errors.js";
import { namesFor, validateToken } from "../../model/naming.js";
import { StreamService, type StreamDetails, type StreamSummary } from "../../services/streams.js";
import { TopologyService } from "../../services/topology.js";
import type { Action } from "../act.js";
import { confirm } from "../confirm.js";
import { openServices, type CliContext } from "../context.js";
import { formatBytes } from "../format.js";

export const init: Action<object> = async (ctx) => {
  await using services = await openServices(ctx);
  const topology = await services.get(TopologyService);
  const spinner = await ctx.out.spinner("creating streams and buckets");
  const results = await topology.init().finally(() => spinner.stop());
  ctx.out.result(
    results.map(({ kind, name, stream, action, changes }) => ({ kind, name, stream, action, changes })),
    () =>
      ctx.out.table(results, [
        { header: "KIND", value: (r) => r.kind },
        { header: "NAME", value: (r) => r.name },
        { header: "ACTION", value: (r) => r.action },
        { header: "CHANGES", value: (r) => r.changes.map((c) => `${c.field}: ${String(c.from)} -> ${String(c.to)}`).join(", ") },
      ]),
  );
};

/** naq's streams: the namespace's own and the streams behind its buckets. */
function isNaqStream(name: string, ns: string): boolean {
  return name.startsWith(`${ns}_`) || name.startsWith(`KV_${ns}_`);
}

export const list: Action<{ names?: boolean; all?: boolean }> = async (ctx, _args, opts) => {
  await using services = await openServices(ctx);
  const streams = await services.get(StreamService);
  const ns = ctx.config.namespace;
  const rows = (await streams.list()).filter((s) => opts.all || isNaqStream(s.name, ns));
  if (opts.names) {
    ctx.out.result(
      rows.map((r) => r.name),
      () => rows.map((r) => r.name).join("\n"),
    );
    return;
  }
  ctx.out.result(rows, () => streamTable(ctx, rows));
};

function streamTable(ctx: CliContext, rows: StreamSummary[]): string {
  return ctx.out.table(rows, [
    { header: "NAME", value: (r) => r.name },
    { header: "SUBJECTS", value: (r) => r.subjects.join(",") },
    { header: "RETENTION", value: (r) => r.retention },
    { header: "STORAGE", value: (r) => r.storage },
    { header: "R", value: (r) => r.replicas, align: "right" },
    { header: "MESSAGES", value: (r) => r.messages, align: "right" },
    { header: "BYTES", value: (r) => formatBytes(r.bytes), align: "right" },
    { header: "CONSUMERS", value: (r) => r.consumers, align: "right" },
    { header: "MAX AGE", value: (r) => (r.maxAgeMs ? formatDuration(r.maxAgeMs) : "forever"), align: "right" },
  ]);
}

/** Resolves a name to a stream: an exact stream name, or a queue (its subject on the jobs stream). */
async function resolveTarget(
  streams: StreamService,
  ctx: CliContext,
  name: string,
): Promise<{ stream: string; queue?: string; subject?: string }> {
  validateToken(name, "stream or queue name", 255);
  if (await streams.find(name)) return { stream: name };
  const names = namesFor(ctx.config.namespace);
  let subject: string;
  try {
    subject = names.queueSubject(name);
  } catch {
    throw new NotFoundError(`no stream named ${name}`);
  }
  if (!(await streams.find(names.jobsStream))) {
    throw new NotFoundError(`no stream named ${name}, and naq's jobs stream ${names.jobsStream} does not exist (run naq stream init)`);
  }
  return { stream: names.jobsStream, queue: name, subject };
}

export const info: Action<object> = async (ctx, args) => {
  const name = validateToken(String(args[0]), "stream or queue name", 255);
  await using services = await openServices(ctx);
  const streams = await services.get(StreamService);
  const target = await resolveTarget(streams, ctx, name);
  const details = await streams.info(target.stream);
  if (target.queue) {
    const consumer = details.consumerDetails.find((c) => c.filter === target.subject);
    const waiting = await streams.countSubject(target.stream, target.subject as string);
    if (!consumer && waiting === 0) {
      throw new NotFoundError(`no stream named ${name}, and no queue ${name} (no waiting jobs, no consumer)`);
    }
    const view = { queue: target.queue, stream: target.stream, subject: target.subject, waiting, consumer: consumer ?? null };
    ctx.out.result(view, () =>
      ctx.out.keyValues([
        ["Queue", target.queue],
        ["Stream", target.stream],
        ["Subject", target.subject],
        ["Waiting", waiting],
        ["Consumer", consumer?.name ?? "(none yet: created when a worker starts)"],
        ...(consumer
          ? ([
              ["Delivered, not acked", consumer.ackPending],
              ["Redelivered", consumer.redelivered],
              ["Max ack pending", consumer.maxAckPending],
              ["Ack wait", formatDuration(consumer.ackWaitMs)],
            ] as const)
          : []),
      ]),
    );
    return;
  }
  ctx.out.result(details, () => detailsView(ctx, details));
};

function detailsView(ctx: CliContext, d: StreamDetails): string {
  const head = ctx.out.keyValues([
    ["Name", d.name],
    ["Subjects", d.subjects.join(", ")],
    ["Retention", d.retention],
    ["Storage", d.storage],
    ["Replicas", d.replicas],
    ["Messages", d.messages],
    ["Bytes", formatBytes(d.bytes)],
    ["First/last seq", `${d.firstSeq} / ${d.lastSeq}`],
    ["Max age", d.maxAgeMs ? formatDuration(d.maxAgeMs) : "forever"],
    ["Max bytes", d.maxBytes < 0 ? "unlimited" : formatBytes(d.maxBytes)],
    ["Duplicate window", formatDuration(d.config.duplicate_window / 1_000_000)],
    ["Created", d.created],
    ...(d.cluster
      ? ([
          ["Leader", d.cluster.leader ?? "(none)"],
          ["Replicas", d.cluster.replicas.map((r) => `${r.name}${r.current ? "" : " (behind)"}`).join(", ") || "-"],
        ] as const)
      : []),
  ]);
  if (d.consumerDetails.length === 0) return `${head}\n\nConsumers: none`;
  const consumers = ctx.out.table(d.consumerDetails, [
    { header: "CONSUMER", value: (c) => c.name },
    { header: "FILTER", value: (c) => c.filter },
    { header: "PENDING", value: (c) => c.pending, align: "right" },
    { header: "ACK PENDING", value: (c) => c.ackPending, align: "right" },
    { header: "REDELIVERED", value: (c) => c.redelivered, align: "right" },
    { header: "MAX ACK PENDING", value: (c) => c.maxAckPending, align: "right" },
  ]);
  return `${head}\n\n${consumers}`;
}

/**
 * Without --force and without a terminal the answer is known before anything is looked up:
 * refuse at once (exit 2), so a script that forgot --force learns that, not "not found".
 */
async function refuseUnlessConfirmable(ctx: CliContext, force: boolean | undefined, what: string): Promise<void> {
  if (!force && !(process.stdin.isTTY && process.stderr.isTTY)) await confirm("", { force, out: ctx.out, what });
}

export const purge: Action<{ subject?: string; keep?: number; force?: boolean }> = async (ctx, args, opts) => {
  const name = String(args[0]);
  validateToken(name, "stream or queue name", 255);
  await refuseUnlessConfirmable(ctx, opts.force, `purge ${name}`);
  await using services = await openServices(ctx);
  const streams = await services.get(StreamService);
  const target = await resolveTarget(streams, ctx, name);
  const subject = opts.subject ?? target.subject;
  const what = target.queue ? `queue ${target.queue} (stream ${target.stream})` : `stream ${target.stream}`;
  const scope = `${subject ? ` on ${subject}` : ""}${opts.keep !== undefined ? `, keeping the newest ${opts.keep}` : ""}`;
  await confirm(`Purge messages of ${what}${scope}?`, { force: opts.force, out: ctx.out, what: `purge ${what}` });
  const purged = await streams.purge(target.stream, { subject, keep: opts.keep });
  ctx.out.result({ stream: target.stream, queue: target.queue ?? null, subject: subject ?? null, purged }, () =>
    ctx.out.quiet ? String(purged) : `purged ${purged} message${purged === 1 ? "" : "s"} from ${what}`,
  );
};

export const remove: Action<{ force?: boolean }> = async (ctx, args, opts) => {
  const name = validateToken(String(args[0]), "stream name", 255);
  await refuseUnlessConfirmable(ctx, opts.force, `delete stream ${name}`);
  await using services = await openServices(ctx);
  const streams = await services.get(StreamService);
  const si = await streams.find(name);
  if (!si) throw new NotFoundError(`stream ${name} not found`);
  await confirm(`Delete stream ${name} and its ${si.state.messages} messages?`, {
    force: opts.force,
    out: ctx.out,
    what: `delete stream ${name}`,
  });
  await streams.delete(name);
  ctx.out.result({ stream: name, deleted: true, messages: si.state.messages }, () => `deleted stream ${name}`);
};
