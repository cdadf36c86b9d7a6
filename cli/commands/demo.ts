import { resolve } from "node:path";
import { createClient } from "@clickhouse/client";
import { Command } from "commander";
import pino from "pino";
import { parseDuration } from "../../infra/simulator/scenario.ts";
import { SIMULATE_DEFAULTS, simulate } from "../../infra/simulator/simulate.ts";
import { stackEndpoints } from "../../infra/stack/config.ts";
import { endOffsets, ROUND_TRIP_INDEX, ROUND_TRIP_TABLE, runRoundTrip } from "../../infra/stack/round-trip.ts";
import { healthPipeline } from "../../pipelines/health/pipeline.ts";
import { top } from "../../pipelines/health/queries.ts";
import { StreamWorker } from "../../stream/runtime/worker.ts";
import { stackUp } from "./stack.ts";

// The main job of the README's quickstart: the stack, the health pipeline (`weir run health`, in
// this process), the traffic simulator producing into Kafka, and a round trip of its access logs
// into Elasticsearch and ClickHouse (until the logs pipeline takes its place). It prints what each
// step counted, and the health pipeline's view of the simulated platform.
export function demoCommand(): Command {
  return new Command("demo")
    .description(
      "bring up the local stack and run the main job: simulated traffic into Kafka, access logs on into Elasticsearch and ClickHouse",
    )
    .option("--duration <d>", "simulated traffic to produce (as fast as it goes)", "30s")
    .option("--rate <n>", "records per simulated second", "2000")
    .option("--seed <n>", "simulator seed", "1")
    .action(async (opts: { duration: string; rate: string; seed: string }) => {
      const { local } = await stackUp();
      const endpoints = stackEndpoints(local.cfg);
      const topic = "logs.access";
      const before = await endOffsets(endpoints.kafkaBrokers, topic);
      // The demo prints its own summary; a failing worker still surfaces through worker.done.
      const logger = pino({ level: "fatal", name: "weir-demo" });
      const health = await healthPipeline({ dataDir: resolve("weir-data"), endpoints, env: process.env, logger });
      const worker = new StreamWorker(health.app, {
        brokers: endpoints.kafkaBrokers,
        instanceId: "demo",
        logger,
        metricsPort: 0,
      });
      await worker.start();
      console.log(
        `\nhealth pipeline running (consumer group ${health.app.appId}, /metrics on port ${worker.metricsPort})`,
      );
      // Event time starts now: the health pipeline's watermark has already passed earlier runs.
      const start = Date.now();

      console.log(
        `\nsimulating ${opts.duration} of platform traffic into Kafka (seed ${opts.seed}, default scenario: incidents, a hot room, fraud)`,
      );
      const sim = await simulate({
        ...SIMULATE_DEFAULTS,
        seed: Number(opts.seed),
        durationMs: parseDuration(opts.duration),
        rate: Number(opts.rate),
        to: "kafka",
        brokers: endpoints.kafkaBrokers,
        start,
      });
      const byTopic = new Map<string, number>();
      for (const s of sim.streams) byTopic.set(s.kind, (byTopic.get(s.kind) ?? 0) + s.events);
      console.log(
        `  produced ${sim.records.toLocaleString("en")} Avro records in ${(sim.wallMs / 1000).toFixed(1)} s: ${[...byTopic].map(([k, n]) => `${k} ${n}`).join(", ")}`,
      );

      const after = await endOffsets(endpoints.kafkaBrokers, topic);
      console.log(`\nround trip: ${topic} -> consumer group -> Elasticsearch + ClickHouse -> commit`);
      const r = await runRoundTrip(endpoints, topic, before, after);
      const rate = (n: number, ms: number) =>
        `${Math.round((n * 1000) / Math.max(ms, 1)).toLocaleString("en")} records/s`;
      console.log(
        `  consumed+stored ${r.records} records in ${r.consumeAndStoreMs} ms (${rate(r.records, r.consumeAndStoreMs)}), ${r.undecodable} undecodable`,
      );
      console.log(`  Elasticsearch   ${r.inElasticsearch} documents in index ${ROUND_TRIP_INDEX}`);
      console.log(
        `  ClickHouse      ${r.inClickHouse} rows in table ${ROUND_TRIP_TABLE}; 5xx by service ${JSON.stringify(r.errorsByService)}`,
      );
      console.log(`  committed       ${r.committed} offsets, after both stores acknowledged`);
      const expected = byTopic.get("access") ?? 0;
      const ok =
        r.records === expected &&
        r.inElasticsearch === expected &&
        r.inClickHouse === expected &&
        r.committed === expected;
      console.log(
        ok
          ? "\nround trip complete: every access record is in both stores"
          : `\nround trip INCOMPLETE: the simulator produced ${expected} access records`,
      );
      console.log(
        `look around:  curl '${endpoints.elasticsearchUrl}/${ROUND_TRIP_INDEX}/_search?q=status:503&size=3&pretty'`,
      );
      console.log(
        `              clickhouse-client --port ${local.cfg.clickhouse.tcpPort} -q 'SELECT service, count(), countIf(status >= 500) FROM ${ROUND_TRIP_TABLE} GROUP BY service'`,
      );
      const healthOk = await showHealth(endpoints.clickhouseUrl, start, parseDuration(opts.duration));
      await worker.stop();
      await health.stop?.();
      if (!ok || !healthOk) process.exitCode = 1;
    });
}

