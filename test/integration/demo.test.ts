// The README's first quickstart command runs `weir demo`: it must keep working.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { before, test } from "node:test";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";
import { requireStack } from "../support/stack.ts";

before(requireStack);

test("weir demo: simulated traffic through Kafka into Elasticsearch and ClickHouse, every access record in both", () => {
  const r = spawnSync(
    process.execPath,
    [join(PROJECT_ROOT, "cli", "weir.mjs"), "demo", "--duration", "15s", "--seed", "3"],
    { encoding: "utf8", timeout: 300_000 },
  );
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  const produced = Number(/access (\d+)/.exec(r.stdout)?.[1]);
  assert.ok(produced > 1000, r.stdout);
  assert.match(r.stdout, new RegExp(`Elasticsearch\\s+${produced} documents`));
  assert.match(r.stdout, new RegExp(`ClickHouse\\s+${produced} rows`));
  assert.match(r.stdout, new RegExp(`committed\\s+${produced} offsets`));
  assert.match(r.stdout, /round trip complete/);
  // The health pipeline ran on the same traffic and wrote its final per-second rows.
  const seconds = Number(/health: (\d+) final 1 s windows/.exec(r.stdout)?.[1]);
  assert.ok(seconds > 0, r.stdout);
});
