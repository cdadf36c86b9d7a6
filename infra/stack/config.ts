// Where the local stack lives and which ports it uses. Layers, last wins: defaults, an optional YAML
// file (WEIR_STACK_CONFIG, or weir-stack.yaml at the project root), environment variables. Two
// stacks coexist when they differ in `dir` and ports.
import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { type KafkaSecurity, kafkaSecurityFromEnv } from "../../kafka/security.ts";
import {
  ConfigError,
  isPlainObject,
  parseYamlConfig,
  setIn,
  validateConfig,
} from "../../schemas/config/yaml-config.ts";
import type { ClickHouseAuth, ElasticsearchAuth, StoreEndpoints } from "../../sinks/credentials.ts";
import { StackError } from "./prerequisites.ts";

export const PROJECT_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));

const Port = z.number().int().min(1024, "use a port >= 1024 (the stack never runs privileged)").max(65535);
const JvmSize = z.string().regex(/^\d+[mMgG]$/, "a JVM memory size such as 512m or 1g");

export const STACK_SERVICES = ["kafka", "elasticsearch", "clickhouse", "redis"] as const;
export type StackServiceKind = (typeof STACK_SERVICES)[number];

/** The most brokers a local cluster may have: each is a JVM on this machine. */
export const MAX_LOCAL_BROKERS = 5;

export const StackConfigSchema = z
  .strictObject({
    /** State of the stack (configs, data, logs, pid files); relative paths are from the project root. */
    dir: z.string().min(1).default(".stack"),
    /** Installed server distributions; kept by `reset`. Defaults to `<dir>/downloads`. */
    downloads: z.string().min(1).optional(),
    /** When weir runs as root, the servers run as this unprivileged system user (created if missing). */
    user: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]*$/, "a system user name")
      .default("weir"),
    /** The servers this stack runs (a stack of Kafka alone for a Kafka test, say). */
    services: z
      .array(z.enum(STACK_SERVICES))
      .min(1)
      .default([...STACK_SERVICES])
      .transform((list) => STACK_SERVICES.filter((s) => list.includes(s))),
    kafka: z
      .strictObject({
        /** The first broker's client port; broker i (from 0) of a cluster listens on port + 2i. */
        port: Port.default(9092),
        /** The first broker's KRaft controller port; broker i's is controllerPort + 2i. */
        controllerPort: Port.default(9093),
        /**
         * Brokers: 1 is a single node; 3 (or more) a KRaft cluster of combined broker+controller
         * nodes whose topics are replicated (the catalog's `cluster` environment: RF 3, min.insync 2).
         */
        brokers: z.number().int().min(1).max(MAX_LOCAL_BROKERS).default(1),
        heap: JvmSize.default("1g"),
      })
      .prefault({}),
    /**
     * SASL/SCRAM-SHA-512 over TLS on Kafka's client and inter-broker listener (a CA and certificates
     * made under <dir>/tls), and passwords for ClickHouse's users (under <dir>/secrets).
     */
    security: z.boolean().default(false),
    elasticsearch: z
      .strictObject({
        port: Port.default(9200),
        transportPort: Port.default(9300),
        heapMin: JvmSize.default("512m"),
        heapMax: JvmSize.default("1g"),
      })
      .prefault({}),
    clickhouse: z
      .strictObject({
        httpPort: Port.default(8123),
        tcpPort: Port.default(9000),
        /** A clickhouse-server binary to run instead of Debian's (e.g. a modern release). */
        binary: z.string().min(1).optional(),
      })
      .prefault({}),
    redis: z
      .strictObject({
        port: Port.default(6379),
        /** Redis's maxmemory; with noeviction, writes are refused (and retried by the sink) when it is full. */
        maxMemory: z
          .string()
          .regex(/^\d+(kb|mb|gb)$/i, "a Redis memory size such as 512mb")
          .default("512mb"),
      })
      .prefault({}),
  })
  .superRefine((cfg, ctx) => {
    const seen = new Map<number, string>();
    const ports: [string, string, number][] = [];
    for (let i = 0; i < cfg.kafka.brokers; i++) {
      const node = i === 0 ? "" : ` (broker ${i + 1})`;
      ports.push(["kafka", `port${node}`, cfg.kafka.port + 2 * i]);
      ports.push(["kafka", `controllerPort${node}`, cfg.kafka.controllerPort + 2 * i]);
    }
    ports.push(
      ["elasticsearch", "port", cfg.elasticsearch.port],
      ["elasticsearch", "transportPort", cfg.elasticsearch.transportPort],
      ["clickhouse", "httpPort", cfg.clickhouse.httpPort],
      ["clickhouse", "tcpPort", cfg.clickhouse.tcpPort],
      ["redis", "port", cfg.redis.port],
    );
    for (const [service, key, port] of ports) {
      if (port > 65535) {
        ctx.addIssue({ code: "custom", path: [service, "port"], message: `${service}.${key} would be port ${port}` });
        continue;
      }
      const other = seen.get(port);
      const path = [service, key.replace(/ .*/, "")];
      const which = key.includes(" ") ? ` (${service}.${key})` : "";
      if (other) ctx.addIssue({ code: "custom", path, message: `port ${port}${which} is also ${other}` });
      else seen.set(port, `${service}.${key}`);
    }
  });

