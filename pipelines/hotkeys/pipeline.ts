// `weir run hotkeys`: the hot-key topology (topology.ts) with a Redis counter sink per counter.
import { RedisCounterSink } from "../../sinks/redis/sink.ts";
import type { Pipeline, PipelineContext } from "../types.ts";
import { DEFAULT_HOTKEYS_CONFIG_FILE, loadHotKeysConfig } from "./config.ts";
import { buildHotKeysApp } from "./topology.ts";

export function hotKeysPipeline(ctx: PipelineContext): Pipeline {
  const config = loadHotKeysConfig(ctx.config ?? DEFAULT_HOTKEYS_CONFIG_FILE);
  const app = buildHotKeysApp({
    config,
    counterSink: (name) => {
      const c = config.counters[name];
      return new RedisCounterSink({
        name: `redis-${name}`,
        url: ctx.endpoints.redisUrl,
        prefix: c?.prefix ?? `weir:${name}:`,
        logger: ctx.logger,
      });
    },
  });
  return { app };
}
