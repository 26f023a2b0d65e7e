/**
 * Global options: declared once on the root program, read by every command through
 * `optsWithGlobals()`, and turned into config overrides (flags win over env and files).
 */
import { Option, type Command } from "commander";

export interface GlobalOptions {
  server?: string;
  creds?: string;
  token?: string;
  user?: string;
  password?: string;
  nkey?: string;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  config?: string;
  namespace?: string;
  json?: boolean;
  quiet?: boolean;
  color?: boolean;
  timeout?: string;
  verbose?: boolean;
}

/** Each connection/config flag: where it lands in the config, and its env fallbacks (documented). */
export const FLAG_KEYS = [
  { flag: "--server", key: "connection.servers", env: "NAQ_URL, NATS_URL" },
  { flag: "--creds", key: "connection.creds", env: "NAQ_CREDS, NATS_CREDS" },
  { flag: "--token", key: "connection.token", env: "NAQ_TOKEN" },
  { flag: "--user", key: "connection.user", env: "NAQ_USER, NATS_USER" },
  { flag: "--password", key: "connection.password", env: "NAQ_PASSWORD, NATS_PASSWORD" },
  { flag: "--nkey", key: "connection.nkey", env: "NAQ_NKEY, NATS_NKEY" },
  { flag: "--tls-ca", key: "connection.tls.ca", env: "NAQ_TLS_CA, NATS_CA" },
  { flag: "--tls-cert", key: "connection.tls.cert", env: "NAQ_TLS_CERT, NATS_CERT" },
  { flag: "--tls-key", key: "connection.tls.key", env: "NAQ_TLS_KEY, NATS_KEY" },
  { flag: "--namespace", key: "namespace", env: "NAQ_NAMESPACE" },
  { flag: "--timeout", key: "timeout", env: "NAQ_TIMEOUT" },
] as const;

export function addGlobalOptions(program: Command): Command {
  const env = (flag: string) => FLAG_KEYS.find((f) => f.flag === flag)?.env ?? "";
  return program
    .addOption(new Option("-s, --server <urls>", `NATS server URL(s), comma-separated (env: ${env("--server")})`))
    .addOption(new Option("--creds <file>", `NATS credentials file (env: ${env("--creds")})`))
    .addOption(new Option("--token <token>", `authentication token (env: ${env("--token")})`))
    .addOption(new Option("--user <user>", `user name (env: ${env("--user")})`))
    .addOption(new Option("--password <password>", `password (env: ${env("--password")})`))
    .addOption(new Option("--nkey <seed|file>", `nkey seed, or a file holding one (env: ${env("--nkey")})`))
    .addOption(new Option("--tls-ca <file>", `CA certificate to verify the server (env: ${env("--tls-ca")})`))
    .addOption(new Option("--tls-cert <file>", `client certificate (env: ${env("--tls-cert")})`))
    .addOption(new Option("--tls-key <file>", `client private key (env: ${env("--tls-key")})`))
    .addOption(new Option("-c, --config <file>", "config file (default: .naqrc*, naq.config.*, package.json#naq, searched upward)"))
    .addOption(new Option("--namespace <name>", `prefix of every stream, subject and bucket (default naq; env: ${env("--namespace")})`))
    .addOption(new Option("--json", "print JSON on stdout (NDJSON for streams)"))
    .addOption(new Option("-q, --quiet", "print only data and errors"))
    .addOption(new Option("--no-color", "no colours (also when NO_COLOR is set or stdout is not a TTY)"))
    .addOption(new Option("--timeout <duration>", `request and connect timeout, e.g. 5s (env: ${env("--timeout")})`))
    .addOption(new Option("-v, --verbose", "debug output on stderr, stack traces on errors"));
}

/** Config overrides from flags, with the flag that set each key (for `config show`). */
export function flagOverrides(g: GlobalOptions): { values: Record<string, unknown>; names: Record<string, string> } {
  const values: Record<string, unknown> = {};
  const names: Record<string, string> = {};
  const set = (key: string, flag: string, value: unknown) => {
    if (value === undefined) return;
    const path = key.split(".");
    let node = values;
    for (const part of path.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
    node[path[path.length - 1] as string] = value;
    names[key] = flag;
  };
  set("connection.servers", "--server", g.server?.split(",").map((s) => s.trim()).filter(Boolean));
  set("connection.creds", "--creds", g.creds);
  set("connection.token", "--token", g.token);
  set("connection.user", "--user", g.user);
  set("connection.password", "--password", g.password);
  set("connection.nkey", "--nkey", g.nkey);
  set("connection.tls.ca", "--tls-ca", g.tlsCa);
  set("connection.tls.cert", "--tls-cert", g.tlsCert);
  set("connection.tls.key", "--tls-key", g.tlsKey);
  set("namespace", "--namespace", g.namespace);
  set("timeout", "--timeout", g.timeout);
  set("connection.connectTimeout", "--timeout", g.timeout);
  return { values, names };
}
