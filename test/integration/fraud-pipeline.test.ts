// `weir run fraud` on the real stack, in topics and a database of its own: the repository's rules over
// their fixtures' events (moved to the last hours), a worker SIGKILLed mid-run and replaced. Every
// signal reaches signals.risk once (read_committed) and ClickHouse once (FINAL), and the rules that
// read a single topic each fire for their fixture's entity: nothing lost, nothing doubled.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Admin, Producer } from "kafkajs";
import { STREAMS, type StreamName } from "../../pipelines/fraud/cel/environment.ts";
import { compileRuleSet } from "../../pipelines/fraud/rules/compile.ts";
import { FIXTURE_EPOCH } from "../../pipelines/fraud/rules/fixtures.ts";
import type { RuleSetPlan } from "../../pipelines/fraud/rules/plan.ts";
import { readSignals } from "../../pipelines/fraud/signals-reader.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { RiskSignal } from "../../schemas/types.generated.ts";
import { splitStatements } from "../../sinks/clickhouse/migrate.ts";
import { clickhouseClient, kafkaClient, requireStack, uniqueName } from "../support/stack.ts";

const ROOT = join(fileURLToPath(new URL(".", import.meta.url)), "..", "..");
const kafka = kafkaClient("weir-fraud-test");
const ch = clickhouseClient();
const database = uniqueName("fraud");
const appId = uniqueName("fraud").replaceAll("_", "-");
const prefix = `${uniqueName("t").replaceAll("_", "-")}.`;
const STREAM_LIST: StreamName[] = ["behavior", "coin", "device"];
const topics = {
  ...Object.fromEntries(STREAM_LIST.map((s) => [s, `${prefix}${STREAMS[s].topic}`])),
  signals: `${prefix}signals.risk`,
  dlq: `${prefix}dlq.fraud`,
} as Record<StreamName | "signals" | "dlq", string>;
const PARTITIONS = 3;
const children: ChildProcess[] = [];
const logs = new Map<string, string>();
let admin: Admin;
let producer: Producer;

/** Rules whose fixtures read one topic and no enrichment: their result does not depend on how topics interleave. */
const SINGLE_TOPIC = [
  "example.fake_phone.virtual_number_register",
  "example.emulator.build_signs",
  "example.root_jailbreak.root_manager",
  "example.spam.contact_in_chat",
  "example.coin_brushing.many_cards",
  "example.coin_brushing.recharge_then_gift_all",
  "example.emulator.accounts_per_device",
  "example.fake_followers.follow_burst",
  "example.fake_phone.registered_never_active",
];

before(async () => {
  await requireStack();
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      ...STREAM_LIST.map((s) => ({ topic: topics[s], numPartitions: PARTITIONS })),
      { topic: topics.signals, numPartitions: PARTITIONS },
      { topic: topics.dlq, numPartitions: 1 },
    ],
  });
  const ddl = readFileSync(join(ROOT, "infra", "clickhouse", "003_risk_signals.sql"), "utf8")
    .replaceAll("CREATE DATABASE IF NOT EXISTS weir", `CREATE DATABASE IF NOT EXISTS ${database}`)
    .replaceAll("weir.", `${database}.`);
  for (const stmt of splitStatements(ddl)) await ch.command({ query: stmt });
  producer = kafka.producer({ idempotent: true });
  await producer.connect();
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await producer?.disconnect().catch(() => {});
  await ch.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => {});
  await ch.close();
  const internal = (await admin.listTopics()).filter((t) => t.startsWith(`${appId}-`));
  await admin.deleteTopics({ topics: [...Object.values(topics), ...internal] }).catch(() => {});
  await admin.deleteGroups([appId]).catch(() => {});
  await admin.disconnect();
});

