// Kafka stops for 60 s in the middle of a run. The shipper must not buffer the backlog in memory:
// its disk channel fills to its bound, the sources pause (the file keeps growing behind them), the
// memory stays flat, and once Kafka is back every line arrives.
import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { LocalStack } from "../../infra/stack/local-stack.ts";
import { consumeAll } from "../support/kcat.ts";
import { createTopics, deleteTopics, rssBytes, type ShipProcess, shipSourceOf, startShip } from "../support/ship.ts";
import { requireStack, stackConfig, uniqueName } from "../support/stack.ts";

const LINES_PER_SECOND = 4000;

function accessLine(n: number, ts: number): string {
  // About 300 bytes, like a real access log line; the id makes every line distinct.
  return `{"id":"down-${n}","ts":${ts},"app":"live","system":"gifting","service":"gift-svc","endpoint":"/gift/send","method":"POST","status":200,"latencyUs":${1000 + (n % 9000)},"bytesIn":115,"bytesOut":97,"traceId":"${n.toString(16).padStart(32, "0")}","uid":${100000000 + (n % 50000)},"clientIp":"10.1.${n % 256}.${(n >> 8) % 256}","userAgent":"live-android/8.4.1","host":"gift-svc-1"}\n`;
}

async function scrape(port: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || !line) continue;
    const at = line.lastIndexOf(" ");
    const name = line.slice(0, at);
    out.set(name, (out.get(name) ?? 0) + Number(line.slice(at + 1)));
  }
  return out;
}

const metric = (m: Map<string, number>, prefix: string) =>
  [...m].filter(([k]) => k === prefix || k.startsWith(`${prefix}{`)).reduce((n, [, v]) => n + v, 0);

test("with Kafka down for 60 s the shipper's channel fills, its sources pause, memory stays bounded, and every line arrives after", async () => {
  await requireStack();
  const root = mkdtempSync(join(tmpdir(), "weir-ship-down-"));
  const logFile = join(root, "gift-svc", "access.log");
  const topic = uniqueName("ship_down");
  const dlq = `${topic}.dlq`;
  await createTopics([topic, dlq]);
  const metricsPort = 19_400 + Math.floor(Math.random() * 500);
  writeFileSync(
    join(root, "ship.yaml"),
    `dataDir: ${JSON.stringify(join(root, "data"))}
topics:
  ${topic}: { schema: AccessLog, key: service }
  ${dlq}: { schema: DeadLetter, key: id }
channel: { maxBytes: 8MiB, segmentBytes: 1MiB }
dlq: { topic: ${dlq} }
metrics: { port: ${metricsPort} }
sources:
  - name: access
    paths: [${JSON.stringify(join(root, "*/access.log"))}]
    format: json
    topic: ${topic}
`,
  );
  const stack = new LocalStack(stackConfig, () => {});
  let ship: ShipProcess | null = null;
  let written = 0;
  let writing = true;
  let kafkaStopped = false;
  try {
    mkdirSync(join(root, "gift-svc"));
    writeFileSync(logFile, "");
    const writer = (async () => {
      while (writing) {
        let chunk = "";
        const now = Date.now();
        for (let i = 0; i < LINES_PER_SECOND / 10; i++) chunk += accessLine(written++, now);
        appendFileSync(logFile, chunk);
        await sleep(100);
      }
    })();
    ship = startShip(["--config", join(root, "ship.yaml")]);
    await sleep(10_000);
    assert.equal(ship.child.exitCode, null, `weir ship exited: ${ship.output().slice(-2000)}`);
    const before = await scrape(metricsPort);
    assert.ok(metric(before, "weir_ship_events_sent_total") > 0, "nothing was shipped before Kafka stopped");

    await stack.process("kafka").stop(15_000);
    kafkaStopped = true;
    const rss: number[] = [];
    let maxFill = 0;
    let readAtFull = -1;
    let readAtEnd = -1;
    for (let s = 0; s < 60; s++) {
      await sleep(1000);
      rss.push(rssBytes(ship.child.pid as number));
      const m = await scrape(metricsPort);
      const fill = metric(m, "weir_ship_channel_fill_ratio");
      maxFill = Math.max(maxFill, fill);
      if (fill >= 0.9 && readAtFull < 0 && s < 40) readAtFull = metric(m, "weir_ship_bytes_read_total");
      readAtEnd = metric(m, "weir_ship_bytes_read_total");
    }
    const lagAtEnd = metric(await scrape(metricsPort), "weir_ship_file_lag_bytes");
    await stack.up();
    kafkaStopped = false;
    writing = false;
    await writer;

    assert.ok(maxFill >= 0.9, `the channel never filled (max fill ${maxFill.toFixed(2)})`);
    assert.ok(readAtFull > 0, "the channel was not full within 40 s of Kafka stopping");
    // Paused: once full, the source reads at most what one more batch frees... which is nothing while Kafka is away.
    assert.ok(
      readAtEnd - readAtFull < 2 * 1024 * 1024,
      `the source kept reading while the channel was full (${readAtEnd - readAtFull} bytes)`,
    );
    assert.ok(lagAtEnd > 10 * 1024 * 1024, `the file should have grown far past the shipper (lag ${lagAtEnd})`);
    const firstHalf = Math.max(...rss.slice(0, 30));
    const secondHalf = Math.max(...rss.slice(30));
    console.log(
      `ship-kafka-down: peak RSS ${(Math.max(...rss) / 2 ** 20).toFixed(0)} MiB (first 30 s ${(firstHalf / 2 ** 20).toFixed(0)}, last 30 s ${(secondHalf / 2 ** 20).toFixed(0)}), max channel fill ${maxFill.toFixed(2)}, file lag at the end ${(lagAtEnd / 2 ** 20).toFixed(1)} MiB`,
    );
    assert.ok(Math.max(...rss) < 250 * 2 ** 20, `RSS reached ${Math.max(...rss)} bytes`);
    assert.ok(secondHalf < firstHalf + 32 * 2 ** 20, "memory kept growing while Kafka was down");

    // Every line arrives once Kafka is back.
    const deadline = Date.now() + 180_000;
    let ids = new Set<number>();
    while (Date.now() < deadline) {
      await sleep(3000);
      ids = new Set((await consumeAll(topic)).map((m) => shipSourceOf("AccessLog", m.value).offset));
      if (ids.size >= written) break;
    }
    ship.child.kill("SIGTERM");
    const exit = await ship.exited;
    ship = null;
    assert.equal(exit.code, 0);
    assert.equal(ids.size, written, `${written - ids.size} of ${written} lines never arrived`);
    assert.equal((await consumeAll(dlq)).length, 0);
  } finally {
    writing = false;
    if (kafkaStopped) await stack.up();
    if (ship) {
      ship.child.kill("SIGKILL");
      await ship.exited;
    }
    await deleteTopics([topic, dlq]);
    rmSync(root, { recursive: true, force: true });
  }
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
