/**
 * What every command action gets: parsed global options, the merged config (with where
 * each value came from), and the Output. Services are opened per action with
 * `openServices`, inside `await using`, so one invocation holds one NATS connection.
 */
import type { Command } from "commander";
import { loadConfig, type LoadedConfig } from "../config/index.js";
import { defaultConfig, type NaqConfig } from "../config/schema.js";
import { ServiceManager, type Logger } from "../services/base.js";
import { flagOverrides, type GlobalOptions } from "./globals.js";
import { Output } from "./output.js";

export interface CliContext {
  readonly globals: GlobalOptions;
  readonly loaded: LoadedConfig;
  readonly config: NaqConfig;
  readonly out: Output;
}

export function outputFor(globals: GlobalOptions): Output {
  return new Output({ json: globals.json, quiet: globals.quiet, color: globals.color, verbose: globals.verbose });
}

export async function makeContext(cmd: Command, withConfig = true): Promise<CliContext> {
  const globals = cmd.optsWithGlobals<GlobalOptions>();
  const out = outputFor(globals);
  const loaded = withConfig ? await loadGlobalConfig(globals) : { config: defaultConfig(), sources: new Map() };
  return { globals, loaded, config: loaded.config, out };
}

/** defaults -> file (--config or search) -> env -> flags. */
export function loadGlobalConfig(globals: GlobalOptions, configFile = globals.config): Promise<LoadedConfig> {
  const flags = flagOverrides(globals);
  return loadConfig({
    cwd: process.cwd(),
    configFile,
    env: process.env,
    flags: flags.values,
    flagNames: flags.names,
  });
}

export function cliLogger(out: Output): Logger {
  return {
    debug: (m) => out.debug(m),
    info: (m) => out.info(m),
    warn: (m) => out.warn(m),
    error: (m) => out.error(m),
  };
}

/** Opens this invocation's service scope. Use with `await using`. */
export function openServices(ctx: CliContext, opts: { longLived?: boolean } = {}): Promise<ServiceManager> {
  return ServiceManager.open(ctx.config, { logger: cliLogger(ctx.out), longLived: opts.longLived ?? false });
}
