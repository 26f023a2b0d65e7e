/** Action of `naq doctor`. */
import { NaqError } from "../../model/errors.js";
import { DiagnosticsService, type DoctorReport } from "../../services/diagnostics.js";
import type { Action } from "../act.js";
import { openServices, type CliContext } from "../context.js";
import { formatBytes } from "../format.js";

class DoctorFailed extends NaqError {
  override name = "DoctorFailed";
}

const limit = (n: number | undefined, bytes = false) =>
  n === undefined || n < 0 ? "unlimited" : bytes ? formatBytes(n) : String(n);

function render(ctx: CliContext, r: DoctorReport): string {
  const { c } = ctx.out;
  const mark = { ok: c.green("ok  "), warn: c.yellow("warn"), error: c.red("FAIL") } as const;
  const lines = [
    ctx.out.keyValues([
      ["Server", `${r.server.serverName} (nats-server ${r.server.version}) at ${r.server.connectedUrl}`],
      ["Cluster", r.server.cluster ?? "(none)"],
      ["Max payload", formatBytes(r.server.maxPayload)],
      ["JetStream", r.jetstream.enabled ? "enabled" : "DISABLED"],
      ...(r.jetstream.usage && r.jetstream.limits
        ? ([
            ["Storage", `${formatBytes(r.jetstream.usage.storage)} of ${limit(r.jetstream.limits.maxStorage, true)}`],
            ["Memory", `${formatBytes(r.jetstream.usage.memory)} of ${limit(r.jetstream.limits.maxMemory, true)}`],
            ["Streams", `${r.jetstream.usage.streams} of ${limit(r.jetstream.limits.maxStreams)}`],
            ["Consumers", `${r.jetstream.usage.consumers} of ${limit(r.jetstream.limits.maxConsumers)}`],
          ] as const)
        : []),
    ]),
    "",
  ];
  if (r.resources.length > 0) {
    lines.push(
      ctx.out.table(r.resources, [
        { header: "KIND", value: (x) => x.kind },
        { header: "NAME", value: (x) => x.name },
        { header: "STATE", value: (x) => (!x.exists ? c.red("missing") : x.drift.length ? c.yellow("drift") : c.green("ok")) },
        { header: "R", value: (x) => x.spec.replicas, align: "right" },
        { header: "ROLE", value: (x) => x.role },
      ]),
      "",
    );
  }
  for (const check of r.checks) lines.push(`${mark[check.level]} ${c.bold(check.subject)}: ${check.message}`);
  return lines.join("\n");
}

export const doctor: Action<object> = async (ctx) => {
  await using services = await openServices(ctx);
  const report = await (await services.get(DiagnosticsService)).report();
  ctx.out.result(report, () => render(ctx, report));
  if (!report.ok) {
    const errors = report.checks.filter((x) => x.level === "error").length;
    throw new DoctorFailed(`doctor found ${errors} problem${errors === 1 ? "" : "s"}`);
  }
};
