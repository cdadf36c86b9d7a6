// An end-to-end round trip through the local stack, in the shape of every weir pipeline: AccessLog
// events in Avro single-object encoding into a Kafka topic, read back by a consumer group, written
// to Elasticsearch and ClickHouse, and the offsets committed only after both stores have
// acknowledged. `weir demo` runs it until the real pipelines exist.
import { randomUUID } from "node:crypto";
import { createClient } from "@clickhouse/client";
import { Client } from "@elastic/elasticsearch";
import { Kafka, logLevel } from "kafkajs";
import { codecFor } from "../../schemas/codec.ts";
import type { AccessLog } from "../../schemas/types.generated.ts";
import type { StackEndpoints } from "./config.ts";

export const ROUND_TRIP_INDEX = "weir-roundtrip";
export const ROUND_TRIP_TABLE = "weir_roundtrip";

export interface RoundTripReport {
  events: number;
  produceMs: number;
  /** From the first consumed batch to the last commit (includes the writes to both stores). */
  consumeAndStoreMs: number;
  inElasticsearch: number;
  inClickHouse: number;
  committed: number;
  errorsByService: Record<string, number>;
}

export async function runRoundTrip(endpoints: StackEndpoints, events = 20_000): Promise<RoundTripReport> {
  const run = randomUUID().slice(0, 8);
  const codec = codecFor("AccessLog");
  const topic = `weir.roundtrip.${run}`;
  const groupId = `weir-roundtrip-${run}`;
  const kafka = new Kafka({ clientId: "weir-roundtrip", brokers: endpoints.kafkaBrokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  const consumer = kafka.consumer({ groupId });
  const es = new Client({ node: endpoints.elasticsearchUrl });
  const ch = createClient({ url: endpoints.clickhouseUrl });
  try {
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3, replicationFactor: 1 }] });
    await es.indices.delete({ index: ROUND_TRIP_INDEX, ignore_unavailable: true });
    await es.indices.create({
      index: ROUND_TRIP_INDEX,
      settings: { number_of_shards: 1, number_of_replicas: 0 },
      mappings: {
        properties: {
          "@timestamp": { type: "date" },
          service: { type: "keyword" },
          status: { type: "short" },
          latency_ms: { type: "float" },
        },
      },
    });
    await ch.command({ query: `DROP TABLE IF EXISTS ${ROUND_TRIP_TABLE}` });
    await ch.command({
      query: `CREATE TABLE ${ROUND_TRIP_TABLE} (ts DateTime, ts_ms UInt16, id String, service String, status UInt16, latency_ms Float64)
              ENGINE = MergeTree() PARTITION BY toYYYYMMDD(ts) ORDER BY (service, ts, ts_ms)`,
    });

    const start = Date.now() - 60_000;
    const produced = Date.now();
    await producer.connect();
    for (let offset = 0; offset < events; offset += 5000) {
      const batch = Array.from({ length: Math.min(5000, events - offset) }, (_, j) =>
        accessLog(run, offset + j, start),
      );
      await producer.send({
        topic,
        acks: -1,
        messages: batch.map((e) => ({ key: e.service, value: codec.encode(e) })),
      });
    }
    const produceMs = Date.now() - produced;

    let stored = 0;
    let firstBatch = 0;
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch, heartbeat }) => {
            firstBatch ||= Date.now();
            const decoded = batch.messages.map((m) => codec.decode(m.value as Buffer));
            const bulk = await es.bulk({
              operations: decoded.flatMap((e) => [
                { index: { _index: ROUND_TRIP_INDEX, _id: e.id } }, // deterministic ids: a replay overwrites
                { "@timestamp": e.ts, service: e.service, status: e.status, latency_ms: e.latencyUs / 1000 },
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
                status: e.status,
                latency_ms: e.latencyUs / 1000,
              })),
            });
            // Both stores have acknowledged: only now may the offset move.
            await consumer.commitOffsets([
              { topic, partition: batch.partition, offset: String(Number(batch.lastOffset()) + 1) },
            ]);
            await heartbeat();
            stored += decoded.length;
            if (stored >= events) resolve();
          },
        })
        .catch(reject);
    });
    const consumeAndStoreMs = Date.now() - firstBatch;
    await consumer.disconnect();

    await es.indices.refresh({ index: ROUND_TRIP_INDEX });
    const inElasticsearch = (await es.count({ index: ROUND_TRIP_INDEX })).count;
    const chRows = await (
      await ch.query({
        query: `SELECT service, count() AS n, countIf(status >= 500) AS errors FROM ${ROUND_TRIP_TABLE} GROUP BY service ORDER BY service`,
        format: "JSONEachRow",
      })
    ).json<{ service: string; n: string; errors: string }>();
    const committed =
      (await admin.fetchOffsets({ groupId, topics: [topic] }))[0]?.partitions.reduce(
        (n, p) => n + Number(p.offset),
        0,
      ) ?? 0;
    return {
      events,
      produceMs,
      consumeAndStoreMs,
      inElasticsearch,
      inClickHouse: chRows.reduce((n, r) => n + Number(r.n), 0),
      committed,
      errorsByService: Object.fromEntries(chRows.map((r) => [r.service, Number(r.errors)])),
    };
  } finally {
    await producer.disconnect().catch(() => {});
    await consumer.disconnect().catch(() => {});
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.deleteGroups([groupId]).catch(() => {});
    await admin.disconnect().catch(() => {});
    await es.close();
    await ch.close();
  }
}

function accessLog(run: string, i: number, start: number): AccessLog {
  const service = `svc-${i % 5}`;
  return {
    id: `${run}-${i}`,
    ts: start + i,
    app: "live",
    system: "demo",
    service,
    endpoint: "/demo/round-trip",
    method: "POST",
    status: i % 97 === 0 ? 503 : 200,
    latencyUs: (i % 250) * 500,
    bytesIn: 100,
    bytesOut: 200,
    errorCode: null,
    traceId: null,
    caller: null,
    uid: 100_000 + (i % 1000),
    deviceId: null,
    clientIp: "127.0.0.1",
    roomId: null,
    userAgent: null,
    host: `${service}-1`,
    source: null,
  };
}
