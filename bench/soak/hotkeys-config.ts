// The repository's hot-keys config (pipelines/hotkeys/hotkeys.yaml) moved onto a run's own topics,
// consumer group and Redis keys, so that a soak shares nothing with the main job on the same stack.
import { readFileSync } from "node:fs";
import { parse, stringify } from "yaml";
import { DEFAULT_HOTKEYS_CONFIG_FILE } from "../../pipelines/hotkeys/config.ts";

/** The repository's hot-keys config on the run's topics, group and Redis key prefix. */
export function hotKeysConfigCopy(appId: string, prefix: string, redisPrefix: string): string {
  const c = parse(readFileSync(DEFAULT_HOTKEYS_CONFIG_FILE, "utf8")) as {
    appId: string;
    schemas?: Record<string, string>;
    topics: Record<string, string>;
    dimensions: Record<string, { from: Record<string, unknown> }>;
    counters: Record<string, { from: string; prefix?: string }>;
  };
  // Topics outside the catalog need their schemas named: the catalog's, under the run's names.
  const catalog = parse(readFileSync(new URL("../../schemas/topics.yaml", import.meta.url), "utf8")) as {
    topics: Record<string, { schema: string }>;
  };
  const inputs = new Set([
    ...Object.values(c.dimensions).flatMap((d) => Object.keys(d.from)),
    ...Object.values(c.counters).map((k) => k.from),
  ]);
  c.schemas = Object.fromEntries(
    [...inputs].map((t) => [`${prefix}${t}`, catalog.topics[t]?.schema ?? "unknown (not in the catalog)"]),
  );
  c.appId = appId;
  for (const k of Object.keys(c.topics)) c.topics[k] = `${prefix}${c.topics[k]}`;
  for (const d of Object.values(c.dimensions))
    d.from = Object.fromEntries(Object.entries(d.from).map(([t, f]) => [`${prefix}${t}`, f]));
  for (const [name, counter] of Object.entries(c.counters)) {
    counter.from = `${prefix}${counter.from}`;
    counter.prefix = `${redisPrefix}${counter.prefix ?? `weir:${name}:`}`;
  }
  return `# written by bench/soak/soak.ts\n${stringify(c)}`;
}