export type StackSettings = z.output<typeof StackConfigSchema>;

/** Environment variable -> config path. Documented in docs/configuration.md. */
export const STACK_ENV: Record<string, readonly string[]> = {
  WEIR_STACK_DIR: ["dir"],
  WEIR_STACK_SERVICES: ["services"],
  WEIR_STACK_BROKERS: ["kafka", "brokers"],
  WEIR_STACK_SECURITY: ["security"],
  WEIR_STACK_DOWNLOADS: ["downloads"],
  WEIR_STACK_USER: ["user"],
  WEIR_KAFKA_PORT: ["kafka", "port"],
  WEIR_KAFKA_CONTROLLER_PORT: ["kafka", "controllerPort"],
  WEIR_KAFKA_HEAP: ["kafka", "heap"],
  WEIR_ES_PORT: ["elasticsearch", "port"],
  WEIR_ES_TRANSPORT_PORT: ["elasticsearch", "transportPort"],
  WEIR_ES_HEAP_MIN: ["elasticsearch", "heapMin"],
  WEIR_ES_HEAP_MAX: ["elasticsearch", "heapMax"],
  WEIR_CH_HTTP_PORT: ["clickhouse", "httpPort"],
  WEIR_CH_TCP_PORT: ["clickhouse", "tcpPort"],
  WEIR_CH_BINARY: ["clickhouse", "binary"],
  WEIR_REDIS_PORT: ["redis", "port"],
  WEIR_REDIS_MAX_MEMORY: ["redis", "maxMemory"],
};

export interface StackPaths {
  root: string;
  downloads: string;
  run: string;
  service(name: string): string;
}

export interface StackConfig extends StackSettings {
  /** The file the settings came from, if any. */
  file: string | undefined;
  paths: StackPaths;
}

export interface StackEndpoints extends StoreEndpoints {
  kafkaBrokers: string[];
  /** TLS and SASL of Kafka; absent: plaintext. */
  kafkaSecurity?: KafkaSecurity;
  elasticsearchUrl: string;
  clickhouseUrl: string;
  redisUrl: string;
  /** Redis's password (WEIR_REDIS_PASSWORD_FILE or WEIR_REDIS_PASSWORD), when it asks for one. */
  redisPassword?: string;
}

export function resolveStackConfig(env: NodeJS.ProcessEnv = process.env, projectRoot = PROJECT_ROOT): StackConfig {
  const explicit = env.WEIR_STACK_CONFIG;
  const candidate = explicit ? resolve(explicit) : join(projectRoot, "weir-stack.yaml");
  if (explicit && !existsSync(candidate)) {
    throw new ConfigError(candidate, [
      { line: 0, column: 0, field: "", message: "does not exist (named by WEIR_STACK_CONFIG)" },
    ]);
  }
  const file = existsSync(candidate) ? candidate : undefined;
  const parsed = file
    ? parseYamlConfig(file, readFileSync(file, "utf8"))
    : { value: {}, locate: () => [0, 0] as [number, number] };
  const raw = isPlainObject(parsed.value) ? structuredClone(parsed.value) : parsed.value;

  const fromEnv = new Map<string, string>();
  for (const [name, path] of Object.entries(STACK_ENV)) {
    const text = env[name];
    if (text === undefined || text === "" || !isPlainObject(raw)) continue;
    setIn(raw, path, envValue(name, text));
    fromEnv.set(path.join("."), name);
  }
  const settings = validateConfig(file ?? "stack settings", StackConfigSchema, raw, parsed.locate, (path) =>
    fromEnv.get(path.join(".")),
  );

  const root = isAbsolute(settings.dir) ? settings.dir : resolve(projectRoot, settings.dir);
  const downloads = settings.downloads
    ? isAbsolute(settings.downloads)
      ? settings.downloads
      : resolve(projectRoot, settings.downloads)
    : join(root, "downloads");
  return {
    ...settings,
    file,
    paths: { root, downloads, run: join(root, "run"), service: (name) => join(root, name) },
  };
}

