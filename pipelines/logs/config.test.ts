import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError } from "../../schemas/config/yaml-config.ts";
import { DEFAULT_LOGS_CONFIG_FILE, loadLogsConfig, parseLogsConfig } from "./config.ts";
import { DEFAULT_RECORD_FIELDS } from "./pii/config.ts";

function problems(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message;
  }
  assert.fail("no ConfigError");
}

describe("the logs pipeline's configuration", () => {
  test("the default file: the catalog's topics, logs-* indices kept 7 days, weir.logs kept 30, the PII defaults", () => {
    const c = loadLogsConfig(DEFAULT_LOGS_CONFIG_FILE);
    assert.deepEqual(c.topics, { app: "logs.app", access: "logs.access", dlq: "dlq.logs" });
    assert.equal(c.appId, "weir-logs");
    assert.equal(c.stream.commitInterval, 5000);
    assert.equal(c.elasticsearch.indexPrefix, "logs");
    assert.equal(c.elasticsearch.retention, 7 * 86_400_000);
    assert.equal(c.elasticsearch.flushInterval, 250);
    assert.deepEqual(c.elasticsearch.retries, { initialDelay: 200, maxDelay: 10_000 }, "max: unbounded");
    assert.equal(c.clickhouse.retries.max, undefined, "store outages are waited out without limit");
    assert.deepEqual(
      [c.clickhouse.database, c.clickhouse.table, c.clickhouse.retention],
      ["weir", "logs", 30 * 86_400_000],
    );
    assert.equal(c.retention.cron, "23 * * * *");
    assert.deepEqual(c.pii.fields, DEFAULT_RECORD_FIELDS, "the file spells out the defaults");
  });

  test("an empty file is every default", () => {
    const c = parseLogsConfig("{}");
    assert.deepEqual(c, loadLogsConfig(DEFAULT_LOGS_CONFIG_FILE));
  });

  test("WEIR_LOGS_* variables override the fields they name", () => {
    const c = parseLogsConfig("elasticsearch: { indexPrefix: logs }", "x.yaml", {
      WEIR_LOGS_APP_ID: "t-logs",
      WEIR_LOGS_APP_TOPIC: "t.app",
      WEIR_LOGS_ACCESS_TOPIC: "t.access",
      WEIR_LOGS_DLQ_TOPIC: "t.dlq",
      WEIR_LOGS_INDEX_PREFIX: "t_logs",
      WEIR_LOGS_DATABASE: "t_db",
      WEIR_LOGS_RETENTION_CRON: "*/5 * * * *",
      WEIR_LOGS_ES_RETRIES_MAX: "3",
      WEIR_LOGS_CLICKHOUSE_RETRIES_MAX: "unbounded",
    });
    assert.equal(c.appId, "t-logs");
    assert.deepEqual(c.topics, { app: "t.app", access: "t.access", dlq: "t.dlq" });
    assert.equal(c.elasticsearch.indexPrefix, "t_logs");
    assert.equal(c.clickhouse.database, "t_db");
    assert.equal(c.retention.cron, "*/5 * * * *");
    assert.equal(c.elasticsearch.retries.max, 3);
    assert.equal(c.clickhouse.retries.max, undefined);
    const bounded = parseLogsConfig("clickhouse: { retries: { max: 20 } }", "x.yaml", {
      WEIR_LOGS_CLICKHOUSE_RETRIES_MAX: "unbounded",
    });
    assert.equal(bounded.clickhouse.retries.max, undefined, "a variable unbounds what the file bounded");
  });

  test("mistakes name the file, line and field, or the variable", () => {
    const text = [
      "elasticsearch:",
      "  indexPrefix: Logs",
      "  retention: 36h",
      "clickhouse:",
      "  tabel: logs",
      "pii:",
      "  fields:",
      "    AppLog: { whole: { attributes.ssn: ssn } }",
    ].join("\n");
    const m = problems(() => parseLogsConfig(text, "logs.yaml"));
    assert.match(
      m,
      /logs\.yaml:2:\d+: elasticsearch\.indexPrefix: cannot start an index name: it has uppercase letters/,
    );
    assert.match(m, /logs\.yaml:3:\d+: elasticsearch\.retention: whole days/);
    assert.match(m, /logs\.yaml:5:\d+: clickhouse\.tabel: unknown field/);
    assert.match(m, /pii\.fields\.AppLog\.whole\.attributes\.ssn: unknown kind "ssn"/);
    const env = problems(() =>
      parseLogsConfig("{}", "logs.yaml", { WEIR_LOGS_DATABASE: "weir; DROP", WEIR_LOGS_RETENTION_CRON: "99 * * * *" }),
    );
    assert.match(env, /clickhouse\.database: .*\(from WEIR_LOGS_DATABASE\)/);
    assert.match(env, /retention\.cron: a cron expression .*\(from WEIR_LOGS_RETENTION_CRON\)/);
    assert.match(
      problems(() => parseLogsConfig("{}", "logs.yaml", { WEIR_LOGS_ES_RETRIES_MAX: "forever" })),
      /elasticsearch\.retries\.max: a number of retries \(0 or more\), or unbounded \(from WEIR_LOGS_ES_RETRIES_MAX\)/,
    );
    assert.match(
      problems(() => parseLogsConfig("elasticsearch: { retries: { max: -1 } }", "logs.yaml")),
      /logs\.yaml:1:\d+: elasticsearch\.retries\.max: a number of retries/,
    );
    assert.match(
      problems(() => parseLogsConfig("- a list")),
      /expected a mapping/,
    );
  });
});

test("search: the limits and the API's per-token limits, defaults when left out, refused with file, line and field", () => {
  const defaults = parseLogsConfig("appId: x\n");
  assert.equal(defaults.search.limits.maxDepth, 16);
  assert.equal(defaults.search.limits.maxWindow, 31 * 86_400_000);
  assert.deepEqual(defaults.search.api, { rate: 10, burst: 20, concurrency: 4, tails: 4 });
  assert.equal(defaults.search.clickhouse.user, "weir_search");
  const file = loadLogsConfig();
  assert.deepEqual(file.search, defaults.search, "logs.yaml says the defaults");
  const set = parseLogsConfig("search:\n  limits:\n    maxDepth: 8\n    timeout: 5s\n  api:\n    rate: 0.5\n");
  assert.deepEqual([set.search.limits.maxDepth, set.search.limits.timeout, set.search.api.rate], [8, 5000, 0.5]);
  assert.throws(
    () => parseLogsConfig("search:\n  limits:\n    maxDepth: 100\n", "l.yaml"),
    (e: Error) => /l\.yaml:3.*search\.limits\.maxDepth/s.test(e.message),
  );
});
