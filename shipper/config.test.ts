import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../schemas/config/yaml-config.ts";
import { loadShipConfig, parseShipConfig, shipCatalog } from "./config.ts";

function withFile(text: string, f: (path: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "weir-ship-config-"));
  try {
    const path = join(dir, "ship.yaml");
    writeFileSync(path, text);
    f(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("a minimal config gets every default; sizes take units; a source without a type is a file source", () => {
  const c = parseShipConfig({
    channel: { maxBytes: "64MiB", segmentBytes: "1 KiB" },
    sources: [{ name: "a", paths: ["/var/log/*.log"], topic: "logs.app", service: "svc" }],
  });
  assert.equal(c.channel.maxBytes, 64 * 1024 * 1024);
  assert.equal(c.channel.segmentBytes, 1024);
  assert.equal(c.channel.fsync, "interval");
  assert.equal(c.kafka.compression, "lz4");
  assert.equal(c.kafka.transactions, true);
  assert.equal(c.dlq.topic, "dlq.ship");
  const s = c.sources[0];
  assert.equal(s?.type, "file");
  assert.equal(s?.type === "file" ? s.fingerprintBytes : 0, 256);
  assert.equal(s?.format.type, "json");
});

test("errors name the file, line and field", () => {
  withFile(
    `channel:\n  maxBytes: lots\nsources:\n  - name: a\n    paths: ["/x/*.log"]\n    topic: logs.app\n    colour: red\n  - name: a\n    type: stdin\n    route: { field: kind, topics: { x: logs.app } }\n`,
    (path) => {
      assert.throws(
        () => loadShipConfig(path),
        (e: unknown) => {
          assert.ok(e instanceof ConfigError);
          const m = e.message;
          assert.match(m, /ship\.yaml:2:\d+: channel\.maxBytes: a size in bytes/);
          assert.match(m, /ship\.yaml:7:\d+: sources\[0\]\.colour: unknown field/);
          return true;
        },
      );
    },
  );
  withFile(
    `sources:
  - name: a
    paths: ["/x/*.log"]
    topic: logs.app
  - name: a
    type: stdin
    topic: logs.app
`,
    (path) => {
      assert.throws(
        () => loadShipConfig(path),
        (e: unknown) => {
          assert.ok(e instanceof ConfigError);
          assert.match(e.message, /ship\.yaml:5:\d+: sources\[1\]\.name: two sources are named a/);
          return true;
        },
      );
    },
  );
});

test("a source needs a topic or a route, not both", () => {
  assert.throws(() => parseShipConfig({ sources: [{ name: "a", paths: ["/x"] }] }), /topic/);
  assert.throws(
    () =>
      parseShipConfig({
        sources: [{ name: "a", paths: ["/x"], topic: "logs.app", route: { field: "k", topics: { a: "logs.app" } } }],
      }),
    /not both/,
  );
});

test("topics outside the catalog join it with their schema; one that contradicts the catalog is refused", () => {
  const c = parseShipConfig({
    topics: { "team.audit": { schema: "AppLog", key: "service" } },
    sources: [{ name: "a", paths: ["/x"], topic: "team.audit" }],
  });
  const catalog = shipCatalog(c);
  assert.equal(catalog.topic("team.audit").schema, "AppLog");
  assert.equal(catalog.topic("logs.access").schema, "AccessLog");
  assert.throws(() => catalog.topic("nowhere"), /neither in .* nor under topics/);
  const wrong = parseShipConfig({
    topics: { "logs.access": { schema: "AppLog" } },
    sources: [{ name: "a", paths: ["/x"], topic: "logs.access" }],
  });
  assert.throws(() => shipCatalog(wrong), /holds AccessLog, not AppLog/);
});
