// The hot-key pipeline and its client end to end on the real Kafka: `weir run hotkeys`'s topology in
// a worker, access logs produced in real time, one room made hot. Two services with different
// thresholds follow hotkeys.top: the one whose threshold the room passes is told it became hot (and
// cooled down once its traffic stops), the other is told nothing; a service without Kafka follows the
// same lists through `weir hotkeys serve`'s HTTP endpoint. A key marked by hand with the CLI (for a few
// seconds) is hot for every client, then cools down when its mark expires; `weir hotkeys top` prints
// the live list.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, test } from "node:test";
import type { Admin, Producer } from "kafkajs";
import { type HotKeyEvent, HotKeysClient } from "../../pipelines/hotkeys/client/hot-keys-client.ts";
import { HotKeysHttpServer } from "../../pipelines/hotkeys/client/http-server.ts";
import { parseHotKeysConfig } from "../../pipelines/hotkeys/config.ts";
import { buildHotKeysApp } from "../../pipelines/hotkeys/topology.ts";
import { codecFor } from "../../schemas/codec.ts";
import { SAMPLES } from "../../schemas/testdata/samples.ts";
import type { AccessLog } from "../../schemas/types.generated.ts";
import { KafkajsStreamClient } from "../../stream/kafka/client.ts";
import { StreamWorker } from "../../stream/runtime/worker.ts";
import { CollectingSink } from "../../stream/testing/test-driver.ts";
import { endpoints, kafkaClient, requireServices, uniqueName } from "../support/stack.ts";

const kafka = kafkaClient("weir-hotkeys-test");
const appId = uniqueName("hotkeys").replaceAll("_", "-");
const input = uniqueName("hk_access");
const output = uniqueName("hk_top");
const marks = uniqueName("hk_marks");
const dlq = uniqueName("hk_dlq");
const codec = codecFor("AccessLog");
let admin: Admin;
let producer: Producer;

before(async () => {
  await requireServices(["kafka", "redis"]);
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: input, numPartitions: 3 },
      { topic: output, numPartitions: 1 },
      { topic: marks, numPartitions: 1, configEntries: [{ name: "cleanup.policy", value: "compact" }] },
      { topic: dlq, numPartitions: 1 },
    ],
  });
  producer = kafka.producer();
  await producer.connect();
});

after(async () => {
  await producer?.disconnect();
  const mine = (await admin.listTopics()).filter(
    (t) => t.startsWith(`${appId}-`) || [input, output, marks, dlq].includes(t),
  );
  if (mine.length > 0) await admin.deleteTopics({ topics: mine }).catch(() => {});
  await admin.deleteGroups([appId]).catch(() => {});
  await admin.disconnect();
});

function access(ts: number, roomId: number, i: number): AccessLog {
  return { ...SAMPLES.AccessLog, id: `r-${i}`, ts, roomId, uid: 100 + (i % 50), service: "room-svc" };
}

