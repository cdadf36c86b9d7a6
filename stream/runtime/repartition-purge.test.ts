import assert from "node:assert/strict";
import { test } from "node:test";
import { FakeKafkaError } from "../testing/fake-kafka.ts";
import { RepartitionPurge, type RepartitionPurgeContext } from "./repartition-purge.ts";

const REPARTITION = "app-by-key-repartition";

function purge(intervalMs: number, fail: () => Error | null = () => null) {
  const deleted: Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }> = [];
  const results: string[] = [];
  const warnings: string[] = [];
  const ctx: RepartitionPurgeContext = {
    admin: {
      async deleteRecords(topic, partitions) {
        const e = fail();
        if (e) throw e;
        deleted.push({ topic, partitions });
      },
    },
    repartitionTopics: new Set([REPARTITION]),
    intervalMs,
    log: { debug() {}, warn: ((_: unknown, msg: string) => warnings.push(msg)) as never },
    purges: { inc: ({ result }) => results.push(result) },
  };
  return { p: new RepartitionPurge(ctx, 0), deleted, results, warnings };
}

const at = (topic: string, partition: number, offset: number) => ({ topic, partition, offset: String(offset) });

test("purges only repartition topics, up to the highest committed offset, at most once per interval", async () => {
  const { p, deleted, results } = purge(1000);
  p.committed([at(REPARTITION, 0, 5), at("in", 0, 9), at("app-counts-changelog", 0, 3)], 500);
  await p.settled();
  assert.deepEqual(deleted, [], "not before the interval has passed");
  p.committed([at(REPARTITION, 0, 7), at(REPARTITION, 1, 2)], 1000);
  await p.settled();
  assert.deepEqual(deleted, [
    {
      topic: REPARTITION,
      partitions: [
        { partition: 0, offset: "7" },
        { partition: 1, offset: "2" },
      ],
    },
  ]);
  p.committed([at(REPARTITION, 0, 9)], 1500);
  await p.settled();
  assert.equal(deleted.length, 1, "throttled");
  p.committed([], 2000);
  await p.settled();
  assert.deepEqual(deleted[1], { topic: REPARTITION, partitions: [{ partition: 0, offset: "9" }] });
  assert.deepEqual(results, ["ok", "ok"]);
});

test("offset 0 (nothing read) is never purged; interval 0 disables the purge", async () => {
  const a = purge(1000);
  a.p.committed([at(REPARTITION, 0, 0)], 5000);
  await a.p.settled();
  assert.deepEqual(a.deleted, []);
  const b = purge(0);
  b.p.committed([at(REPARTITION, 0, 10)], 5000);
  await b.p.settled();
  assert.deepEqual(b.deleted, []);
});

test("a failed purge is logged and counted, never thrown, and its offsets are tried again at the next purge", async () => {
  let failing = true;
  const { p, deleted, results, warnings } = purge(1000, () =>
    failing ? new FakeKafkaError("TOPIC_AUTHORIZATION_FAILED") : null,
  );
  p.committed([at(REPARTITION, 0, 4), at(REPARTITION, 1, 6)], 1000);
  await p.settled();
  assert.deepEqual(results, ["failed"]);
  assert.match(warnings[0] ?? "", /purge of repartition topic app-by-key-repartition failed/);
  failing = false;
  p.committed([at(REPARTITION, 1, 8)], 2000);
  await p.settled();
  assert.deepEqual(deleted, [
    {
      topic: REPARTITION,
      partitions: [
        { partition: 0, offset: "4" },
        { partition: 1, offset: "8" },
      ],
    },
  ]);
  assert.deepEqual(results, ["failed", "ok"]);
});
