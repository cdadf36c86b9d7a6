import assert from "node:assert/strict";
import { test } from "node:test";
import { StreamApp } from "../dsl/app.ts";
import { compile } from "../dsl/compile.ts";
import { FakeKafkaCluster } from "../testing/fake-kafka.ts";
import { json } from "../types.ts";
import { Windows } from "../windows/spec.ts";
import { prepareInternalTopics } from "./internal-topics.ts";

/** Re-keyed through a repartition topic, then counted per window (a store with a changelog). */
function app(): StreamApp {
  const a = new StreamApp({ appId: "app" });
  a.stream<undefined, { ts: number; user: string; group: string }>("in", { serde: json() })
    .keyBy((e) => e.group, "group")
    .window(Windows.tumbling("1s"))
    .count({ name: "per-group" })
    .to("out", { serde: json() });
  return a;
}

test("creates the changelog (compacted), the repartition topic and the DLQ with the partitions the topology needs", async () => {
  const c = new FakeKafkaCluster();
  c.createTopic("in", 3);
  c.createTopic("out", 1);
  const plan = await prepareInternalTopics(c.client("w").admin(), compile(app()));
  assert.equal(c.partitionCount("app-per-group-repartition"), 3);
  assert.equal(c.partitionCount("app-per-group-changelog"), 3);
  assert.equal(c.topicConfig("app-per-group-changelog")?.["cleanup.policy"], "compact");
  assert.equal(c.topicConfig("app-per-group-repartition")?.["cleanup.policy"], "delete");
  assert.equal(c.topicConfig("app-per-group-repartition")?.["retention.ms"], "-1");
  assert.equal(c.partitionCount("app-dlq"), 1);
  assert.deepEqual([...plan.taskCounts.values()], [3, 3]);
  assert.equal(plan.partitionCounts.get("out"), 1);
  // A second worker finds them as they are.
  await prepareInternalTopics(c.client("w2").admin(), compile(app()));
});

test("refuses missing input or output topics, and internal topics with other partition counts", async () => {
  const c = new FakeKafkaCluster();
  c.createTopic("in", 3);
  await assert.rejects(prepareInternalTopics(c.client("w").admin(), compile(app())), /topics out do not exist/);
  c.createTopic("out", 1);
  c.createTopic("app-per-group-changelog", 2);
  await assert.rejects(
    prepareInternalTopics(c.client("w").admin(), compile(app())),
    /internal topic app-per-group-changelog has 2 partitions but the topology needs 3/,
  );
});

function warnings() {
  const logged: Array<{ level: string; msg: string }> = [];
  return {
    logged,
    log: {
      info: ((_: unknown, msg: string) => logged.push({ level: "info", msg })) as never,
      warn: ((_: unknown, msg: string) => logged.push({ level: "warn", msg })) as never,
    },
  };
}

const OLD = { "cleanup.policy": "delete", "retention.ms": String(24 * 3600_000), "segment.bytes": "1048576" };

test("a repartition topic created with the old 24 h retention gets retention.ms -1, its other configs kept", async () => {
  const c = new FakeKafkaCluster();
  c.createTopic("in", 3);
  c.createTopic("out", 1);
  c.createTopic("app-per-group-repartition", 3, { ...OLD });
  const { logged, log } = warnings();
  await prepareInternalTopics(c.client("w").admin(), compile(app()), log);
  assert.deepEqual(c.topicConfig("app-per-group-repartition"), { ...OLD, "retention.ms": "-1" });
  assert.match(logged[0]?.msg ?? "", /retention.ms 24 h -> -1/);
  // Once altered, a restart leaves it alone.
  await prepareInternalTopics(c.client("w2").admin(), compile(app()), log);
  assert.equal(c.journal.filter((l) => l.startsWith("alter-config")).length, 1);
});

test("an alter the broker refuses: a warning naming the topic and the fix, and the worker goes on", async () => {
  const c = new FakeKafkaCluster();
  c.createTopic("in", 3);
  c.createTopic("out", 1);
  c.createTopic("app-per-group-repartition", 3, { ...OLD });
  c.refuseAlterConfigs = true;
  const { logged, log } = warnings();
  const plan = await prepareInternalTopics(c.client("w").admin(), compile(app()), log);
  assert.equal(plan.partitionCounts.get("app-per-group-repartition"), 3);
  assert.equal(c.topicConfig("app-per-group-repartition")?.["retention.ms"], OLD["retention.ms"]);
  assert.equal(logged[0]?.level, "warn");
  assert.match(logged[0]?.msg ?? "", /app-per-group-repartition/);
  assert.match(
    logged[0]?.msg ?? "",
    /kafka-configs.sh .*--entity-name app-per-group-repartition --add-config retention.ms=-1/,
  );
});

test("a retention someone else set on a repartition topic is not changed, only warned about", async () => {
  const c = new FakeKafkaCluster();
  c.createTopic("in", 3);
  c.createTopic("out", 1);
  c.createTopic("app-per-group-repartition", 3, { "retention.ms": "3600000" });
  const { logged, log } = warnings();
  await prepareInternalTopics(c.client("w").admin(), compile(app()), log);
  assert.equal(c.topicConfig("app-per-group-repartition")?.["retention.ms"], "3600000");
  assert.equal(logged[0]?.level, "warn");
  assert.match(logged[0]?.msg ?? "", /finite retention/);
});
