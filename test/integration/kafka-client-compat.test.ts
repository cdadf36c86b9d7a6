// Proves that the Kafka client weir uses (kafkajs) speaks every API weir relies on to the pinned broker.
// Kafka 4.0 removed old protocol versions (KIP-896); this test is the gate for any broker upgrade.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { type Admin, CompressionTypes } from "kafkajs";
import { kafkaClient, requireStack } from "../support/stack.ts";

const kafka = kafkaClient("weir-compat");
const run = randomUUID().slice(0, 8);
const topic = `test.compat.${run}`;
const compacted = `test.compat.table.${run}`;
let admin: Admin;

before(async () => {
  await requireStack();
  admin = kafka.admin();
  await admin.connect();
});
after(async () => {
  await admin.deleteTopics({ topics: [topic, compacted, `${topic}.out`] }).catch(() => {});
  await admin.disconnect();
});

test("admin: create, describe, alter configs, add partitions", async () => {
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic, numPartitions: 2, replicationFactor: 1, configEntries: [{ name: "retention.ms", value: "3600000" }] },
      {
        topic: compacted,
        numPartitions: 2,
        replicationFactor: 1,
        configEntries: [{ name: "cleanup.policy", value: "compact" }],
      },
      { topic: `${topic}.out`, numPartitions: 2, replicationFactor: 1 },
    ],
  });
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  assert.equal(md.topics[0]?.partitions.length, 2);
  const cfg = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: compacted }] });
  const policy = cfg.resources[0]?.configEntries.find((e) => e.configName === "cleanup.policy");
  assert.equal(policy?.configValue, "compact");
  await admin.alterConfigs({
    validateOnly: false,
    resources: [{ type: 2, name: topic, configEntries: [{ name: "retention.ms", value: "7200000" }] }],
  });
  await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
  const md2 = await admin.fetchTopicMetadata({ topics: [topic] });
  assert.equal(md2.topics[0]?.partitions.length, 3);
  const cluster = await admin.describeCluster();
  assert.equal(cluster.brokers.length, 1);
});

test("idempotent producer (acks=all, gzip) and consumer group with committed offsets", async () => {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const messages = Array.from({ length: 300 }, (_, i) => ({
    key: `k${i % 7}`,
    value: `v${i}`,
    headers: { i: String(i) },
  }));
  await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages });
  await producer.disconnect();

  const offsets = await admin.fetchTopicOffsets(topic);
  assert.equal(
    offsets.reduce((n, p) => n + Number(p.high), 0),
    300,
  );
  const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, Date.now() - 60_000);
  assert.equal(byTime.length, 3);

  const groupId = `test-compat-${run}`;
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 1000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = new Set<string>();
  await new Promise<void>((resolve, reject) => {
    consumer
      .run({
        autoCommit: false,
        eachBatch: async ({ batch, resolveOffset }) => {
          for (const m of batch.messages) {
            seen.add(m.value?.toString() ?? "");
            resolveOffset(m.offset);
          }
          const last = batch.messages.at(-1);
          if (last)
            await consumer.commitOffsets([
              { topic, partition: batch.partition, offset: String(Number(last.offset) + 1) },
            ]);
          if (seen.size === 300) resolve();
        },
      })
      .catch(reject);
  });
  const described = await admin.describeGroups([groupId]);
  assert.equal(described.groups[0]?.state, "Stable");
  await consumer.disconnect();

  const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
  const total = committed[0]?.partitions.reduce((n, p) => n + Number(p.offset), 0);
  assert.equal(total, 300);
  const groups = await admin.listGroups();
  assert.ok(groups.groups.some((g) => g.groupId === groupId));
  await admin.resetOffsets({ groupId, topic, earliest: true });
  await admin.deleteGroups([groupId]);
});

test("transactions: commit with sendOffsets, abort, read_committed isolation", async () => {
  const groupId = `test-compat-eos-${run}`;
  const producer = kafka.producer({ transactionalId: `weir-compat-${run}`, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const committedTxn = await producer.transaction();
  await committedTxn.send({ topic: `${topic}.out`, messages: [{ key: "a", value: "committed" }] });
  await committedTxn.sendOffsets({
    consumerGroupId: groupId,
    topics: [{ topic, partitions: [{ partition: 0, offset: "1" }] }],
  });
  await committedTxn.commit();
  const abortedTxn = await producer.transaction();
  await abortedTxn.send({ topic: `${topic}.out`, messages: [{ key: "a", value: "aborted" }] });
  await abortedTxn.abort();
  await producer.disconnect();

  const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
  assert.equal(offsets[0]?.partitions.find((p) => p.partition === 0)?.offset, "1");

  const reader = kafka.consumer({ groupId: `${groupId}-reader`, readUncommitted: false });
  await reader.connect();
  await reader.subscribe({ topic: `${topic}.out`, fromBeginning: true });
  const values: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, 6000);
    reader
      .run({
        eachMessage: async ({ message }) => {
          values.push(message.value?.toString() ?? "");
          if (values.length >= 1) {
            clearTimeout(timer);
            setTimeout(resolve, 1500);
          }
        },
      })
      .catch(reject);
  });
  await reader.disconnect();
  assert.deepEqual(values, ["committed"]);
});

test("compacted topic keeps the latest value per key and accepts tombstones", async () => {
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({
    topic: compacted,
    messages: [
      { key: "u1", value: "a" },
      { key: "u1", value: "b" },
      { key: "u2", value: null },
    ],
  });
  await producer.disconnect();
  const offsets = await admin.fetchTopicOffsets(compacted);
  assert.equal(
    offsets.reduce((n, p) => n + Number(p.high), 0),
    3,
  );
});
