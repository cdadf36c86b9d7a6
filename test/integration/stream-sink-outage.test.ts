// A store that stops answering holds the worker's checkpoint for as long as it is down. Here a sink's
// flush is held for several session timeouts: the worker must stay in its group (it heartbeats while
// it waits) instead of failing its offset commit and exiting; once the sink answers, everything
// written reaches it and the offsets commit to the end of the input. A record the sink refuses goes
// to the DLQ under an id of its own (the sink's name and a digest of the record), so two refused
// records are two dead letters, and the same record refused on a replay is the same one. The sink's
// own metrics are on the worker's /metrics.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Admin, Producer } from "kafkajs";
import pino from "pino";
import { Gauge, type Registry } from "prom-client";
import { codecFor } from "../../schemas/codec.ts";
import type { DeadLetter } from "../../schemas/types.generated.ts";
import { StreamApp } from "../../stream/dsl/app.ts";
import { KafkajsStreamClient } from "../../stream/kafka/client.ts";
import { StreamWorker } from "../../stream/runtime/worker.ts";
import type { Sink } from "../../stream/sink.ts";
import { json, type Rec } from "../../stream/types.ts";
import { endpoints, kafkaClient, requireStack, uniqueName } from "../support/stack.ts";

interface Event {
  n: number;
  bad?: boolean;
}

/** A sink whose acknowledgements can be held back, as a store that is down holds them. */
class GatedSink implements Sink<Event> {
  readonly name = "gated";
  readonly highWater = 1_000_000;
  readonly acknowledged = new Set<number>();
  private written: Array<Rec<Event>> = [];
  private rejected: Array<{ rec: Rec<Event>; reason: string; message: string }> = [];
  private gate: Promise<void> = Promise.resolve();
  private openGate: () => void = () => {};
  flushesHeld = 0;

  hold(): void {
    this.gate = new Promise((r) => {
      this.openGate = r;
    });
  }
  release(): void {
    this.openGate();
  }
  write(rec: Rec<Event>): void {
    this.written.push(rec);
  }
  async flush(): Promise<void> {
    const batch = this.written;
    this.written = [];
    let held = false;
    const gate = this.gate;
    await Promise.race([gate, Promise.resolve().then(() => (held = true))]);
    if (held) this.flushesHeld++;
    await gate;
    for (const r of batch) {
      if (r.value.bad)
        this.rejected.push({ rec: r, reason: "rejected-by-sink", message: `event ${r.value.n} refused` });
      else this.acknowledged.add(r.value.n);
    }
  }
  pending(): number {
    return this.written.length;
  }
  takeRejected() {
    const out = this.rejected;
    this.rejected = [];
    return out;
  }
  registerMetrics(registry: Registry): void {
    const sink = this;
    new Gauge({
      name: "weir_test_gated_acknowledged",
      help: "Records the gated sink acknowledged.",
      registers: [registry],
      collect() {
        this.set(sink.acknowledged.size);
      },
    });
  }
  async close(): Promise<void> {}
}

const kafka = kafkaClient("weir-sink-outage-test");
const run = uniqueName("outage");
const topics = { input: `${run}.in`, dlq: `${run}.dlq`, joined: `${run}.joined` };
const joinedApp = `${run}-joined`;
let admin: Admin;
let producer: Producer;

before(async () => {
  await requireStack();
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: topics.input, numPartitions: 2 },
      { topic: topics.joined, numPartitions: 2 },
      { topic: topics.dlq, numPartitions: 1 },
    ],
  });
  producer = kafka.producer({ idempotent: true });
  await producer.connect();
});

after(async () => {
  await producer?.disconnect().catch(() => {});
  await admin.deleteTopics({ topics: Object.values(topics) }).catch(() => {});
  await admin.deleteGroups([run, joinedApp]).catch(() => {});
  await admin.disconnect();
});

