// How a weir process authenticates to Kafka and encrypts its connections: TLS (a CA to trust, and a
// client certificate where the cluster asks for one) and SASL (SCRAM-SHA-512 by default). Every weir
// Kafka client takes it from here, so the shipper, the workers and the commands cannot drift apart.
// Secrets come from files or the environment, never from code, and never reach a log:
// `describeKafkaSecurity` says what is used without them.
import { readFileSync } from "node:fs";
import type { KafkaConfig, SASLOptions } from "kafkajs";

export type SaslMechanism = "scram-sha-512" | "scram-sha-256" | "plain";

export interface KafkaSecurity {
  /** TLS on every connection. `ca`: the PEM of the CAs to trust (else the system's). */
  tls?: { ca?: string; cert?: string; key?: string };
  sasl?: { mechanism: SaslMechanism; username: string; password: string };
}

/** A setting of Kafka's security that cannot be used: says which, and what to do. */
export class KafkaSecurityError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(message);
    this.name = "KafkaSecurityError";
  }
}

const MECHANISMS: readonly SaslMechanism[] = ["scram-sha-512", "scram-sha-256", "plain"];

/**
 * Kafka's security from the environment, or undefined when it names none (plaintext):
 * - WEIR_KAFKA_TLS=true, or a CA/certificate file: TLS. WEIR_KAFKA_CA_FILE (PEM), and for a cluster
 *   that wants client certificates WEIR_KAFKA_CERT_FILE and WEIR_KAFKA_KEY_FILE;
 * - WEIR_KAFKA_USERNAME with WEIR_KAFKA_PASSWORD_FILE (or WEIR_KAFKA_PASSWORD): SASL, mechanism
 *   WEIR_KAFKA_SASL_MECHANISM (scram-sha-512 by default; scram-sha-256, plain).
 */
export function kafkaSecurityFromEnv(env: NodeJS.ProcessEnv = process.env): KafkaSecurity | undefined {
  const security: KafkaSecurity = {};
  const caFile = env.WEIR_KAFKA_CA_FILE;
  const certFile = env.WEIR_KAFKA_CERT_FILE;
  const keyFile = env.WEIR_KAFKA_KEY_FILE;
  const tls = env.WEIR_KAFKA_TLS;
  if (tls !== undefined && tls !== "" && !/^(1|true|on|yes|0|false|off|no)$/i.test(tls)) {
    throw new KafkaSecurityError(`WEIR_KAFKA_TLS=${tls} is not true or false`, "set WEIR_KAFKA_TLS=true or false");
  }
  if (/^(1|true|on|yes)$/i.test(tls ?? "") || caFile || certFile || keyFile) {
    if (!!certFile !== !!keyFile) {
      throw new KafkaSecurityError(
        "WEIR_KAFKA_CERT_FILE and WEIR_KAFKA_KEY_FILE go together (a client certificate and its key)",
        "set both, or neither",
      );
    }
    security.tls = {
      ...(caFile ? { ca: readSecretFile(caFile, "WEIR_KAFKA_CA_FILE") } : {}),
      ...(certFile ? { cert: readSecretFile(certFile, "WEIR_KAFKA_CERT_FILE") } : {}),
      ...(keyFile ? { key: readSecretFile(keyFile, "WEIR_KAFKA_KEY_FILE") } : {}),
    };
  }
  const username = env.WEIR_KAFKA_USERNAME;
  if (username) {
    const mechanism = (env.WEIR_KAFKA_SASL_MECHANISM || "scram-sha-512").toLowerCase() as SaslMechanism;
    if (!MECHANISMS.includes(mechanism)) {
      throw new KafkaSecurityError(
        `WEIR_KAFKA_SASL_MECHANISM=${env.WEIR_KAFKA_SASL_MECHANISM} is not one weir speaks`,
        `use one of ${MECHANISMS.join(", ")}`,
      );
    }
    const password = env.WEIR_KAFKA_PASSWORD_FILE
      ? readSecretFile(env.WEIR_KAFKA_PASSWORD_FILE, "WEIR_KAFKA_PASSWORD_FILE").trim()
      : env.WEIR_KAFKA_PASSWORD;
    if (!password) {
      throw new KafkaSecurityError(
        `WEIR_KAFKA_USERNAME=${username} is set without a password`,
        "set WEIR_KAFKA_PASSWORD_FILE to a file holding it (or WEIR_KAFKA_PASSWORD)",
      );
    }
    security.sasl = { mechanism, username, password };
  } else if (env.WEIR_KAFKA_PASSWORD || env.WEIR_KAFKA_PASSWORD_FILE) {
    throw new KafkaSecurityError("a Kafka password is set without WEIR_KAFKA_USERNAME", "set WEIR_KAFKA_USERNAME");
  }
  return security.tls || security.sasl ? security : undefined;
}

/** A file holding a secret or a certificate; a missing or unreadable one is a clear error naming the variable. */
export function readSecretFile(path: string, setting: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new KafkaSecurityError(
      `${setting}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      `point ${setting} at a readable file`,
    );
  }
}

/** The `ssl` and `sasl` of a kafkajs config. */
export function kafkajsSecurity(security: KafkaSecurity | undefined): Pick<KafkaConfig, "ssl" | "sasl"> {
  if (!security) return {};
  const tls = security.tls;
  return {
    ...(tls
      ? {
          ssl:
            tls.ca || tls.cert
              ? {
                  ...(tls.ca ? { ca: [tls.ca] } : {}),
                  ...(tls.cert ? { cert: tls.cert } : {}),
                  ...(tls.key ? { key: tls.key } : {}),
                }
              : true,
        }
      : {}),
    ...(security.sasl ? { sasl: { ...security.sasl } as SASLOptions } : {}),
  };
}

/** What is used, for logs and status lines: `SASL_SSL (SCRAM-SHA-512 as weir)`. Never a secret. */
export function describeKafkaSecurity(security: KafkaSecurity | undefined): string {
  if (!security) return "PLAINTEXT";
  const protocol = `${security.sasl ? "SASL_" : ""}${security.tls ? "SSL" : "PLAINTEXT"}`;
  const sasl = security.sasl ? `${security.sasl.mechanism.toUpperCase()} as ${security.sasl.username}` : "";
  const cert = security.tls?.cert ? "client certificate" : "";
  const detail = [sasl, cert].filter(Boolean).join(", ");
  return detail ? `${protocol} (${detail})` : protocol;
}
