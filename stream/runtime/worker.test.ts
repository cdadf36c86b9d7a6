// The worker against an in-memory Kafka (stream/testing/fake-kafka.ts), as Kafka Streams'
// TaskManagerTest and Quix's test_checkpointing.py test theirs: the checkpoint order, a sink
// refusing records or failing, a rebalance during a checkpoint, fencing when a task is taken over,
// restore from the changelogs, and the transaction timeout. No broker; each test takes milliseconds
// to a second. The commit order is checked where it matters: at every commit, every input record
// below the committed offset must already have reached its sink, its output topic and the DLQ.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import pino from "pino";
import { codecFor } from "../../schemas/codec.ts";
import { StreamApp } from "../dsl/app.ts";
import { partitionFor } from "../kafka/partitioner.ts";
import { SinkFailedError } from "../sink.ts";
import { FakeKafkaCluster, FakeKafkaError, type FakeStreamClient } from "../testing/fake-kafka.ts";
import { FakeSink } from "../testing/fake-sink.ts";
import { json } from "../types.ts";
import { Windows } from "../windows/spec.ts";
import { MAX_REOPENS_IN_A_ROW } from "./assigned-tasks.ts";
import { StreamWorker } from "./worker.ts";

interface Ev {
  n: number;
}

interface Counted {
  key: string;
  count: number;
  n: number;
}

const IN = "in";
const OUT = "out";
const DLQ = "app-dlq";
const APP = "app";
const CHANGELOG = `${APP}-counts-changelog`;
const KEYS = ["a", "b", "c", "d", "e", "f", "g"];
const keyOf = (n: number) => KEYS[n % KEYS.length] as string;
const deadLetters = codecFor("DeadLetter");

function cluster(options: ConstructorParameters<typeof FakeKafkaCluster>[0] = {}, partitions = 2): FakeKafkaCluster {
  const c = new FakeKafkaCluster(options);
  c.createTopic(IN, partitions);
  c.createTopic(OUT, partitions);
  return c;
}

/** A stateful topology: a running count per key (a store with a changelog), to a topic and a sink. */
function countingApp(sink: FakeSink<Counted> | null, commitInterval = 10): StreamApp {
  const app = new StreamApp({ appId: APP, dlqTopic: DLQ, guarantee: "exactly-once", commitInterval });
  const counted = app.stream<undefined, Ev>(IN, { serde: json() }).process<Counted>("counts", (rec, ctx) => {
    const key = rec.key as string;
    const count = ((ctx.store.get(key) as number | undefined) ?? 0) + 1;
    ctx.store.put(key, count, rec.ts);
    ctx.forward({ key, value: { key, count, n: rec.value.n }, ts: rec.ts });
  });
  counted.to(OUT, { serde: json() });
  if (sink) counted.to(sink);
  return app;
}

/** A stateless topology: no transaction, offsets committed through the group (at least once). */
function copyingApp(sink: FakeSink<Ev>): StreamApp {
  const app = new StreamApp({ appId: APP, dlqTopic: DLQ, guarantee: "at-least-once", commitInterval: 10 });
  const copied = app.stream<undefined, Ev>(IN, { serde: json() }).map((v) => ({ n: v.n }));
  copied.to(OUT, { serde: json() });
  copied.to(sink);
  return app;
}

interface Running {
  worker: StreamWorker;
  client: FakeStreamClient;
  logs: Array<{ msg: string; [k: string]: unknown }>;
}

async function start(c: FakeKafkaCluster, name: string, app: StreamApp, metricsPort: number | null = null) {
  const logs: Running["logs"] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const client = c.client(name);
  const worker = new StreamWorker(app, { kafka: client, logger, metricsPort });
  await worker.start();
  return { worker, client, logs } satisfies Running;
}

function produce(c: FakeKafkaCluster, from: number, to: number): void {
  const records = [];
  for (let n = from; n < to; n++) records.push({ key: keyOf(n), value: JSON.stringify({ n }) });
  c.produce(IN, records);
}

