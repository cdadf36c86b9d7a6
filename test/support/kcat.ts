// Reads topics with kcat (librdkafka), a client weir did not write, so that what tests count in
// Kafka does not depend on weir's own consumer code. Debian's kcat is installed on first use.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { ensureDebianPackages, which } from "../../infra/stack/prerequisites.ts";
import { endpoints } from "./stack.ts";

export interface KcatMessage {
  partition: number;
  offset: number;
  key: Buffer | null;
  value: Buffer;
}

/** librdkafka's settings for the security the environment names (WEIR_KAFKA_*), as weir's clients read it. */
export function kcatSecurity(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const tls = !!env.WEIR_KAFKA_CA_FILE || /^(1|true|on|yes)$/i.test(env.WEIR_KAFKA_TLS ?? "");
  const sasl = !!env.WEIR_KAFKA_USERNAME;
  if (!tls && !sasl) return {};
  const out: Record<string, string> = { "security.protocol": `${sasl ? "SASL_" : ""}${tls ? "SSL" : "PLAINTEXT"}` };
  if (env.WEIR_KAFKA_CA_FILE) out["ssl.ca.location"] = env.WEIR_KAFKA_CA_FILE;
  if (sasl) {
    out["sasl.mechanisms"] = (env.WEIR_KAFKA_SASL_MECHANISM ?? "scram-sha-512").toUpperCase();
    out["sasl.username"] = env.WEIR_KAFKA_USERNAME as string;
    out["sasl.password"] = env.WEIR_KAFKA_PASSWORD_FILE
      ? readFileSync(env.WEIR_KAFKA_PASSWORD_FILE, "utf8").trim()
      : (env.WEIR_KAFKA_PASSWORD ?? "");
  }
  return out;
}

export async function ensureKcat(): Promise<string> {
  if (!which("kcat")) await ensureDebianPackages(["kcat"], "tests count Kafka messages with kcat");
  const bin = which("kcat");
  if (!bin) throw new Error("kcat is not on PATH after installing it");
  return bin;
}

/**
 * Every message of `topic` from the beginning to the end offsets at the time of the call. kcat
 * prints each one as a header line `partition offset keyLength valueLength` followed by the raw key
 * and value bytes, which are then parsed by length (values are binary Avro).
 */
export async function consumeAll(
  topic: string,
  options: { brokers?: string[]; config?: Record<string, string> } = {},
): Promise<KcatMessage[]> {
  const bin = await ensureKcat();
  const config = Object.entries(options.config ?? kcatSecurity()).flatMap(([k, v]) => ["-X", `${k}=${v}`]);
  const out = await new Promise<Buffer>((resolve, reject) => {
    const child = spawn(
      bin,
      [
        "-C",
        "-b",
        (options.brokers ?? endpoints.kafkaBrokers).join(","),
        ...config,
        "-t",
        topic,
        "-o",
        "beginning",
        "-e",
        "-q",
        "-f",
        "%p %o %K %S\n%k%s",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const chunks: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (d: Buffer) => chunks.push(d));
    child.stderr.on("data", (d) => {
      err += d;
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`kcat exited ${code}: ${err.slice(-2000)}`)),
    );
  });
  const messages: KcatMessage[] = [];
  let at = 0;
  while (at < out.length) {
    const nl = out.indexOf(10, at);
    if (nl < 0) throw new Error(`kcat output ends inside a header at byte ${at}`);
    const [p, o, k, v] = out.toString("latin1", at, nl).split(" ").map(Number) as [number, number, number, number];
    at = nl + 1;
    const key = k >= 0 ? out.subarray(at, at + k) : null;
    at += Math.max(0, k);
    const value = out.subarray(at, at + Math.max(0, v));
    at += Math.max(0, v);
    messages.push({ partition: p, offset: o, key, value });
  }
  return messages;
}
