// The logs pipeline's configuration: a YAML file (pipelines/logs/logs.yaml is the default) validated
// here, with a few WEIR_LOGS_* variables on top so that one file serves several deployments (and
// tests get topics, indices and a database of their own). An error names the file, line and field,
// or the variable the value came from.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import cron from "node-cron";
import { z } from "zod";
import {
  ConfigError,
  isPlainObject,
  parseYamlConfig,
  setIn,
  validateConfig,
} from "../../schemas/config/yaml-config.ts";
import { prefixProblem } from "../../sinks/elasticsearch/index-name.ts";
import { ms } from "../../stream/types.ts";
import { PiiConfigSchema } from "./pii/config.ts";
import { SearchConfigSchema } from "./search/limits.ts";

export const DEFAULT_LOGS_CONFIG_FILE = fileURLToPath(new URL("logs.yaml", import.meta.url));

const DurationText = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx) => {
  try {
    return ms(v);
  } catch {
    ctx.addIssue({ code: "custom", message: "a duration such as 500ms, 10s, 5m, 1h, 7d" });
    return z.NEVER;
  }
});

const Days = DurationText.refine((v) => v >= 86_400_000 && v % 86_400_000 === 0, {
  message: "whole days, at least 1d: retention drops whole daily indices and partitions",
});

const TopicName = z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, "a Kafka topic name: letters, digits, '.', '_', '-'");
const SqlName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, "letters, digits and '_', not starting with a digit");

const RETRIES_MAX = "a number of retries (0 or more), or unbounded";
/** A number of retries, or `unbounded`; a variable's text (`"5"`) is read as its number. */
const RetriesMax = z.preprocess(
  (v) => (typeof v === "string" && /^\s*\d+\s*$/.test(v) ? Number(v) : v),
  z.union([z.number().int(RETRIES_MAX).min(0, RETRIES_MAX), z.literal("unbounded")], { error: RETRIES_MAX }),
);

const Retries = z
  .strictObject({
    /**
     * Retries of a failing request (the store down, restarting or overloaded) before the checkpoint
     * fails and the worker stops, loudly and with the offsets uncommitted. Unbounded by default: the
     * worker waits an outage of any length out, the backoff doubling up to maxDelay.
     */
    max: RetriesMax.optional(),
    initialDelay: DurationText.default(200),
    maxDelay: DurationText.default(10_000),
  })
  .transform(({ max, ...delays }): { max?: number; initialDelay: number; maxDelay: number } =>
    max === undefined || max === "unbounded" ? delays : { max, ...delays },
  );

