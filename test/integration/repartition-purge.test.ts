// Repartition topics on the real broker: created with retention.ms -1 (their records carry event
// times, a time-based retention deleted old backlogs unread), an old one with 24 h altered to -1
// with its other configs kept, and DeleteRecords through the worker's admin moving the log start.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Admin } from "kafkajs";
import kafkajs from "kafkajs";
import { StreamApp } from "../../stream/dsl/app.ts";
import { compile } from "../../stream/dsl/compile.ts";
import { KafkajsStreamClient } from "../../stream/kafka/client.ts";
import { prepareInternalTopics } from "../../stream/runtime/internal-topics.ts";
import { json } from "../../stream/types.ts";
import { endpoints, kafkaClient, requireServices, uniqueName } from "../support/stack.ts";

const kafka = kafkaClient("weir-repartition-purge-test");
let admin: Admin;
const topicsToDelete: string[] = [];

before(async () => {
  await requireServices(["kafka"]);
  admin = kafka.admin();
  await admin.connect();
});

after(async () => {
  await admin.deleteTopics({ topics: topicsToDelete }).catch(() => {});
  await admin.disconnect();
});

function app(appId: string, input: string, output: string): StreamApp {
  const a = new StreamApp({ appId, dlqTopic: `${appId}-dlq` });
  a.stream<undefined, { user: string }>(input, { serde: json() })
    .repartition({ name: "by-user" })
    .to(output, { serde: json() });
  return a;
}

async function topicConfig(topic: string): Promise<Record<string, string>> {
  const { resources } = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic }],
  });
  return Object.fromEntries(
    (resources[0]?.configEntries ?? [])
      .filter((e) => e.configSource === kafkajs.ConfigSource.TOPIC_CONFIG)
      .map((e) => [e.configName, e.configValue]),
  );
}

async function setUp(id: string) {
  const appId = `test-${id}`;
  const input = `test.${id}.in`;
  const output = `test.${id}.out`;
  const repartition = `${appId}-by-user-repartition`;
  topicsToDelete.push(input, output, repartition, `${appId}-dlq`);
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: input, numPartitions: 2, replicationFactor: 1 },
      { topic: output, numPartitions: 1, replicationFactor: 1 },
    ],
  });
  return { appId, input, output, repartition };
}

test("a worker creates its repartition topics with retention.ms -1, and DeleteRecords moves their log start", async () => {
  const { appId, input, output, repartition } = await setUp(uniqueName("purge"));
  const client = new KafkajsStreamClient({ brokers: endpoints.kafkaBrokers, clientId: appId });
  const streamAdmin = client.admin();
  try {
    await prepareInternalTopics(streamAdmin, compile(app(appId, input, output)));
    const config = await topicConfig(repartition);
    assert.equal(config["retention.ms"], "-1");
    assert.equal(config["cleanup.policy"], "delete");
    // Records three days old by their timestamp stay until purged.
    const producer = kafka.producer();
    await producer.connect();
    const old = String(Date.now() - 3 * 86_400_000);
    await producer.send({
      topic: repartition,
      acks: -1,
      messages: Array.from({ length: 10 }, (_, i) => ({ partition: 0, key: `k${i}`, value: "{}", timestamp: old })),
    });
    await producer.disconnect();
    await streamAdmin.deleteRecords(repartition, [{ partition: 0, offset: "6" }]);
    const offsets = await streamAdmin.offsets(repartition);
    assert.deepEqual(offsets.get(0), { low: "6", high: "10" });
  } finally {
    await streamAdmin.close();
  }
});

test("a repartition topic created with the old 24 h retention gets retention.ms -1, its other configs kept", async () => {
  const { appId, input, output, repartition } = await setUp(uniqueName("purge"));
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      {
        topic: repartition,
        numPartitions: 2,
        replicationFactor: 1,
        configEntries: [
          { name: "cleanup.policy", value: "delete" },
          { name: "retention.ms", value: String(24 * 3600_000) },
          { name: "segment.bytes", value: "10485760" },
        ],
      },
    ],
  });
  const client = new KafkajsStreamClient({ brokers: endpoints.kafkaBrokers, clientId: appId });
  const streamAdmin = client.admin();
  const warnings: string[] = [];
  const log = { info() {}, warn: ((_: unknown, msg: string) => warnings.push(msg)) as never };
  try {
    await prepareInternalTopics(streamAdmin, compile(app(appId, input, output)), log);
    assert.deepEqual(warnings, []);
    assert.deepEqual(await topicConfig(repartition), {
      "cleanup.policy": "delete",
      "retention.ms": "-1",
      "segment.bytes": "10485760",
    });
  } finally {
    await streamAdmin.close();
  }
});
