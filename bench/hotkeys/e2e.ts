// The hot-key pipeline end to end on the local stack, with `weir run hotkeys` as a child process:
//   node --import tsx bench/hotkeys/e2e.ts [--trials 5] [--rate 2000] [--gifts 1000000] [--streamers 100]
//     [--skip-latency] [--skip-counters] [--out file.md]
// 1. Latency: access logs produced in real time (--rate a second over 500 rooms, Zipf 1.1); at t0 a cold
//    room starts getting 10% of the traffic; a client of weir/hotkeys notes when a published 10 s list
//    first holds it, and when it first ranks it first. One trial per room, --trials rooms.
// 2. Aggregated writes: --gifts gift events over --streamers streamers, 10,000 a second of event time,
//    into a 6-partition topic; the worker is SIGKILLed twice while it writes and restarted; Redis
//    operations (EVALSHA calls of the counter script, from INFO commandstats) against the events, and
//    every counter against the exact sum.
import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import kafkajs from "kafkajs";
import { clientEndpoints, PROJECT_ROOT } from "../../infra/stack/config.ts";
import { HotKeysClient } from "../../pipelines/hotkeys/client/hot-keys-client.ts";
import { codecFor } from "../../schemas/codec.ts";
import { SAMPLES } from "../../schemas/testdata/samples.ts";
import type { AccessLog, CoinTxn } from "../../schemas/types.generated.ts";
import { partitionFor } from "../../stream/kafka/partitioner.ts";
import { benchFlags } from "../support/flags.ts";

const { Kafka, logLevel } = kafkajs;
const { argv, flag, num } = benchFlags();
const TRIALS = num("trials", 5);
const RATE = num("rate", 2000);
const GIFTS = num("gifts", 1_000_000);
const STREAMERS = num("streamers", 100);
const OUT = flag("out");
const COMMAND = `node --import tsx bench/hotkeys/e2e.ts ${argv.join(" ")}`.trim();
const endpoints = clientEndpoints();
const kafka = new Kafka({
  clientId: "weir-bench-hotkeys",
  brokers: endpoints.kafkaBrokers,
  logLevel: logLevel.NOTHING,
});
const tag = Math.random().toString(36).slice(2, 10);
const dir = mkdtempSync(join(tmpdir(), "weir-bench-hotkeys-"));
const lines: string[] = [];
const log = (s: string) => {
  console.log(s);
  lines.push(s);
};

function startWorker(config: string, name: string): ChildProcess {
  const child = spawn(process.execPath, ["cli/weir.mjs", "run", "hotkeys", "--config", config, "--instance", name], {
    cwd: PROJECT_ROOT,
    stdio: ["ignore", "ignore", "inherit"],
  });
  return child;
}

/**
 * A worker under a supervisor, as in production (docs/stream.md): restarted when it exits on an
 * error; the restarts are reported with the results.
 */
class Supervised {
  child: ChildProcess;
  restarts = 0;
  private stopped = false;

  constructor(
    private readonly config: string,
    private readonly name: string,
  ) {
    this.child = this.spawn();
  }

  private spawn(): ChildProcess {
    const child = startWorker(this.config, `${this.name}-${this.restarts}`);
    child.once("exit", () => {
      if (this.stopped) return;
      this.restarts++;
      console.error(`worker ${this.name} exited; restarting (${this.restarts})`);
      this.child = this.spawn();
    });
    return child;
  }

  async stop(signal: NodeJS.Signals): Promise<void> {
    this.stopped = true;
    await kill(this.child, signal);
  }
}