/** Runs the CLI without blocking this process (its worker and clients must keep running meanwhile). */
function weir(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["cli/weir.mjs", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function recorder() {
  const hot: HotKeyEvent[] = [];
  const cool: HotKeyEvent[] = [];
  return { hot, cool, onHot: (e: HotKeyEvent) => hot.push(e), onCool: (e: HotKeyEvent) => cool.push(e) };
}

test("hot keys end to end: per-service thresholds and callbacks over Kafka and HTTP, marks by hand with expiry, weir hotkeys top", async () => {
  const config = parseHotKeysConfig({
    appId,
    topics: { output, marks, dlq },
    windows: ["2s", "10s"],
    k: 10,
    schemas: { [input]: "AccessLog" },
    dimensions: { room: { from: { [input]: "roomId" } } },
  });
  // As under a supervisor (docs/stream.md): a worker that stops on an error the broker gave it (a
  // coordinator lost on this loaded machine) is replaced; its successor restores and goes on.
  let worker: StreamWorker | null = null;
  let restarts = 0;
  let running = true;
  const supervise = async (): Promise<void> => {
    const w = new StreamWorker(buildHotKeysApp({ config, counterSink: () => new CollectingSink() }), {
      kafka: new KafkajsStreamClient({ brokers: endpoints.kafkaBrokers, clientId: `${appId}-${restarts}` }),
      metricsPort: null,
    });
    worker = w;
    await w.start();
    void w.done.then((err) => {
      if (err && running) {
        restarts++;
        console.log(`worker stopped (${err.message}); restarting`);
        void supervise();
      }
    });
  };
  const a = recorder();
  const b = recorder();
  const h = recorder();
  // Service A: a room is hot at 60 requests in 2 s; service B only at 100,000.
  const clientA = new HotKeysClient({
    brokers: endpoints.kafkaBrokers,
    topic: output,
    marksTopic: marks,
    thresholds: { room: { window: "2s", count: 60 } },
    staleAfter: "4s",
    ...a,
  });
  const clientB = new HotKeysClient({
    brokers: endpoints.kafkaBrokers,
    topic: output,
    marksTopic: marks,
    thresholds: { room: { window: "2s", count: 100_000 } },
    ...b,
  });
  const server = new HotKeysHttpServer({ brokers: endpoints.kafkaBrokers, topic: output, marksTopic: marks, port: 0 });
  let clientH: HotKeysClient | null = null;
  let stop = false;
  let producing: Promise<void> = Promise.resolve();
  try {
    await supervise();
    await Promise.all([clientA.start(), clientB.start()]);
    const port = await server.start();
    clientH = new HotKeysClient({
      url: `http://127.0.0.1:${port}`,
      thresholds: { room: { window: "2s", count: 60 } },
      pollInterval: "300ms",
      ...h,
    });
    await clientH.start();

    // Real time: 100 requests a second over rooms 1..20; room 7 gets 60 more a second while `hotRoom`.
    let hotRoom = true;
    let i = 0;
    producing = (async () => {
      while (!stop) {
        const now = Date.now();
        const messages = [];
        for (let j = 0; j < 10; j++) messages.push(access(now, 1 + (i++ % 20), i));
        if (hotRoom) for (let j = 0; j < 6; j++) messages.push(access(now, 7, i++));
        await producer.send({
          topic: input,
          messages: messages.map((m, n) => ({ key: String(n % 3), value: codec.encode(m), partition: n % 3 })),
        });
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    await until("room 7 hot for service A", () => clientA.isHot("room", 7), 45_000);
    const becameHot = a.hot.find((e) => e.key === "7");
    assert.equal(becameHot?.reason, "measured");
    assert.ok((becameHot?.count ?? 0) >= 60);
    assert.equal(becameHot?.window, 2000);
    assert.equal(clientB.isHot("room", 7), false);
    assert.equal(clientA.isHot("room", 3), false, "background rooms (about 10 a 2 s window) are not hot");
    await until("room 7 hot over HTTP", () => clientH?.isHot("room", "7") === true, 15_000);
    assert.ok(
      h.hot.some((e) => e.key === "7" && e.reason === "measured"),
      JSON.stringify(h.hot),
    );
    assert.deepEqual(
      b.hot.filter((e) => e.reason === "measured"),
      [],
    );

    // weir hotkeys top prints the live list, room 7 first.
    const top = await weir(
      "hotkeys",
      "top",
      "--dimension",
      "room",
      "--window",
      "2s",
      "--topic",
      output,
      "--marks-topic",
      marks,
    );
    assert.equal(top.status, 0, top.stderr);
    assert.match(top.stdout, /room, last 2 s/);
    assert.match(top.stdout, /^\s+1\s+7\s/m);

    // The room's traffic stops: it cools down for A (and over HTTP).
    hotRoom = false;
    await until("room 7 cooled for service A", () => !clientA.isHot("room", 7), 30_000);
    assert.ok(a.cool.some((e) => e.key === "7"));
    await until("room 7 cooled over HTTP", () => clientH?.isHot("room", 7) === false, 15_000);

    // A drill: room 8 marked by hand for 4 s is hot for every client, whatever its traffic, then cools.
    const mark = await weir("hotkeys", "mark", "room", "8", "--for", "4s", "--reason", "drill", "--topic", marks);
    assert.equal(mark.status, 0, mark.stderr);
    assert.match(mark.stdout, /marked room 8 hot until/);
    await until("room 8 marked for A and B", () => clientA.isHot("room", 8) && clientB.isHot("room", 8), 15_000);
    const marked = b.hot.find((e) => e.key === "8");
    assert.equal(marked?.reason, "marked");
    assert.equal(marked?.mark?.reason, "drill");
    await until("room 8 marked over HTTP", () => clientH?.isHot("room", 8) === true, 15_000);
    await until("room 8's mark expired", () => !clientA.isHot("room", 8) && !clientB.isHot("room", 8), 15_000);
    assert.ok(b.cool.some((e) => e.key === "8" && e.reason === "marked"));

    // A mark removed before its time cools at once; an invalid one is refused with what to do.
    await weir("hotkeys", "mark", "room", "9", "--for", "1h", "--topic", marks);
    await until("room 9 marked", () => clientB.isHot("room", 9), 15_000);
    const unmark = await weir("hotkeys", "unmark", "room", "9", "--topic", marks);
    assert.equal(unmark.status, 0, unmark.stderr);
    await until("room 9 unmarked", () => !clientB.isHot("room", 9), 15_000);
    const bad = await weir("hotkeys", "mark", "room", "9", "--for", "90d");
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--for: from 1 ms to 30 days/);
  } finally {
    stop = true;
    await producing.catch(() => {});
    await clientH?.close();
    await server.close();
    await clientA.close();
    await clientB.close();
    running = false;
    await (worker as StreamWorker | null)?.stop();
    console.log(`worker restarts: ${restarts}`);
  }
});
