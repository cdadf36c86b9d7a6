// The topic catalog (schemas/topics.yaml): every topic, its schema, key, partitions and retention.
// Loading checks it against the schemas too: the schema must exist and the key must be a field of it.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { ConfigError, parseYamlConfig, validateConfig } from "./config/yaml-config.ts";
import { SCHEMAS_DIR, type SchemaRegistry, schemaRegistry } from "./registry.ts";
import type { SchemaName } from "./types.generated.ts";

export const CATALOG_FILE = join(SCHEMAS_DIR, "topics.yaml");

const Duration = z.union([
  z.literal("forever"),
  z.string().regex(/^\d+(ms|s|m|h|d)$/, "a duration such as 90m, 12h or 7d, or forever"),
]);

const TopicEntry = z.strictObject({
  schema: z.string(),
  key: z.string().optional(),
  partitions: z.number().int().min(1).max(10_000),
  retention: Duration.default("7d"),
  cleanup: z.enum(["delete", "compact", "compact,delete"]).default("delete"),
  /** Replication factor of this topic in every environment (instead of the environment's). */
  replicationFactor: z.number().int().min(1).optional(),
  config: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  description: z.string().min(1, "say what the topic carries and who reads it"),
});

function catalogSchema(registry: SchemaRegistry) {
  return z
    .strictObject({
      environments: z
        .record(
          z.string().regex(/^[a-z][a-z0-9-]*$/, "an environment name such as local, cluster or production"),
          z.strictObject({
            replicationFactor: z.number().int().min(1),
            minInsyncReplicas: z.number().int().min(1).optional(),
          }),
        )
        .default({ local: { replicationFactor: 1 } }),
      topics: z.record(z.string().regex(/^[a-zA-Z0-9._-]{1,249}$/, "a Kafka topic name"), TopicEntry),
    })
    .superRefine((cat, ctx) => {
      for (const [name, env] of Object.entries(cat.environments)) {
        if (env.minInsyncReplicas !== undefined && env.minInsyncReplicas > env.replicationFactor) {
          ctx.addIssue({
            code: "custom",
            path: ["environments", name, "minInsyncReplicas"],
            message: `${env.minInsyncReplicas} is more than the replication factor ${env.replicationFactor}: no write could be acknowledged`,
          });
        }
      }
      for (const [topic, entry] of Object.entries(cat.topics)) {
        if (!registry.names().includes(entry.schema)) {
          ctx.addIssue({
            code: "custom",
            path: ["topics", topic, "schema"],
            message: `no schema ${entry.schema} in schemas/avro (known: ${registry.names().join(", ")})`,
          });
          continue;
        }
        if (entry.key !== undefined) {
          const problem = keyProblem(registry.current(entry.schema).schema, entry.key);
          if (problem) ctx.addIssue({ code: "custom", path: ["topics", topic, "key"], message: problem });
        }
        if (entry.cleanup.startsWith("compact") && entry.key === undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["topics", topic, "cleanup"],
            message: "a compacted topic needs a key",
          });
        }
      }
    });
}

export interface TopicSpec {
  name: string;
  schema: SchemaName;
  /** Dotted path of the key field, if messages are keyed. */
  key?: string;
  partitions: number;
  replicationFactor: number;
  /** min.insync.replicas of the topic, when the environment sets it (else the broker's default). */
  minInsyncReplicas?: number;
  /** -1 for forever. */
  retentionMs: number;
  cleanup: "delete" | "compact" | "compact,delete";
  config: Record<string, string>;
  description: string;
}

export interface TopicCatalog {
  file: string;
  /** The environment whose replication the specs carry. */
  environment: string;
  topics: TopicSpec[];
  topic(name: string): TopicSpec;
}

/** The environment a catalog is loaded for when none is named: WEIR_TOPICS_ENV, else `local`. */
export const DEFAULT_TOPICS_ENV = "local";

