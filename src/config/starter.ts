/**
 * Starter config files for `naq config init`: the main keys with their defaults, with
 * comments where the format allows them (YAML, JS). Generated from `defaultConfig()`, so
 * the values shown always match the schema. YAML is written by hand (cosmiconfig reads it
 * back with js-yaml).
 */
import { formatDuration } from "../model/duration.js";
import { defaultConfig } from "./schema.js";

export type StarterFormat = "json" | "yaml" | "js";

/** The file `naq config init` writes for each format (all found by the loader's search). */
export const STARTER_FILE_NAMES: Readonly<Record<StarterFormat, string>> = {
  yaml: ".naqrc.yaml",
  json: ".naqrc.json",
  js: "naq.config.mjs",
};

interface Entry {
  key: string;
  /** A leaf value; absent when `children` is given. */
  value?: unknown;
  children?: Entry[];
  /** Comment lines above the key (YAML/JS only). */
  note?: string;
  /** Comment after the value (YAML/JS only). */
  hint?: string;
  /** Shown commented out, as an example (left out of JSON). */
  example?: boolean;
}

const dur = (ms: number): string | number => (ms === 0 ? 0 : formatDuration(ms));

function entries(): Entry[] {
  const d = defaultConfig();
  const leaf = (key: string, value: unknown, hint?: string): Entry => ({ key, value, hint });
  const example = (key: string, value: unknown, hint?: string): Entry => ({ key, value, hint, example: true });
  return [
    {
      key: "connection",
      children: [
        { ...leaf("servers", d.connection.servers), note: "NATS server URLs (env NAQ_URL or NATS_URL, flag --server)." },
        { ...example("creds", "/path/to/user.creds"), note: "Authentication: use one of these. Prefer a creds file or env vars (NAQ_TOKEN,\nNAQ_PASSWORD) to secrets written here." },
        example("token", "s3cret"),
        example("user", "me"),
        example("password", "s3cret"),
        example("nkey", "/path/to/user.nk", "an nkey seed (SU...) or a file holding one"),
        {
          key: "tls",
          example: true,
          children: [example("ca", "/path/to/ca.pem"), example("cert", "/path/to/client-cert.pem"), example("key", "/path/to/client-key.pem")],
        },
        leaf("connectTimeout", dur(d.connection.connectTimeout)),
      ],
    },
    { ...leaf("namespace", d.namespace), note: "Prefix of every stream, subject and bucket, so several apps can share one account." },
    { ...leaf("timeout", dur(d.timeout)), note: "Timeout of one request to the server (and of one-shot commands)." },
    {
      key: "streams",
      children: [
        leaf("replicas", d.streams.replicas, "1, 3 or 5"),
        leaf("storage", d.streams.storage, "file or memory"),
        {
          key: "jobs",
          children: [
            leaf("maxAge", dur(d.streams.jobs.maxAge), "0 = no age limit"),
            leaf("maxBytes", d.streams.jobs.maxBytes, "-1 = no limit"),
            leaf("duplicateWindow", dur(d.streams.jobs.duplicateWindow)),
          ],
        },
        {
          key: "events",
          children: [
            leaf("maxAge", dur(d.streams.events.maxAge)),
            leaf("maxBytes", d.streams.events.maxBytes),
            leaf("foldStarted", dur(d.streams.events.foldStarted), "a started event is held this long: an attempt ending sooner stores it in its end event; 0 = never"),
          ],
        },
        { key: "deadLetter", children: [leaf("maxAge", dur(d.streams.deadLetter.maxAge)), leaf("maxBytes", d.streams.deadLetter.maxBytes)] },
      ],
    },
    {
      key: "kv",
      children: [
        example("replicas", 3, "default: streams.replicas"),
        leaf("resultTtl", dur(d.kv.resultTtl), "how long results and finished jobs are kept"),
        leaf("workerTtl", dur(d.kv.workerTtl), "a worker silent for this long is gone"),
        leaf("leaderTtl", dur(d.kv.leaderTtl), "scheduler leader lease"),
      ],
    },
    {
      key: "queues",
      children: [
        {
          key: "defaults",
          children: [
            leaf("maxAckPending", d.queues.defaults.maxAckPending, "jobs in flight per queue, across all workers"),
            leaf("ackWait", dur(d.queues.defaults.ackWait), "silence before a job is redelivered"),
          ],
        },
        {
          key: "overrides",
          note: "Per-queue settings; unset keys come from queues.defaults.",
          example: true,
          children: [{ key: "emails", example: true, children: [example("maxAckPending", 50), example("ackWait", "2m")] }],
        },
      ],
    },
    {
      key: "worker",
      children: [
        leaf("concurrency", d.worker.concurrency, "jobs one worker runs at once"),
        leaf("grace", dur(d.worker.grace), "time running jobs get to finish on shutdown"),
        leaf("heartbeat", dur(d.worker.heartbeat)),
      ],
    },
  ];
}

