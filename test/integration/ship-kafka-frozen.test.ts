// The broker freezes (SIGSTOP) for 25 s while a service writes 2,000 lines a second (issue 21,
// defect 2). Before the fix, the shipper's kafka_failing and kafka_retries_total stayed 0 and its
// /health said ok for the whole freeze, while its channel filled: kafkajs waits 30 s for an answer
// before it reports anything. Now a batch unacknowledged for kafka.stallMs (5 s) makes /health 503
// and weir_ship_kafka_failing 1, and a send without an answer for kafka.sendTimeoutMs (15 s) is sent
// again (a retry) by a new producer that fences the old one. After the thaw every line arrives
// once. On a private single-broker Kafka: the shared one is never frozen.
import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { consumeAll } from "../support/kcat.ts";
import { type PrivateStack, startPrivateStack } from "../support/private-stack.ts";
import { metricSum, type ShipProcess, shipMetricsPort, shipSourceOf, startShip } from "../support/ship.ts";
import { uniqueName } from "../support/stack.ts";

const FREEZE_MS = 25_000;

test("a frozen broker shows on the shipper's /health and /metrics within seconds; every line arrives once after", async () => {
  const stack: PrivateStack = await startPrivateStack({ services: ["kafka"] });
  const root = mkdtempSync(join(tmpdir(), "weir-ship-frozen-"));
  const topic = uniqueName("ship_frozen");
  let ship: ShipProcess | null = null;
  let written = 0;
  let writer: NodeJS.Timeout | null = null;
  const pgid = stack.local.process("kafka").record()?.pgid as number;
  let frozen = false;
  try {
    const made = await stack.weir(["topics", "apply"]); // the catalog; the test topic is made below
    assert.equal(made.code, 0, made.out);
    await createTopic(stack, topic);
    mkdirSync(join(root, "svc"));
    const file = join(root, "svc", "access.log");
    writeFileSync(file, "");
    writer = setInterval(() => {
      let chunk = "";
      const now = Date.now();
      for (let i = 0; i < 200; i++) chunk += accessLine(written++, now);
      appendFileSync(file, chunk);
    }, 100);
    writeFileSync(
      join(root, "ship.yaml"),
      `dataDir: ${JSON.stringify(join(root, "data"))}
topics:
  ${topic}: { schema: AccessLog, key: service }
metrics: { port: 0 }
sources:
  - { name: access, paths: [${JSON.stringify(join(root, "svc", "*.log"))}], format: json, topic: ${topic} }
`,
    );
    ship = startShip(["--config", join(root, "ship.yaml")], {
      ...stack.env,
      WEIR_KAFKA_BROKERS: stack.endpoints.kafkaBrokers.join(","),
    });
    const port = await shipMetricsPort(ship);
    await waitFor("lines shipped", async () => (await metricSum(port, "weir_ship_events_sent_total")) > 2000, 60_000);
    assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);

    process.kill(-pgid, "SIGSTOP");
    frozen = true;
    const began = Date.now();
    const samples: Array<{ at: number; status: number; failing: number; retries: number; waiting: number }> = [];
    while (Date.now() - began < FREEZE_MS) {
      await sleep(1000);
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      samples.push({
        at: Date.now() - began,
        status: health.status,
        failing: await metricSum(port, "weir_ship_kafka_failing"),
        retries: await metricSum(port, "weir_ship_kafka_retries_total"),
        waiting: await metricSum(port, "weir_ship_kafka_unacknowledged_seconds"),
      });
    }
    process.kill(-pgid, "SIGCONT");
    frozen = false;
    console.log(
      `ship-kafka-frozen: ${samples.map((s) => `${(s.at / 1000).toFixed(0)}s ${s.status} f${s.failing} r${s.retries}`).join(", ")}`,
    );
    const unhealthy = samples.find((s) => s.status === 503);
    assert.ok(unhealthy && unhealthy.at < 9000, `/health went 503 ${unhealthy?.at} ms into the freeze`);
    assert.ok(
      samples.filter((s) => s.at >= 9000).every((s) => s.status === 503 && s.failing >= 1),
      "503 and failing to the end",
    );
    const retried = samples.find((s) => s.retries > 0);
    assert.ok(retried && retried.at < 22_000, `a retry ${retried?.at} ms into the freeze`);
    assert.ok(Math.max(...samples.map((s) => s.waiting)) >= 15, "the unacknowledged time grows");

    await waitFor("healthy again", async () => (await fetch(`http://127.0.0.1:${port}/health`)).status === 200, 90_000);
    assert.equal(await metricSum(port, "weir_ship_kafka_failing"), 0);
    if (writer) clearInterval(writer);
    writer = null;
    const brokers = stack.endpoints.kafkaBrokers;
    let got: number[] = [];
    await waitFor(
      "every line in Kafka",
      async () => {
        got = (await consumeAll(topic, { brokers })).map((m) => shipSourceOf("AccessLog", m.value).offset);
        return got.length >= written;
      },
      120_000,
    );
    assert.equal(new Set(got).size, written, "every line, each once");
    assert.equal(got.length, written, "no line twice");
  } finally {
    if (frozen) process.kill(-pgid, "SIGCONT");
    if (writer) clearInterval(writer);
    if (ship) {
      ship.child.kill("SIGKILL");
      await ship.exited;
    }
    await stack.down();
    rmSync(root, { recursive: true, force: true });
  }
});

async function createTopic(stack: PrivateStack, topic: string): Promise<void> {
  const { Kafka, logLevel } = await import("kafkajs");
  const admin = new Kafka({
    clientId: "test",
    brokers: stack.endpoints.kafkaBrokers,
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 3 }] });
  } finally {
    await admin.disconnect();
  }
}

function accessLine(n: number, ts: number): string {
  return `{"id":"frozen-${n}","ts":${ts},"app":"live","system":"gifting","service":"gift-svc","endpoint":"/gift/send","method":"POST","status":200,"latencyUs":1000,"bytesIn":1,"bytesOut":1,"clientIp":"10.0.0.1","host":"h"}\n`;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(500);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