function startWorker(name: string): ChildProcess {
  const child = spawn(process.execPath, ["cli/weir.mjs", "run", "fraud", "--instance", name], {
    cwd: ROOT,
    env: {
      ...process.env,
      WEIR_ENV: "development",
      WEIR_PII_KEY: "",
      WEIR_PII_KEY_FILE: "",
      WEIR_FRAUD_APP_ID: appId,
      WEIR_FRAUD_DATABASE: database,
      WEIR_FRAUD_TOPIC_PREFIX: prefix,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  const keep = (d: Buffer) => {
    log = (log + d).slice(-20_000);
    logs.set(name, log);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  children.push(child);
  return child;
}

async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill(signal);
  await exited;
}

interface Ev {
  stream: StreamName;
  key: string;
  value: Buffer;
  ts: number;
}

/** The hit fixtures' events of the repository's rules, moved so that they end two hours ago. */
function fixtureEvents(plan: RuleSetPlan): { events: Ev[]; shift: number } {
  const raw = plan.rules.flatMap((r) =>
    r.fixtures.filter((f) => f.expect === "hit").flatMap((f) => f.events.filter((e) => STREAM_LIST.includes(e.stream))),
  );
  const last = Math.max(...raw.map((e) => e.ts));
  const shift = Date.now() - 3 * 3600_000 - last;
  const events = raw
    .map((e) => {
      const record: Record<string, unknown> = { ...e.record, ts: e.ts + shift };
      const key = e.stream === "device" ? String(record.deviceId) : String(record.uid);
      return {
        stream: e.stream,
        key,
        value: codecFor(STREAMS[e.stream].schema).encode(record as never),
        ts: e.ts + shift,
      };
    })
    .sort((a, b) => a.ts - b.ts);
  return { events, shift };
}

async function send(events: Ev[]): Promise<void> {
  for (const s of STREAM_LIST) {
    const messages = events
      .filter((e) => e.stream === s)
      .map((e) => ({ key: e.key, value: e.value, timestamp: String(e.ts) }));
    if (messages.length > 0) await producer.send({ topic: topics[s], acks: -1, messages });
  }
}

/** A quiet event on every partition, well after the fixtures: every window and absence is decided. */
async function ticks(at: number): Promise<void> {
  for (const s of STREAM_LIST) {
    const codec = codecFor(STREAMS[s].schema);
    const base: Record<StreamName, Record<string, unknown>> = {
      behavior: {
        type: "LIKE",
        uid: 1,
        deviceId: "d-tick",
        ip: "111.200.0.1",
        appVersion: "8.4.1",
        platform: "android",
      },
      coin: { type: "GIFT", uid: 1, amount: 1, balanceAfter: 0, ip: "111.200.0.1" },
      device: {},
      access: {},
    };
    if (s === "device") continue; // a device report is a whole record: the other two streams' ticks suffice with idle partitions
    await producer.send({
      topic: topics[s],
      acks: -1,
      messages: Array.from({ length: PARTITIONS }, (_, p) => ({
        partition: p,
        key: "tick",
        value: codec.encode({ id: `tick-${s}-${p}`, ts: at, ...base[s] } as never),
        timestamp: String(at),
      })),
    });
  }
}

/** Every signal in the signals topic, read_committed, from the start to its end now. */
async function topicSignals(): Promise<RiskSignal[]> {
  const ends = await admin.fetchTopicOffsets(topics.signals);
  const want = ends.reduce((n, o) => n + Number(o.high), 0);
  const codec = codecFor("RiskSignal");
  const out: RiskSignal[] = [];
  const consumer = kafka.consumer({ groupId: uniqueName("fraud-read"), readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic: topics.signals, fromBeginning: true });
  const done = new Promise<void>((resolve) => {
    const seen = new Map<number, number>();
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        if (message.value) out.push(codec.decode(message.value));
        seen.set(partition, Number(message.offset) + 1);
        const high = ends.map((o) => Number(o.high));
        if (ends.every((o, i) => (seen.get(o.partition) ?? 0) >= (high[i] as number) - 1)) resolve();
      },
    });
    // committed records only: the offsets of transaction markers are never delivered
    setTimeout(resolve, 15_000);
  });
  await done;
  await consumer.disconnect();
  assert.ok(out.length <= want);
  return out;
}

