// Aggregated writes on the real Kafka and Redis: gift events summed per streamer and second by
// `weir run hotkeys` (its coalesce step and the Redis counter sink), the worker SIGKILLed twice while
// it writes, restarted each time; every streamer's counter in Redis equals the exact sum of its gifts.
// Also the counter script's idempotence and the in-service CounterBuffer against the real server.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { Redis } from "ioredis";
import type { Admin, Producer } from "kafkajs";
import { codecFor } from "../../schemas/codec.ts";
import { SAMPLES } from "../../schemas/testdata/samples.ts";
import type { CoinTxn } from "../../schemas/types.generated.ts";
import { CounterBuffer } from "../../sinks/redis/counter-buffer.ts";
import { CounterStore } from "../../sinks/redis/counters.ts";
import { partitionFor } from "../../stream/kafka/partitioner.ts";
import { endpoints, kafkaClient, requireServices, uniqueName } from "../support/stack.ts";

const kafka = kafkaClient("weir-hot-counters-test");
const id = uniqueName("hc");
const appId = id.replaceAll("_", "-");
const coin = `${id}_coin`;
const dlq = `${id}_dlq`;
const prefix = `weir-test:${id}:`;
const dir = mkdtempSync(join(tmpdir(), "weir-hot-counters-"));
const children: ChildProcess[] = [];
const redis = new Redis(endpoints.redisUrl);
let admin: Admin;
let producer: Producer;

before(async () => {
  await requireServices(["kafka", "redis"]);
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: coin, numPartitions: 3 },
      { topic: dlq, numPartitions: 1 },
    ],
  });
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await producer?.disconnect();
  const mine = (await admin.listTopics()).filter((t) => t.startsWith(`${appId}-`) || t === coin || t === dlq);
  if (mine.length > 0) await admin.deleteTopics({ topics: mine }).catch(() => {});
  await admin.deleteGroups([appId]).catch(() => {});
  await admin.disconnect();
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `weir-test:${id}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== "0");
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number, log?: () => string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${log ? `\n${log().slice(0, 4000)}` : ""}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test("the counter script applies a writer's delta once per sequence, and only a later sequence after it", async () => {
  const store = new CounterStore({ url: endpoints.redisUrl, prefix: `${prefix}script:` });
  try {
    const w = (delta: number, seq: number, writer = "w/0") => ({ key: "s1", delta, writer, seq });
    assert.deepEqual(await store.apply([w(5, 1000), w(5, 1000), w(3, 999), w(2, 2000), w(7, 1000, "w/1")]), [
      "applied",
      "duplicate",
      "duplicate",
      "applied",
      "applied",
    ]);
    assert.equal(await store.get("s1"), 14);
    assert.equal(await redis.hget(`${prefix}script:{s1}:applied`, "w/0"), "2000");
    assert.ok((await redis.ttl(`${prefix}script:{s1}:applied`)) > 86_400);
  } finally {
    await store.close();
  }
});

test("CounterBuffer: increments summed in memory, one write per key per flush, everything in Redis after close()", async () => {
  const buf = new CounterBuffer({ url: endpoints.redisUrl, prefix: `${prefix}svc:`, period: 60_000, maxKeys: 3 });
  for (let i = 0; i < 1000; i++) buf.add(`room-${i % 3}`, 2);
  assert.equal(buf.add("room-x", 1), true, "a fourth key starts a flush of the three waiting");
  await buf.flush();
  for (let i = 0; i < 10; i++) buf.add("room-0");
  await buf.close();
  const store = new CounterStore({ url: endpoints.redisUrl, prefix: `${prefix}svc:` });
  try {
    assert.deepEqual(
      await Promise.all(["room-0", "room-1", "room-2", "room-x"].map((k) => store.get(k))),
      [678, 666, 666, 1],
    );
  } finally {
    await store.close();
  }
  assert.equal(buf.stats.dropped, 0);
  assert.ok(buf.stats.flushes >= 2 && buf.stats.flushes <= 3, `${buf.stats.flushes} flushes`);
});

test("gift coins per streamer in Redis equal the exact sums after two SIGKILLs of the worker", async () => {
  const configFile = join(dir, "hotkeys.yaml");
  writeFileSync(
    configFile,
    `appId: ${appId}
