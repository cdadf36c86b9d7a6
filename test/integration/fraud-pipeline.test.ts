// `weir run fraud` end to end on the real stack, in topics, a group and a database of its own:
// simulated traffic with fraud campaigns -> `weir ship` -> two workers -> signals.risk and ClickHouse.
//
//  1. Nothing is deployed: both workers run the repository's rules/.
//  2. The first batch is shipped; one worker is SIGKILLed mid-run and replaced.
//  3. A broken rules folder is refused by `weir rules deploy` (nothing published); a snapshot that does
//     not compile is published anyway (as a newer weir's snapshot reaching an older worker would be):
//     both workers refuse it, keep running their rules and say so on /health and in rules.status.
//  4. The second batch is shipped, and during it a good snapshot is deployed (the repository's rules and
//     one new rule): both workers switch to it without a restart; a third batch follows the switch.
//  5. Checks: no signal twice in signals.risk (read_committed) nor in ClickHouse (FINAL), no shadow
//     signal in signals.risk; no record late on the workers (WEIR_FRAUD_GRACE); the rules whose results
//     do not depend on how records interleave flagged
//     exactly the entities the same records give in one process (read back from the topics through the
//     Kafka backtest: nothing lost across the kill or the switch); the new rule fired after the switch.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Admin } from "kafkajs";
import { CATALOG_TOPICS, type SimulatorTopics } from "../../infra/simulator/ship-config.ts";
import { SIMULATE_DEFAULTS, simulate } from "../../infra/simulator/simulate.ts";
import { KafkaClient } from "../../kafka/client.ts";
import { backtestKafka } from "../../pipelines/fraud/backtest.ts";
import { folderFiles, packBundle } from "../../pipelines/fraud/deploy/bundle.ts";
import { snapshotOf } from "../../pipelines/fraud/deploy/deploy.ts";
import { RecordWriter, readStatuses } from "../../pipelines/fraud/deploy/topics.ts";
import { compileRuleSet } from "../../pipelines/fraud/rules/compile.ts";
import type { RuleSetPlan } from "../../pipelines/fraud/rules/plan.ts";
import { readSignals } from "../../pipelines/fraud/signals-reader.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { RiskSignal } from "../../schemas/types.generated.ts";
import { splitStatements } from "../../sinks/clickhouse/migrate.ts";
import { type ShipProcess, simulatorShipConfig, startShip } from "../support/ship.ts";
import { clickhouseClient, endpoints, kafkaClient, requireStack, uniqueName } from "../support/stack.ts";

const ROOT = join(fileURLToPath(new URL(".", import.meta.url)), "..", "..");
const kafka = kafkaClient("weir-fraud-e2e");
const ch = clickhouseClient();
const database = uniqueName("fraud");
const appId = uniqueName("fraud").replaceAll("_", "-");
const prefix = `${uniqueName("t").replaceAll("_", "-")}.`;
const PARTITIONS = 3;
const topics: SimulatorTopics & { signals: string; fraudDlq: string; snapshots: string; status: string } = {
  ...(Object.fromEntries(
    Object.entries(CATALOG_TOPICS).map(([k, t]) => [k, `${prefix}${t}`]),
  ) as unknown as SimulatorTopics),
  signals: `${prefix}signals.risk`,
  fraudDlq: `${prefix}dlq.fraud`,
  snapshots: `${prefix}rules.snapshots`,
  status: `${prefix}rules.status`,
};
const ENV = {
  WEIR_ENV: "development",
  WEIR_PII_KEY: "",
  WEIR_PII_KEY_FILE: "",
  WEIR_FRAUD_APP_ID: appId,
  WEIR_FRAUD_DATABASE: database,
  WEIR_FRAUD_TOPIC_PREFIX: prefix,
  // The batches reach the workers out of event-time order: ship reads each service's files at its own
  // pace, the second and third batches (20 s apart) are shipped at once, and a topic whose partitions
  // fall silent between batches stops holding the watermark back. With no grace, the records more
  // than the sources' 5 s out-of-orderness behind count in no window (hundreds per rule in this test),
  // while the backtest reads them in event-time order; with it, none is late and both must agree.
  WEIR_FRAUD_GRACE: "10m",
  WEIR_KAFKA_BROKERS: endpoints.kafkaBrokers.join(","),
};
/**
 * Rules whose signals do not depend on how the topics' records interleave (no enrichment, one topic)
 * as long as no record is late (checked on the workers' counters below) and the traffic of one
 * entity spans less than a cool-down (a cool-down lets one signal through per entity whichever order
 * its records come in; it would not if a rule's signals for one entity were cool-downs apart).
 */
