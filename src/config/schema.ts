/**
 * The shape of naq's configuration, its defaults, and which keys are secrets.
 * Durations are stored in milliseconds after validation; files may write them as
 * strings ("30s", "7d") or numbers of milliseconds.
 *
 * Written with zod/mini (the tree-shakeable functional API): every CLI invocation loads and
 * runs this schema, and the classic API cost ~25 ms of start-up.
 */
import * as z from "zod/mini";
import { DURATION_HINT, parseDuration } from "../model/duration.js";
import { TOKEN_HINT } from "../model/naming.js";

const durationInput = z.union([z.string(), z.number()], { error: `expected ${DURATION_HINT}` });
const duration = z.pipe(
  durationInput,
  z.transform((v: string | number, ctx) => {
    try {
      return parseDuration(v);
    } catch {
      ctx.issues.push({ code: "custom", message: `expected ${DURATION_HINT}`, input: v });
      return z.NEVER;
    }
  }),
);
const withDefault = <T extends z.core.SomeType>(schema: T, value: z.core.util.NoUndefined<z.core.output<T>>) => z._default(schema, value);

const token = z.string().check(z.regex(/^[A-Za-z0-9_-]{1,32}$/, `expected ${TOKEN_HINT.replace("128", "32")}`));
const queueName = z.string().check(z.regex(/^[A-Za-z0-9_-]{1,64}$/, `expected a queue name: ${TOKEN_HINT.replace("128", "64")}`));
const replicas = z.union([z.literal(1), z.literal(3), z.literal(5)], { error: "expected 1, 3 or 5" });
const storage = z.enum(["file", "memory"], { error: 'expected "file" or "memory"' });
const bytes = z.number().check(z.int(), z.minimum(-1, "expected a number of bytes, or -1 for no limit"));
const optionalString = z.optional(z.string());

export const connectionSchema = z.strictObject({
  servers: withDefault(
    z.array(z.string().check(z.minLength(1, "expected a server URL such as nats://host:4222"))).check(z.minLength(1, "expected at least one server URL")),
    ["nats://127.0.0.1:4222"],
  ),
  name: optionalString,
  user: optionalString,
  password: optionalString,
  token: optionalString,
  /** An nkey seed (SU...) or the path of a file holding one. */
  nkey: optionalString,
  /** Path of a .creds file (JWT + nkey seed). */
  creds: optionalString,
  tls: withDefault(z.strictObject({ ca: optionalString, cert: optionalString, key: optionalString }), {}),
  connectTimeout: withDefault(duration, 5_000),
});

export const queueSettingsSchema = z.strictObject({
  /** Global concurrency of a queue across all its workers (the consumer's max_ack_pending). */
  maxAckPending: withDefault(z.number().check(z.int(), z.minimum(1)), 1_000),
  /** How long a delivered job may go without an ack or in-progress signal before redelivery. */
  ackWait: withDefault(duration, 30_000),
});

/** Per-queue overrides: only what is set applies, the rest comes from `queues.defaults`. */
export const queueOverrideSchema = z.strictObject({
  maxAckPending: z.optional(z.number().check(z.int(), z.minimum(1))),
  ackWait: z.optional(duration),
});

const DAY = 86_400_000;
const FOLD_STARTED_MS = 100;
const MAX_FOLD_STARTED_MS = 10_000;
const foldHold = duration.check(z.maximum(MAX_FOLD_STARTED_MS, "expected a duration up to 10s (0 = store every started event on its own)"));

export const configSchema = z.strictObject({
  connection: withDefault(connectionSchema, { servers: ["nats://127.0.0.1:4222"], tls: {}, connectTimeout: 5_000 }),
  namespace: withDefault(token, "naq"),
  /** Default timeout for one request to the server (and for one-shot commands). */
  timeout: withDefault(duration, 10_000),
  streams: withDefault(
    z.strictObject({
      replicas: withDefault(replicas, 1),
      storage: withDefault(storage, "file"),
      jobs: withDefault(
        z.strictObject({ maxAge: withDefault(duration, 0), maxBytes: withDefault(bytes, -1), duplicateWindow: withDefault(duration, 120_000) }),
        { maxAge: 0, maxBytes: -1, duplicateWindow: 120_000 },
      ),
      events: withDefault(
        z.strictObject({
          maxAge: withDefault(duration, 7 * DAY),
          maxBytes: withDefault(bytes, -1),
          /** A worker holds an attempt's `started` event this long; an attempt that ends sooner stores it inside its end event. 0 = never. */
          foldStarted: withDefault(foldHold, FOLD_STARTED_MS),
        }),
        { maxAge: 7 * DAY, maxBytes: -1, foldStarted: FOLD_STARTED_MS },
      ),
      deadLetter: withDefault(z.strictObject({ maxAge: withDefault(duration, 30 * DAY), maxBytes: withDefault(bytes, -1) }), { maxAge: 30 * DAY, maxBytes: -1 }),
    }),
    {
      replicas: 1,
      storage: "file",
      jobs: { maxAge: 0, maxBytes: -1, duplicateWindow: 120_000 },
      events: { maxAge: 7 * DAY, maxBytes: -1, foldStarted: FOLD_STARTED_MS },
      deadLetter: { maxAge: 30 * DAY, maxBytes: -1 },
    },
  ),
  kv: withDefault(
    z.strictObject({
      replicas: z.optional(replicas),
      /** How long results and terminal job records are kept. */
      resultTtl: withDefault(duration, 7 * DAY),
      /** A worker whose heartbeat is older than this is gone. */
      workerTtl: withDefault(duration, 30_000),
      /** Leader lease of the scheduler. */
      leaderTtl: withDefault(duration, 10_000),
    }),
    { resultTtl: 7 * DAY, workerTtl: 30_000, leaderTtl: 10_000 },
  ),
  queues: withDefault(
    z.strictObject({
      defaults: withDefault(queueSettingsSchema, { maxAckPending: 1_000, ackWait: 30_000 }),
      overrides: withDefault(z.record(queueName, queueOverrideSchema), {}),
    }),
    { defaults: { maxAckPending: 1_000, ackWait: 30_000 }, overrides: {} },
  ),
  worker: withDefault(
    z.strictObject({
      concurrency: withDefault(z.number().check(z.int(), z.minimum(1), z.maximum(10_000)), 10),
      grace: withDefault(duration, 30_000),
      heartbeat: withDefault(duration, 5_000),
    }),
    { concurrency: 10, grace: 30_000, heartbeat: 5_000 },
  ),
});

/** What a file (or env, or flags) may contain: everything optional, durations as text. */
export type NaqConfigInput = z.input<typeof configSchema>;
/** The validated, merged configuration every component receives. */
export type NaqConfig = z.output<typeof configSchema>;
export type ConnectionConfig = NaqConfig["connection"];
export type QueueSettings = z.output<typeof queueSettingsSchema>;

/** Dotted paths whose values are never printed. */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  "connection.password",
  "connection.token",
  "connection.nkey",
]);

export function defaultConfig(): NaqConfig {
  return configSchema.parse({});
}

export function queueSettings(config: NaqConfig, queue: string): QueueSettings {
  const override = config.queues.overrides[queue] ?? {};
  return {
    maxAckPending: override.maxAckPending ?? config.queues.defaults.maxAckPending,
    ackWait: override.ackWait ?? config.queues.defaults.ackWait,
  };
}
