/**
 * The environment variables naq reads, and the config layer they make. Empty values count
 * as unset; when two variables map to one key, the first listed wins, so NAQ_* beats NATS_*.
 *
 *   Variable                 Key                              Type
 *   NAQ_CONFIG               (config file to load)            path
 *   NAQ_URL, NATS_URL        connection.servers               comma-separated URLs
 *   NAQ_NAMESPACE            namespace                        string
 *   NAQ_CREDS, NATS_CREDS    connection.creds                 path
 *   NAQ_TOKEN                connection.token                 string (secret)
 *   NAQ_USER, NATS_USER      connection.user                  string
 *   NAQ_PASSWORD, NATS_PASSWORD connection.password          string (secret)
 *   NAQ_NKEY, NATS_NKEY      connection.nkey                  seed or path (secret)
 *   NAQ_TLS_CA, NATS_CA      connection.tls.ca                path
 *   NAQ_TLS_CERT, NATS_CERT  connection.tls.cert              path
 *   NAQ_TLS_KEY, NATS_KEY    connection.tls.key               path
 *   NAQ_CONNECT_TIMEOUT      connection.connectTimeout        duration
 *   NAQ_TIMEOUT              timeout                          duration
 *   NAQ_STREAM_REPLICAS      streams.replicas                 number (1, 3 or 5)
 *   NAQ_STREAM_STORAGE       streams.storage                  file | memory
 *   NAQ_EVENTS_MAX_AGE       streams.events.maxAge            duration
 *   NAQ_EVENTS_FOLD_STARTED  streams.events.foldStarted       duration (0 = never)
 *   NAQ_RESULT_TTL           kv.resultTtl                     duration
 *   NAQ_MAX_ACK_PENDING      queues.defaults.maxAckPending    number
 *   NAQ_ACK_WAIT             queues.defaults.ackWait          duration
 *   NAQ_WORKER_CONCURRENCY   worker.concurrency               number
 *   NAQ_WORKER_GRACE         worker.grace                     duration
 */
import type { ConfigIssue } from "./load.js";
import { setAt, type Tree } from "./merge.js";
import { showValue } from "./show.js";

export const CONFIG_FILE_ENV = "NAQ_CONFIG";

export interface EnvVar {
  name: string;
  /** Dotted config key; absent for NAQ_CONFIG, which names the file instead. */
  key?: string;
  type: "string" | "list" | "number" | "duration" | "path";
  description: string;
}

/** Every environment variable naq reads, in precedence order (first wins per key). */
export const ENV_VARS: readonly EnvVar[] = [
  { name: CONFIG_FILE_ENV, type: "path", description: "config file to load instead of searching (like --config)" },
  { name: "NAQ_URL", key: "connection.servers", type: "list", description: "NATS server URLs, comma-separated" },
  { name: "NATS_URL", key: "connection.servers", type: "list", description: "as NAQ_URL, which wins" },
  { name: "NAQ_NAMESPACE", key: "namespace", type: "string", description: "prefix of every stream, bucket and subject" },
  { name: "NAQ_CREDS", key: "connection.creds", type: "path", description: "NATS .creds file" },
  { name: "NATS_CREDS", key: "connection.creds", type: "path", description: "as NAQ_CREDS, which wins" },
  { name: "NAQ_TOKEN", key: "connection.token", type: "string", description: "auth token" },
  { name: "NAQ_USER", key: "connection.user", type: "string", description: "user name" },
  { name: "NATS_USER", key: "connection.user", type: "string", description: "as NAQ_USER, which wins" },
  { name: "NAQ_PASSWORD", key: "connection.password", type: "string", description: "password" },
  { name: "NATS_PASSWORD", key: "connection.password", type: "string", description: "as NAQ_PASSWORD, which wins" },
  { name: "NAQ_NKEY", key: "connection.nkey", type: "string", description: "nkey seed, or the path of a file holding one" },
  { name: "NATS_NKEY", key: "connection.nkey", type: "string", description: "as NAQ_NKEY, which wins" },
  { name: "NAQ_TLS_CA", key: "connection.tls.ca", type: "path", description: "CA certificate file" },
  { name: "NATS_CA", key: "connection.tls.ca", type: "path", description: "as NAQ_TLS_CA, which wins" },
  { name: "NAQ_TLS_CERT", key: "connection.tls.cert", type: "path", description: "client certificate file" },
  { name: "NATS_CERT", key: "connection.tls.cert", type: "path", description: "as NAQ_TLS_CERT, which wins" },
  { name: "NAQ_TLS_KEY", key: "connection.tls.key", type: "path", description: "client key file" },
  { name: "NATS_KEY", key: "connection.tls.key", type: "path", description: "as NAQ_TLS_KEY, which wins" },
  { name: "NAQ_CONNECT_TIMEOUT", key: "connection.connectTimeout", type: "duration", description: "time allowed to connect" },
  { name: "NAQ_TIMEOUT", key: "timeout", type: "duration", description: "timeout of one request / one-shot command" },
  { name: "NAQ_STREAM_REPLICAS", key: "streams.replicas", type: "number", description: "stream replicas: 1, 3 or 5" },
  { name: "NAQ_STREAM_STORAGE", key: "streams.storage", type: "string", description: "stream storage: file or memory" },
  { name: "NAQ_EVENTS_MAX_AGE", key: "streams.events.maxAge", type: "duration", description: "how long events are kept" },
  { name: "NAQ_EVENTS_FOLD_STARTED", key: "streams.events.foldStarted", type: "duration", description: "how long a worker holds a started event: an attempt ending sooner stores it in its end event (0 = never)" },
  { name: "NAQ_RESULT_TTL", key: "kv.resultTtl", type: "duration", description: "how long results and finished jobs are kept" },
  { name: "NAQ_MAX_ACK_PENDING", key: "queues.defaults.maxAckPending", type: "number", description: "jobs in flight per queue, across workers" },
  { name: "NAQ_ACK_WAIT", key: "queues.defaults.ackWait", type: "duration", description: "silence before a job is redelivered" },
  { name: "NAQ_WORKER_CONCURRENCY", key: "worker.concurrency", type: "number", description: "jobs one worker runs at once" },
  { name: "NAQ_WORKER_GRACE", key: "worker.grace", type: "duration", description: "time running jobs get to finish on shutdown" },
];

/** The env layer: the config keys ENV_VARS set, and which variable set each; bad values become issues. */
export function envLayer(env: NodeJS.ProcessEnv, issues: ConfigIssue[]): { data: Tree; names: Map<string, string> } {
  const data: Tree = {};
  const names = new Map<string, string>();
  for (const v of ENV_VARS) {
    const raw = nonEmpty(env[v.name]);
    if (v.key === undefined || raw === undefined || names.has(v.key)) continue;
    names.set(v.key, v.name);
    let value: unknown = raw;
    if (v.type === "list") {
      value = raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
    } else if (v.type === "number") {
      const text = raw.trim();
      value = /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(text) ? Number(text) : Number.NaN;
      if (Number.isNaN(value)) {
        issues.push({ source: { kind: "env", name: v.name }, key: v.key, message: `${v.key} = ${showValue(v.key, raw)} is not accepted (expected a number)` });
        continue;
      }
    }
    setAt(data, v.key.split("."), value);
  }
  return { data, names };
}

/** An environment value, or undefined when it is unset or blank. */
export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === "" ? undefined : value;
}