const ORDER_FREE = [
  "example.fake_phone.virtual_number_register",
  "example.fake_phone.virtual_number_register_sms",
  "example.emulator.build_signs",
  "example.root_jailbreak.root_manager",
  "example.spam.contact_in_chat",
  "example.coin_brushing.many_cards",
  // Not example.coin_brushing.recharge_then_gift_all: a sequence matches its steps in the order they
  // are read, and its RECHARGEs (pay-svc) and GIFTs (gift-svc) reach events.coin from two services'
  // files shipped each at its own pace: a GIFT read before its RECHARGE does not match, and which
  // RECHARGE a GIFT pairs with can change. Live it flagged 13 users the backtest did not and missed
  // 34 it flagged, with no record late.
  "example.emulator.accounts_per_device",
  "example.fake_followers.follow_burst",
];
const NEW_RULE = "e2e.emulator.cloud_address";
const children: ChildProcess[] = [];
const logs = new Map<string, string>();
const dirs: string[] = [];
let admin: Admin;

before(async () => {
  await requireStack();
  admin = kafka.admin();
  await admin.connect();
  const compact = [{ name: "cleanup.policy", value: "compact" }];
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      ...(["access", "app", "behavior", "coin", "device"] as const).map((k) => ({
        topic: topics[k],
        numPartitions: PARTITIONS,
      })),
      { topic: topics.dlq, numPartitions: 1 },
      { topic: topics.signals, numPartitions: PARTITIONS },
      { topic: topics.fraudDlq, numPartitions: 1 },
      {
        topic: topics.snapshots,
        numPartitions: 1,
        configEntries: [...compact, { name: "max.message.bytes", value: "10485760" }],
      },
      { topic: topics.status, numPartitions: 1, configEntries: compact },
    ],
  });
  const ddl = readFileSync(join(ROOT, "infra", "clickhouse", "003_risk_signals.sql"), "utf8")
    .replaceAll("CREATE DATABASE IF NOT EXISTS weir", `CREATE DATABASE IF NOT EXISTS ${database}`)
    .replaceAll("weir.", `${database}.`);
  for (const stmt of splitStatements(ddl)) await ch.command({ query: stmt });
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await ch.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => {});
  await ch.close();
  const internal = (await admin.listTopics()).filter((t) => t.startsWith(`${appId}-`));
  await admin.deleteTopics({ topics: [...Object.values(topics), ...internal] }).catch(() => {});
  await admin.deleteGroups([appId]).catch(() => {});
  await admin.disconnect();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function temp(name: string): string {
  const d = mkdtempSync(join(tmpdir(), `weir-fraud-e2e-${name}-`));
  dirs.push(d);
  return d;
}

interface Worker {
  name: string;
  child: ChildProcess;
  port: Promise<number>;
}

function startWorker(name: string): Worker {
  const child = spawn(
    process.execPath,
    ["cli/weir.mjs", "run", "fraud", "--instance", name, "--data-dir", temp(name)],
    {
      cwd: ROOT,
      env: { ...process.env, ...ENV },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let log = "";
  let gotPort: (p: number) => void = () => {};
  const port = new Promise<number>((r) => {
    gotPort = r;
  });
  const keep = (d: Buffer) => {
    log = (log + d).slice(-40_000);
    logs.set(name, log);
    const m = /"metricsPort":(\d+)/.exec(log);
    if (m) gotPort(Number(m[1]));
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  children.push(child);
  return { name, child, port };
}

async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill(signal);
  // Open defect: a worker stopped by SIGTERM right after another left the group once wrote its
  // "stopped" status and closed its port but never exited. Bounded here so the suite cannot hang;
  // the stop is still checked through rules.status. See docs/fraud.md, "Not built yet".
  const inTime = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 60_000))]);
  if (!inTime) {
    console.log(`# worker pid ${child.pid} did not exit within 60 s of ${signal}: SIGKILL (open defect)`);
    child.kill("SIGKILL");
    await exited;
  }
}

function weir(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ["cli/weir.mjs", ...args], {
    cwd: ROOT,
    env: { ...process.env, ...ENV },
    encoding: "utf8",
    timeout: 120_000,
  });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

async function ship(simDir: string): Promise<ShipProcess> {
  const dir = temp("ship");
  const config = join(dir, "ship.yaml");
  writeFileSync(config, simulatorShipConfig(simDir, join(dir, "state"), topics));
  return startShip(["--config", config]);
}

/** Messages in the event topics (what ship has delivered of them). */
async function eventCount(): Promise<number> {
  let n = 0;
  for (const t of [topics.behavior, topics.coin, topics.device])
    for (const p of await admin.fetchTopicOffsets(t)) n += Number(p.high);
  return n;
}

