// The checkpoint's steps on their own, as Quix's test_checkpointing.py tests its Checkpoint: fake
// sinks, producers and a group, a journal of what each did, and the order asserted.
import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import { codecFor } from "../../schemas/codec.ts";
import type { TopicPartitionOffset } from "../kafka/stream-client.ts";
import { FakeKafkaCluster, FakeKafkaError } from "../testing/fake-kafka.ts";
import { FakeSink } from "../testing/fake-sink.ts";
import { Checkpoint, type CheckpointedTask } from "./checkpoint.ts";
import { RecordCollector } from "./record-collector.ts";

type Snapshot = ReturnType<CheckpointedTask["task"]["snapshot"]>;

interface Harness {
  cluster: FakeKafkaCluster;
  sink: FakeSink<{ n: number }>;
  shared: RecordCollector;
  failed: Array<{ id: string; error: string; timedOut: boolean }>;
  warnings: string[];
  commitError: Error | null;
  checkpoint: Checkpoint<CheckpointedTask>;
}

async function harness(options: { refuse?: (v: { n: number }) => string | null; timeoutMs?: number } = {}) {
  const cluster = new FakeKafkaCluster({ transactionTimeoutMs: options.timeoutMs ?? 60_000 });
  for (const t of ["in", "out", "changelog", "dlq"]) cluster.createTopic(t, 1);
  const sink = new FakeSink<{ n: number }>("store", cluster.journal, options.refuse);
  const shared = new RecordCollector(await cluster.client("w").producer(), 100);
  const warnings: string[] = [];
  const h: Harness = {
    cluster,
    sink,
    shared,
    failed: [],
    warnings,
    commitError: null,
    checkpoint: undefined as unknown as Checkpoint<CheckpointedTask>,
  };
  h.checkpoint = new Checkpoint<CheckpointedTask>({
    appId: "app",
    dlqTopic: "dlq",
    log: pino({ level: "warn" }, { write: (l: string) => warnings.push(JSON.parse(l).msg) }),
    sinks: new Set([sink]),
    shared,
    consumer: {
      commitOffsets: async (offsets: TopicPartitionOffset[]) => {
        if (h.commitError) throw h.commitError;
        cluster.journal.push(`commit-offsets ${offsets.map((o) => `${o.topic}#${o.partition}=${o.offset}`)}`);
      },
    },
    keepMembership: async () => {},
    taskFailed: async (t, e, timedOut) => {
      h.failed.push({ id: t.task.id, error: (e as FakeKafkaError).type, timedOut });
    },
    commitSeconds: { observe: () => {} },
  });
  return h;
}

function task(id: string, snapshot: Snapshot, producer: CheckpointedTask["producer"] = null): CheckpointedTask {
  return {
    task: { id, partition: 0, snapshot: () => snapshot },
    producer,
    output: producer ? new RecordCollector(producer, 100) : null,
    dirty: producer !== null,
    committedAt: Date.now(),
  };
}

const changelog = [{ topic: "changelog", key: "k", value: Buffer.from("1") }];
const record = (topic: string, n: number) => ({ topic, partition: 0, key: `k${n}`, value: Buffer.from(`${n}`), ts: 0 });

test("steps in order: sinks acknowledged, records outside transactions acknowledged, each transaction, the group commit", async () => {
  const h = await harness();
  const producer = await h.cluster.client("w").transactionalProducer("app-0_0");
  const stateful = task("0_0", { changelog, offsets: [{ topic: "in", offset: "5" }] }, producer);
  stateful.output?.add(record("out", 1));
  const stateless = task("1_0", { changelog: [], offsets: [{ topic: "in", offset: "7" }] });
  h.sink.write({ key: null, value: { n: 1 }, ts: 0 });
  h.shared.add(record("out", 2));
  h.cluster.journal.length = 0;
  await h.checkpoint.commit([stateful, stateless]);
  assert.deepEqual(h.cluster.journal, [
    "sink-flush store",
    "sink-ack store",
    "send out",
    "ack out",
    "tx-send app-0_0 out",
    "tx-send app-0_0 changelog",
    "tx-offsets app-0_0 in#0=5",
    "tx-commit app-0_0",
    "commit-offsets in#0=7",
  ]);
  assert.equal(stateful.dirty, false);
});

test("a task that sent nothing since its last commit has no transaction open: nothing to commit", async () => {
  const h = await harness();
  const producer = await h.cluster.client("w").transactionalProducer("app-0_0");
  const clean = { ...task("0_0", { changelog: [], offsets: [{ topic: "in", offset: "5" }] }, producer), dirty: false };
  h.cluster.journal.length = 0;
  await h.checkpoint.commit([clean]);
  assert.deepEqual(h.cluster.journal, ["sink-flush store", "sink-ack store"]);
});

test("records a sink refused become dead letters with the sink's ids, acknowledged before anything commits", async () => {
  const h = await harness({ refuse: (v) => (v.n === 2 ? "rejected-by-sink" : null) });
  for (const n of [1, 2]) h.sink.write({ key: null, value: { n }, ts: 0 });
  h.cluster.journal.length = 0;
  await h.checkpoint.commit([task("1_0", { changelog: [], offsets: [{ topic: "in", offset: "2" }] })]);
  assert.deepEqual(h.cluster.journal, [
    "sink-flush store",
    "sink-ack store",
    "send dlq",
    "ack dlq",
    "commit-offsets in#0=2",
  ]);
  const [letter] = h.cluster.records("dlq").map((r) => codecFor("DeadLetter").decode(r.value as Buffer));
  assert.equal(letter?.reason, "rejected-by-sink");
  assert.equal(letter?.raw.toString(), '{"n":2}');
  assert.match(letter?.id ?? "", /^sink:store\/[0-9a-f]{32}\/rejected-by-sink$/);
});

test("a sink whose flush rejects, or a send outside transactions that failed, fails the checkpoint before any commit", async () => {
  const h = await harness();
  h.sink.failNext = new Error("store down for good");
  const offsets = [{ topic: "in", offset: "3" }];
  await assert.rejects(h.checkpoint.commit([task("1_0", { changelog: [], offsets })]), /store down for good/);
  h.cluster.failSendsTo("out", new FakeKafkaError("MESSAGE_TOO_LARGE"));
  h.shared.add(record("out", 1));
  await assert.rejects(h.checkpoint.commit([task("1_0", { changelog: [], offsets })]), /MESSAGE_TOO_LARGE/);
  assert.ok(!h.cluster.journal.some((e) => e.startsWith("commit-offsets")));
});

test("a group commit refused by a rebalance is left to the next checkpoint; any other refusal fails it", async () => {
  const h = await harness();
  const offsets = [{ topic: "in", offset: "3" }];
  h.commitError = new FakeKafkaError("REBALANCE_IN_PROGRESS");
  await h.checkpoint.commit([task("1_0", { changelog: [], offsets })]);
  assert.deepEqual(h.warnings, ["offset commit refused by a rebalancing group; the next checkpoint commits them"]);
  h.commitError = Object.assign(new Error("wrapped"), { cause: new FakeKafkaError("UNKNOWN_MEMBER_ID") });
  await h.checkpoint.commit([task("1_0", { changelog: [], offsets })]);
  h.commitError = new FakeKafkaError("GROUP_AUTHORIZATION_FAILED");
  await assert.rejects(h.checkpoint.commit([task("1_0", { changelog: [], offsets })]), /GROUP_AUTHORIZATION_FAILED/);
});

test("a fenced transaction drops its task; one open past the transaction timeout is reported as timed out", async () => {
  const h = await harness({ timeoutMs: 20 });
  const fenced = await h.cluster.client("old").transactionalProducer("app-0_0");
  await h.cluster.client("new").transactionalProducer("app-0_0"); // another owner fences it
  const expired = await h.cluster.client("w").transactionalProducer("app-0_1");
  await expired.send([record("out", 1)]);
  const a = task("0_0", { changelog, offsets: [{ topic: "in", offset: "1" }] }, fenced);
  const b = task("0_1", { changelog, offsets: [{ topic: "in", offset: "1" }] }, expired);
  await new Promise((r) => setTimeout(r, 40));
  a.committedAt = Date.now(); // a committed a moment ago: its failure is not the timeout's
  await h.checkpoint.commit([a, b]);
  assert.deepEqual(
    h.failed.sort((x, y) => x.id.localeCompare(y.id)),
    [
      { id: "0_0", error: "INVALID_PRODUCER_EPOCH", timedOut: false },
      { id: "0_1", error: "INVALID_PRODUCER_EPOCH", timedOut: true },
    ],
  );
  assert.ok(!h.cluster.journal.some((e) => e.startsWith("tx-commit")));
});
