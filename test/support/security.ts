/**
 * Credentials and certificates for the authentication tests, made fresh by each test run:
 * nkeys (with @nats-io/nkeys), operator-mode JWTs and .creds files (signed here with nkeys;
 * no nsc needed), and a test PKI made with openssl (CA, server certificate for 127.0.0.1 and
 * localhost, client certificate, and a client certificate from a CA the server does not trust).
 *
 *   const user = nkeyUser();                       // { publicKey: "U...", seed: "SU..." }
 *   const op = operatorMode();                     // server config text + user creds
 *   const pki = await makeTestPki(dir);            // PEM files in dir + server tls config
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { createAccount, createOperator, createUser, type KeyPair } from "@nats-io/nkeys";

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

export interface NkeyUser {
  /** "U...": goes into the server config. */
  publicKey: string;
  /** "SU...": the client's secret. */
  seed: string;
}

export function nkeyUser(): NkeyUser {
  const kp = createUser();
  return { publicKey: kp.getPublicKey(), seed: text(kp.getSeed()) };
}

/**
 * A NATS JWT (version 2) with `claims`, signed by `signer`: base64url(header) "."
 * base64url(claims) "." base64url(ed25519 signature of the first two parts). nats-server
 * checks the header, the signature and that the issuer is a key of the expected kind.
 */
export function signJwt(signer: KeyPair, claims: { sub: string; name: string; nats: Record<string, unknown> }): string {
  const header = Buffer.from(JSON.stringify({ typ: "JWT", alg: "ed25519-nkey" })).toString("base64url");
  const body: Record<string, unknown> = { iat: Math.floor(Date.now() / 1000), iss: signer.getPublicKey(), ...claims };
  // jti: a hash of the claims, as nsc makes it (the server does not check it).
  body.jti = createHash("sha512-256").update(JSON.stringify(body)).digest("base64url").toUpperCase();
  const payload = Buffer.from(JSON.stringify(body)).toString("base64url");
  const signature = Buffer.from(signer.sign(new TextEncoder().encode(`${header}.${payload}`))).toString("base64url");
  return `${header}.${payload}.${signature}`;
}

/** A .creds file in the format nsc writes. */
export function credsFileText(jwt: string, seed: string): string {
  return `-----BEGIN NATS USER JWT-----
${jwt}
------END NATS USER JWT------

************************* IMPORTANT *************************
NKEY Seed printed below can be used to sign and prove identity.
NKEYs are sensitive and should be treated as secrets.

-----BEGIN USER NKEY SEED-----
${seed}
------END USER NKEY SEED------

*************************************************************
`;
}

export interface OperatorMode {
  /** nats-server config: trusted operator, memory resolver with the account preloaded. */
  config: string;
  /** The user's JWT (also in `creds`). */
  userJwt: string;
  /** The user's seed (also in `creds`). */
  userSeed: string;
  /** .creds text of a user of the account, JetStream enabled for it. */
  creds: string;
  /** .creds text of a user signed by an account the server does not know. */
  strangerCreds: string;
  /** Seeds of the operator and account keys (secrets a run must never print either). */
  signingSeeds: string[];
}

const UNLIMITED = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };

function userCreds(account: KeyPair, name: string): { jwt: string; seed: string; creds: string } {
  const user = createUser();
  const jwt = signJwt(account, {
    sub: user.getPublicKey(),
    name,
    nats: { type: "user", version: 2, pub: {}, sub: {}, subs: -1, data: -1, payload: -1 },
  });
  const seed = text(user.getSeed());
  return { jwt, seed, creds: credsFileText(jwt, seed) };
}

/**
 * An operator, a system account, one account with JetStream (unlimited) and one user, the
 * way nsc sets them up; the server trusts the operator and knows the accounts from
 * `resolver_preload`.
 * Works on nats-server 2.9+.
 */
