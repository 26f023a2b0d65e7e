/** Actions of `naq config ...`. */
import { access, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import {
  loadConfig,
  describeConfig,
  formatIssue,
  InvalidConfigError,
  redactedConfig,
  starterConfig,
  STARTER_FILE_NAMES,
  type StarterFormat,
} from "../../config/index.js";
import { UsageError } from "../../model/errors.js";
import type { Action } from "../act.js";
import { loadGlobalConfig } from "../context.js";

export const show: Action<object> = async (ctx) => {
  const entries = describeConfig(ctx.loaded);
  ctx.out.result({ file: ctx.loaded.file ?? null, config: redactedConfig(ctx.config), sources: entries }, () => {
    const head = ctx.out.c.dim(`# config file: ${ctx.loaded.file ?? "(none found)"}`);
    const table = ctx.out.table(entries, [
      { header: "KEY", value: (e) => e.key },
      { header: "VALUE", value: (e) => (typeof e.value === "string" ? e.value : JSON.stringify(e.value)) },
      { header: "SOURCE", value: (e) => e.source },
    ]);
    return `${head}\n${table}`;
  });
};

export const validate: Action<object> = async (ctx, args) => {
  const file = args[0] === undefined ? undefined : String(args[0]);
  try {
    // A named file is checked on its own: env vars and flags must not mask its mistakes.
    const loaded = file
      ? await loadConfig({ cwd: process.cwd(), configFile: file, env: {} })
      : await loadGlobalConfig(ctx.globals, ctx.globals.config);
    ctx.out.result({ valid: true, file: loaded.file ?? null, issues: [] }, () =>
      ctx.out.quiet ? "" : `valid: ${loaded.file ?? "(no config file; defaults, env and flags)"}`,
    );
  } catch (err) {
    if (err instanceof InvalidConfigError) {
      if (ctx.out.json) {
        ctx.out.result({ valid: false, file: file ?? null, issues: err.issues.map((i) => ({ key: i.key, message: formatIssue(i) })) }, () => "");
      } else {
        // One line per problem, then the usual one-line error (exit 2).
        for (const issue of err.issues.slice(1)) ctx.out.error(formatIssue(issue));
      }
    }
    throw err;
  }
};

export const init: Action<{ format: StarterFormat; output?: string; force?: boolean }> = async (ctx, _args, opts) => {
  const target = resolve(opts.output ?? STARTER_FILE_NAMES[opts.format]);
  const exists = await access(target).then(
    () => true,
    () => false,
  );
  if (exists && !opts.force) throw new UsageError(`${target} already exists; pass --force to overwrite it`);
  await writeFile(target, starterConfig(opts.format), "utf8");
  ctx.out.result({ file: target, format: opts.format, overwritten: exists }, () => `wrote ${target}`);
};
