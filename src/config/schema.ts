/**
 * The shape of naq's configuration, its defaults, and which keys are secrets.
 * Durations are stored in milliseconds after validation; files may write them as
 * strings ("30s", "7d") or numbers of milliseconds.
 */
import { z } from "zod";
import { DURATION_HINT, parseDuration } from "../model/duration.js";
import { TOKEN_HINT } from "../model/naming.js";

const duration = z.union([z.string(), z.number()], { message: `expected ${DURATION_HINT}` }).transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch {
    ctx.addIssue({ code: "custom", message: `expected ${DURATION_HINT}` });
    return z.NEVER;
  }
});

const token = z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, `expected ${TOKEN_HINT.replace("128", "32")}`);
const queueName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, `expected a queue name: ${TOKEN_HINT.replace("128", "64")}`);
const replicas = z.union([z.literal(1), z.literal(3), z.literal(5)], { message: "expected 1, 3 or 5" });
const storage = z.enum(["file", "memory"], { message: 'expected "file" or "memory"' });
const bytes = z.number().int().min(-1, "expected a number of bytes, or -1 for no limit");

export const connectionSchema = z
  .object({
    servers: z
      .array(z.string().min(1, "expected a server URL such as nats://host:4222"))
      .min(1, "expected at least one server URL")
      .default(["nats://127.0.0.1:4222"]),
    name: z.string().optional(),
    user: z.string().optional(),
    password: z.string().optional(),
    token: z.string().optional(),
    /** An nkey seed (SU...) or the path of a file holding one. */
    nkey: z.string().optional(),
    /** Path of a .creds file (JWT + nkey seed). */
    creds: z.string().optional(),
    tls: z
      .object({ ca: z.string().optional(), cert: z.string().optional(), key: z.string().optional() })
      .strict()
      .default({}),
    connectTimeout: duration.default(5_000),
  })
  .strict();

export const queueSettingsSchema = z
  .object({
    /** Global concurrency of a queue across all its workers (the consumer's max_ack_pending). */
    maxAckPending: z.number().int().min(1).default(1_000),
    /** How long a delivered job may go without an ack or in-progress signal before redelivery. */
    ackWait: duration.default(30_000),
  })
  .strict();

/** Per-queue overrides: only what is set applies, the rest comes from `queues.defaults`. */
export const queueOverrideSchema = z
  .object({
    maxAckPending: z.number().int().min(1).optional(),
    ackWait: duration.optional(),
  })
  .strict();

export const configSchema = z
  .object({
    connection: connectionSchema.default({ servers: ["nats://127.0.0.1:4222"], tls: {}, connectTimeout: 5_000 }),
    namespace: token.default("naq"),
    /** Default timeout for one request to the server (and for one-shot commands). */
    timeout: duration.default(10_000),
    streams: z
      .object({
        replicas: replicas.default(1),
        storage: storage.default("file"),
        jobs: z
          .object({ maxAge: duration.default(0), maxBytes: bytes.default(-1), duplicateWindow: duration.default(120_000) })
          .strict()
          .default({ maxAge: 0, maxBytes: -1, duplicateWindow: 120_000 }),
        events: z
          .object({ maxAge: duration.default(7 * 86_400_000), maxBytes: bytes.default(-1) })
          .strict()
          .default({ maxAge: 7 * 86_400_000, maxBytes: -1 }),
        deadLetter: z
          .object({ maxAge: duration.default(30 * 86_400_000), maxBytes: bytes.default(-1) })
          .strict()
          .default({ maxAge: 30 * 86_400_000, maxBytes: -1 }),
      })
      .strict()
      .default({
        replicas: 1,
        storage: "file",
        jobs: { maxAge: 0, maxBytes: -1, duplicateWindow: 120_000 },
        events: { maxAge: 7 * 86_400_000, maxBytes: -1 },
        deadLetter: { maxAge: 30 * 86_400_000, maxBytes: -1 },
      }),
    kv: z
      .object({
        replicas: replicas.optional(),
        /** How long results and terminal job records are kept. */
        resultTtl: duration.default(7 * 86_400_000),
        /** A worker whose heartbeat is older than this is gone. */
        workerTtl: duration.default(30_000),
        /** Leader lease of the scheduler. */
        leaderTtl: duration.default(10_000),
      })
      .strict()
      .default({ resultTtl: 7 * 86_400_000, workerTtl: 30_000, leaderTtl: 10_000 }),
    queues: z
      .object({
        defaults: queueSettingsSchema.default({ maxAckPending: 1_000, ackWait: 30_000 }),
        overrides: z.record(queueName, queueOverrideSchema).default({}),
      })
      .strict()
      .default({ defaults: { maxAckPending: 1_000, ackWait: 30_000 }, overrides: {} }),
    worker: z
      .object({
        concurrency: z.number().int().min(1).max(10_000).default(10),
        grace: duration.default(30_000),
        heartbeat: duration.default(5_000),
      })
      .strict()
      .default({ concurrency: 10, grace: 30_000, heartbeat: 5_000 }),
  })
  .strict();

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