export function loadTopicCatalog(
  file = CATALOG_FILE,
  env: NodeJS.ProcessEnv = process.env,
  registry: SchemaRegistry = schemaRegistry(),
  environment: string = env.WEIR_TOPICS_ENV || DEFAULT_TOPICS_ENV,
): TopicCatalog {
  const { value, locate } = parseYamlConfig(file, readFileSync(file, "utf8"));
  const parsed = validateConfig(file, catalogSchema(registry), value, locate);
  const replication = parsed.environments[environment];
  if (replication === undefined) {
    throw new ConfigError(file, [
      {
        line: 0,
        column: 0,
        field: "environments",
        message: `no environment ${environment} (from ${env.WEIR_TOPICS_ENV ? "WEIR_TOPICS_ENV" : "--env"}); the catalog has ${Object.keys(parsed.environments).join(", ")}`,
      },
    ]);
  }
  const rfOverride = env.WEIR_TOPIC_REPLICATION_FACTOR;
  if (rfOverride !== undefined && !/^[1-9]\d*$/.test(rfOverride)) {
    throw new ConfigError(file, [
      {
        line: 0,
        column: 0,
        field: `environments.${environment}.replicationFactor`,
        message: `WEIR_TOPIC_REPLICATION_FACTOR=${rfOverride} is not a positive integer`,
      },
    ]);
  }
  const topics = Object.entries(parsed.topics).map(([name, t]): TopicSpec => {
    const replicationFactor = rfOverride ? Number(rfOverride) : (t.replicationFactor ?? replication.replicationFactor);
    const minIsr = replication.minInsyncReplicas;
    return {
      name,
      schema: t.schema as SchemaName,
      ...(t.key !== undefined ? { key: t.key } : {}),
      partitions: t.partitions,
      replicationFactor,
      ...(minIsr !== undefined ? { minInsyncReplicas: Math.min(minIsr, replicationFactor) } : {}),
      retentionMs: durationMs(t.retention),
      cleanup: t.cleanup,
      config: Object.fromEntries(Object.entries(t.config).map(([k, v]) => [k, String(v)])),
      description: t.description,
    };
  });
  return {
    file,
    environment,
    topics,
    topic(name) {
      const t = topics.find((x) => x.name === name);
      if (!t) throw new Error(`topic ${name} is not in the catalog ${file}`);
      return t;
    },
  };
}

/** The topic configs the catalog decides, as the broker names them. */
export function topicConfigs(spec: TopicSpec): Record<string, string> {
  return {
    "cleanup.policy": spec.cleanup,
    "retention.ms": String(spec.retentionMs),
    ...(spec.minInsyncReplicas !== undefined ? { "min.insync.replicas": String(spec.minInsyncReplicas) } : {}),
    ...spec.config,
  };
}

export function durationMs(text: string): number {
  if (text === "forever") return -1;
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (!m) throw new Error(`not a duration: ${text}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as "ms" | "s" | "m" | "h" | "d"];
  return Number(m[1]) * unit;
}

/** Reads the key of a record: the value at the topic's key path, as a string; null when unkeyed. */
export function keyReader(spec: TopicSpec): (record: unknown) => string | null {
  if (spec.key === undefined) return () => null;
  const path = spec.key.split(".");
  return (record) => {
    let v: unknown = record;
    for (const p of path) v = (v as Record<string, unknown> | null | undefined)?.[p];
    return v === null || v === undefined ? null : String(v);
  };
}

// A key must name a scalar (string, number, boolean, enum) field that can never be null, or messages
// would silently lose their partition affinity.
function keyProblem(schema: unknown, key: string): string | undefined {
  let node = schema as { fields?: { name: string; type: unknown }[] };
  const path = key.split(".");
  for (const [i, part] of path.entries()) {
    const field = node.fields?.find((f) => f.name === part);
    if (!field) return `${part} is not a field of ${path.slice(0, i).join(".") || "the record"}`;
    const t = field.type;
    if (Array.isArray(t))
      return `${path.slice(0, i + 1).join(".")} may be null (${JSON.stringify(t)}): a key must always be present`;
    if (i < path.length - 1) {
      if (typeof t !== "object" || (t as { type?: string }).type !== "record") return `${part} is not a record`;
      node = t as typeof node;
    } else {
      const typeName = typeof t === "string" ? t : (t as { type?: string }).type;
      if (!["string", "int", "long", "boolean", "enum"].includes(typeName ?? ""))
        return `${key} is a ${typeName}: a key must be a string, number, boolean or enum`;
    }
  }
  return undefined;
}