const HEADER = [
  "naq configuration. Every key is optional; the values shown are the defaults.",
  "Precedence: defaults < this file < NAQ_* env vars < command-line flags.",
  "Durations: 500ms, 30s, 5m, 2h, 7d, or a number of milliseconds.",
  "See `naq config show` for the merged result and where each value came from.",
];

/** The text of a starter config file in the given format. */
export function starterConfig(format: StarterFormat): string {
  switch (format) {
    case "yaml":
      return `${HEADER.map((l) => `# ${l}`).join("\n")}\n\n${entries().map((e) => yamlEntry(e, 0, false).join("\n")).join("\n\n")}\n`;
    case "js":
      return `${HEADER.map((l) => `// ${l}`).join("\n")}\n\nexport default {\n${entries().flatMap((e) => jsEntry(e, 1, false)).join("\n")}\n};\n`;
    case "json":
      return `${JSON.stringify(toObject(entries()), null, 2)}\n`;
  }
}

function toObject(list: Entry[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const e of list) {
    if (e.example) continue;
    out[e.key] = e.children ? toObject(e.children) : e.value;
  }
  return out;
}

/** One entry as YAML; an example is commented out as a block (its children are not commented twice). */
function yamlEntry(e: Entry, depth: number, inExample: boolean): string[] {
  const pad = "  ".repeat(depth);
  const hint = e.hint ? `  # ${e.hint}` : "";
  let body: string[];
  if (e.children) body = [`${pad}${e.key}:${hint}`, ...e.children.flatMap((ch) => yamlEntry(ch, depth + 1, inExample || e.example === true))];
  else if (Array.isArray(e.value)) body = [`${pad}${e.key}:${hint}`, ...e.value.map((v) => `${pad}  - ${yamlScalar(v)}`)];
  else body = [`${pad}${e.key}: ${yamlScalar(e.value)}${hint}`];
  if (e.example && !inExample) body = body.map((l) => `${pad}# ${l.slice(pad.length)}`);
  return [...(e.note ? e.note.split("\n").map((l) => `${pad}# ${l}`) : []), ...body];
}

/** A plain YAML scalar when unambiguous, else a JSON (double-quoted) string, which YAML accepts. */
function yamlScalar(v: unknown): string {
  if (typeof v !== "string") return JSON.stringify(v);
  const plain = /^[A-Za-z0-9/._][A-Za-z0-9/._:-]*$/.test(v) && !/^(true|false|yes|no|on|off|null|~|[-+.\d][\d._eE+-]*)$/i.test(v);
  return plain ? v : JSON.stringify(v);
}

/** One entry as a JS object property; examples are commented out as a block. */
function jsEntry(e: Entry, depth: number, inExample: boolean): string[] {
  const pad = "  ".repeat(depth);
  const key = /^[A-Za-z_$][\w$]*$/.test(e.key) ? e.key : JSON.stringify(e.key);
  const hint = e.hint ? ` // ${e.hint}` : "";
  let body: string[];
  if (e.children) {
    const inner = e.children.flatMap((ch) => jsEntry(ch, depth + 1, inExample || e.example === true));
    body = [`${pad}${key}: {${hint}`, ...inner, `${pad}},`];
  } else {
    body = [`${pad}${key}: ${JSON.stringify(e.value)},${hint}`];
  }
  if (e.example && !inExample) body = body.map((l) => `${pad}// ${l.slice(pad.length)}`);
  return [...(e.note ? e.note.split("\n").map((l) => `${pad}// ${l}`) : []), ...body];
}
