import { Command } from "commander";
import { parseDuration } from "../../infra/simulator/scenario.ts";
import { SIMULATE_DEFAULTS, simulate } from "../../infra/simulator/simulate.ts";
import { stackEndpoints } from "../../infra/stack/config.ts";
import { endOffsets, ROUND_TRIP_INDEX, ROUND_TRIP_TABLE, runRoundTrip } from "../../infra/stack/round-trip.ts";
import { stackUp } from "./stack.ts";

// The main job of the README's quickstart. Today: the stack, the traffic simulator producing into
// Kafka, and a round trip of its access logs into Elasticsearch and ClickHouse. The pipelines take
// the round trip's place as they land.
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
      if (!ok) process.exitCode = 1;
    });
}