/** Waits for the health pipeline's final rows of the run, then prints its view of the platform. */
async function showHealth(clickhouseUrl: string, start: number, durationMs: number): Promise<boolean> {
  const ch = createClient({ url: clickhouseUrl });
  // The last seconds stay open until later traffic passes them (out-of-orderness + grace): wait for the rest.
  const until = Math.floor((start + durationMs) / 1000) - 6;
  const deadline = Date.now() + 120_000;
  let seconds = 0;
  try {
    while (Date.now() < deadline) {
      const r = await (
        await ch.query({
          query: `SELECT count() AS n FROM weir.health_metrics FINAL WHERE window_ms = 1000 AND level = 'APP' AND final = 1 AND window_start >= ${Math.ceil(start / 1000)} AND window_start < ${until}`,
          format: "JSONEachRow",
        })
      ).json<{ n: string }>();
      seconds = Number(r[0]?.n ?? 0);
      if (seconds >= until - Math.ceil(start / 1000)) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const alerts = await (
      await ch.query({
        query: `SELECT rule, level, service, endpoint, message FROM weir.health_alerts FINAL WHERE state = 'FIRING' AND ts_ms >= ${start} ORDER BY ts_ms`,
        format: "JSONEachRow",
      })
    ).json<{ rule: string; level: string; service: string; endpoint: string; message: string }>();
    console.log(
      `\nhealth: ${seconds} final 1 s windows of the run in weir.health_metrics, ${alerts.length} alerts fired`,
    );
    const t = await top({ since: durationMs + 60_000, clickhouseUrl });
    for (const s of t.services.slice(0, 7)) {
      const avail = s.availability === null ? "-" : `${(s.availability * 100).toFixed(3)}%`;
      const p99 = s.p99Us === null ? "-" : `${(s.p99Us / 1000).toFixed(0)} ms`;
      console.log(
        `  ${s.service.padEnd(11)} ${String(s.requests).padStart(7)} requests  availability ${avail.padStart(8)}  p99 ${p99.padStart(7)}  burn ${(s.burnRate ?? 0).toFixed(2)}x`,
      );
    }
    for (const a of alerts.slice(0, 8)) console.log(`  alert ${a.rule}: ${a.message.slice(0, 110)}`);
    console.log("more:         node cli/weir.mjs health top --since 15m    node cli/weir.mjs health show gift-svc");
    return seconds > 0;
  } finally {
    await ch.close();
  }
}
