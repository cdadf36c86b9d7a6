// The three servers are real: Avro through Kafka with a consumer group whose committed offsets are
// read back, documents indexed and searched in Elasticsearch, a MergeTree table in ClickHouse.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { codecFor } from "../../schemas/codec.ts";
import { SAMPLES } from "../../schemas/testdata/samples.ts";
import type { AccessLog } from "../../schemas/types.generated.ts";
import { clickhouseClient, elasticsearchClient, kafkaClient, requireStack, uniqueName } from "../support/stack.ts";

before(requireStack);

describe("kafka", () => {
  test("AccessLog records in single-object encoding round-trip through a consumer group; committed offsets read back", async () => {
    const codec = codecFor("AccessLog");
    const kafka = kafkaClient();
    const admin = kafka.admin();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    const topic = uniqueName("test.smoke");
    const groupId = uniqueName("test-smoke-group");
    const consumer = kafka.consumer({ groupId });
    await admin.connect();
    try {
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3, replicationFactor: 1 }] });
      const base = Date.UTC(2026, 10, 21, 12, 0, 0);
      const events = Array.from({ length: 500 }, (_, i) => ({
        ...SAMPLES.AccessLog,
        id: `e${i}`,
        ts: base + i,
        roomId: 1000 + (i % 17),
        latencyUs: i * 250,
        service: `svc-${i % 3}`,
        source: i % 2 === 0 ? null : { file: "/var/log/a.log", fileId: "f1", offset: i * 300, seq: i },
      }));
      const messages = events.map((e) => ({ key: String(e.roomId), value: codec.encode(e) }));
      await producer.connect();
      await producer.send({ topic, acks: -1, messages });

      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const received = new Map<string, AccessLog>();
      const partitionsByRoom = new Map<number, Set<number>>();
      await new Promise<void>((resolve, reject) => {
        consumer
          .run({
            autoCommit: false,
            eachBatch: async ({ batch }) => {
              for (const m of batch.messages) {
                const e = codec.decode(m.value as Buffer);
                received.set(e.id, e);
                const room = e.roomId ?? -1;
                const parts = partitionsByRoom.get(room) ?? new Set();
                parts.add(batch.partition);
                partitionsByRoom.set(room, parts);
              }
              await consumer.commitOffsets([
                { topic, partition: batch.partition, offset: String(Number(batch.lastOffset()) + 1) },
              ]);
              if (received.size === events.length) resolve();
            },
          })
          .catch(reject);
      });
      await consumer.disconnect();

      assert.equal(received.size, events.length);
      for (const e of events)
        assert.deepEqual(JSON.parse(JSON.stringify(received.get(e.id))), JSON.parse(JSON.stringify(e)));
      // One key always lands on one partition.
      for (const [room, parts] of partitionsByRoom) assert.equal(parts.size, 1, `room ${room} on ${[...parts]}`);

      const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
      const ends = await admin.fetchTopicOffsets(topic);
      const committedByPartition = Object.fromEntries(
        committed[0]?.partitions.map((p) => [p.partition, p.offset]) ?? [],
      );
      for (const end of ends) assert.equal(committedByPartition[end.partition], end.high, `partition ${end.partition}`);
      assert.equal(
        ends.reduce((n, p) => n + Number(p.high), 0),
        events.length,
      );
    } finally {
      await producer.disconnect().catch(() => {});
      await consumer.disconnect().catch(() => {});
      await admin.deleteTopics({ topics: [topic] }).catch(() => {});
      await admin.deleteGroups([groupId]).catch(() => {});
      await admin.disconnect();
    }
  });
});