/** An environment variable's text as its setting's type (validated after). */
function envValue(name: string, text: string): unknown {
  if (name === "WEIR_STACK_SERVICES") return text.split(",").map((s) => s.trim());
  if (name === "WEIR_STACK_SECURITY")
    return /^(1|true|on|yes)$/i.test(text) ? true : /^(0|false|off|no)$/i.test(text) ? false : text;
  if (/^\d+$/.test(text) && (/PORT/.test(name) || name === "WEIR_STACK_BROKERS")) return Number(text);
  return text;
}

/** The client and controller ports of each broker of the local Kafka, in node order (node id = index + 1). */
export function kafkaNodes(cfg: StackSettings): Array<{ id: number; port: number; controllerPort: number }> {
  return Array.from({ length: cfg.kafka.brokers }, (_, i) => ({
    id: i + 1,
    port: cfg.kafka.port + 2 * i,
    controllerPort: cfg.kafka.controllerPort + 2 * i,
  }));
}

export function stackEndpoints(cfg: StackSettings): StackEndpoints {
  return {
    kafkaBrokers: kafkaNodes(cfg).map((n) => `127.0.0.1:${n.port}`),
    elasticsearchUrl: `http://127.0.0.1:${cfg.elasticsearch.port}`,
    clickhouseUrl: `http://127.0.0.1:${cfg.clickhouse.httpPort}`,
    redisUrl: `redis://127.0.0.1:${cfg.redis.port}`,
  };
}

/**
 * Where weir's clients connect, and how: WEIR_KAFKA_BROKERS (comma-separated), WEIR_ES_URL,
 * WEIR_CLICKHOUSE_URL and WEIR_REDIS_URL when set (a production cluster), otherwise the local stack.
 * Credentials come from the environment (docs/security.md: Kafka's TLS and SASL in kafka/security.ts,
 * the stores' below); for a local stack with `security` on, its own CA and passwords are used for
 * what the environment does not name.
 */
export function clientEndpoints(env: NodeJS.ProcessEnv = process.env): StackEndpoints {
  const brokers = env.WEIR_KAFKA_BROKERS?.split(",")
    .map((b) => b.trim())
    .filter(Boolean);
  const needLocal = !brokers?.length || !env.WEIR_ES_URL || !env.WEIR_CLICKHOUSE_URL || !env.WEIR_REDIS_URL;
  const cfg = needLocal ? resolveStackConfig(env) : undefined;
  const fallback = cfg ? stackEndpoints(cfg) : undefined;
  const local = (service: string, remote: boolean) =>
    !remote && cfg?.security === true && cfg.services.includes(service as StackServiceKind);
  const kafkaSecurity =
    kafkaSecurityFromEnv(env) ?? (local("kafka", !!brokers?.length) && cfg ? localKafkaSecurity(cfg) : undefined);
  const localEs = local("elasticsearch", !!env.WEIR_ES_URL) && cfg ? cfg : undefined;
  const localCh = local("clickhouse", !!env.WEIR_CLICKHOUSE_URL) && cfg ? cfg : undefined;
  const esAuth =
    elasticsearchAuthFromEnv(env, "WEIR_ES") ?? (localEs && localSecretAuth(localEs, "weir", "elasticsearch-weir"));
  const esSearchAuth =
    elasticsearchAuthFromEnv(env, "WEIR_ES_SEARCH") ??
    (localEs && localSecretAuth(localEs, "weir_search", "elasticsearch-weir_search"));
  const chUser = env.WEIR_CLICKHOUSE_USER;
  const chPassword = secretFrom(env, "WEIR_CLICKHOUSE_PASSWORD");
  const chAuth: ClickHouseAuth | undefined = chUser
    ? { username: chUser, password: chPassword ?? "" }
    : localCh
      ? localSecretAuth(localCh, "default", "clickhouse-default")
      : undefined;
  const chSearchPassword =
    secretFrom(env, "WEIR_CLICKHOUSE_SEARCH_PASSWORD") ??
    (localCh ? readLocalSecret(localCh, "clickhouse-weir_search") : undefined);
  const esCa = env.WEIR_ES_CA_FILE ? readSecretText(env.WEIR_ES_CA_FILE, "WEIR_ES_CA_FILE") : undefined;
  const redisPassword = secretFrom(env, "WEIR_REDIS_PASSWORD");
  return {
    kafkaBrokers: brokers?.length ? brokers : (fallback as StackEndpoints).kafkaBrokers,
    ...(kafkaSecurity ? { kafkaSecurity } : {}),
    elasticsearchUrl: env.WEIR_ES_URL || (fallback as StackEndpoints).elasticsearchUrl,
    ...(esAuth ? { elasticsearchAuth: esAuth } : {}),
    ...(esSearchAuth ? { elasticsearchSearchAuth: esSearchAuth } : {}),
    ...(esCa ? { elasticsearchCa: esCa } : {}),
    clickhouseUrl: env.WEIR_CLICKHOUSE_URL || (fallback as StackEndpoints).clickhouseUrl,
    redisUrl: env.WEIR_REDIS_URL || (fallback as StackEndpoints).redisUrl,
    ...(redisPassword !== undefined ? { redisPassword } : {}),
    ...(chAuth ? { clickhouseAuth: chAuth } : {}),
    ...(chSearchPassword !== undefined ? { clickhouseSearchPassword: chSearchPassword } : {}),
  };
}