/** Input records the group has not committed yet (transaction markers make a caught-up partition show 1). */
async function lag(): Promise<number> {
  let n = 0;
  for (const topic of [topics.behavior, topics.coin, topics.device]) {
    const ends = await admin.fetchTopicOffsets(topic);
    const [committed] = await admin.fetchOffsets({ groupId: appId, topics: [topic] });
    for (const e of ends) {
      const c = Number(committed?.partitions.find((p) => p.partition === e.partition)?.offset ?? -1);
      n += Math.max(0, Number(e.high) - Math.max(c, 0));
    }
  }
  return n;
}

async function clickhouseSignals() {
  return readSignals(ch, database, { from: 0, to: Date.now() + 3600_000, limit: 100_000 });
}

async function waitUntil(what: string, check: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(
    `timed out waiting for ${what}; worker logs:\n${[...logs].map(([n, l]) => `${n}: ${l.slice(-3000)}`).join("\n---\n")}`,
  );
}

/** The pipeline has everything shipped so far: the group caught up, and ClickHouse unchanged for a while. */
async function drained(expectedEvents: number, ms: number): Promise<void> {
  let last = -1;
  let still = 0;
  await waitUntil(
    `${expectedEvents} events processed`,
    async () => {
      if ((await eventCount()) < expectedEvents) return false;
      const rows = (await clickhouseSignals()).length;
      still = rows === last ? still + 1 : 0;
      last = rows;
      return (await lag()) <= 3 * PARTITIONS && still >= 4;
    },
    ms,
  );
}

/** Every signal in signals.risk, read_committed, from its start to its end now. */
async function topicSignals(): Promise<RiskSignal[]> {
  const ends = await admin.fetchTopicOffsets(topics.signals);
  const codec = codecFor("RiskSignal");
  const out: RiskSignal[] = [];
  const consumer = kafka.consumer({ groupId: uniqueName("fraud-read"), readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic: topics.signals, fromBeginning: true });
  await new Promise<void>((resolve) => {
    const seen = new Map<number, number>();
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        if (message.value) out.push(codec.decode(message.value));
        seen.set(partition, Number(message.offset) + 1);
        if (ends.every((o) => (seen.get(o.partition) ?? 0) >= Number(o.high) - 1)) resolve();
      },
    });
    // committed records only: the offsets of transaction markers are never delivered
    setTimeout(resolve, 15_000);
  });
  await consumer.disconnect();
  return out;
}

async function health(
  w: Worker,
): Promise<{ rules: { version: string; refused?: { version: string; error: string } } }> {
  const res = await fetch(`http://127.0.0.1:${await w.port}/health`, { signal: AbortSignal.timeout(5000) });
  return (await res.json()) as never;
}

async function statuses() {
  const client = new KafkaClient({ brokers: endpoints.kafkaBrokers, clientId: "weir-fraud-e2e-status" });
  return [...(await readStatuses(client, topics.status)).values()].filter((s) => s.app === appId);
}