async function until(what: string, check: () => boolean, timeoutMs = 4000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/**
 * A store outage while records keep coming: the checkpoint waits for the sink, and the consumer
 * waits with a batch for the worker, so the member cannot rejoin its group meanwhile.
 */
async function stallOnSink(
  c: FakeKafkaCluster,
  w: Running,
  sink: Pick<FakeSink<never>, "hold" | "flushesHeld">,
  from: number,
  to: number,
) {
  sink.hold();
  produce(c, from, to);
  await until("a checkpoint held by the sink", () => sink.flushesHeld > 0);
  produce(c, to, to + 10);
  await until("a batch waiting behind the checkpoint", () => w.client.batchesInFlight() > 0);
}

function committedToEnd(c: FakeKafkaCluster): boolean {
  const ends = Array.from({ length: c.partitionCount(IN) ?? 0 }, () => 0);
  for (const r of c.records(IN)) ends[r.partition] = r.offset + 1;
  return ends.every((end, p) => (c.committed(APP, IN, p) ?? 0) >= end);
}

function committedOffsets(c: FakeKafkaCluster): Array<number | undefined> {
  return Array.from({ length: c.partitionCount(IN) ?? 0 }, (_, p) => c.committed(APP, IN, p));
}

const jsonOf = (b: Buffer | null) => JSON.parse(b?.toString("utf8") ?? "null");

function decodable(b: Buffer | null): number | null {
  try {
    return jsonOf(b).n;
  } catch {
    return null;
  }
}

/**
 * At every commit: each input record below the committed offset has its output in the output topic
 * (visible to read_committed readers), is acknowledged by the sink (or refused by it and then in
 * the DLQ), and a record that could not be decoded is in the DLQ. Returns the violations found.
 */
function watchCommits(
  c: FakeKafkaCluster,
  sinks: () => Array<{ acknowledged: Array<{ value: { n: number } }> }>,
): string[] {
  const violations: string[] = [];
  c.onCommit = (group, offsets) => {
    if (group !== APP) return;
    const outputs = new Set(c.records(OUT).map((r) => jsonOf(r.value).n as number));
    const letters = c.records(DLQ).map((r) => deadLetters.decode(r.value as Buffer));
    const acked = new Set(sinks().flatMap((s) => s.acknowledged.map((r) => r.value.n)));
    for (const o of offsets) {
      if (o.topic !== IN) continue;
      for (const r of c.records(IN)) {
        if (r.partition !== o.partition || r.offset >= Number(o.offset)) continue;
        const where = `${IN}#${r.partition}@${r.offset} committed`;
        const n = decodable(r.value);
        if (n === null) {
          if (!letters.some((d) => d.origin.offset === r.offset && d.origin.partition === r.partition))
            violations.push(`${where} before its dead letter reached the DLQ`);
          continue;
        }
        if (!outputs.has(n)) violations.push(`${where} before its output reached ${OUT}`);
        const refused = letters.some((d) => d.raw.toString().includes(`"n":${n}}`));
        if (sinks().length > 0 && !acked.has(n) && !refused)
          violations.push(`${where} before the sink acknowledged it (or refused it and its dead letter was written)`);
      }
    }
  };
  return violations;
}

/** Exactly once: per key, the counts in the output topic are 1, 2, ..., one for each input. */
function assertCountedOnce(c: FakeKafkaCluster, total: number): void {
  const counts = new Map<string, number[]>();
  for (const r of c.records(OUT)) {
    const v = jsonOf(r.value) as Counted;
    counts.set(v.key, [...(counts.get(v.key) ?? []), v.count]);
  }
  const inputs = c.records(IN).filter((r) => decodable(r.value) !== null);
  assert.equal(inputs.length, total);
  for (const key of KEYS) {
    const expected = inputs.filter((r) => r.key === key).length;
    const got = counts.get(key) ?? [];
    assert.deepEqual(
      got,
      Array.from({ length: expected }, (_, i) => i + 1),
      `counts of ${key}`,
    );
  }
}

test("checkpoint order with transactions: the sink acknowledges, then the changelog, outputs and offsets commit together", async () => {
  const c = cluster({ ackDelayMs: 3 });
  const sink = new FakeSink<Counted>("store", c.journal);
  const violations = watchCommits(c, () => [sink]);
  const a = await start(c, "a", countingApp(sink));
  try {
    produce(c, 0, 150);
    c.produce(IN, [{ key: "a", value: "{not json", partition: 0 }]);
    produce(c, 150, 300);
    await until("offsets committed to the end", () => committedToEnd(c));
  } finally {
    await a.worker.stop();
  }
  assert.deepEqual(violations, []);
  // Each transaction that carries changelog records: the sink's flush was acknowledged before it began.
  const j = c.journal;
  const changelogSends = j.flatMap((e, i) => (e.startsWith("tx-send") && e.includes(CHANGELOG) ? [i] : []));
  assert.ok(changelogSends.length > 0);
  for (const i of changelogSends) {
    const lastSinkEvent = j.slice(0, i).findLast((e) => e.startsWith("sink-"));
    assert.equal(lastSinkEvent, "sink-ack store", `journal before ${j[i]}: ${j.slice(Math.max(0, i - 6), i + 1)}`);
    const id = (j[i] as string).split(" ")[1];
    const commit = j.indexOf(`tx-commit ${id}`, i);
    assert.ok(commit > i && j[commit - 1]?.startsWith(`tx-offsets ${id}`), `offsets commit with ${id}'s transaction`);
  }
  assert.equal(c.records(DLQ).length, 1);
  assertCountedOnce(c, 300);
});

test("checkpoint order without transactions: the sink and the outputs are acknowledged before the group commit", async () => {
  const c = cluster({ ackDelayMs: 3 });
  const sink = new FakeSink<Ev>("store", c.journal);
  const violations = watchCommits(c, () => [sink]);
  const a = await start(c, "a", copyingApp(sink));
  try {
    for (let i = 0; i < 300; i += 30) {
      produce(c, i, i + 30);
      await new Promise((r) => setTimeout(r, 5));
    }
    await until("offsets committed to the end", () => committedToEnd(c));
  } finally {
    await a.worker.stop();
  }
  assert.deepEqual(violations, []);
  assert.ok(c.journal.some((e) => e.startsWith("commit-offsets")));
  assert.ok(!c.journal.some((e) => e.startsWith("tx-")), "a stateless at-least-once task uses no transaction");
});

test("a sink refusing records: each goes to the DLQ under an id of its own, before the offsets commit; a failed flush stops the worker", async () => {
  const c = cluster();
  const refuse = (v: Ev) => (v.n % 25 === 7 ? "rejected-by-sink" : null);
  const sink = new FakeSink<Ev>("store", c.journal, refuse);
  const sinks = [sink];
  const violations = watchCommits(c, () => sinks);
  const a = await start(c, "a", copyingApp(sink));
  produce(c, 0, 200);
  await until("offsets committed to the end", () => committedToEnd(c));
  assert.deepEqual(violations, []);
  const refused = () => c.records(DLQ).map((r) => deadLetters.decode(r.value as Buffer));
  assert.deepEqual(
    refused()
      .map((d) => JSON.parse(d.raw.toString()).n)
      .sort((x, y) => x - y),
    [7, 32, 57, 82, 107, 132, 157, 182],
  );
  for (const d of refused()) {
    assert.equal(d.reason, "rejected-by-sink");
    assert.equal(d.component, APP);
    assert.match(d.id, /^sink:store\/[0-9a-f]{32}\/rejected-by-sink$/);
    assert.equal(d.origin.offset, null);
  }
  assert.equal(new Set(refused().map((d) => d.id)).size, 8);

  // The store fails for good: the flush rejects, nothing more is committed, the worker stops.
  const before = committedOffsets(c);
  sink.failNext = new Error("the store refuses every request");
  produce(c, 200, 260);
  const failed = await a.worker.done;
  assert.equal(failed?.message, "the store refuses every request");
  // Stopped by the worker itself (kafkajs would retry an error thrown to it, and restart the consumer).
  assert.ok(failed instanceof SinkFailedError && failed.sink === "store", `${failed?.name}`);
  assert.deepEqual(committedOffsets(c), before);

  // Its successor replays from the last commit: a record refused again has the same id.
  const sink2 = new FakeSink<Ev>("store", c.journal, refuse);
  sinks.push(sink2);
  const b = await start(c, "b", copyingApp(sink2));
  try {
    await until("offsets committed to the end", () => committedToEnd(c));
  } finally {
    await b.worker.stop();
  }
  // One dead letter per refused record (207, 232, 257 replayed by b), its id derived from the record.
  const ns = refused().map((d) => JSON.parse(d.raw.toString()).n as number);
  assert.deepEqual(
    ns.sort((x, y) => x - y),
    [7, 32, 57, 82, 107, 132, 157, 182, 207, 232, 257],
  );
  for (const d of refused()) {
    const digest = createHash("sha256").update(d.raw).digest("hex").slice(0, 32);
    assert.equal(d.id, `sink:store/${digest}/rejected-by-sink`);
  }
  assert.deepEqual(violations, []);
});

test("a store down: /health is 503 naming the sink while the worker waits; a stop during it gives up after the grace, committing nothing the store has not acknowledged", async () => {
  const c = cluster();
  const sink = new FakeSink<Ev>("store", c.journal);
  const logs: Array<{ msg: string; [k: string]: unknown }> = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const client = c.client("a");
  const worker = new StreamWorker(copyingApp(sink), { kafka: client, logger, metricsPort: 0, stopGrace: 300 });
  await worker.start();
  const a: Running = { worker, client, logs };
  produce(c, 0, 100);
  await until("offsets committed to the end", () => committedToEnd(c));
  const before = committedOffsets(c);
  sink.unhealthy =
    "4 tries failed in a row for 2.1 s, 60 records wait (retried without limit); last error: ECONNREFUSED";
  await stallOnSink(c, a, sink, 100, 160);
  const h = worker.healthy();
  assert.equal(h.ok, false);
  assert.deepEqual(h.detail.sinks, { store: sink.unhealthy });
  const res = await fetch(`http://127.0.0.1:${worker.metricsPort}/health`);
  assert.equal(res.status, 503);
  assert.match(await res.text(), /"sinks":\{"store":"4 tries failed in a row/);

  const stopping = Date.now();
  await worker.stop();
  assert.ok(Date.now() - stopping < 5000, `stop() took ${Date.now() - stopping} ms`);
  assert.equal(await worker.done, null, "a stop, not a failure");
  assert.ok(sink.closed);
  assert.ok(logs.some((l) => /did not acknowledge within the grace/.test(l.msg)));
  assert.deepEqual(committedOffsets(c), before, "nothing the store did not acknowledge is committed");
  assert.equal(sink.acknowledged.length, 100);
});

test("a rebalance during a checkpoint: the group refuses the offset commit; the next checkpoint commits, nothing is lost", async () => {
  const c = cluster();
  const sinkA = new FakeSink<Ev>("store", c.journal);
  const sinkB = new FakeSink<Ev>("store", c.journal);
  const violations = watchCommits(c, () => [sinkA, sinkB]);
  const a = await start(c, "a", copyingApp(sinkA));
  let b: Running | null = null;
  try {
    produce(c, 0, 100);
    await until("offsets committed to the end", () => committedToEnd(c));
    await stallOnSink(c, a, sinkA, 100, 190); // a store outage: a cannot rejoin meanwhile
    b = await start(c, "b", copyingApp(sinkB)); // its join starts a rebalance that waits for a
    await until("the group rebalancing", () => c.group(APP).rebalancing);
    sinkA.release();
    await until("the refused commit", () => a.logs.some((l) => l.msg.startsWith("offset commit refused")));
    await until("both members assigned", () => a.worker.healthy().ok && (b?.worker.tasks().length ?? 0) > 0);
    produce(c, 200, 300);
    await until("offsets committed to the end", () => committedToEnd(c));
    assert.equal(a.worker.healthy().ok, true, "the worker whose commit was refused goes on");
  } finally {
    sinkA.release();
    await b?.worker.stop();
    await a.worker.stop();
  }
  const refusal = a.logs.find((l) => l.msg.startsWith("offset commit refused"));
  assert.match(String(refusal?.err), /REBALANCE_IN_PROGRESS/);
  const seen = new Set([...sinkA.acknowledged, ...sinkB.acknowledged].map((r) => r.value.n));
  assert.equal(seen.size, 300, "every record reached one sink or the other (replays are idempotent writes)");
  assert.deepEqual(violations, []);
});

test("fencing: a task taken over from a stalled owner; the old producer is fenced, the new owner restores and resumes from the committed offsets", async () => {
  const c = cluster({ rebalanceTimeoutMs: 30 }, 1);
  const sinkA = new FakeSink<Counted>("store", c.journal);
  const sinkB = new FakeSink<Counted>("store", c.journal);
  const a = await start(c, "a", countingApp(sinkA));
  let b: Running | null = null;
  try {
    produce(c, 0, 100);
    await until("offsets committed to the end", () => committedToEnd(c));
    const [committed] = committedOffsets(c);
    await stallOnSink(c, a, sinkA, 100, 190); // its transaction open: the group drops a
    b = await start(c, "b", countingApp(sinkB));
    await until("b running the task", () => b?.worker.tasks()[0]?.state === "running");
    await until("offsets committed to the end", () => committedToEnd(c));
    // b fenced a's producer (a's open transaction aborted), restored the counts, began at the commit.
    const fence = c.journal.indexOf(`fence ${APP}-0_0 epoch 1`);
    assert.ok(fence > 0 && c.journal.indexOf(`tx-abort ${APP}-0_0`) > fence, "a's transaction aborted by the fence");
    const running: Running["logs"][number] | undefined = b.logs.find((l) => l.msg === "task running");
    assert.deepEqual(running?.from, { [IN]: String(committed) }, "b resumes from the last commit");
    assert.ok(((running?.entries as number[] | undefined)?.[0] ?? 0) > 0, "b restored the counts");
    sinkA.release(); // a wakes up: its commit is refused (fenced), it drops the task and rejoins
    await until("a dropped its task", () => a.logs.some((l) => l.msg.includes("dropping it")));
    produce(c, 200, 300);
    await until("offsets committed to the end", () => committedToEnd(c));
    assert.equal(a.worker.healthy().ok, true, "a fenced worker is not a failed one");
  } finally {
    sinkA.release();
    await b?.worker.stop();
    await a.worker.stop();
  }
  assert.equal(await a.worker.done, null);
  const dropped = a.logs.find((l) => l.msg.includes("dropping it"));
  assert.equal(
    dropped?.msg,
    "checkpoint of task 0_0 failed (INVALID_PRODUCER_EPOCH); dropping it, its next owner replays",
  );
  assertCountedOnce(c, 300);
});

test("a stalled owner given a task back after it was fenced opens it again, so the task is not left without an owner", async () => {
  const c = cluster({ rebalanceTimeoutMs: 30 });
  const sinkA = new FakeSink<Counted>("store", c.journal);
  const a = await start(c, "a", countingApp(sinkA));
  let b: Running | null = null;
  const onPartition1 = (from: number, to: number) =>
    c.produce(
      IN,
      Array.from({ length: to - from }, (_, i) => from + i)
        .filter((n) => partitionFor(keyOf(n), 2) === 1)
        .map((n) => ({ key: keyOf(n), value: JSON.stringify({ n }) })),
    );
  try {
    produce(c, 0, 100);
    await until("offsets committed to the end", () => committedToEnd(c));
    // a stalls with task 0_1 dirty and 0_0 clean: only 0_1's commit will tell a it was fenced.
    sinkA.hold();
    onPartition1(100, 150);
    await until("a checkpoint held by the sink", () => sinkA.flushesHeld > 0);
    onPartition1(150, 160);
    await until("a batch waiting behind the checkpoint", () => a.client.batchesInFlight() > 0);
    b = await start(c, "b", countingApp(new FakeSink<Counted>("store", c.journal)));
    await until("b running both tasks", () => b?.worker.tasks().filter((t) => t.state === "running").length === 2);
    sinkA.release();
    // a drops 0_1, rejoins still holding 0_0, and the sticky assignment gives 0_0 back to it; its
    // producer for 0_0 was fenced by b meanwhile, so its next commit of 0_0 fails.
    await until(
      "0_0 back at a",
      () => a.worker.tasks().some((t) => t.id === "0_0") && !b?.worker.tasks().some((t) => t.id === "0_0"),
    );
    produce(c, 200, 300);
    await until("offsets committed to the end", () => committedToEnd(c));
  } finally {
    sinkA.release();
    await b?.worker.stop();
    await a.worker.stop();
  }
  assert.ok(
    a.logs.some(
      (l) => l.msg === "checkpoint of task 0_0 failed (INVALID_PRODUCER_EPOCH); dropping it, its next owner replays",
    ),
  );
  assert.ok(a.logs.some((l) => l.msg === "task 0_0 is assigned here again: opening it again"));
  assertCountedOnce(c, c.records(IN).length);
});

test("restore from the changelogs up to the last stable offset; /health answers 503 while a task restores", async () => {
  const c = cluster();
  const sinkA = new FakeSink<Counted>("store", c.journal);
  const a = await start(c, "a", countingApp(sinkA));
  produce(c, 0, 100);
  await until("offsets committed to the end", () => committedToEnd(c));
  const committed = committedOffsets(c);
  await stallOnSink(c, a, sinkA, 100, 140);
  a.client.kill(); // a dies with its transactions open
  // Someone else's transaction left open on the changelog: the restore stops at its first record.
  const key0 = KEYS.find((k) => partitionFor(k, 2) === 0) as string;
  const stray = await c.client("stray").transactionalProducer("stray");
  await stray.send([{ topic: CHANGELOG, partition: 0, key: key0, value: Buffer.from("999"), ts: Date.now() }]);
  c.hold(CHANGELOG);
  const b = await start(c, "b", countingApp(new FakeSink<Counted>("store", c.journal)), 0);
  try {
    await until("b restoring", () => b.worker.tasks().length === 2);
    const restoring = await fetch(`http://127.0.0.1:${b.worker.metricsPort}/health`);
    assert.equal(restoring.status, 503);
    assert.deepEqual(((await restoring.json()) as { restoring: string[] }).restoring.sort(), ["0_0", "0_1"]);
    c.release(CHANGELOG);
    await until("b running", () => b.worker.healthy().ok);
    assert.equal((await fetch(`http://127.0.0.1:${b.worker.metricsPort}/health`)).status, 200);
    for (const p of [0, 1]) {
      const running = b.logs.find((l) => l.msg === "task running" && l.task === `0_${p}`);
      assert.deepEqual(running?.from, { [IN]: String(committed[p]) });
    }
    produce(c, 150, 250);
    await until("offsets committed to the end", () => committedToEnd(c));
  } finally {
    await b.worker.stop();
    sinkA.release();
    await a.worker.stop();
  }
  const fenced = c.journal.findIndex((e) => e.startsWith(`fence ${APP}-0_`) && e.endsWith("epoch 1"));
  const aborted = c.journal.findIndex((e, i) => i > fenced && e.startsWith(`tx-abort ${APP}-0_`));
  assert.ok(fenced > 0 && aborted > fenced, "the dead owner's open transaction was aborted by the fence");
  assertCountedOnce(c, 250); // neither a's aborted outputs nor the stray 999 count
});

test("a checkpoint held past the transaction timeout: the worker stops, and its restart resumes from the last commit", async () => {
  const c = cluster({ transactionTimeoutMs: 200 });
  const sinkA = new FakeSink<Counted>("store", c.journal);
  const a = await start(c, "a", countingApp(sinkA));
  produce(c, 0, 100);
  await until("offsets committed to the end", () => committedToEnd(c));
  const committed = committedOffsets(c);
  await stallOnSink(c, a, sinkA, 100, 140);
  await new Promise((r) => setTimeout(r, 260));
  sinkA.release();
  const failure = await a.worker.done;
  assert.equal((failure as { type?: string } | null)?.type, "INVALID_PRODUCER_EPOCH");
  assert.ok(c.journal.some((e) => e.startsWith(`tx-timeout ${APP}-0_`)));
  assert.ok(
    a.logs.some((l) =>
      /failed \(INVALID_PRODUCER_EPOCH\) more than the transaction timeout \(0\.2 s\) after its last commit: the broker aborted it; starting over from that commit$/.test(
        l.msg,
      ),
    ),
  );
  assert.deepEqual(committedOffsets(c), committed, "nothing committed past the last checkpoint");
  const restarted = await start(c, "a-restarted", countingApp(new FakeSink<Counted>("store", c.journal)));
  try {
    produce(c, 150, 200);
    await until("offsets committed to the end", () => committedToEnd(c));
  } finally {
    await restarted.worker.stop();
  }
  assertCountedOnce(c, 200);
});

test("commits refused by a coordinator that moved or is loading, and one whose answer was lost: each task is opened again from its last commit, the worker goes on, every record counts once", async () => {
  const c = cluster();
  const sink = new FakeSink<Counted>("store", c.journal);
  const violations = watchCommits(c, () => [sink]);
  const a = await start(c, "a", countingApp(sink));
  try {
    produce(c, 0, 100);
    await until("offsets committed to the end", () => committedToEnd(c));
    // A broker failing over: its group and transaction coordinators move; EndTxn is refused.
    c.failCommits(new FakeKafkaError("NOT_COORDINATOR_FOR_GROUP"), 2);
    produce(c, 100, 200);
    await until("offsets committed to the end", () => committedToEnd(c));
    // The broker coming back takes its coordinators back: a commit done, its answer never received.
    c.failCommits(new FakeKafkaError("GROUP_LOAD_IN_PROGRESS"), 1, true);
    produce(c, 200, 300);
    await until("offsets committed to the end", () => committedToEnd(c));
    // The last commit was done before it failed: the task reopened may still be restoring.
    await until("every task running again", () => a.worker.healthy().ok);
  } finally {
    await a.worker.stop();
  }
  assert.equal(await a.worker.done, null);
  assert.equal(c.journal.filter((e) => e.startsWith("tx-refused")).length, 2);
  assert.equal(c.journal.filter((e) => e.startsWith("tx-answer-lost")).length, 1);
  const reopened = a.logs.filter((l) => /its coordinator is not settled; opening the task again/.test(l.msg));
  assert.equal(reopened.length, 3, reopened.map((l) => l.msg).join("\n"));
  assert.match(reopened[0]?.msg ?? "", /^checkpoint of task 0_\d failed \(NOT_COORDINATOR_FOR_GROUP\)/);
  assert.deepEqual(violations, []);
  const seen = new Set(sink.acknowledged.map((r) => r.value.n));
  assert.equal(seen.size, 300, "every record reached the sink (a replay is an idempotent rewrite)");
  assertCountedOnce(c, 300);
});

test("tasks whose producers take long to make (a coordinator failing over) are opened side by side, heartbeating: the group keeps the member", async () => {
  // Opened one after another with a batch waiting for the worker's lock, 6 producers of 700 ms held
  // the member silent past its session: the group dropped it, and it rejoined, over and over.
  const c = cluster({ sessionTimeoutMs: 3000, producerInitMs: 700 }, 6);
  produce(c, 0, 300);
  const a = await start(c, "a", countingApp(null));
  let b: Running | null = null;
  try {
    await until("offsets committed to the end", () => committedToEnd(c));
    b = await start(c, "b", countingApp(null));
    await until("both workers running their tasks", () => (b?.worker.tasks().length ?? 0) > 0 && a.worker.healthy().ok);
    produce(c, 300, 600);
    await until("offsets committed to the end", () => committedToEnd(c) && (b?.worker.healthy().ok ?? false));
  } finally {
    await b?.worker.stop();
    await a.worker.stop();
  }
  assert.deepEqual(
    c.journal.filter((e) => e.startsWith("session-expired")),
    [],
  );
  assertCountedOnce(c, 600);
});

test("a coordinator that never settles: the task is opened again a bounded number of times, then the worker stops, nothing committed past the last commit", async () => {
  const c = cluster();
  const a = await start(c, "a", countingApp(null));
  produce(c, 0, 100);
  await until("offsets committed to the end", () => committedToEnd(c));
  const committed = committedOffsets(c);
  c.failCommits(new FakeKafkaError("GROUP_COORDINATOR_NOT_AVAILABLE"), Number.POSITIVE_INFINITY);
  produce(c, 100, 200);
  const failure = await a.worker.done;
  assert.equal((failure as { type?: string } | null)?.type, "GROUP_COORDINATOR_NOT_AVAILABLE");
  const reopened = a.logs.filter((l) => /opening the task again from its last commit/.test(l.msg));
  assert.ok(reopened.some((l) => l.msg.endsWith(`(${MAX_REOPENS_IN_A_ROW + 1} in a row)`)));
  assert.deepEqual(committedOffsets(c), committed, "nothing committed past the last checkpoint");
  const restarted = await start(c, "a-restarted", countingApp(null));
  try {
    c.failCommits(new FakeKafkaError("GROUP_COORDINATOR_NOT_AVAILABLE"), 0);
    await until("offsets committed to the end", () => committedToEnd(c));
  } finally {
    await restarted.worker.stop();
  }
  assertCountedOnce(c, 200);
});

test("Kafka unreachable at start: the worker waits with backoff, says what for on /health and /metrics, and runs once Kafka answers", async () => {
  const c = cluster();
  c.unreachable = true;
  const logs: Running["logs"] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const client = c.client("a");
  const worker = new StreamWorker(countingApp(null), {
    kafka: client,
    logger,
    metricsPort: 0,
    connectBackoff: { initialMs: 5, maxMs: 20 },
  });
  const started = worker.start();
  let failed: unknown = null;
  started.catch((e) => {
    failed = e;
  });
  try {
    await until("three attempts", () => logs.filter((l) => l.msg.startsWith("waiting for Kafka")).length >= 3);
    assert.equal(failed, null, `start gave up: ${failed}`);
    const waiting = logs.find((l) => l.msg.startsWith("waiting for Kafka"));
    assert.match(String(waiting?.msg), /^waiting for Kafka at fake:9092 to answer \(attempt \d+; next in \d+ ms\): /);
    assert.ok(worker.metricsPort, "/metrics and /health are served while the worker waits");
    const health = await fetch(`http://127.0.0.1:${worker.metricsPort}/health`);
    assert.equal(health.status, 503);
    const body = (await health.json()) as { kafka: string };
    assert.match(body.kafka, /^unreachable for \d+(\.\d)? s \(\d+ attempts\): /);
    const metrics = await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
    assert.match(metrics, /^weir_stream_kafka_reachable\{app="app"\} 0$/m);
    const retries = Number(/^weir_stream_kafka_connect_retries_total\{app="app"\} (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(retries >= 3, `${retries} retries counted`);

    c.unreachable = false;
    await started;
    produce(c, 0, 50);
    await until("offsets committed to the end", () => committedToEnd(c));
    assert.equal((await fetch(`http://127.0.0.1:${worker.metricsPort}/health`)).status, 200);
    const after = await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
    assert.match(after, /^weir_stream_kafka_reachable\{app="app"\} 1$/m);
    assert.ok(logs.some((l) => /^Kafka answered after \d+ attempts/.test(l.msg)));
  } finally {
    c.unreachable = false;
    await started.catch(() => {});
    await worker.stop();
  }
  assertCountedOnce(c, 50);
});

test("Kafka unreachable at start: stop() ends the wait at once", async () => {
  const c = cluster();
  c.unreachable = true;
  const worker = new StreamWorker(countingApp(null), {
    kafka: c.client("a"),
    logger: pino({ level: "silent" }),
    connectBackoff: { initialMs: 60_000, maxMs: 60_000 },
  });
  const started = worker.start();
  await new Promise((r) => setTimeout(r, 20));
  const began = Date.now();
  await worker.stop();
  await assert.rejects(started, /stopped while waiting for Kafka/);
  assert.ok(Date.now() - began < 2000, "stop waited for the backoff");
  assert.equal(await worker.done, null);
});

test("a dead letter of a transactional task commits with its transaction: a replay of the bad record leaves it in the DLQ once", async () => {
  const c = cluster();
  const a = await start(c, "a", countingApp(null));
  produce(c, 0, 100);
  await until("offsets committed to the end", () => committedToEnd(c));
  // A bad record in a checkpoint whose transaction fails: the worker stops, its successor replays it.
  c.failSendsTo(OUT, Object.assign(new Error("the broker refuses the transaction"), { type: "UNKNOWN_SERVER_ERROR" }));
  c.produce(IN, [{ key: "a", value: "{not json", partition: 0 }]);
  produce(c, 100, 140);
  await a.worker.done;
  c.failSendsTo(OUT, null);
  const b = await start(c, "b", countingApp(null));
  try {
    produce(c, 140, 200);
    await until("offsets committed to the end", () => committedToEnd(c));
  } finally {
    await b.worker.stop();
  }
  const bad = c.records(IN).find((r) => r.value?.toString() === "{not json");
  const letters = c.records(DLQ).map((r) => deadLetters.decode(r.value as Buffer));
  assert.deepEqual(
    letters.map((d) => `${d.reason} ${d.origin.partition}@${d.origin.offset}`),
    [`decode-error 0@${bad?.offset}`],
  );
  assertCountedOnce(c, 200);
});

test("/metrics shows late records corrected, corrections emitted, closed windows kept, and each source's state and lag", async () => {
  const c = cluster({}, 1);
  const app = new StreamApp({ appId: APP, dlqTopic: DLQ, guarantee: "exactly-once", commitInterval: 10 });
  app
    .stream<undefined, { ts: number }>(IN, { serde: json(), maxSourceLag: "30s" })
    .window(Windows.tumbling("1s").allowedLateness("1h"))
    .count({ name: "counts" })
    .to(OUT, { serde: json() });
  const w = await start(c, "a", app, 0);
  const send = (source: string, ts: number) =>
    c.produce(IN, [{ key: "k", value: JSON.stringify({ ts }), headers: { "weir-source": source } }]);
  try {
    send("host-1:/var/log/a/access.log", 1_000);
    send("host-2:/var/log/a/access.log", 1_000);
    for (let ts = 2_000; ts <= 60_000; ts += 1_000) send("host-1:/var/log/a/access.log", ts);
    // host-2 is 59 s behind: lagging, it holds the watermark only 30 s behind host-1; its records are corrections.
    send("host-2:/var/log/a/access.log", 1_500);
    send("host-2:/var/log/a/access.log", 2_500);
    await until("the corrections emitted", () => c.records(OUT).some((r) => jsonOf(r.value).correction === 1), 10_000);
    const text = await (await fetch(`http://127.0.0.1:${w.worker.metricsPort}/metrics`)).text();
    const value = (line: RegExp) => Number(line.exec(text)?.[1]);
    assert.equal(value(/^weir_stream_corrected_records_total\{[^}]*\} (\S+)$/m), 2);
    assert.equal(value(/^weir_stream_corrections_total\{[^}]*\} (\S+)$/m), 2);
    assert.ok(value(/^weir_stream_closed_windows\{[^}]*\} (\S+)$/m) >= 28);
    assert.equal(value(/^weir_stream_sources\{[^}]*state="lagging"[^}]*\} (\S+)$/m), 1);
    assert.equal(value(/^weir_stream_sources\{[^}]*state="active"[^}]*\} (\S+)$/m), 1);
    assert.equal(
      value(/^weir_stream_source_lag_seconds\{[^}]*source="host-2:\/var\/log\/a\/access.log"[^}]*\} (\S+)$/m),
      57.5,
    );
    assert.equal(value(/^weir_stream_source_behind_records_total\{[^}]*source="host-2[^"]*"[^}]*\} (\S+)$/m), 2);
  } finally {
    await w.worker.stop();
  }
});