export const LogsConfigSchema = z.strictObject({
  /** Consumer group of the workers (several processes of one pipeline share the partitions). */
  appId: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' and '-'")
    .default("weir-logs"),
  topics: z
    .strictObject({
      app: TopicName.default("logs.app"),
      access: TopicName.default("logs.access"),
      /** Undecodable records and documents a store refused, each with its reason. */
      dlq: TopicName.default("dlq.logs"),
    })
    .prefault({}),
  stream: z
    .strictObject({
      /**
       * How often offsets are committed, once both stores have acknowledged every line before them. The
       * stores get lines sooner (their flush intervals); a checkpoint stops reading while it waits for
       * them, so committing less often makes lines searchable sooner, at the cost of a longer replay
       * after a crash (which the stores absorb).
       */
      commitInterval: DurationText.default(5000),
    })
    .prefault({}),
  elasticsearch: z
    .strictObject({
      /** Indices are `<indexPrefix>-<service>-YYYY.MM.DD`, the template `weir-<indexPrefix>`. */
      indexPrefix: z
        .string()
        .default("logs")
        .superRefine((p, ctx) => {
          const problem = prefixProblem(p);
          if (problem) ctx.addIssue({ code: "custom", message: `cannot start an index name: ${problem}` });
        }),
      /** A day's index is deleted this long after the day ends. */
      retention: Days.default(7 * 86_400_000),
      shards: z.number().int().min(1).max(64).default(1),
      /** 0 on the one-node local stack; 1 on a cluster. */
      replicas: z.number().int().min(0).max(8).default(0),
      /** A bulk request is sent when it holds this many bytes ... */
      flushBytes: z
        .number()
        .int()
        .min(1024)
        .default(5 * 1024 * 1024),
      /** ... or when its first document is this old: with the 1 s refresh, what makes a line searchable fast. */
      flushInterval: DurationText.default(250),
      concurrency: z.number().int().min(1).max(32).default(2),
      retries: Retries.prefault({}),
    })
    .prefault({}),
  clickhouse: z
    .strictObject({
      database: SqlName.default("weir"),
      table: SqlName.default("logs"),
      /** A day's partition is dropped this long after the day ends. */
      retention: Days.default(30 * 86_400_000),
      batchSize: z.number().int().min(1).max(1_048_576).default(20_000),
      flushInterval: DurationText.default(1000),
      retries: Retries.prefault({}),
    })
    .prefault({}),
  retention: z
    .strictObject({
      /** When old indices and partitions are deleted (node-cron, UTC). */
      cron: z
        .string()
        .refine((c) => cron.validate(c), 'a cron expression such as "23 * * * *" (minute hour day month weekday)')
        .default("23 * * * *"),
      /** Log what would be deleted, delete nothing. */
      dryRun: z.boolean().default(false),
    })
    .prefault({}),
  /** What is masked and where (docs/pii.md). */
  pii: PiiConfigSchema.prefault({}),
  /** What a search may ask of the stores, and a token of the API (docs/logs-search.md, "Limits"). */
  search: SearchConfigSchema.prefault({}),
});

export type LogsConfig = z.output<typeof LogsConfigSchema>;

/** Environment variable -> config path: what differs between deployments of one file. */
export const LOGS_ENV: Record<string, readonly string[]> = {
  WEIR_LOGS_APP_ID: ["appId"],
  WEIR_LOGS_APP_TOPIC: ["topics", "app"],
  WEIR_LOGS_ACCESS_TOPIC: ["topics", "access"],
  WEIR_LOGS_DLQ_TOPIC: ["topics", "dlq"],
  WEIR_LOGS_INDEX_PREFIX: ["elasticsearch", "indexPrefix"],
  WEIR_LOGS_DATABASE: ["clickhouse", "database"],
  WEIR_LOGS_RETENTION_CRON: ["retention", "cron"],
  WEIR_LOGS_ES_RETRIES_MAX: ["elasticsearch", "retries", "max"],
  WEIR_LOGS_CLICKHOUSE_RETRIES_MAX: ["clickhouse", "retries", "max"],
};

/** Reads the file (the default one when none is named) and applies the WEIR_LOGS_* variables. */
export function loadLogsConfig(file = DEFAULT_LOGS_CONFIG_FILE, env: NodeJS.ProcessEnv = {}): LogsConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(file, [{ line: 0, column: 0, field: "", message: `cannot read: ${(e as Error).message}` }]);
  }
  return parseLogsConfig(text, file, env);
}

export function parseLogsConfig(text: string, file = "logs.yaml", env: NodeJS.ProcessEnv = {}): LogsConfig {
  const { value, locate } = parseYamlConfig(file, text);
  if (!isPlainObject(value)) {
    throw new ConfigError(file, [{ line: 1, column: 1, field: "", message: "expected a mapping of settings" }]);
  }
  const raw = structuredClone(value);
  const fromEnv = new Map<string, string>();
  for (const [name, path] of Object.entries(LOGS_ENV)) {
    const v = env[name];
    if (v === undefined || v === "") continue;
    setIn(raw, path, v);
    fromEnv.set(path.join("."), name);
  }
  return validateConfig(file, LogsConfigSchema, raw, locate, (path) => fromEnv.get(path.join(".")));
}
