// `weir simulate --to kafka` against the real broker: every record lands on its catalog topic in
// Avro single-object encoding, keyed as the catalog says; the dirty messages are exactly those the
// ground truth lists, and each fails to decode for the reason it gives.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import type { Admin } from "kafkajs";
import { SIMULATE_DEFAULTS, simulate } from "../../infra/simulator/simulate.ts";
import { keyReader, loadTopicCatalog } from "../../schemas/catalog.ts";
import { CodecError, codecFor } from "../../schemas/codec.ts";
import type { SchemaName } from "../../schemas/types.generated.ts";
import { endpoints, kafkaClient, requireStack, uniqueName } from "../support/stack.ts";

const TOPICS = ["logs.access", "logs.app", "events.coin", "events.behavior", "events.device"];
let admin: Admin;

before(async () => {
  await requireStack();
  admin = kafkaClient().admin();
  await admin.connect();
});
after(async () => admin.disconnect());

async function endOffsets(): Promise<Map<string, Map<number, number>>> {
  const out = new Map<string, Map<number, number>>();
  for (const topic of TOPICS)
    out.set(topic, new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)])));
  return out;
}

test("records land on their catalog topics, keyed by the catalog, decodable; dirty ones fail as the ground truth says", async () => {
  const before = await endOffsets();
  const dir = mkdtempSync(join(tmpdir(), "weir-sim-kafka-"));
  const result = await simulate({
    ...SIMULATE_DEFAULTS,
    seed: 5,
    durationMs: 4000,
    rate: 2500,
    diurnal: false,
    users: 20_000,
    streamers: 500,
    dirty: 0.01,
    to: "kafka",
    out: dir,
    brokers: endpoints.kafkaBrokers,
  });
  const afterOffsets = await endOffsets();
  const truth = readFileSync(join(dir, "ground-truth.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  const dirty = truth.filter((t) => t.kind === "dirty-kafka") as { topic: string; reason: string }[];
  assert.ok(dirty.length > 20, `${dirty.length} dirty messages`);

  const expected = new Map<string, number>();
  for (const s of result.streams) {
    const topic = {
      access: "logs.access",
      app: "logs.app",
      coin: "events.coin",
      behavior: "events.behavior",
      device: "events.device",
    }[s.kind];
    expected.set(topic, (expected.get(topic) ?? 0) + s.events);
  }
  for (const d of dirty) expected.set(d.topic, (expected.get(d.topic) ?? 0) + 1);
  let total = 0;
  for (const topic of TOPICS) {
    let added = 0;
    for (const [p, high] of afterOffsets.get(topic) ?? []) added += high - (before.get(topic)?.get(p) ?? 0);
    assert.equal(added, expected.get(topic), topic);
    total += added;
  }

  // Read exactly what was added, from the offsets noted before the run.
  const catalog = loadTopicCatalog();
  const consumer = kafkaClient().consumer({ groupId: uniqueName("test-sim-reader") });
  const failures = new Map<string, number>();
  let seen = 0;
  let keyMismatches = 0;
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: TOPICS, fromBeginning: false });
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachBatch: async ({ batch }) => {
            const spec = catalog.topic(batch.topic);
            const codec = codecFor(spec.schema as SchemaName);
            const key = keyReader(spec);
            const from = before.get(batch.topic)?.get(batch.partition) ?? 0;
            const to = afterOffsets.get(batch.topic)?.get(batch.partition) ?? 0;
            for (const m of batch.messages) {
              const offset = Number(m.offset);
              if (offset < from || offset >= to) continue;
              seen++;
              try {
                const record = codec.decode(m.value as Buffer);
                if (key(record) !== (m.key?.toString() ?? null)) keyMismatches++;
              } catch (e) {
                assert.ok(e instanceof CodecError, String(e));
                const k = `${batch.topic} ${e.reason}`;
                failures.set(k, (failures.get(k) ?? 0) + 1);
              }
            }
            if (seen >= total) resolve();
          },
        })
        .catch(reject);
      consumer.on(consumer.events.GROUP_JOIN, () => {
        for (const topic of TOPICS)
          for (const [partition, offset] of before.get(topic) ?? [])
            consumer.seek({ topic, partition, offset: String(offset) });
      });
    });
  } finally {
    await consumer.disconnect();
  }
  assert.equal(seen, total);
  assert.equal(keyMismatches, 0);
  const expectedFailures = new Map<string, number>();
  for (const d of dirty)
    expectedFailures.set(`${d.topic} ${d.reason}`, (expectedFailures.get(`${d.topic} ${d.reason}`) ?? 0) + 1);
  assert.deepEqual([...failures.entries()].sort(), [...expectedFailures.entries()].sort());
});
