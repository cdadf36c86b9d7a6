import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadHotKeysConfig } from "../../pipelines/hotkeys/config.ts";
import { hotKeysConfigCopy } from "./hotkeys-config.ts";

test("the hot-keys copy loads, and every topic, the group and every Redis prefix are the run's own", () => {
  const dir = mkdtempSync(join(tmpdir(), "weir-soak-hotkeys-"));
  try {
    const file = join(dir, "hotkeys.yaml");
    writeFileSync(file, hotKeysConfigCopy("soak-1-hotkeys", "soak-1.", "soak-1:"));
    const c = loadHotKeysConfig(file);
    const original = loadHotKeysConfig();
    assert.equal(c.appId, "soak-1-hotkeys");
    assert.deepEqual(Object.keys(c.dimensions).sort(), Object.keys(original.dimensions).sort());
    assert.deepEqual(Object.keys(c.counters).sort(), Object.keys(original.counters).sort());
    const topics = [
      ...Object.values(c.topics),
      ...Object.values(c.dimensions).flatMap((d) => Object.keys(d.from)),
      ...Object.values(c.counters).map((k) => k.from),
    ];
    assert.ok(topics.length >= 8);
    for (const t of topics) assert.ok(t.startsWith("soak-1."), `${t} is the run's own`);
    for (const k of Object.values(c.counters)) assert.ok(k.prefix?.startsWith("soak-1:weir:"), String(k.prefix));
    // Outside the catalog, each input names its schema: the catalog's for the topic it copies.
    assert.deepEqual(c.schemas, {
      "soak-1.logs.access": "AccessLog",
      "soak-1.events.coin": "CoinTxn",
      "soak-1.events.behavior": "BehaviorEvent",
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
