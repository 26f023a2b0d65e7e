/**
 * `events`: the library API for reading events without managing a service scope.
 *
 *   import { events } from "naq";
 *   for await (const ev of events.tail({ queue: "emails", types: ["failed"] })) console.log(ev.jobId, ev.error);
 *   const life = await events.history(jobId);
 *   const { total } = await events.stats({ since: new Date(Date.now() - 3_600_000), by: "queue" });
 *
 * Each call opens its own scope (one connection) and closes it when the call ends (for
 * tail: when the loop ends, by `break`, an aborted `signal`, or an error), unless given
 * `services` to share. Reading never consumes events; no consumer outlives the call.
 */
import { loadConfig } from "./config/load.js";
import { configSchema, type NaqConfig, type NaqConfigInput } from "./config/schema.js";
import type { EventFilter } from "./model/event-filter.js";
import type { NaqEvent } from "./model/events.js";
import { ServiceManager, type Logger } from "./services/base.js";
import { EventService, type StatsOptions, type StatsResult } from "./services/events.js";

export interface EventsOptions {
  /** Validated config, or input to validate; default: loaded like the CLI does (files + env). */
  config?: NaqConfig | NaqConfigInput;
  /** Share an existing scope instead of opening one (it is then not closed). */
  services?: ServiceManager;
  logger?: Logger;
  /** Aborting ends a tail (or a finite read) normally. */
  signal?: AbortSignal;
}

async function openScope(opts: EventsOptions, longLived: boolean): Promise<ServiceManager> {
  const config = opts.config === undefined ? (await loadConfig()).config : configSchema.parse(opts.config);
  return ServiceManager.open(config, { logger: opts.logger, longLived });
}

async function withEvents<T>(opts: EventsOptions, longLived: boolean, fn: (events: EventService) => Promise<T>): Promise<T> {
  if (opts.services) return fn(await opts.services.get(EventService));
  const scope = await openScope(opts, longLived);
  try {
    return await fn(await scope.get(EventService));
  } finally {
    await scope.close();
  }
}

async function* tail(filter: EventFilter = {}, opts: EventsOptions = {}): AsyncGenerator<NaqEvent, void, undefined> {
  const scope = opts.services ?? (await openScope(opts, true));
  try {
    const stream = (await scope.get(EventService)).tail(filter, { signal: opts.signal });
    try {
      yield* stream;
    } finally {
      await stream.close();
    }
  } finally {
    if (!opts.services) await scope.close();
  }
}

export const events = {
  /** Follows events as they are stored (from `filter.since`, default: only new ones). */
  tail,
  /** The events stored when the read begins that match `filter` (from `filter.since`, default: all). */
  read(filter: EventFilter = {}, opts: EventsOptions = {}): Promise<NaqEvent[]> {
    return withEvents(opts, false, (e) => e.read(filter, { signal: opts.signal }).toArray());
  },
  /** Every event of one job still in the stream, in order. */
  history(jobId: string, opts: EventsOptions = {}): Promise<NaqEvent[]> {
    return withEvents(opts, false, (e) => e.history(jobId, { signal: opts.signal }));
  },
  /** Counts, failure rate, throughput and duration percentiles over a window (default: the last hour). */
  stats(options: Omit<StatsOptions, "signal"> = {}, opts: EventsOptions = {}): Promise<StatsResult> {
    return withEvents(opts, false, (e) => e.stats({ ...options, signal: opts.signal }));
  },
};