export function operatorMode(): OperatorMode {
  const operator = createOperator();
  const account = createAccount();
  const system = createAccount();
  const operatorJwt = signJwt(operator, {
    sub: operator.getPublicKey(),
    name: "naq-test-operator",
    nats: { type: "operator", version: 2, system_account: system.getPublicKey() },
  });
  const systemJwt = signJwt(operator, {
    sub: system.getPublicKey(),
    name: "SYS",
    nats: { type: "account", version: 2, limits: UNLIMITED, default_permissions: { pub: {}, sub: {} } },
  });
  const accountJwt = signJwt(operator, {
    sub: account.getPublicKey(),
    name: "naq-test-account",
    nats: {
      type: "account",
      version: 2,
      limits: { ...UNLIMITED, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
      default_permissions: { pub: {}, sub: {} },
    },
  });
  const user = userCreds(account, "naq-test-user");
  const stranger = userCreds(createAccount(), "naq-test-stranger");
  // JetStream in operator mode needs the system account (2.9 refuses to start without it).
  const config = `operator: ${operatorJwt}
system_account: ${system.getPublicKey()}
resolver: MEMORY
resolver_preload: {
  ${account.getPublicKey()}: ${accountJwt}
  ${system.getPublicKey()}: ${systemJwt}
}
`;
  return {
    config,
    userJwt: user.jwt,
    userSeed: user.seed,
    creds: user.creds,
    strangerCreds: stranger.creds,
    signingSeeds: [text(operator.getSeed()), text(account.getSeed()), text(system.getSeed())],
  };
}

export interface TestPki {
  dir: string;
  /** CA certificate (PEM file). */
  ca: string;
  serverCert: string;
  serverKey: string;
  /** Client certificate signed by the CA (extendedKeyUsage clientAuth). */
  clientCert: string;
  clientKey: string;
  /** A self-signed client certificate: not from the CA the server trusts. */
  rogueCert: string;
  rogueKey: string;
  /** nats-server `tls {}` block: server certificate, client certificates required (verify). */
  serverConfig: string;
  /** Contents of every private key file (secrets a run must never print). */
  keyContents(): Promise<string[]>;
}

const run = promisify(execFile);

async function openssl(dir: string, args: string[]): Promise<void> {
  await run("openssl", args, { cwd: dir, timeout: 30_000 });
}

/** Makes the test PKI in `dir` with openssl (P-256 keys: fast). */
export async function makeTestPki(dir: string): Promise<TestPki> {
  const f = (name: string) => path.join(dir, name);
  const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await openssl(dir, ["req", "-x509", ...newKey, "-keyout", f("ca-key.pem"), "-out", f("ca.pem"), "-days", "2", "-subj", "/CN=naq test CA"]);
  await writeFile(f("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  await writeFile(f("client.ext"), "extendedKeyUsage=clientAuth\n");
  for (const [name, subject] of [
    ["server", "/CN=localhost"],
    ["client", "/CN=naq-client"],
  ] as const) {
    await openssl(dir, ["req", ...newKey, "-keyout", f(`${name}-key.pem`), "-out", f(`${name}.csr`), "-subj", subject]);
    await openssl(dir, [
      "x509", "-req", "-in", f(`${name}.csr`), "-CA", f("ca.pem"), "-CAkey", f("ca-key.pem"), "-CAcreateserial",
      "-out", f(`${name}.pem`), "-days", "2", "-extfile", f(`${name}.ext`),
    ]);
  }
  await openssl(dir, [
    "req", "-x509", ...newKey, "-keyout", f("rogue-key.pem"), "-out", f("rogue.pem"), "-days", "2",
    "-subj", "/CN=naq-rogue", "-addext", "extendedKeyUsage=clientAuth",
  ]);
  const pki = {
    dir,
    ca: f("ca.pem"),
    serverCert: f("server.pem"),
    serverKey: f("server-key.pem"),
    clientCert: f("client.pem"),
    clientKey: f("client-key.pem"),
    rogueCert: f("rogue.pem"),
    rogueKey: f("rogue-key.pem"),
  };
  return {
    ...pki,
    serverConfig: `tls {
  cert_file: ${JSON.stringify(pki.serverCert)}
  key_file: ${JSON.stringify(pki.serverKey)}
  ca_file: ${JSON.stringify(pki.ca)}
  verify: true
  timeout: 2
}
`,
    keyContents: () => Promise.all(["ca-key.pem", "server-key.pem", "client-key.pem", "rogue-key.pem"].map((n) => readFile(f(n), "utf8"))),
  };
}

/** The base64 body lines of a PEM block (what a leak would show, whatever the framing). */
export function pemBodyLines(pem: string): string[] {
  return pem
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("-----"));
}