async function produce(
  from: number,
  to: number,
  bad: ReadonlySet<number> = new Set(),
  topic = topics.input,
): Promise<void> {
  const messages = [];
  for (let n = from; n < to; n++) {
    const e: Event = bad.has(n) ? { n, bad: true } : { n };
    messages.push({ key: `k${n % 7}`, value: JSON.stringify(e), timestamp: String(Date.now()) });
  }
  await producer.send({ topic, acks: -1, messages });
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function committedToEnd(topic = topics.input, groupId = run): Promise<boolean> {
  const ends = await admin.fetchTopicOffsets(topic);
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return ends.every((e) => committed?.partitions.find((p) => p.partition === e.partition)?.offset === e.offset);
}

test("a sink down for several session timeouts: the worker stays in its group, then everything lands and commits; refused records get ids of their own", async () => {
  const SESSION_MS = 6000; // the broker's group.min.session.timeout.ms
  const sink = new GatedSink();
  const app = new StreamApp({ appId: run, dlqTopic: topics.dlq, guarantee: "at-least-once", commitInterval: 500 });
  app.stream<undefined, Event>(topics.input, { serde: json() }).to(sink);
  const lines: string[] = [];
  const logger = pino(
    { level: "info" },
    {
      write: (l: string) => {
        lines.push(l);
      },
    },
  );
  const client = new KafkajsStreamClient({ brokers: endpoints.kafkaBrokers, clientId: `${run}-outage-1`, logger });
  const worker = new StreamWorker(app, { kafka: client, logger, sessionTimeout: SESSION_MS, metricsPort: 0 });
  const ended: { failure?: Error | null } = {};
  void worker.done.then((e) => {
    ended.failure = e;
  });
  const failure = (): Error | null | undefined => ended.failure;
  sink.hold();
  await worker.start();
  try {
    await produce(0, 2000, new Set([17, 1234]));
    await waitFor("a checkpoint held by the sink", () => sink.flushesHeld > 0, 60_000);
    // Held for 3.5 session timeouts while events keep coming (so the consumer's own loop is stuck
    // behind the held checkpoint, as in a real outage): without heartbeats the group drops the member.
    let n = 2000;
    const holdUntil = Date.now() + 3.5 * SESSION_MS;
    while (Date.now() < holdUntil) {
      await produce(n, n + 20);
      n += 20;
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(failure(), undefined, `the worker stopped while the sink was down: ${failure()?.message}`);
    assert.equal(sink.acknowledged.size, 0);
    sink.release();
    await produce(n, n + 1000);
    n += 1000;
    await waitFor("every event acknowledged", () => sink.acknowledged.size === n - 2, 60_000);
    await waitFor("offsets committed to the end", committedToEnd, 60_000);
    assert.equal(failure(), undefined, `the worker stopped: ${failure()?.message}`);
    assert.ok(
      lines.some((l) => l.includes("checkpoint waiting for sinks to acknowledge") && l.includes('"gated"')),
      "the wait is logged with the sink's name",
    );
    // The sink's own metrics are served beside the runtime's.
    const metrics = await (await fetch(`http://127.0.0.1:${worker.metricsPort}/metrics`)).text();
    assert.match(metrics, new RegExp(`^weir_test_gated_acknowledged\\{app="${run}"\\} ${n - 2}$`, "m"));
    assert.match(metrics, /^weir_stream_records_out_total\{/m);
    // One assignment: the member never left the group (a dropped member rejoins and is assigned again).
    assert.equal(lines.filter((l) => l.includes('"msg":"assignment"')).length, 1, "the member rejoined the group");
  } finally {
    await worker.stop();
  }

  // The two refused events: one dead letter each, ids naming the sink, distinct, with the record.
  const codec = codecFor("DeadLetter");
  const consumer = kafka.consumer({ groupId: uniqueName("outage-dlq") });
  const dead: DeadLetter[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic: topics.dlq, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      dead.push(codec.decode(message.value as Buffer));
    },
  });
  await waitFor("two dead letters", () => dead.length >= 2, 30_000);
  await consumer.disconnect();
  const refused = dead.filter((d) => d.reason === "rejected-by-sink");
  assert.equal(new Set(refused.map((d) => JSON.parse(d.raw.toString()).n)).size, 2);
  const ids = new Set(refused.map((d) => d.id));
  assert.equal(ids.size, new Set(refused.map((d) => d.raw.toString())).size, "one id per refused record");
  for (const d of refused) assert.match(d.id, /^sink:gated\/[0-9a-f]{32}\/rejected-by-sink$/);
});

test("a member joins while the sink is held past the rebalance timeout: the held worker is dropped from the group, rejoins when the sink answers, and nothing is lost", async () => {
  const quiet = pino({ level: "silent" });
  const make = (sink: GatedSink) => {
    const app = new StreamApp({
      appId: joinedApp,
      dlqTopic: topics.dlq,
      guarantee: "at-least-once",
      commitInterval: 500,
    });
    app.stream<undefined, Event>(topics.joined, { serde: json() }).to(sink);
    return app;
  };
  const held = new GatedSink();
  const other = new GatedSink();
  const client = (instance: string) =>
    new KafkajsStreamClient({ brokers: endpoints.kafkaBrokers, clientId: `${joinedApp}-${instance}`, logger: quiet });
  const a = new StreamWorker(make(held), { kafka: client("held"), logger: quiet });
  const ended: { failure?: Error | null } = {};
  void a.done.then((e) => {
    ended.failure = e;
  });
  const failure = (): Error | null | undefined => ended.failure;
  held.hold();
  await a.start();
  const b = new StreamWorker(make(other), { kafka: client("joiner"), logger: quiet });
  try {
    await produce(0, 1000, new Set(), topics.joined);
    await waitFor("a checkpoint held by the sink", () => held.flushesHeld > 0, 60_000);
    await b.start(); // its join starts a rebalance the held worker cannot answer
    let n = 1000;
    const holdUntil = Date.now() + 40_000; // past the group's rebalance timeout (30 s)
    while (Date.now() < holdUntil) {
      await produce(n, n + 20, new Set(), topics.joined);
      n += 20;
      await new Promise((r) => setTimeout(r, 500));
    }
    held.release();
    await produce(n, n + 500, new Set(), topics.joined);
    n += 500;
    const all = () => new Set([...held.acknowledged, ...other.acknowledged]).size;
    await waitFor("every event acknowledged by one worker or the other", () => all() === n, 90_000);
    await waitFor("offsets committed to the end", () => committedToEnd(topics.joined, joinedApp), 60_000);
    assert.equal(failure(), undefined, `the held worker stopped: ${failure()?.message}`);
  } finally {
    await b.stop();
    await a.stop();
  }
});
