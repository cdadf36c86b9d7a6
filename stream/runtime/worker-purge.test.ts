// The worker's purge of repartition topics against the in-memory Kafka: records of a repartition
// topic are deleted only after a checkpoint committed them, never past the committed offsets, never
// from input topics or changelogs, and a purge that fails leaves the worker running.
import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import { StreamApp } from "../dsl/app.ts";
import { FakeKafkaCluster, FakeKafkaError } from "../testing/fake-kafka.ts";
import { json } from "../types.ts";
import { StreamWorker } from "./worker.ts";

const APP = "app";
const REPARTITION = `${APP}-by-user-repartition`;
const CHANGELOG = `${APP}-counts-changelog`;

/** Re-keyed by user through a repartition topic, then counted per user (a store with a changelog). */
function app(): StreamApp {
  const a = new StreamApp({ appId: APP, guarantee: "exactly-once", commitInterval: 10 });
  a.stream<undefined, { user: string; n: number }>("in", { serde: json() })
    .repartition({ name: "by-user" })
    .process<{ user: string; count: number }>("counts", (rec, ctx) => {
      const count = ((ctx.store.get(rec.value.user) as number | undefined) ?? 0) + 1;
      ctx.store.put(rec.value.user, count, rec.ts);
      ctx.forward({ key: rec.value.user, value: { user: rec.value.user, count }, ts: rec.ts });
    })
    .to("out", { serde: json() });
  return a;
}

function cluster(): FakeKafkaCluster {
  const c = new FakeKafkaCluster();
  c.createTopic("in", 2);
  c.createTopic("out", 2);
  return c;
}

async function start(c: FakeKafkaCluster, purgeInterval: number) {
  const logs: Array<{ msg: string }> = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const worker = new StreamWorker(app(), { kafka: c.client("w"), logger, purgeInterval });
  await worker.start();
  return { worker, logs };
}

function produce(c: FakeKafkaCluster, from: number, to: number): void {
  const records = [];
  // Event times three days old: with a time-based retention these were the records at risk.
  for (let n = from; n < to; n++) {
    records.push({
      key: String(n),
      value: JSON.stringify({ user: `u${n % 5}`, n }),
      timestamp: Date.now() - 3 * 86_400_000,
    });
  }
  c.produce("in", records);
}

async function until(what: string, check: () => boolean, timeoutMs = 4000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

const counted = (c: FakeKafkaCluster) => c.records("out").length;

/** Walks the journal: every deletion stays at or below what had been committed before it. */
function assertPurgedOnlyCommitted(c: FakeKafkaCluster): number {
  const committed = new Map<string, number>();
  let deletions = 0;
  for (const line of c.journal) {
    const [kind, rest = ""] = line.split(" ", 2);
    if (kind === "tx-offsets" || kind === "commit-offsets") {
      const list = kind === "tx-offsets" ? (line.split(" ")[2] ?? "") : rest;
      for (const item of list.split(",").filter(Boolean)) {
        const [tp, offset] = item.split("=") as [string, string];
        committed.set(tp, Math.max(committed.get(tp) ?? 0, Number(offset)));
      }
    }
    if (kind === "delete-records") {
      for (const item of rest.split(",")) {
        const [tp, offset] = item.split("<") as [string, string];
        assert.ok(tp.startsWith(`${REPARTITION}#`), `only the repartition topic is purged, not ${tp}`);
        assert.ok(Number(offset) <= (committed.get(tp) ?? 0), `${item} was purged past the committed offset`);
        deletions++;
      }
    }
  }
  return deletions;
}

test("repartition records are purged after their commit, up to the committed offsets; inputs and changelogs never", async () => {
  const c = cluster();
  const w = await start(c, 20);
  try {
    assert.equal(c.topicConfig(REPARTITION)?.["retention.ms"], "-1");
    produce(c, 0, 200);
    await until("all counted", () => counted(c) === 200);
    await until("the repartition topic purged to its committed offsets", () =>
      [0, 1].every(
        (p) => c.logStart(REPARTITION, p) > 0 && c.logStart(REPARTITION, p) === c.committed(APP, REPARTITION, p),
      ),
    );
    produce(c, 200, 300);
    await until("all counted", () => counted(c) === 300);
    await until("purged again", () =>
      [0, 1].every((p) => c.logStart(REPARTITION, p) === c.committed(APP, REPARTITION, p)),
    );
    assert.ok(assertPurgedOnlyCommitted(c) >= 4);
    for (const p of [0, 1]) {
      assert.equal(c.logStart("in", p), 0);
      assert.equal(c.logStart(CHANGELOG, p), 0);
    }
    const metrics = await w.worker.metrics.registry.getSingleMetricAsString("weir_stream_repartition_purges_total");
    assert.match(metrics, /result="ok"[^}]*\} [1-9]/);
  } finally {
    await w.worker.stop();
  }
});

test("purge throttled by purgeInterval, and off with 0", async () => {
  const c = cluster();
  const w = await start(c, 0);
  try {
    produce(c, 0, 100);
    await until("all counted", () => counted(c) === 100);
    await new Promise((r) => setTimeout(r, 100)); // several checkpoints
    assert.equal(c.journal.filter((l) => l.startsWith("delete-records")).length, 0);
  } finally {
    await w.worker.stop();
  }
  const c2 = cluster();
  const w2 = await start(c2, 60_000);
  try {
    produce(c2, 0, 100);
    await until("all counted", () => counted(c2) === 100);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(c2.journal.filter((l) => l.startsWith("delete-records")).length, 0, "not before the interval");
  } finally {
    await w2.worker.stop();
  }
});

test("a failing purge is logged and counted; the worker goes on processing and purges once it succeeds", async () => {
  const c = cluster();
  c.failDeleteRecords(new FakeKafkaError("POLICY_VIOLATION", "DeleteRecords refused"));
  const w = await start(c, 20);
  try {
    produce(c, 0, 100);
    await until("all counted", () => counted(c) === 100);
    await until("a failed purge logged", () => w.logs.some((l) => /purge of repartition topic .* failed/.test(l.msg)));
    const metrics = await w.worker.metrics.registry.getSingleMetricAsString("weir_stream_repartition_purges_total");
    assert.match(metrics, /result="failed"[^}]*\} [1-9]/);
    assert.equal(c.logStart(REPARTITION, 0), 0);
    produce(c, 100, 150);
    await until("all counted", () => counted(c) === 150);
    c.failDeleteRecords(null);
    produce(c, 150, 160);
    await until("purged once DeleteRecords works", () => [0, 1].some((p) => c.logStart(REPARTITION, p) > 0));
    await until("all counted", () => counted(c) === 160);
    assertPurgedOnlyCommitted(c);
  } finally {
    await w.worker.stop();
  }
});
