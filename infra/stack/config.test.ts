import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../schemas/config/yaml-config.ts";
import { kafkaNodes, resolveStackConfig, stackEndpoints } from "./config.ts";

const project = mkdtempSync(join(tmpdir(), "weir-stack-config-"));

test("defaults: loopback ports and .stack under the project root", () => {
  const cfg = resolveStackConfig({}, project);
  assert.equal(cfg.file, undefined);
  assert.equal(cfg.paths.root, join(project, ".stack"));
  assert.equal(cfg.paths.downloads, join(project, ".stack", "downloads"));
  assert.deepEqual(stackEndpoints(cfg), {
    kafkaBrokers: ["127.0.0.1:9092"],
    elasticsearchUrl: "http://127.0.0.1:9200",
    clickhouseUrl: "http://127.0.0.1:8123",
    redisUrl: "redis://127.0.0.1:6379",
  });
  assert.equal(cfg.elasticsearch.heapMax, "1g");
  assert.equal(cfg.redis.maxMemory, "512mb");
});

test("a YAML file and the environment override defaults, environment last", () => {
  const file = join(project, "two.yaml");
  writeFileSync(file, "dir: /tmp/second-stack\nkafka:\n  port: 19092\nclickhouse:\n  httpPort: 18123\n");
  const cfg = resolveStackConfig(
    { WEIR_STACK_CONFIG: file, WEIR_KAFKA_PORT: "29092", WEIR_STACK_DOWNLOADS: "/tmp/dl" },
    project,
  );
  assert.equal(cfg.file, file);
  assert.equal(cfg.kafka.port, 29092);
  assert.equal(cfg.clickhouse.httpPort, 18123);
  assert.equal(resolveStackConfig({ WEIR_REDIS_PORT: "16379" }, project).redis.port, 16379);
  assert.equal(cfg.elasticsearch.port, 9200);
  assert.equal(cfg.paths.root, "/tmp/second-stack");
  assert.equal(cfg.paths.downloads, "/tmp/dl");
});

test("weir-stack.yaml at the project root is picked up without WEIR_STACK_CONFIG", () => {
  const root = mkdtempSync(join(tmpdir(), "weir-stack-root-"));
  writeFileSync(join(root, "weir-stack.yaml"), "elasticsearch:\n  port: 19200\n");
  assert.equal(resolveStackConfig({}, root).elasticsearch.port, 19200);
});

test("a bad port in the file names file, line and field", () => {
  const file = join(project, "bad.yaml");
  writeFileSync(file, "kafka:\n  port: 80\n");
  assert.throws(
    () => resolveStackConfig({ WEIR_STACK_CONFIG: file }, project),
    (e: unknown) => e instanceof ConfigError && /bad\.yaml:2:3: kafka\.port: use a port >= 1024/.test(e.message),
  );
});

test("a bad port in the environment names the variable", () => {
  assert.throws(
    () => resolveStackConfig({ WEIR_ES_PORT: "nine" }, project),
    (e: unknown) => e instanceof ConfigError && /elasticsearch\.port: .*\(from WEIR_ES_PORT\)/.test(e.message),
  );
});

test("two services on one port is an error naming both", () => {
  assert.throws(
    () => resolveStackConfig({ WEIR_CH_TCP_PORT: "9092" }, project),
    (e: unknown) => e instanceof ConfigError && /clickhouse\.tcpPort: port 9092 is also kafka\.port/.test(e.message),
  );
});

test("a cluster: broker i on port + 2i and controllerPort + 2i; every client port an endpoint; collisions named", () => {
  const cfg = resolveStackConfig({ WEIR_STACK_BROKERS: "3", WEIR_STACK_SERVICES: "kafka" }, project);
  assert.equal(cfg.kafka.brokers, 3);
  assert.deepEqual(cfg.services, ["kafka"]);
  assert.deepEqual(kafkaNodes(cfg), [
    { id: 1, port: 9092, controllerPort: 9093 },
    { id: 2, port: 9094, controllerPort: 9095 },
    { id: 3, port: 9096, controllerPort: 9097 },
  ]);
  assert.deepEqual(stackEndpoints(cfg).kafkaBrokers, ["127.0.0.1:9092", "127.0.0.1:9094", "127.0.0.1:9096"]);
  assert.throws(
    () => resolveStackConfig({ WEIR_STACK_BROKERS: "3", WEIR_ES_PORT: "9096" }, project),
    (e: unknown) =>
      e instanceof ConfigError && /elasticsearch\.port: port 9096 is also kafka\.port \(broker 3\)/.test(e.message),
  );
  assert.throws(() => resolveStackConfig({ WEIR_STACK_BROKERS: "9" }, project), ConfigError);
  assert.throws(() => resolveStackConfig({ WEIR_STACK_SERVICES: "kafka,mongodb" }, project), ConfigError);
  assert.deepEqual(resolveStackConfig({ WEIR_STACK_SERVICES: "redis,kafka" }, project).services, ["kafka", "redis"]);
  assert.equal(resolveStackConfig({ WEIR_STACK_SECURITY: "on" }, project).security, true);
});

test("a missing WEIR_STACK_CONFIG file is an error, not silently ignored", () => {
  assert.throws(
    () => resolveStackConfig({ WEIR_STACK_CONFIG: join(project, "nope.yaml") }, project),
    (e: unknown) =>
      e instanceof ConfigError && /nope\.yaml: does not exist \(named by WEIR_STACK_CONFIG\)/.test(e.message),
  );
});