test("simulated traffic -> weir ship -> two workers: a SIGKILL, a refused deploy and a good one lose and double nothing", async () => {
  const plan = compileRuleSet(join(ROOT, "rules")).plan as RuleSetPlan;
  // Three batches of traffic with fraud, one after the other in event time, ending now.
  const duration = 20_000;
  const start = Date.now() - 3 * duration - 60_000;
  const sims = [temp("sim-a"), temp("sim-b"), temp("sim-c")];
  const runs: Array<Awaited<ReturnType<typeof simulate>>> = [];
  for (const [i, out] of sims.entries())
    runs.push(
      await simulate({
        ...SIMULATE_DEFAULTS,
        seed: 11 + i,
        durationMs: duration,
        rate: 1200,
        out,
        start: start + i * duration,
        fraud: 2,
      }),
    );
  const business = (...rs: Array<Awaited<ReturnType<typeof simulate>> | undefined>) =>
    rs
      .flatMap((r) => r?.streams ?? [])
      .filter((s) => ["behavior", "coin", "device"].includes(s.kind))
      .reduce((n, s) => n + s.events, 0);

  // 1. Nothing deployed: the workers run the repository's rules.
  const w1 = startWorker("w1");
  const w2 = startWorker("w2");
  await waitUntil(
    "both workers reporting",
    async () => (await statuses()).filter((s) => s.state === "running").length === 2,
    90_000,
  );
  for (const s of await statuses()) assert.equal(s.version, plan.version, `${s.instance} runs rules/`);

  // 2. The first batch, and a worker killed mid-run.
  const shipA = await ship(sims[0] as string);
  await waitUntil("the first signals in ClickHouse", async () => (await clickhouseSignals()).length > 0, 120_000);
  await kill(w1.child, "SIGKILL");
  const w3 = startWorker("w3");
  await drained(business(runs[0]), 240_000);
  await kill(shipA.child, "SIGTERM");

  // 3. A broken folder is refused at deploy; a snapshot that does not compile is refused by the workers.
  const broken = temp("broken");
  cpSync(join(ROOT, "rules"), broken, { recursive: true });
  const spam = join(broken, "examples", "spam.yaml");
  writeFileSync(spam, readFileSync(spam, "utf8").replace("event.text != null", "event.txt != null"));
  const refusedDeploy = weir(["rules", "deploy", broken]);
  assert.equal(refusedDeploy.status, 1, refusedDeploy.out);
  assert.match(refusedDeploy.out, /spam\.yaml:\d+:\d+: .*no field txt[\s\S]*nothing deployed/);
  const client = new KafkaClient({ brokers: endpoints.kafkaBrokers, clientId: "weir-fraud-e2e-publish" });
  const writer = new RecordWriter(client);
  const bad = snapshotOf(join(ROOT, "rules"), plan, appId, "e2e");
  bad.version = "00badbadbad0";
  bad.bundle = packBundle(folderFiles(broken));
  await writer.snapshot(topics.snapshots, bad);
  await writer.close();
  await waitUntil(
    "both workers refusing the broken snapshot",
    async () =>
      (await statuses()).filter((s) => s.state === "running" && s.refusedVersion === bad.version).length === 2,
    60_000,
  );
  // w1 was killed: its last status still says running; the CLI checks it against the group's members.
  for (const s of (await statuses()).filter((x) => x.instance !== "w1")) {
    assert.equal(s.version, plan.version, `${s.instance} keeps running its rules`);
    assert.match(s.refusedError ?? "", /no field txt/);
  }
  const h = await health(w2);
  assert.equal(h.rules.version, plan.version);
  assert.match(h.rules.refused?.error ?? "", /spam\.yaml:\d+:\d+: .*no field txt/);
  const status = weir(["rules", "status"]);
  assert.match(status.out, /w2 .* running .* 00badbadbad0: /);
  assert.match(status.out, /w1 .* gone /, "the killed worker is shown gone: not in the group");

  // 4. The second batch, and a good deploy while it flows: both workers switch, neither restarts.
  const good = temp("good");
  cpSync(join(ROOT, "rules"), good, { recursive: true });
  writeFileSync(
    join(good, "e2e.yaml"),
    `rules:
  - id: ${NEW_RULE}
    version: 1
    category: emulator
    owner: e2e
    status: active
    severity: LOW
    score: 10
    action: REVIEW
    stream: behavior
    when: from_datacenter
    entity: { type: USER, field: event.uid }
    explanation: "uid {{ event.uid }} acted from a cloud address"
    falsepositives: [an end-to-end test's rule]
    fixtures:
      - { name: yes, expect: hit, events: [{ stream: behavior, at: 0s, type: LOGIN, ip: 47.100.3.7 }] }
      - { name: no, expect: no_hit, events: [{ stream: behavior, at: 0s, type: LOGIN, ip: 111.200.5.1 }] }
`,
  );
  const pids = [w2.child.pid, w3.child.pid];
  const shipB = await ship(sims[1] as string);
  await waitUntil("the second batch flowing", async () => (await eventCount()) > business(runs[0]) + 1000, 120_000);
  const deploy = weir(["rules", "deploy", good, "--wait", "90s"]);
  assert.equal(deploy.status, 0, deploy.out);
  const version = compileRuleSet(good).plan?.version as string;
  assert.match(deploy.out, new RegExp(`${NEW_RULE} +added`));
  assert.match(deploy.out, new RegExp(`w2 runs ${version}`));
  assert.match(deploy.out, new RegExp(`w3 runs ${version}`));
  // The third batch after the switch: the new rule must see it (the second may all be read before).
  const shipC = await ship(sims[2] as string);
  await drained(business(...runs), 240_000);
  await kill(shipB.child, "SIGTERM");
  await kill(shipC.child, "SIGTERM");
  assert.deepEqual([w2.child.pid, w3.child.pid], pids, "no worker restarted");
  assert.ok(w2.child.exitCode === null && w3.child.exitCode === null);
  const running = (await statuses()).filter((s) => s.instance !== "w1");
  assert.deepEqual(running.map((s) => `${s.instance} ${s.version}`).sort(), [`w2 ${version}`, `w3 ${version}`]);
  assert.equal(running.find((s) => s.instance === "w2")?.refusedVersion, null, "the refusal is over once switched");
  assert.equal((await health(w3)).rules.version, version);

  // 5. Nothing doubled, nothing lost.
  const inTopic = await topicSignals();
  const ids = inTopic.map((s) => s.id);
  assert.equal(new Set(ids).size, ids.length, "no signal twice in signals.risk (read_committed)");
  assert.ok(
    inTopic.every((s) => !s.shadow),
    "shadow signals are never published where the platform acts on them",
  );
  const inClickHouse = await clickhouseSignals();
  assert.ok(
    inClickHouse.some((s) => s.shadow),
    "the shadow rules' signals are recorded (in ClickHouse only)",
  );
  assert.equal(new Set(inClickHouse.map((s) => s.id)).size, inClickHouse.length, "one row per signal (FINAL)");
  assert.deepEqual(
    inClickHouse
      .filter((s) => !s.shadow)
      .map((s) => s.id)
      .sort(),
    [...ids].sort(),
    "ClickHouse holds what signals.risk holds, and the shadow signals besides",
  );
  assert.ok(
    inClickHouse.some((s) => s.ruleId === NEW_RULE),
    "the deployed rule fired after the switch",
  );
  // The shadow candidate against the live rule it replaces, as the CLI compares them.
  const shadowRule = "example.fake_phone.virtual_number_register_sms";
  const liveRule = "example.fake_phone.virtual_number_register";
  const cmp = weir([
    "rules",
    "compare",
    shadowRule,
    "--from",
    String(start - 60_000),
    "--to",
    String(Date.now()),
    "--json",
  ]);
  assert.equal(cmp.status, 0, cmp.out);
  const c = JSON.parse(cmp.out.trim().split("\n")[0] as string) as {
    replaces: string;
    ruleShadow: boolean;
    both: number;
    entities: { rule: number; replaces: number };
  };
  const entitiesOf = (rule: string) =>
    new Set(inClickHouse.filter((s) => s.ruleId === rule).map((s) => `${s.entity.type}:${s.entity.id}`)).size;
  assert.equal(c.replaces, liveRule, "found from the rule's replaces");
  assert.ok(c.ruleShadow && c.both > 0, cmp.out);
  assert.deepEqual(c.entities, { rule: entitiesOf(shadowRule), replaces: entitiesOf(liveRule) });
  // The same records, read back from the topics and run in one process with the same rules.
  const expected = await backtestKafka(plan, null, {
    kafka: client,
    topicPrefix: prefix,
    from: 0,
    to: Date.now() + 3600_000,
    hashKey: Buffer.alloc(32),
  });
  const pairs = (xs: RiskSignal[]) =>
    xs
      .filter((s) => ORDER_FREE.includes(s.ruleId))
      .map((s) => `${s.ruleId} ${s.entity.type} ${s.entity.id}`)
      .sort();
  const fired = new Set(expected.candidate.signals.map((s) => s.ruleId));
  assert.ok(fired.size >= 6, `the traffic's fraud makes most rules fire: ${[...fired].join(", ")}`);
  // The comparison holds only if no record was late on the workers (w1's counters died with it).
  for (const w of [w2, w3]) {
    const metrics = await (await fetch(`http://127.0.0.1:${await w.port}/metrics`)).text();
    const late = metrics
      .split("\n")
      .filter((l) => l.startsWith("weir_fraud_rule_late_total{") && ORDER_FREE.some((r) => l.includes(`rule="${r}"`)))
      .filter((l) => !l.endsWith(" 0"));
    assert.deepEqual(late, [], `${w.name} counted no record of the compared rules as late`);
  }
  const live = pairs(inClickHouse);
  const replayed = pairs(expected.candidate.signals);
  const only = (xs: string[], ys: string[]) => {
    const left = [...ys];
    return xs.filter((x) => {
      const i = left.indexOf(x);
      if (i < 0) return true;
      left.splice(i, 1);
      return false;
    });
  };
  assert.deepEqual(
    live,
    replayed,
    `each rule flagged the same entities, once; only live (or twice): ${only(live, replayed).slice(0, 20).join(", ")}; only in the backtest: ${only(replayed, live).slice(0, 20).join(", ")}`,
  );
  await kill(w2.child, "SIGTERM");
  await kill(w3.child, "SIGTERM");
  const stopped = await statuses();
  assert.ok(
    stopped.filter((s) => s.instance !== "w1").every((s) => s.state === "stopped"),
    "a clean stop is reported",
  );
});