/** Dead letters by reason (shown when the test times out). */
async function deadLetters(): Promise<Record<string, number>> {
  const ends = await admin.fetchTopicOffsets(topics.dlq);
  const total = ends.reduce((n, o) => n + Number(o.high), 0);
  const codec = codecFor("DeadLetter");
  const out: Record<string, number> = {};
  if (total === 0) return out;
  const consumer = kafka.consumer({ groupId: uniqueName("fraud-dlq") });
  await consumer.connect();
  await consumer.subscribe({ topic: topics.dlq, fromBeginning: true });
  let n = 0;
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ message }) => {
        if (message.value) {
          const d = codec.decode(message.value) as { reason: string; message: string };
          const k = `${d.reason}: ${d.message.slice(0, 120)}`;
          out[k] = (out[k] ?? 0) + 1;
        }
        if (++n >= total) resolve();
      },
    });
    setTimeout(resolve, 10_000);
  });
  await consumer.disconnect();
  return out;
}

async function clickhouseSignals(from: number, to: number) {
  return readSignals(ch, database, { from, to, limit: 100_000 });
}

async function waitUntil(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const fired = [...new Set((await clickhouseSignals(0, Date.now())).map((r) => r.ruleId))];
  throw new Error(
    `timed out waiting for ${what}; rules that fired: ${fired.join(", ")}; dead letters: ${JSON.stringify(await deadLetters())}; worker logs:\n${[...logs.values()].map((l) => l.slice(-3000)).join("\n---\n")}`,
  );
}

test("a worker SIGKILLed mid-run: every signal once in signals.risk and ClickHouse, none lost", async () => {
  const plan = compileRuleSet(join(ROOT, "rules")).plan as RuleSetPlan;
  const { events, shift } = fixtureEvents(plan);
  const half = Math.floor(events.length / 2);
  const from = Math.min(...events.map((e) => e.ts)) - 1;
  const to = Date.now();

  const a = startWorker("fraud-a");
  await send(events.slice(0, half));
  await waitUntil(
    "the first signals in ClickHouse",
    async () => (await clickhouseSignals(from, to)).length > 0,
    120_000,
  );
  await kill(a, "SIGKILL");
  const b = startWorker("fraud-b");
  await send(events.slice(half));
  // Done when the rules have fired and ClickHouse has not changed for a while.
  const settled = (rules: string[]) => {
    let last = -1;
    let still = 0;
    return async () => {
      const rows = await clickhouseSignals(from, to);
      const fired = new Set(rows.map((r) => r.ruleId));
      still = rows.length === last ? still + 1 : 0;
      last = rows.length;
      return rules.every((r) => fired.has(r)) && still >= 5;
    };
  };
  const absence = "example.fake_phone.registered_never_active";
  await waitUntil("the single-topic rules' signals", settled(SINGLE_TOPIC.filter((r) => r !== absence)), 180_000);
  // Only then time moves on: events of one topic are not ordered with another's, and a tick read
  // before the last fixture events would make them late.
  await ticks(Math.max(...events.map((e) => e.ts)) + 2 * 3600_000);
  await waitUntil("the absence's signal", settled(SINGLE_TOPIC), 120_000);
  await kill(b, "SIGTERM");

  const inTopic = await topicSignals();
  const ids = inTopic.map((s) => s.id);
  assert.equal(new Set(ids).size, ids.length, "no signal twice in signals.risk (read_committed)");
  const inClickHouse = await clickhouseSignals(from, to);
  assert.deepEqual(
    [...new Set(inClickHouse.map((s) => s.id))].sort(),
    [...new Set(ids)].sort(),
    "ClickHouse holds what signals.risk holds",
  );
  assert.equal(new Set(inClickHouse.map((s) => s.id)).size, inClickHouse.length, "one row per signal (FINAL)");
  for (const rule of plan.rules.filter((r) => SINGLE_TOPIC.includes(r.id))) {
    for (const fx of rule.fixtures.filter((f) => f.expect === "hit" && f.entity !== undefined)) {
      assert.ok(
        inTopic.some((s) => s.ruleId === rule.id && s.entity.id === fx.entity),
        `${rule.id}: ${fx.name} (${fx.entity})`,
      );
    }
  }
  assert.ok(shift !== 0 && FIXTURE_EPOCH > 0);
});
