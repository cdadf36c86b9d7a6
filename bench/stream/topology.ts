// The benchmark's topology, the same work as bench/peers/kafka-streams: AccessLog records keyed by
// service|endpoint, per key over 1 s tumbling event-time windows (no grace): count, sum of
// latencyUs and a DDSketch (1% relative accuracy) of latencyUs; final results only, to a topic.
// Topics come from the environment (bench/stream/bench.ts sets them).
import { DDSketch } from "@datadog/sketches-js";
import { StreamApp } from "../../stream/dsl/app.ts";
import { json } from "../../stream/types.ts";
import { Windows } from "../../stream/windows/spec.ts";

interface Acc {
  count: number;
  sum: number;
  sketch: DDSketch;
}

export default function createApp(): StreamApp {
  const env = process.env;
  const app = new StreamApp({
    appId: env.WEIR_BENCH_APP ?? "bench-stream",
    dlqTopic: env.WEIR_BENCH_DLQ ?? "bench-stream-dlq",
    commitInterval: 1000,
  });
  app
    .stream(env.WEIR_BENCH_IN ?? "bench.stream.in", { schema: "AccessLog", key: "service|endpoint" })
    .window(Windows.tumbling("1s"))
    .aggregate<Acc, { count: number; sum: number; p50: number; p99: number }>(
      {
        init: () => ({ count: 0, sum: 0, sketch: new DDSketch({ relativeAccuracy: 0.01 }) }),
        add: (a, r) => {
          a.count++;
          a.sum += r.latencyUs;
          a.sketch.accept(r.latencyUs);
          return a;
        },
        result: (a) => ({
          count: a.count,
          sum: a.sum,
          p50: a.sketch.getValueAtQuantile(0.5),
          p99: a.sketch.getValueAtQuantile(0.99),
        }),
        serde: {
          encode: (a) => {
            const sketch = Buffer.from(a.sketch.toProto());
            const head = Buffer.alloc(16);
            head.writeDoubleBE(a.count, 0);
            head.writeDoubleBE(a.sum, 8);
            return Buffer.concat([head, sketch]);
          },
          decode: (b) => ({
            count: b.readDoubleBE(0),
            sum: b.readDoubleBE(8),
            sketch: DDSketch.fromProto(b.subarray(16)) as DDSketch,
          }),
        },
      },
      { name: "windows" },
    )
    .to(env.WEIR_BENCH_OUT ?? "bench.stream.out", { serde: json() });
  return app;
}
