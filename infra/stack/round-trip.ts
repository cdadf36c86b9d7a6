// An end-to-end round trip through the local stack, in the shape of every weir pipeline: read a
// range of AccessLog records (Avro single-object encoding) from a Kafka topic with a consumer group,
// write them to Elasticsearch and ClickHouse, and commit each batch's offsets only after both stores
// have acknowledged it. `weir demo` runs it over the traffic simulator's output until the real
// pipelines exist.
import { randomUUID } from "node:crypto";
import { createClient } from "@clickhouse/client";
import { Client } from "@elastic/elasticsearch";
import { Kafka, logLevel } from "kafkajs";
import { CodecError, codecFor } from "../../schemas/codec.ts";
import type { StackEndpoints } from "./config.ts";

export const ROUND_TRIP_INDEX = "weir-roundtrip";
export const ROUND_TRIP_TABLE = "weir_roundtrip";

/** Offsets per partition. */
export type Offsets = Map<number, number>;

export interface RoundTripReport {
  /** Records in the range. */
  records: number;
  /** Of those, the ones that did not decode (they would go to a DLQ). */
  undecodable: number;
  /** From the first batch to the last commit, both stores' writes included. */
  consumeAndStoreMs: number;
  inElasticsearch: number;
  inClickHouse: number;
  committed: number;
  errorsByService: Record<string, number>;
}

export async function endOffsets(brokers: string[], topic: string): Promise<Offsets> {
  const admin = new Kafka({ clientId: "weir-roundtrip", brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
  } finally {
    await admin.disconnect();
  }
}

/** Carries the records of `topic` in [from, to) per partition into Elasticsearch and ClickHouse. */
export async function runRoundTrip(
  endpoints: StackEndpoints,
  topic: string,
  from: Offsets,
  to: Offsets,
): Promise<RoundTripReport> {
  const codec = codecFor("AccessLog");
  const groupId = `weir-roundtrip-${randomUUID().slice(0, 8)}`;
  const kafka = new Kafka({ clientId: "weir-roundtrip", brokers: endpoints.kafkaBrokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const consumer = kafka.consumer({ groupId });
  const es = new Client({ node: endpoints.elasticsearchUrl });
  const ch = createClient({ url: endpoints.clickhouseUrl });
  let records = 0;
  for (const [p, end] of to) records += end - (from.get(p) ?? 0);
  try {
    await admin.connect();
    await es.indices.delete({ index: ROUND_TRIP_INDEX, ignore_unavailable: true });
    await es.indices.create({
      index: ROUND_TRIP_INDEX,
      settings: { number_of_shards: 1, number_of_replicas: 0 },
      mappings: {
        dynamic: "strict",
        properties: {
          "@timestamp": { type: "date" },
          service: { type: "keyword" },
          endpoint: { type: "keyword" },
          status: { type: "short" },
          latency_ms: { type: "float" },
          trace_id: { type: "keyword" },
        },
      },
    });
    await ch.command({ query: `DROP TABLE IF EXISTS ${ROUND_TRIP_TABLE}` });
    await ch.command({
      query: `CREATE TABLE ${ROUND_TRIP_TABLE} (ts DateTime, ts_ms UInt16, id String, service String, endpoint String, status UInt16, latency_ms Float64)
              ENGINE = MergeTree() PARTITION BY toYYYYMMDD(ts) ORDER BY (service, endpoint, ts, ts_ms)`,
    });

    let done = 0;
    let undecodable = 0;
    let firstBatch = 0;
    const remaining = new Map([...to].map(([p, end]) => [p, end - (from.get(p) ?? 0)]));
    await consumer.connect();
    await consumer.subscribe({ topic });
    await new Promise<void>((resolve, reject) => {
      if (records === 0) resolve();
      consumer.on(consumer.events.GROUP_JOIN, () => {
        for (const [partition, offset] of from) consumer.seek({ topic, partition, offset: String(offset) });
      });
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch, heartbeat }) => {
            firstBatch ||= Date.now();
            const end = to.get(batch.partition) ?? 0;
            const start = from.get(batch.partition) ?? 0;
            const mine = batch.messages.filter((m) => Number(m.offset) >= start && Number(m.offset) < end);
            if (mine.length === 0) return;
            const decoded = [];
            for (const m of mine) {
              try {
                decoded.push(codec.decode(m.value as Buffer));
              } catch (e) {
                if (!(e instanceof CodecError)) throw e;
                undecodable++;
              }
            }
            if (decoded.length > 0) {
              const bulk = await es.bulk({
                operations: decoded.flatMap((e) => [
                  { index: { _index: ROUND_TRIP_INDEX, _id: e.id } }, // deterministic ids: a replay overwrites
                  {
                    "@timestamp": e.ts,
                    service: e.service,
                    endpoint: e.endpoint,
                    status: e.status,
                    latency_ms: e.latencyUs / 1000,
                    trace_id: e.traceId,
                  },
                ]),
              });
              if (bulk.errors) throw new Error("Elasticsearch rejected part of a bulk request");
              await ch.insert({
                table: ROUND_TRIP_TABLE,
                format: "JSONEachRow",
                values: decoded.map((e) => ({
                  ts: Math.floor(e.ts / 1000),
                  ts_ms: e.ts % 1000,
                  id: e.id,
                  service: e.service,
                  endpoint: e.endpoint,
                  status: e.status,
                  latency_ms: e.latencyUs / 1000,
                })),
              });
            }
            // Both stores have acknowledged: only now may the offset move.
            const last = mine.at(-1)?.offset as string;
            await consumer.commitOffsets([{ topic, partition: batch.partition, offset: String(Number(last) + 1) }]);
            await heartbeat();
            remaining.set(batch.partition, end - (Number(last) + 1));
            done += mine.length;
            if ([...remaining.values()].every((n) => n <= 0)) resolve();
          },
        })
        .catch(reject);
    });
    const consumeAndStoreMs = firstBatch ? Date.now() - firstBatch : 0;
    await consumer.disconnect();

    await es.indices.refresh({ index: ROUND_TRIP_INDEX });
    const inElasticsearch = (await es.count({ index: ROUND_TRIP_INDEX })).count;
    const chRows = await (
      await ch.query({
        query: `SELECT service, count() AS n, countIf(status >= 500) AS errors FROM ${ROUND_TRIP_TABLE} GROUP BY service ORDER BY service`,
        format: "JSONEachRow",
      })
    ).json<{ service: string; n: string; errors: string }>();
    const committedOffsets = (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]?.partitions ?? [];
    const committed = committedOffsets.reduce(
      (n, p) => n + Math.max(0, Number(p.offset) - (from.get(p.partition) ?? 0)),
      0,
    );
    return {
      records: done,
      undecodable,
      consumeAndStoreMs,
      inElasticsearch,
      inClickHouse: chRows.reduce((n, r) => n + Number(r.n), 0),
      committed,
      errorsByService: Object.fromEntries(chRows.map((r) => [r.service, Number(r.errors)])),
    };
  } finally {
    await consumer.disconnect().catch(() => {});
    await admin.deleteGroups([groupId]).catch(() => {});
    await admin.disconnect().catch(() => {});
    await es.close();
    await ch.close();
  }
}
