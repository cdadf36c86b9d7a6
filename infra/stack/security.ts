// The local stack's secrets and certificates, made by `weir stack up` when `security` is on: a CA of
// its own, one server certificate for 127.0.0.1 signed by it (every broker of a cluster presents it),
// and random passwords for Kafka's SCRAM users and ClickHouse's users. All of it lives under the
// stack's folder: <dir>/tls (the CA's key readable by its owner only) and <dir>/secrets (mode 0700).
// Clients of this stack read them from there (clientEndpoints in config.ts); nothing is printed.
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { KafkaSecurity } from "../../kafka/security.ts";
import { localKafkaSecurity, type StackConfig } from "./config.ts";
import { ensureDebianPackages, type RunAs, run, which } from "./prerequisites.ts";

/** Kafka's users: the brokers' own (inter-broker) and the one every weir client of this stack uses. */
export const KAFKA_BROKER_USER = "weir-broker";
export const KAFKA_CLIENT_USER = "weir"; // config.ts's localKafkaSecurity names it too
/** Elasticsearch's users in security mode: the writer (pipelines, retention) and the search's reader. */
export const ES_WRITER_USER = "weir";
export const ES_SEARCH_USER = "weir_search";

export type SecretName =
  | "kafka-broker"
  | "kafka-weir"
  | "clickhouse-default"
  | "clickhouse-weir_search"
  | "elasticsearch-weir"
  | "elasticsearch-weir_search";

const SECRETS: SecretName[] = [
  "kafka-broker",
  "kafka-weir",
  "clickhouse-default",
  "clickhouse-weir_search",
  "elasticsearch-weir",
  "elasticsearch-weir_search",
];

export function secretsDir(cfg: StackConfig): string {
  return join(cfg.paths.root, "secrets");
}

export function tlsDir(cfg: StackConfig): string {
  return join(cfg.paths.root, "tls");
}

export function secretFile(cfg: StackConfig, name: SecretName): string {
  return join(secretsDir(cfg), `${name}.password`);
}

/** A secret of this stack; made by `weir stack up`. */
export function readSecret(cfg: StackConfig, name: SecretName): string {
  return readFileSync(secretFile(cfg, name), "utf8").trim();
}

/** Makes what is missing of the stack's passwords; keeps those that exist (a running server knows them). */
export function ensureSecrets(cfg: StackConfig): void {
  const dir = secretsDir(cfg);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  for (const name of SECRETS) {
    const file = secretFile(cfg, name);
    // base64url: no character a JAAS line, an XML file or a URL would need escaped.
    if (!existsSync(file)) writeFileSync(file, `${randomBytes(24).toString("base64url")}\n`, { mode: 0o600 });
  }
}

export interface StackTls {
  /** The CA's certificate (PEM): what clients trust. */
  caFile: string;
  /** The server's key and certificate, one PEM file (Kafka's PEM keystore), readable by the servers' user. */
  keystoreFile: string;
}

/**
 * The stack's CA and server certificate, made with openssl when missing. The server certificate
 * names 127.0.0.1 and localhost: clients verify it against the address they connect to.
 */
export async function ensureTls(cfg: StackConfig, runAs: RunAs, log: (line: string) => void): Promise<StackTls> {
  const dir = tlsDir(cfg);
  const caKey = join(dir, "ca.key");
  const caFile = join(dir, "ca.pem");
  const keystoreFile = join(dir, "server-keystore.pem");
  if (existsSync(caFile) && existsSync(keystoreFile)) return { caFile, keystoreFile };
  if (!which("openssl")) await ensureDebianPackages(["openssl"], "weir stack up makes the stack's certificates", log);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  log(`security: making a local CA and a server certificate for 127.0.0.1 under ${dir}`);
  const key = join(dir, "server.key");
  const csr = join(dir, "server.csr");
  const cert = join(dir, "server.pem");
  const ext = join(dir, "server.ext");
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    caKey,
    "-out",
    caFile,
    "-days",
    "3650",
    "-subj",
    "/CN=weir local stack CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  chmodSync(caKey, 0o600);
  await run("openssl", ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost"]);
  writeFileSync(
    ext,
    "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
  );
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    caFile,
    "-CAkey",
    caKey,
    "-CAcreateserial",
    "-out",
    cert,
    "-days",
    "825",
    "-extfile",
    ext,
  ]);
  // Kafka's PEM keystore: the unencrypted PKCS#8 key, then the certificate chain.
  writeFileSync(
    keystoreFile,
    `${readFileSync(key, "utf8")}${readFileSync(cert, "utf8")}${readFileSync(caFile, "utf8")}`,
    {
      mode: 0o600,
    },
  );
  if (runAs.uid !== undefined) chownSync(keystoreFile, runAs.uid, runAs.gid ?? runAs.uid);
  for (const f of [key, csr, ext, join(dir, "ca.srl")]) rmSync(f, { force: true });
  chmodSync(caFile, 0o644);
  return { caFile, keystoreFile };
}

/** What a weir client of this stack uses to reach its Kafka: TLS trusting the stack's CA, SCRAM-SHA-512 as `weir`. */
export function stackKafkaSecurity(cfg: StackConfig): KafkaSecurity {
  return localKafkaSecurity(cfg);
}
