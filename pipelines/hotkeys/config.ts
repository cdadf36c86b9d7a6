// The hot-key pipeline's configuration: a YAML file (pipelines/hotkeys/hotkeys.yaml is the default),
// validated here; an error names the file, line and field.
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { loadYamlConfig } from "../../schemas/config/yaml-config.ts";
import { ms } from "../../stream/types.ts";

export const DEFAULT_HOTKEYS_CONFIG_FILE = fileURLToPath(new URL("hotkeys.yaml", import.meta.url));

const Duration = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx) => {
  try {
    return ms(v);
  } catch {
    ctx.addIssue({ code: "custom", message: "a duration such as 500ms, 10s, 5m, 1h" });
    return z.NEVER;
  }
});

const TopicName = z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, "a Kafka topic name: letters, digits, '.', '_', '-'");
/** A dimension's name travels in URLs (GET /hotkeys/<dimension>) and as a message key. */
export const DimensionName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "letters, digits, '_', '.', '-' (1 to 64)");
const FieldPath = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/, "a field, or a dotted path");
const Fields = z.union([FieldPath, z.array(FieldPath).min(1).max(4)]);
const Where = z.record(FieldPath, z.union([z.string(), z.number(), z.boolean()])).default({});
const Sketch = z.strictObject({
  width: z
    .number()
    .int()
    .min(16)
    .max(1 << 20),
  depth: z.number().int().min(1).max(4).default(2),
});

const Dimension = z.strictObject({
  /** topic -> the field (or fields) whose value is the key. */
  from: z.record(TopicName, Fields).refine((m) => Object.keys(m).length > 0, "name at least one topic"),
  where: Where,
  /** This dimension's sketch size, instead of the pipeline's. */
  sketch: Sketch.optional(),
});

const Counter = z.strictObject({
  from: TopicName,
  where: Where,
  /** The field naming the counter (a streamer's uid, a room id). */
  key: Fields,
  /** The field holding the increment; absent: each record adds 1. */
  amount: FieldPath.optional(),
  period: Duration.refine((v) => v >= 50 && v <= 3_600_000, "from 50ms to 1h").default(1000),
  grace: Duration.default(2000),
  /** Prefix of the counters' Redis keys. */
  prefix: z.string().min(1).max(200),
});

export const HotKeysConfigSchema = z
  .strictObject({
    appId: z
      .string()
      .regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' and '-'")
      .default("weir-hotkeys"),
    topics: z
      .strictObject({
        output: TopicName.default("hotkeys.top"),
        marks: TopicName.default("hotkeys.marks"),
        dlq: TopicName.default("dlq.hotkeys"),
      })
      .prefault({}),
    commitInterval: Duration.default(200),
    /**
     * Where input partitions the app has never committed start: `latest` (a list is about the last
     * minute: a new deployment skips the backlog) or `earliest` (the runtime's default: the whole
     * retention). Topics a counter reads always start at the earliest: no increment is skipped.
     */
    startAt: z.enum(["latest", "earliest"]).default("latest"),
    k: z.number().int().min(1).max(10_000).default(100),
    partialK: z.number().int().min(1).max(20_000).optional(),
    slide: Duration.refine((v) => v >= 100, "at least 100ms").default(1000),
    windows: z.array(Duration).min(1).max(8).default([10_000, 60_000]),
    sketch: Sketch.prefault({ width: 1024 }),
    /** The schema of each input topic that is not in the topic catalog (schemas/topics.yaml). */
    schemas: z
      .record(TopicName, z.string().regex(/^[A-Za-z][A-Za-z0-9]*$/, "a schema name such as AccessLog"))
      .default({}),
    dimensions: z.record(DimensionName, Dimension).default({}),
    counters: z.record(DimensionName, Counter).default({}),
  })
  .superRefine((c, ctx) => {
    for (const [i, w] of c.windows.entries()) {
      if (w <= 0 || w % c.slide !== 0) {
        ctx.addIssue({ code: "custom", path: ["windows", i], message: `not a whole number of slides (${c.slide} ms)` });
      }
      if (w / c.slide > 3599) ctx.addIssue({ code: "custom", path: ["windows", i], message: "more than 3599 slides" });
    }
    if (c.partialK !== undefined && c.partialK < c.k) {
      ctx.addIssue({ code: "custom", path: ["partialK"], message: `at least k (${c.k})` });
    }
    if (Object.keys(c.dimensions).length === 0 && Object.keys(c.counters).length === 0) {
      ctx.addIssue({ code: "custom", path: ["dimensions"], message: "configure a dimension or a counter" });
    }
  });

export type HotKeysConfig = z.output<typeof HotKeysConfigSchema>;
export type HotKeysConfigInput = z.input<typeof HotKeysConfigSchema>;

export function loadHotKeysConfig(file = DEFAULT_HOTKEYS_CONFIG_FILE): HotKeysConfig {
  return loadYamlConfig(file, HotKeysConfigSchema);
}

export function parseHotKeysConfig(input: HotKeysConfigInput): HotKeysConfig {
  return HotKeysConfigSchema.parse(input);
}
