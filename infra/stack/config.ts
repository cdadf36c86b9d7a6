// Where the local stack lives and which ports it uses. Layers, last wins: defaults, an optional YAML
// file (WEIR_STACK_CONFIG, or weir-stack.yaml at the project root), environment variables. Two
// stacks coexist when they differ in `dir` and ports.
import { existsSync, readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import {
  ConfigError,
  isPlainObject,
  parseYamlConfig,
  setIn,
  validateConfig,
} from "../../schemas/config/yaml-config.ts";

export const PROJECT_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));

const Port = z.number().int().min(1024, "use a port >= 1024 (the stack never runs privileged)").max(65535);
const JvmSize = z.string().regex(/^\d+[mMgG]$/, "a JVM memory size such as 512m or 1g");

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
    kafka: z
      .strictObject({
        port: Port.default(9092),
        controllerPort: Port.default(9093),
        heap: JvmSize.default("1g"),
      })
      .prefault({}),
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
    const ports: [string, string, number][] = [
      ["kafka", "port", cfg.kafka.port],
      ["kafka", "controllerPort", cfg.kafka.controllerPort],
      ["elasticsearch", "port", cfg.elasticsearch.port],
      ["elasticsearch", "transportPort", cfg.elasticsearch.transportPort],
      ["clickhouse", "httpPort", cfg.clickhouse.httpPort],
      ["clickhouse", "tcpPort", cfg.clickhouse.tcpPort],
      ["redis", "port", cfg.redis.port],
    ];
    for (const [service, key, port] of ports) {
      const other = seen.get(port);
      if (other) ctx.addIssue({ code: "custom", path: [service, key], message: `port ${port} is also ${other}` });
      else seen.set(port, `${service}.${key}`);
    }
  });

export type StackSettings = z.output<typeof StackConfigSchema>;

/** Environment variable -> config path. Documented in docs/configuration.md. */
export const STACK_ENV: Record<string, readonly string[]> = {
  WEIR_STACK_DIR: ["dir"],
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

export interface StackEndpoints {
  kafkaBrokers: string[];
  elasticsearchUrl: string;
  clickhouseUrl: string;
  redisUrl: string;
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
    setIn(raw, path, /^\d+$/.test(text) && /port/i.test(name) ? Number(text) : text);
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

export function stackEndpoints(cfg: StackSettings): StackEndpoints {
  return {
    kafkaBrokers: [`127.0.0.1:${cfg.kafka.port}`],
    elasticsearchUrl: `http://127.0.0.1:${cfg.elasticsearch.port}`,
    clickhouseUrl: `http://127.0.0.1:${cfg.clickhouse.httpPort}`,
    redisUrl: `redis://127.0.0.1:${cfg.redis.port}`,
  };
}

/**
 * Where weir's clients connect: WEIR_KAFKA_BROKERS (comma-separated), WEIR_ES_URL,
 * WEIR_CLICKHOUSE_URL and WEIR_REDIS_URL when set (a production cluster), otherwise the local stack.
 */
export function clientEndpoints(env: NodeJS.ProcessEnv = process.env): StackEndpoints {
  const local = () => stackEndpoints(resolveStackConfig(env));
  const brokers = env.WEIR_KAFKA_BROKERS?.split(",")
    .map((b) => b.trim())
    .filter(Boolean);
  const needLocal = !brokers?.length || !env.WEIR_ES_URL || !env.WEIR_CLICKHOUSE_URL || !env.WEIR_REDIS_URL;
  const fallback = needLocal ? local() : undefined;
  return {
    kafkaBrokers: brokers?.length ? brokers : (fallback as StackEndpoints).kafkaBrokers,
    elasticsearchUrl: env.WEIR_ES_URL || (fallback as StackEndpoints).elasticsearchUrl,
    clickhouseUrl: env.WEIR_CLICKHOUSE_URL || (fallback as StackEndpoints).clickhouseUrl,
    redisUrl: env.WEIR_REDIS_URL || (fallback as StackEndpoints).redisUrl,
  };
}
