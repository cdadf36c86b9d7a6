import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { durationMs, keyReader, loadTopicCatalog, topicConfigs } from "./catalog.ts";
import { ConfigError } from "./config/yaml-config.ts";
import { SAMPLES } from "./testdata/samples.ts";

const dir = mkdtempSync(join(tmpdir(), "weir-catalog-"));
function catalogFile(text: string): string {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, text);
  return file;
}

test("the project's catalog loads: every topic has a schema, a valid key and a description", () => {
  const cat = loadTopicCatalog(undefined, {});
  const names = cat.topics.map((t) => t.name);
  for (const t of [
    "logs.app",
    "logs.access",
    "events.coin",
    "events.behavior",
    "events.device",
    "metrics.health",
    "alerts.health",
    "signals.risk",
    "hotkeys.top",
    "dlq.ship",
  ]) {
    assert.ok(names.includes(t), t);
  }
  assert.equal(cat.topic("logs.access").schema, "AccessLog");
  assert.equal(cat.topic("logs.access").retentionMs, 3 * 86_400_000);
  assert.equal(cat.topic("events.coin").replicationFactor, 1);
  assert.deepEqual(topicConfigs(cat.topic("dlq.ship")), {
    "cleanup.policy": "delete",
    "retention.ms": String(14 * 86_400_000),
  });
});

test("topics joined by uid are co-partitioned", () => {
  const cat = loadTopicCatalog(undefined, {});
  const byUid = cat.topics.filter((t) => t.key === "uid");
  assert.ok(byUid.length >= 2);
  assert.equal(
    new Set(byUid.map((t) => t.partitions)).size,
    1,
    byUid.map((t) => `${t.name}:${t.partitions}`).join(" "),
  );
});

test("keys are read from records by their path", () => {
  const cat = loadTopicCatalog(undefined, {});
  assert.equal(keyReader(cat.topic("events.coin"))(SAMPLES.CoinTxn), "100000017");
  assert.equal(keyReader(cat.topic("signals.risk"))(SAMPLES.RiskSignal), "100000999");
  assert.equal(keyReader(cat.topic("logs.access"))(SAMPLES.AccessLog), "gift-svc");
});

test("replication per environment: local by default, cluster and production replicated with min.insync.replicas 2", () => {
  const local = loadTopicCatalog(undefined, {});
  assert.equal(local.environment, "local");
  assert.equal(local.topic("logs.app").replicationFactor, 1);
  assert.equal(topicConfigs(local.topic("logs.app"))["min.insync.replicas"], undefined, "the broker's default");
  for (const env of [{ WEIR_TOPICS_ENV: "cluster" }, { WEIR_TOPICS_ENV: "production" }]) {
    const cat = loadTopicCatalog(undefined, env);
    for (const t of cat.topics) {
      assert.equal(t.replicationFactor, 3, t.name);
      assert.equal(topicConfigs(t)["min.insync.replicas"], "2", t.name);
    }
  }
  assert.equal(loadTopicCatalog(undefined, {}, undefined, "cluster").environment, "cluster");
  assert.throws(() => loadTopicCatalog(undefined, { WEIR_TOPICS_ENV: "staging" }), /no environment staging/);
});

test("WEIR_TOPIC_REPLICATION_FACTOR overrides the default", () => {
  assert.equal(
    loadTopicCatalog(undefined, { WEIR_TOPIC_REPLICATION_FACTOR: "3" }).topic("logs.app").replicationFactor,
    3,
  );
  assert.throws(() => loadTopicCatalog(undefined, { WEIR_TOPIC_REPLICATION_FACTOR: "three" }), ConfigError);
});

test("mistakes name the file, line and field", () => {
  const cases: [string, RegExp][] = [
    [
      "topics:\n  t1:\n    schema: Nope\n    partitions: 1\n    description: x\n",
      /:3:5: topics\.t1\.schema: no schema Nope/,
    ],
    [
      "topics:\n  t1:\n    schema: AccessLog\n    key: roomId\n    partitions: 1\n    description: x\n",
      /:4:5: topics\.t1\.key: roomId may be null/,
    ],
    [
      "topics:\n  t1:\n    schema: AccessLog\n    key: nope\n    partitions: 1\n    description: x\n",
      /topics\.t1\.key: nope is not a field of the record/,
    ],
    ["topics:\n  t1:\n    schema: CoinTxn\n    partitions: 0\n    description: x\n", /:4:5: topics\.t1\.partitions: /],
    [
      "topics:\n  t1:\n    schema: CoinTxn\n    partitions: 1\n    retention: 2 weeks\n    description: x\n",
      /topics\.t1\.retention: /,
    ],
    [
      "topics:\n  t1:\n    schema: CoinTxn\n    partitions: 1\n    cleanup: compact\n    description: x\n",
      /topics\.t1\.cleanup: a compacted topic needs a key/,
    ],
    [
      "topics:\n  t1:\n    schema: CoinTxn\n    partitions: 1\n    partition: 2\n    description: x\n",
      /:5:5: topics\.t1\.partition: unknown field/,
    ],
    [
      "topics:\n  t1:\n    schema: DeviceReport\n    key: build.model\n    partitions: 1\n",
      /topics\.t1\.description: /,
    ],
  ];
  for (const [text, expected] of cases) {
    assert.throws(
      () => loadTopicCatalog(catalogFile(text), {}),
      (e: unknown) => e instanceof ConfigError && expected.test(e.message),
      `${expected}`,
    );
  }
  // A nested key path that exists and is never null is fine.
  const ok = loadTopicCatalog(
    catalogFile(
      "topics:\n  t1:\n    schema: DeviceReport\n    key: build.model\n    partitions: 1\n    description: x\n",
    ),
    {},
  );
  assert.equal(keyReader(ok.topic("t1"))(SAMPLES.DeviceReport), "sdk_gphone_x86");
});

test("durations", () => {
  assert.equal(durationMs("90m"), 5_400_000);
  assert.equal(durationMs("12h"), 43_200_000);
  assert.equal(durationMs("forever"), -1);
  assert.throws(() => durationMs("7 days"));
});
