// `weir run hotkeys`: the hot-key topology (topology.ts) with a Redis counter sink per counter.
import { RedisCounterSink } from "../../sinks/redis/sink.ts";
import type { Pipeline, PipelineContext } from "../types.ts";
import { DEFAULT_HOTKEYS_CONFIG_FILE, loadHotKeysConfig } from "./config.ts";
import { startNewPartitionsAtEnd } from "./start-offsets.ts";
import { buildHotKeysApp } from "./topology.ts";

export async function hotKeysPipeline(ctx: PipelineContext): Promise<Pipeline> {
  const config = loadHotKeysConfig(ctx.config ?? DEFAULT_HOTKEYS_CONFIG_FILE);
  const app = buildHotKeysApp({
    config,
    counterSink: (name) => {
      const c = config.counters[name];
      return new RedisCounterSink({
        name: `redis-${name}`,
        url: ctx.endpoints.redisUrl,
        ...(ctx.endpoints.redisPassword !== undefined ? { password: ctx.endpoints.redisPassword } : {}),
        prefix: c?.prefix ?? `weir:${name}:`,
        logger: ctx.logger,
      });
    },
  });
  if (config.startAt === "latest") {
    // Only topics no counter reads: a counter must see every increment, so its topics start at the
    // beginning of their retention (the runtime's default), and a topic both read waits for it.
    const counted = new Set(Object.values(config.counters).map((c) => c.from));
    const inputs = app.graph.nodes.flatMap((n) =>
      n.kind === "source" && !n.internal && !counted.has(n.topic) ? [n.topic] : [],
    );
    const moved = await startNewPartitionsAtEnd(
      ctx.endpoints.kafkaBrokers,
      config.appId,
      inputs,
      ctx.endpoints.kafkaSecurity,
    );
    if (moved > 0) ctx.logger.info({ partitions: moved }, "a new deployment: input partitions start at their end");
  }
  return { app };
}