topics: { dlq: ${dlq} }
commitInterval: 300ms
schemas: { ${coin}: CoinTxn }
counters:
  gifts:
    from: ${coin}
    where: { type: GIFT }
    key: counterpartUid
    amount: amount
    period: 1s
    grace: 1s
    prefix: "${prefix}gifts:"
`,
  );
  const codec = codecFor("CoinTxn");
  const exact = new Map<number, number>();
  const base = Date.now() - 120_000;
  let n = 0;
  const produce = async (count: number) => {
    for (let sent = 0; sent < count; sent += 1000) {
      const messages = [];
      for (let j = 0; j < 1000; j++, n++) {
        const streamer = 100_000_000 + (n % 100);
        const amount = 1 + (n % 7);
        const type: CoinTxn["type"] = n % 10 === 9 ? "RECHARGE" : "GIFT";
        if (type === "GIFT") exact.set(streamer, (exact.get(streamer) ?? 0) + amount);
        const txn: CoinTxn = { ...SAMPLES.CoinTxn, id: `t${n}`, ts: base + n, type, counterpartUid: streamer, amount };
        messages.push({ key: String(n % 17), value: codec.encode(txn) });
      }
      await producer.send({ topic: coin, acks: -1, messages });
    }
  };
  const total = async (): Promise<number> => {
    let sum = 0;
    for (const s of exact.keys()) sum += Number((await redis.get(`${prefix}gifts:{${s}}`)) ?? 0);
    return sum;
  };
  let log = "";
  const start = (name: string): ChildProcess => {
    const child = spawn(
      process.execPath,
      ["cli/weir.mjs", "run", "hotkeys", "--config", configFile, "--instance", name, "--data-dir", dir],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout?.on("data", (d) => {
      log = (log + d).slice(-50_000);
    });
    child.stderr?.on("data", (d) => {
      log = (log + d).slice(-50_000);
    });
    children.push(child);
    return child;
  };
  const kill = async (child: ChildProcess) => {
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
  };

  await produce(30_000);
  const first = start("w1");
  await until(
    "the first counters in Redis",
    async () => (await total()) > 0,
    120_000,
    () => log,
  );
  await kill(first);
  const afterFirst = await total();
  await produce(30_000);
  const second = start("w2");
  await until(
    "more counters after the restart",
    async () => (await total()) > afterFirst,
    120_000,
    () => log,
  );
  await kill(second);
  await produce(30_000);
  const third = start("w3");
  // Once the worker has committed every input record (so they all went through the repartition
  // topic before these), a record far ahead on each of its partitions closes the periods left open.
  // Sent earlier, it could overtake records of a slower upstream task, which would then join the
  // period it opened and wait for later traffic (docs/hotkeys.md).
  const ends = await admin.fetchTopicOffsets(coin);
  await until(
    "the worker to commit every input record",
    async () => {
      const [group] = await admin.fetchOffsets({ groupId: appId, topics: [coin] });
      return ends.every((e) => group?.partitions.find((p) => p.partition === e.partition)?.offset === e.high);
    },
    240_000,
    () => log,
  );
  const sentinels = new Map<number, string>();
  for (let s = 900_000_000; sentinels.size < 3; s++) {
    const p = partitionFor(String(s), 3);
    if (!sentinels.has(p)) sentinels.set(p, String(s));
  }
  await producer.send({
    topic: coin,
    acks: -1,
    messages: [...sentinels.values()].map((s) => ({
      key: s,
      value: codec.encode({
        ...SAMPLES.CoinTxn,
        id: `end-${s}`,
        ts: base + 600_000,
        type: "GIFT",
        counterpartUid: Number(s),
        amount: 0,
      }),
    })),
  });
  const want = [...exact.values()].reduce((a, b) => a + b, 0);
  try {
    let last = 0;
    await until(
      "every gift in Redis",
      async () => {
        last = await total();
        return last >= want;
      },
      240_000,
      () => `${last} of ${want} coins in Redis\n${log.slice(-3000)}`,
    );
    // Give a double count the time to show, if there were one.
    await new Promise((r) => setTimeout(r, 2000));
    for (const [streamer, sum] of exact) {
      assert.equal(Number(await redis.get(`${prefix}gifts:{${streamer}}`)), sum, `streamer ${streamer}`);
    }
    assert.equal(await total(), want);
  } finally {
    await kill(third);
  }
});