/** `<PREFIX>_USERNAME` with `<PREFIX>_PASSWORD(_FILE)`, or `<PREFIX>_API_KEY(_FILE)`; undefined when neither is set. */
function elasticsearchAuthFromEnv(env: NodeJS.ProcessEnv, prefix: string): ElasticsearchAuth | undefined {
  const apiKey = secretFrom(env, `${prefix}_API_KEY`);
  const username = env[`${prefix}_USERNAME`];
  if (apiKey && username) {
    throw new StackError(`${prefix}_API_KEY and ${prefix}_USERNAME are both set`, "give Elasticsearch one of them");
  }
  if (apiKey) return { apiKey };
  if (username) {
    const password = secretFrom(env, `${prefix}_PASSWORD`);
    if (password === undefined)
      throw new StackError(
        `${prefix}_USERNAME is set without a password`,
        `set ${prefix}_PASSWORD_FILE (or ${prefix}_PASSWORD)`,
      );
    return { username, password };
  }
  return undefined;
}

/** A secret from `<NAME>_FILE` (a file holding it) or `<NAME>`; undefined when neither is set. */
function secretFrom(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const file = env[`${name}_FILE`];
  if (file) return readSecretText(file, `${name}_FILE`).trim();
  const value = env[name];
  return value === undefined || value === "" ? undefined : value;
}

function readSecretText(path: string, setting: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new StackError(
      `${setting}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      `point ${setting} at a readable file`,
    );
  }
}

function readLocalSecret(cfg: StackConfig, name: string): string {
  const file = join(cfg.paths.root, "secrets", `${name}.password`);
  if (!existsSync(file)) {
    throw new StackError(
      `security is on, but ${cfg.paths.root} has no passwords yet`,
      "run weir stack up (it makes them under <dir>/secrets)",
    );
  }
  return readFileSync(file, "utf8").trim();
}

function localSecretAuth(cfg: StackConfig, username: string, secret: string): { username: string; password: string } {
  return { username, password: readLocalSecret(cfg, secret) };
}

/** How this stack's own Kafka is reached (its CA and client user) when `security` is on. */
export function localKafkaSecurity(cfg: StackConfig): KafkaSecurity {
  const tls = join(cfg.paths.root, "tls", "ca.pem");
  const password = join(cfg.paths.root, "secrets", "kafka-weir.password");
  if (!existsSync(tls) || !existsSync(password)) {
    throw new ConfigError(cfg.file ?? "stack settings", [
      {
        line: 0,
        column: 0,
        field: "security",
        message: `security is on, but ${cfg.paths.root} has no certificates or passwords yet: run weir stack up`,
      },
    ]);
  }
  return {
    tls: { ca: readFileSync(tls, "utf8") },
    sasl: { mechanism: "scram-sha-512", username: "weir", password: readFileSync(password, "utf8").trim() },
  };
}
