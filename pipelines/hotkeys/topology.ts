// The hot-key topology: every topic a dimension or a counter names is read once; each record yields
// its (dimension, key) pairs for the stream runtime's topK (HeavyKeeper per task, lists merged per
// dimension, stream/windows/top-k.ts), published as HotKeys records every slide; and each counter is
// a filter, a re-key by the counter, the runtime's coalesce (one delta per counter and period) and
// the Redis counter sink.
import type { HotKeys, SchemaName } from "../../schemas/types.generated.ts";
import { type KStream, StreamApp } from "../../stream/dsl/app.ts";
import type { CoalescedDelta } from "../../stream/operators/coalesce.ts";
import type { Sink } from "../../stream/sink.ts";
import type { TopKItem, TopKResult } from "../../stream/windows/top-k.ts";
import type { HotKeysConfig } from "./config.ts";

/** Keys longer than this count for nothing (an endpoint is a route template, a room an id). */
export const MAX_KEY_LENGTH = 256;

type Fields = string | string[];

/** Reads a dotted path. */
function read(value: unknown, path: string): unknown {
  let v = value;
  for (const part of path.split(".")) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/**
 * A record's key for a dimension or counter: a number stays a number (the sketch's fast path), a
 * string a string, several fields are joined by a space; null when a field is missing or not a scalar.
 */
export function keyOf(value: unknown, fields: Fields): number | string | null {
  if (typeof fields === "string") {
    const v = read(value, fields);
    if (typeof v === "number") return Number.isFinite(v) ? v : null;
    if (typeof v === "string") return v.length > 0 && v.length <= MAX_KEY_LENGTH ? v : null;
    if (typeof v === "boolean") return String(v);
    return null;
  }
  const parts: string[] = [];
  for (const f of fields) {
    const v = read(value, f);
    if (typeof v !== "number" && typeof v !== "string" && typeof v !== "boolean") return null;
    parts.push(String(v));
  }
  const s = parts.join(" ");
  return s.length <= MAX_KEY_LENGTH ? s : null;
}

function matcher(where: Record<string, string | number | boolean>): (value: unknown) => boolean {
  const entries = Object.entries(where);
  if (entries.length === 0) return () => true;
  return (value) => entries.every(([path, want]) => read(value, path) === want);
}

/** A merged list as the HotKeys record of hotkeys.top. */
export function hotKeysRecord(r: TopKResult, k: number, now = Date.now()): HotKeys {
  return {
    windowStart: r.start,
    windowMs: r.window,
    dimension: r.dimension,
    k,
    total: r.total,
    keys: r.keys.map((e) => ({ key: String(e.key), count: e.count, share: r.total > 0 ? e.count / r.total : 0 })),
    emittedAt: now,
  };
}

export interface HotKeysAppOptions {
  config: HotKeysConfig;
  /** The sink of each counter (by name): the Redis counter sink in the pipeline, a collecting sink in tests. */
  counterSink: (name: string) => Sink<CoalescedDelta>;
}

export function buildHotKeysApp({ config, counterSink }: HotKeysAppOptions): StreamApp {
  const app = new StreamApp({
    appId: config.appId,
    dlqTopic: config.topics.dlq,
    commitInterval: config.commitInterval,
  });
  const topics = new Set<string>();
  for (const d of Object.values(config.dimensions)) for (const t of Object.keys(d.from)) topics.add(t);
  for (const c of Object.values(config.counters)) topics.add(c.from);
  const streams = new Map<string, KStream<unknown>>();
  for (const topic of topics) {
    const schema = config.schemas[topic] as SchemaName | undefined;
    streams.set(topic, app.stream(topic, schema ? { schema } : {}));
  }

  const itemStreams: Array<KStream<TopKItem>> = [];
  for (const topic of topics) {
    const dims = Object.entries(config.dimensions)
      .filter(([, d]) => d.from[topic] !== undefined)
      .map(([name, d]) => ({ name, fields: d.from[topic] as Fields, where: matcher(d.where) }));
    if (dims.length === 0) continue;
    const items = (streams.get(topic) as KStream<unknown>).flatMap((value) => {
      const out: TopKItem[] = [];
      for (const d of dims) {
        if (!d.where(value)) continue;
        const key = keyOf(value, d.fields);
        if (key !== null) out.push({ dimension: d.name, key });
      }
      return out;
    });
    itemStreams.push(items);
  }
  if (itemStreams.length > 0) {
    let all = itemStreams[0] as KStream<TopKItem>;
    for (const s of itemStreams.slice(1)) all = all.merge(s);
    const k = config.k;
    all
      .topK((item) => item, {
        name: "top",
        windows: config.windows,
        slide: config.slide,
        k,
        partialK: config.partialK ?? 2 * k,
        sketch: (dimension) => config.dimensions[dimension]?.sketch ?? config.sketch,
        maxDimensions: Object.keys(config.dimensions).length,
      })
      .map((r) => hotKeysRecord(r, k))
      .to(config.topics.output, { schema: "HotKeys" });
  }

  for (const [name, c] of Object.entries(config.counters)) {
    const where = matcher(c.where);
    const amountField = c.amount;
    (streams.get(c.from) as KStream<unknown>)
      .filter((v) => where(v) && keyOf(v, c.key) !== null)
      .keyBy((v) => String(keyOf(v, c.key)), `counter-${name}`)
      .coalesce(
        (v) => {
          if (amountField === undefined) return 1;
          const a = read(v, amountField);
          if (typeof a !== "number") throw new Error(`counter ${name}: ${amountField} is not a number`);
          return a;
        },
        { name, period: c.period, grace: c.grace },
      )
      .to(counterSink(name));
  }
  return app;
}
