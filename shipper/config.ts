// The shipper's YAML configuration (`weir ship --config ship.yaml`), validated at start and by
// `weir ship --check`: every error names the file, line and field. docs/shipper.md documents it.
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { z } from "zod";
import { loadTopicCatalog, type TopicCatalog, type TopicSpec } from "../schemas/catalog.ts";
import { parseYamlConfig, validateConfig } from "../schemas/config/yaml-config.ts";
import { SCHEMA_NAMES } from "../schemas/types.generated.ts";
import {
  DEFAULT_DLQ_TOPIC,
  enrichConfigShape,
  formatConfigShape,
  MultilineConfig,
  refineRoute,
  routeConfigShape,
} from "./formats/index.ts";
import { KafkaSinkConfigSchema } from "./sinks/kafka-sink.ts";
import { FileSourceConfigSchema } from "./sources/file/config.ts";
import { StdinSourceConfigSchema } from "./sources/stdin/stdin-source.ts";

const UNITS: Record<string, number> = { B: 1, KB: 1e3, MB: 1e6, GB: 1e9, KIB: 1024, MIB: 1024 ** 2, GIB: 1024 ** 3 };

/** A size in bytes: a number, or text with a unit (`256MiB`, `64 KiB`, `1GB`). */
export const Bytes = z.preprocess((v) => {
  if (typeof v !== "string") return v;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  const unit = UNITS[(m?.[2] || "B").toUpperCase()];
  return m && unit ? Math.round(Number(m[1]) * unit) : v;
}, z.number({ error: "a size in bytes: a number, or text such as 256MiB" }).int().positive());

/** What turns lines into events; every source has it. */
const eventShape = {
  ...formatConfigShape,
  ...routeConfigShape,
  ...enrichConfigShape,
  /** Merge continuation lines (stack traces) into the event they belong to. */
  multiline: MultilineConfig.optional(),
};

const FileShipSource = FileSourceConfigSchema.extend(eventShape).superRefine(refineRoute);
const StdinShipSource = StdinSourceConfigSchema.extend(eventShape).superRefine(refineRoute);

const ShipSource = z.preprocess(
  (v) => (v && typeof v === "object" && !("type" in v) ? { ...v, type: "file" } : v),
  z.discriminatedUnion("type", [FileShipSource, StdinShipSource]),
);
export type ShipSourceConfig = z.output<typeof FileShipSource> | z.output<typeof StdinShipSource>;
export type FileShipSourceConfig = z.output<typeof FileShipSource>;
export type StdinShipSourceConfig = z.output<typeof StdinShipSource>;

export const ShipConfigSchema = z
  .strictObject({
    /** Checkpoints, the disk channel and the lock live here. One shipper per folder. */
    dataDir: z.string().min(1).default("weir-ship"),
    /** The host name put on events and dead letters that name none. */
    host: z.string().min(1).default(hostname()),
    /** Topics that are not in schemas/topics.yaml (a service's own topic), with the schema of their records. */
    topics: z
      .record(
        z.string().regex(/^[a-zA-Z0-9._-]{1,249}$/),
        z.strictObject({
          schema: z.enum(SCHEMA_NAMES),
          /** Dotted path of the key field; none: unkeyed. */
          key: z.string().min(1).optional(),
        }),
      )
      .default({}),
    sources: z.array(ShipSource).min(1, "at least one source"),
    channel: z
      .strictObject({
        /** Bytes the channel's files hold at most (acknowledged records not yet deleted included); sources pause when it is full. */
        maxBytes: Bytes.default(256 * 1024 ** 2),
        /** At most a quarter of maxBytes (a larger value is lowered). */
        segmentBytes: Bytes.default(64 * 1024 ** 2),
        /** always: fsync before a line counts as taken (survives power loss); interval: every fsyncIntervalMs; never: the page cache (survives a crash of the shipper, not of the machine). */
        fsync: z.enum(["always", "interval", "never"]).default("interval"),
        fsyncIntervalMs: z.number().int().positive().default(1000),
      })
      .prefault({}),
    kafka: KafkaSinkConfigSchema.prefault({}),
    dlq: z.strictObject({ topic: z.string().min(1).default(DEFAULT_DLQ_TOPIC) }).prefault({}),
    metrics: z
      .strictObject({
        /** 0: any free port (logged at start). */
        port: z.number().int().min(0).max(65535).default(9464),
        host: z.string().default("127.0.0.1"),
      })
      .prefault({}),
    checkpoints: z
      .strictObject({
        /** How often moved checkpoints are written (and always on shutdown). */
        intervalMs: z.number().int().positive().default(1000),
        /** Checkpoints of files not seen for this long are forgotten. */
        forgetAfterMs: z
          .number()
          .int()
          .positive()
          .default(7 * 24 * 3_600_000),
      })
      .prefault({}),
    shutdown: z
      .strictObject({
        /** On SIGTERM, how long to wait for Kafka to take what is in the channel; the rest stays on disk for the next start. */
        drainTimeoutMs: z.number().int().min(0).default(10_000),
      })
      .prefault({}),
  })
  .superRefine((c, ctx) => {
    const names = new Set<string>();
    c.sources.forEach((s, i) => {
      if (names.has(s.name))
        ctx.addIssue({ code: "custom", path: ["sources", i, "name"], message: `two sources are named ${s.name}` });
      names.add(s.name);
    });
  });
export type ShipConfig = z.output<typeof ShipConfigSchema>;
export type ShipConfigInput = z.input<typeof ShipConfigSchema>;

/** Reads and validates a ship config file. Relative paths in it are taken from the working directory. */
export function loadShipConfig(file: string): ShipConfig {
  const { value, locate } = parseYamlConfig(file, readFileSync(file, "utf8"));
  return validateConfig(file, ShipConfigSchema, value, locate);
}

/** Validates a config built from command-line options (the quick form). */
export function parseShipConfig(value: unknown, origin = "the command line"): ShipConfig {
  return validateConfig(origin, ShipConfigSchema, value);
}

/** The topic catalog, with the config's own topics added. */
export function shipCatalog(config: ShipConfig): TopicCatalog {
  const base = loadTopicCatalog();
  const extra = Object.entries(config.topics).map(
    ([name, t]): TopicSpec => ({
      name,
      schema: t.schema,
      ...(t.key !== undefined ? { key: t.key } : {}),
      partitions: 0,
      replicationFactor: 0,
      retentionMs: -1,
      cleanup: "delete",
      config: {},
      description: "declared in the ship config",
    }),
  );
  for (const t of extra) {
    const known = base.topics.find((b) => b.name === t.name);
    if (known && known.schema !== t.schema) {
      throw new Error(`topics.${t.name}: the catalog (${base.file}) says it holds ${known.schema}, not ${t.schema}`);
    }
  }
  const topics = [...extra, ...base.topics.filter((b) => !config.topics[b.name])];
  return {
    file: base.file,
    environment: base.environment,
    topics,
    topic(name) {
      const t = topics.find((x) => x.name === name);
      if (!t) throw new Error(`topic ${name} is neither in ${base.file} nor under topics: in the ship config`);
      return t;
    },
  };
}

export function resolveDataDir(config: ShipConfig): string {
  return resolve(config.dataDir);
}
