// The topic catalog against the real broker: create, grow, reconfigure, never shrink, keep settings
// the catalog does not decide.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import kafkajs, { type Admin } from "kafkajs";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";
import { applyTopicPlans, planTopics, readTopicStates, unmanagedTopics } from "../../infra/topics/reconcile.ts";
import { loadTopicCatalog } from "../../schemas/catalog.ts";
import { kafkaClient, requireStack, uniqueName } from "../support/stack.ts";

const dir = mkdtempSync(join(tmpdir(), "weir-topics-"));
const topic = uniqueName("test.catalog");
const stray = uniqueName("test.stray");
let admin: Admin;

function catalog(partitions: number, retention: string) {
  const file = join(dir, `catalog-${partitions}-${retention}.yaml`);
  writeFileSync(
    file,
    `topics:\n  ${topic}:\n    schema: CoinTxn\n    key: uid\n    partitions: ${partitions}\n    retention: ${retention}\n    description: test\n`,
  );
  return loadTopicCatalog(file, {});
}

before(async () => {
  await requireStack();
  admin = kafkaClient().admin();
  await admin.connect();
});

after(async () => {
  await admin.deleteTopics({ topics: [topic, stray] }).catch(() => {});
  await admin.disconnect();
});

test("a missing topic is created as the catalog says; applying again changes nothing", async () => {
  const plans = await planTopics(admin, catalog(2, "1d"));
  assert.deepEqual(plans[0]?.changes, [{ kind: "create" }]);
  await applyTopicPlans(admin, plans);
  const state = (await readTopicStates(admin, [topic])).get(topic);
  assert.equal(state?.partitions, 2);
  assert.equal(state?.configs["retention.ms"], String(86_400_000));
  assert.equal(state?.configs["cleanup.policy"], "delete");
  assert.deepEqual((await planTopics(admin, catalog(2, "1d")))[0]?.changes, []);
});

test("more partitions and another retention are applied; an override the catalog does not decide survives", async () => {
  await admin.alterConfigs({
    validateOnly: false,
    resources: [
      {
        type: kafkajs.ConfigResourceTypes.TOPIC,
        name: topic,
        configEntries: [
          { name: "retention.ms", value: String(86_400_000) },
          { name: "max.message.bytes", value: "2097152" },
        ],
      },
    ],
  });
  const plans = await planTopics(admin, catalog(4, "2d"));
  assert.deepEqual(plans[0]?.changes, [
    { kind: "add-partitions", from: 2, to: 4 },
    { kind: "set-config", key: "retention.ms", from: String(86_400_000), to: String(2 * 86_400_000) },
  ]);
  await applyTopicPlans(admin, plans);
  const state = (await readTopicStates(admin, [topic])).get(topic);
  assert.equal(state?.partitions, 4);
  assert.equal(state?.configs["retention.ms"], String(2 * 86_400_000));
  assert.equal(state?.configs["max.message.bytes"], "2097152");
});

test("fewer partitions in the catalog is a conflict, never applied", async () => {
  const plans = await planTopics(admin, catalog(1, "2d"));
  assert.equal(plans[0]?.changes[0]?.kind, "conflict");
  assert.match(JSON.stringify(plans[0]?.changes), /cannot remove partitions/);
  await applyTopicPlans(admin, plans);
  assert.equal((await readTopicStates(admin, [topic])).get(topic)?.partitions, 4);
});

test("topics the catalog does not name are listed as unmanaged, and never touched", async () => {
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic: stray, numPartitions: 1, replicationFactor: 1 }],
  });
  const cat = catalog(4, "2d");
  const unmanaged = await unmanagedTopics(admin, cat);
  assert.ok(unmanaged.includes(stray));
  assert.ok(!unmanaged.includes(topic));
  assert.ok(!unmanaged.some((t) => t.startsWith("__")));
});

test("weir topics describe --json: the project's catalog matches the stack's broker (weir stack up applied it)", () => {
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, "cli", "weir.mjs"), "topics", "describe", "--json"], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { topics: { name: string; broker: { exists: boolean }; changes: unknown[] }[] };
  assert.ok(out.topics.length >= 14);
  for (const t of out.topics) {
    assert.equal(t.broker.exists, true, t.name);
    assert.deepEqual(t.changes, [], t.name);
  }
});
