import { Command } from "commander";
import { stackEndpoints } from "../../infra/stack/config.ts";
import { ROUND_TRIP_INDEX, ROUND_TRIP_TABLE, runRoundTrip } from "../../infra/stack/round-trip.ts";
import { stackUp } from "./stack.ts";

// The main job of the README's quickstart. Today: the stack and an end-to-end round trip through it.
// It grows into the traffic simulator feeding every pipeline as those land.
export function demoCommand(): Command {
  return new Command("demo")
    .description(
      "bring up the local stack and run the main job (today: an Avro round trip Kafka -> Elasticsearch + ClickHouse)",
    )
    .option("--events <n>", "events to send through the stack", "20000")
    .action(async (opts: { events: string }) => {
      const { local: stack } = await stackUp();
      const endpoints = stackEndpoints(stack.cfg);
      const events = Number(opts.events);
      console.log(
        `\nround trip: ${events} Avro events -> Kafka -> consumer group -> Elasticsearch + ClickHouse -> commit`,
      );
      const r = await runRoundTrip(endpoints, events);
      const rate = (n: number, ms: number) =>
        `${Math.round((n * 1000) / Math.max(ms, 1)).toLocaleString("en")} events/s`;
      console.log(
        `  produced       ${r.events} in ${r.produceMs} ms (${rate(r.events, r.produceMs)}, acks=all, idempotent)`,
      );
      console.log(`  consumed+stored in ${r.consumeAndStoreMs} ms (${rate(r.events, r.consumeAndStoreMs)})`);
      console.log(`  Elasticsearch  ${r.inElasticsearch} documents in index ${ROUND_TRIP_INDEX}`);
      console.log(
        `  ClickHouse     ${r.inClickHouse} rows in table ${ROUND_TRIP_TABLE}; 5xx by service ${JSON.stringify(r.errorsByService)}`,
      );
      console.log(`  committed      ${r.committed} offsets, after both stores acknowledged`);
      const ok = r.inElasticsearch === r.events && r.inClickHouse === r.events && r.committed === r.events;
      console.log(ok ? "\nround trip complete: nothing lost" : "\nround trip INCOMPLETE: counts differ");
      console.log(
        `look around:  curl '${endpoints.elasticsearchUrl}/${ROUND_TRIP_INDEX}/_search?q=status:503&size=3&pretty'`,
      );
      console.log(
        `              clickhouse-client --port ${stack.cfg.clickhouse.tcpPort} -q 'SELECT service, count() FROM ${ROUND_TRIP_TABLE} GROUP BY service'`,
      );
      if (!ok) process.exitCode = 1;
    });
}