describe("elasticsearch", () => {
  test("index with a template, bulk, search, aggregate, get by id", async () => {
    const es = elasticsearchClient();
    const index = uniqueName("test-smoke");
    try {
      await es.indices.putIndexTemplate({
        name: index,
        index_patterns: [`${index}*`],
        template: {
          settings: { number_of_shards: 1, number_of_replicas: 0 },
          mappings: {
            dynamic: "strict",
            properties: {
              "@timestamp": { type: "date" },
              service: { type: "keyword" },
              level: { type: "keyword" },
              message: { type: "text" },
              trace_id: { type: "keyword" },
              latency_ms: { type: "float" },
            },
          },
        },
      });
      const levels = ["info", "warn", "error"];
      const docs = Array.from({ length: 120 }, (_, i) => ({
        "@timestamp": new Date(Date.UTC(2026, 10, 21, 12, 0, i % 60)).toISOString(),
        service: `svc-${i % 4}`,
        level: levels[i % 3],
        message: i % 10 === 0 ? `payment gateway timeout for order ${i}` : `request served ${i}`,
        trace_id: `trace-${i}`,
        latency_ms: i * 1.5,
      }));
      const bulk = await es.bulk({
        refresh: "wait_for",
        operations: docs.flatMap((d) => [{ index: { _index: index, _id: d.trace_id } }, d]),
      });
      assert.equal(bulk.errors, false);

      const hits = await es.search({ index, query: { match: { message: "gateway timeout" } }, size: 50 });
      assert.equal(typeof hits.hits.total === "object" ? hits.hits.total.value : hits.hits.total, 12);

      const agg = await es.search({
        index,
        size: 0,
        query: { term: { level: "error" } },
        aggs: {
          by_service: { terms: { field: "service" } },
          p99: { percentiles: { field: "latency_ms", percents: [99] } },
        },
      });
      const aggs = agg.aggregations as {
        by_service: { buckets: { key: string; doc_count: number }[] };
        p99: { values: Record<string, number> };
      };
      // Errors are every third document (i % 3 == 2): services svc-2, svc-1, svc-0, svc-3 in turn, 10 each.
      assert.deepEqual(aggs.by_service.buckets.map((b) => [b.key, b.doc_count]).sort(), [
        ["svc-0", 10],
        ["svc-1", 10],
        ["svc-2", 10],
        ["svc-3", 10],
      ]);
      // The slowest error is i = 119, 178.5 ms; t-digest's p99 of 40 values lies just below it.
      const p99 = aggs.p99.values["99.0"] ?? 0;
      assert.ok(p99 > 170 && p99 <= 178.5, `p99 ${p99}`);
      const doc = await es.get<{ level: string }>({ index, id: "trace-5" });
      assert.equal(doc._source?.level, "error");

      // The strict mapping refuses a field nobody declared.
      await assert.rejects(es.index({ index, document: { surprise: 1 } }), /strict_dynamic_mapping_exception/);
    } finally {
      await es.indices.delete({ index }).catch(() => {});
      await es.indices.deleteIndexTemplate({ name: index }).catch(() => {});
      await es.close();
    }
  });
});

describe("clickhouse", () => {
  test("MergeTree with DateTime + milliseconds: create, insert JSONEachRow, select, drop partition", async () => {
    const ch = clickhouseClient();
    const table = uniqueName("test_smoke");
    try {
      // 18.16-compatible DDL: DateTime plus a milliseconds column (no DateTime64), daily partitions.
      await ch.command({
        query: `CREATE TABLE ${table} (
          ts DateTime, ts_ms UInt16, service String, status UInt16, latency_us UInt32
        ) ENGINE = MergeTree() PARTITION BY toYYYYMMDD(ts) ORDER BY (service, ts, ts_ms)`,
      });
      const day1 = Date.UTC(2026, 10, 20, 23, 59, 0);
      const rows = Array.from({ length: 2000 }, (_, i) => {
        const t = day1 + i * 100; // 200 s from 23:59:00: crosses midnight
        return {
          ts: Math.floor(t / 1000),
          ts_ms: t % 1000,
          service: `svc-${i % 5}`,
          status: i % 50 === 0 ? 503 : 200,
          latency_us: 1000 + i,
        };
      });
      await ch.insert({ table, values: rows, format: "JSONEachRow" });

      const stats = await (
        await ch.query({
          query: `SELECT count() AS n, countIf(status >= 500) AS errors, max(latency_us) AS max_latency,
                         uniqExact(toYYYYMMDD(ts)) AS days, max(ts_ms) AS max_ms FROM ${table}`,
          format: "JSONEachRow",
        })
      ).json<{ n: string; errors: string; max_latency: number; days: string; max_ms: number }>();
      assert.deepEqual(stats[0], { n: "2000", errors: "40", max_latency: 2999, days: "2", max_ms: 900 });

      await ch.command({ query: `ALTER TABLE ${table} DROP PARTITION 20261120` });
      const left = await (await ch.query({ query: `SELECT count() AS n FROM ${table}`, format: "JSONEachRow" })).json<{
        n: string;
      }>();
      assert.equal(left[0]?.n, String(2000 - 600)); // 60 s before midnight at 10 rows/s
    } finally {
      await ch.command({ query: `DROP TABLE IF EXISTS ${table}` }).catch(() => {});
      await ch.close();
    }
  });
});