async function kill(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  await new Promise((r) => child.once("exit", r));
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function latency(): Promise<void> {
  const appId = `bench-hk-${tag}`;
  const input = `bench.hk.access.${tag}`;
  const output = `bench.hk.top.${tag}`;
  const marks = `bench.hk.marks.${tag}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: input, numPartitions: 6 },
      { topic: output, numPartitions: 1 },
      { topic: marks, numPartitions: 1, configEntries: [{ name: "cleanup.policy", value: "compact" }] },
    ],
  });
  const config = join(dir, "latency.yaml");
  writeFileSync(
    config,
    `appId: ${appId}\ntopics: { output: ${output}, marks: ${marks} }\nschemas: { ${input}: AccessLog }\ndimensions:\n  room:\n    from: { ${input}: roomId }\n`,
  );
  const worker = new Supervised(config, "latency");
  const producer = kafka.producer();
  await producer.connect();
  const codec = codecFor("AccessLog");
  const weights = Array.from({ length: 500 }, (_, i) => (i + 1) ** -1.1);
  const sum = weights.reduce((a, b) => a + b, 0);
  let hot = null as { room: number; t0: number; seen?: number; first?: number } | null;
  const client = new HotKeysClient({
    brokers: endpoints.kafkaBrokers,
    topic: output,
    marksTopic: marks,
    clientId: "bench-hk",
    onList: (l) => {
      if (!hot || l.windowMs !== 10_000) return;
      const at = l.keys.findIndex((e) => e.key === String(700_000 + (hot?.room ?? 0)));
      if (at >= 0 && hot.seen === undefined) hot.seen = Date.now();
      if (at === 0 && hot.first === undefined) hot.first = Date.now();
    },
  });
  await client.start();
  let stop = false;
  let n = 0;
  const produce = (async () => {
    while (!stop) {
      const began = Date.now();
      const per = Math.round(RATE / 10);
      const messages = [];
      for (let j = 0; j < per; j++) {
        let u = Math.random() * sum;
        let room = 0;
        while (room < 499 && u > (weights[room] as number)) u -= weights[room++] as number;
        if (hot && Math.random() < 0.1) room = hot.room;
        const rec: AccessLog = { ...SAMPLES.AccessLog, id: `b${n++}`, ts: Date.now(), roomId: 700_000 + room };
        messages.push({ key: String(n % 64), value: codec.encode(rec) });
      }
      await producer.send({ topic: input, messages });
      await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - began))));
    }
  })();
  const results: Array<{ room: number; seen: number; first: number | null }> = [];
  try {
    // Warm-up: the worker joins, restores nothing, and publishes its first lists.
    await until("a first list", async () => client.latest("room", "10s") !== undefined, 120_000);
    await new Promise((r) => setTimeout(r, 12_000));
    for (let t = 0; t < TRIALS; t++) {
      // A cold room (rank 400 and beyond: a few requests a minute) becomes hot at t0.
      hot = { room: 400 + t, t0: Date.now() };
      const trial = hot;
      await until(
        `room ${700_400 + t} in a list`,
        async () => trial.seen !== undefined && trial.first !== undefined,
        60_000,
      ).catch(() => {});
      if (trial.seen !== undefined) {
        results.push({
          room: 700_000 + trial.room,
          seen: trial.seen - trial.t0,
          first: trial.first ? trial.first - trial.t0 : null,
        });
      }
      hot = null;
      await new Promise((r) => setTimeout(r, 12_000)); // the 10 s window forgets it
    }
  } finally {
    stop = true;
    await produce;
    await client.close();
    await producer.disconnect();
    await worker.stop("SIGTERM");
    const mine = (await admin.listTopics()).filter(
      (t) => t.startsWith(`${appId}-`) || [input, output, marks].includes(t),
    );
    await admin.deleteTopics({ topics: mine }).catch(() => {});
    await admin.deleteGroups([appId]).catch(() => {});
    await admin.disconnect();
  }
  log(`\n### Hot room latency, end to end through Kafka (${RATE} requests/s over 500 rooms; the hot room gets 10%)\n`);
  log(`Worker restarts after an error (under a supervisor): ${worker.restarts}\n`);
  log("| trial | room | first in a published 10 s list (ms after its traffic began) | ranked #1 (ms) |");
  log("|---|---|---|---|");
  for (const [i, r] of results.entries()) log(`| ${i + 1} | ${r.room} | ${r.seen} | ${r.first ?? "-"} |`);
  const seen = results.map((r) => r.seen).sort((a, b) => a - b);
  log(
    `\nmedian ${seen[Math.floor(seen.length / 2)] ?? "-"} ms, max ${seen[seen.length - 1] ?? "-"} ms over ${results.length} of ${TRIALS} trials`,
  );
}

async function counters(): Promise<void> {
  const appId = `bench-hc-${tag}`;
  const coin = `bench.hc.coin.${tag}`;
  const prefix = `weir-bench:${tag}:`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic: coin, numPartitions: 6 }] });
  const redis = new Redis(endpoints.redisUrl);
  const config = join(dir, "counters.yaml");
  writeFileSync(
    config,
    `appId: ${appId}\nschemas: { ${coin}: CoinTxn }\ncommitInterval: 1s\ncounters:\n  gifts:\n    from: ${coin}\n    where: { type: GIFT }\n    key: counterpartUid\n    amount: amount\n    period: 1s\n    grace: 1s\n    prefix: "${prefix}"\n`,
  );
  const stat = async () => {
    const info = await redis.info("commandstats");
    const evalsha = Number(/cmdstat_evalsha:calls=(\d+)/.exec(info)?.[1] ?? 0);
    const evals = Number(/cmdstat_eval:calls=(\d+)/.exec(info)?.[1] ?? 0);
    const all = Number(/total_commands_processed:(\d+)/.exec(await redis.info("stats"))?.[1] ?? 0);
    return { scripts: evalsha + evals, all };
  };
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const codec = codecFor("CoinTxn");
  const exact = new Map<number, number>();
  const base = Date.now() - Math.ceil(GIFTS / 10_000) * 1000 - 60_000;
  let n = 0;
  const produce = async (count: number) => {
    for (let sent = 0; sent < count; sent += 5000) {
      const messages = [];
      for (let j = 0; j < 5000 && n < GIFTS; j++, n++) {
        const streamer = 100_000_000 + (n % STREAMERS);
        const amount = 1 + (n % 9);
        exact.set(streamer, (exact.get(streamer) ?? 0) + amount);
        const txn: CoinTxn = {
          ...SAMPLES.CoinTxn,
          id: `g${n}`,
          ts: base + Math.floor(n / 10),
          type: "GIFT",
          counterpartUid: streamer,
          amount,
        };
        messages.push({ key: `u${n % 997}`, value: codec.encode(txn) });
      }
      if (messages.length > 0) await producer.send({ topic: coin, acks: -1, messages });
    }
  };
  const total = async () => {
    const keys = [...exact.keys()].map((s) => `${prefix}{${s}}`);
    const values = keys.length > 0 ? await redis.mget(...keys) : [];
    return values.reduce((a, v) => a + Number(v ?? 0), 0);
  };
  const before = await stat();
  const started = Date.now();
  const third = Math.ceil(GIFTS / 3);
  try {
    await produce(third);
    let w = new Supervised(config, "c1");
    await until("first counters", async () => (await total()) > 0, 300_000);
    await w.stop("SIGKILL");
    const one = await total();
    await produce(third);
    w = new Supervised(config, "c2");
    await until("more counters", async () => (await total()) > one, 300_000);
    await w.stop("SIGKILL");
    await produce(GIFTS);
    w = new Supervised(config, "c3");
    const ends = await admin.fetchTopicOffsets(coin);
    await until(
      "every gift committed",
      async () => {
        const [g] = await admin.fetchOffsets({ groupId: appId, topics: [coin] });
        return ends.every((e) => g?.partitions.find((p) => p.partition === e.partition)?.offset === e.high);
      },
      900_000,
    );
    const sentinels = new Map<number, string>();
    for (let s = 900_000_000; sentinels.size < 6; s++)
      if (!sentinels.has(partitionFor(String(s), 6))) sentinels.set(partitionFor(String(s), 6), String(s));
    await producer.send({
      topic: coin,
      acks: -1,
      messages: [...sentinels.values()].map((s) => ({
        key: s,
        value: codec.encode({
          ...SAMPLES.CoinTxn,
          id: `end${s}`,
          ts: base + 3_600_000,
          type: "GIFT",
          counterpartUid: Number(s),
          amount: 0,
        }),
      })),
    });
    const want = [...exact.values()].reduce((a, b) => a + b, 0);
    // The upstream commits long before the coalesce step has read the repartition topic to its end:
    // wait until the group has committed every topic it reads (the repartition topics too) to its
    // end and the total has stopped moving, or 10 minutes without progress. Giving up is reported
    // with what was left, never as a count.
    let last = -1;
    let movedAt = Date.now();
    let behind = -1;
    const groupLag = async () => {
      let n = 0;
      for (const { topic, partitions } of await admin.fetchOffsets({ groupId: appId })) {
        for (const e of await admin.fetchTopicOffsets(topic)) {
          const c = Number(partitions.find((p) => p.partition === e.partition)?.offset ?? -1);
          n += Math.max(0, Number(e.high) - Math.max(c, 0));
        }
      }
      return n;
    };
    await until(
      "every coin in Redis",
      async () => {
        const t = await total();
        const lag = await groupLag();
        if (t !== last || lag !== behind) {
          last = t;
          behind = lag;
          movedAt = Date.now();
        }
        // A transaction's commit marker is one offset a partition the group never commits past.
        return (t >= want && lag <= 64) || Date.now() - movedAt > 600_000;
      },
      3_600_000,
    );
    if (last < want) log(`\nGave up waiting: ${last} of ${want} coins in Redis, the group ${behind} records behind.`);
    await new Promise((r) => setTimeout(r, 3000));
    await w.stop("SIGTERM");
    const after = await stat();
    let wrong = 0;
    for (const [s, sum] of exact) if (Number(await redis.get(`${prefix}{${s}}`)) !== sum) wrong++;
    const scripts = after.scripts - before.scripts;
    log(`\nWorker restarts after an error in the last run (under a supervisor): ${w.restarts}`);
    log(
      `\n### Aggregated writes: ${GIFTS.toLocaleString("en")} gift events on ${STREAMERS} streamers, two SIGKILLs of the worker\n`,
    );
    log(
      "| events | streamers | event time | counter-script calls (EVALSHA) | all Redis commands | events per script call | coins in Redis / exact | streamers wrong | wall time |",
    );
    log("|---|---|---|---|---|---|---|---|---|");
    log(
      `| ${GIFTS.toLocaleString("en")} | ${STREAMERS} | ${Math.ceil(GIFTS / 10_000)} s | ${scripts.toLocaleString("en")} | ${(after.all - before.all).toLocaleString("en")} | ${(GIFTS / Math.max(1, scripts)).toFixed(0)}x | ${(await total()).toLocaleString("en")} / ${want.toLocaleString("en")} | ${wrong} | ${((Date.now() - started) / 1000).toFixed(0)} s |`,
    );
  } finally {
    await producer.disconnect();
    const mine = (await admin.listTopics()).filter((t) => t.startsWith(`${appId}-`) || t === coin);
    await admin.deleteTopics({ topics: mine }).catch(() => {});
    await admin.deleteGroups([appId]).catch(() => {});
    await admin.disconnect();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== "0");
    redis.disconnect();
  }
}

log(
  `Command: \`${COMMAND}\`\nStarted ${new Date().toISOString()}; ${cpus().length} cores, load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
try {
  if (flag("skip-latency") !== "true") await latency();
  if (flag("skip-counters") !== "true") await counters();
} finally {
  rmSync(dir, { recursive: true, force: true });
  log(
    `\nFinished ${new Date().toISOString()}, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  if (OUT) appendFileSync(OUT, `${lines.join("\n")}\n`);
}
