// The health pipeline on a cluster under chaos (issue 21), in CI: a private 3-broker KRaft cluster
// with SASL/SCRAM-SHA-512 over TLS and a ClickHouse with passwords, brought up by `weir stack up`
// as a user would. The simulator writes access logs into the cluster; two `weir run health` workers,
// configured from the environment alone, turn them into per-second rows. Once rows arrive, one broker
// and one worker are SIGKILLed at the same moment; the broker is brought back. The surviving worker
// takes the tasks over, and every final per-second endpoint row equals the oracle computed here
// from the topic itself (requests and errors), once. The shared stack is never touched.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type ClickHouseClient, createClient } from "@clickhouse/client";
import { Kafka, logLevel } from "kafkajs";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";
import { kafkajsSecurity, kafkaSecurityFromEnv } from "../../kafka/security.ts";
import { DEFAULT_SLO_FILE, SloConfig } from "../../pipelines/health/slo.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { SchemaTypes } from "../../schemas/types.generated.ts";
import { closingAccessLog } from "../support/health.ts";
import { type PrivateStack, startPrivateStack } from "../support/private-stack.ts";
import { readTopic } from "../support/read-topic.ts";

type AccessLog = SchemaTypes["AccessLog"];
const codec = codecFor("AccessLog");
const SERVICES = ["user-svc", "room-svc", "im-svc", "social-svc", "gift-svc", "pay-svc", "device-svc"];
let stack: PrivateStack;
let ch: ClickHouseClient;
const children: ChildProcess[] = [];
const outputs = new Map<string, () => string>();

before(async () => {
  const began = Date.now();
  stack = await startPrivateStack({ services: ["kafka", "clickhouse"], brokers: 3, security: true });
  console.log(
    `# weir stack up of 3 brokers with SASL_SSL and ClickHouse: ${((Date.now() - began) / 1000).toFixed(1)} s`,
  );
  const password = readFileSync(join(stack.cfg.paths.root, "secrets", "clickhouse-default.password"), "utf8").trim();
  ch = createClient({ url: stack.endpoints.clickhouseUrl, username: "default", password });
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await ch?.close();
  await stack?.down();
});

function kafka(id: string) {
  return new Kafka({
    clientId: id,
    brokers: stack.endpoints.kafkaBrokers,
    ...kafkajsSecurity(kafkaSecurityFromEnv(stack.kafkaEnv)),
    logLevel: logLevel.NOTHING,
    retry: { retries: 10 },
  });
}

function weir(name: string, args: string[]): ChildProcess {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, "cli", "weir.mjs"), ...args], {
    cwd: PROJECT_ROOT,
    env: stack.kafkaEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const add = (d: Buffer) => {
    out += d;
    if (out.length > 400_000) out = out.slice(-200_000);
  };
  child.stdout?.on("data", add);
  child.stderr?.on("data", add);
  outputs.set(name, () => out);
  children.push(child);
  return child;
}

async function rows<T>(query: string): Promise<T[]> {
  return (await ch.query({ query, format: "JSONEachRow" })).json<T>();
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      const logs = [...outputs].map(([name, log]) => `--- ${name}:\n${log().slice(-3000)}`).join("\n");
      throw new Error(`timed out waiting for ${what}\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

test("health on a secured 3-broker cluster: a broker and a worker SIGKILLed together, every final second equal to the oracle, once", {
  timeout: 900_000,
}, async () => {
  // The simulator batches per topic, so its partitions run a few seconds apart (as in health-pipeline.test.ts).
  const configText = readFileSync(DEFAULT_SLO_FILE, "utf8").replace(/outOfOrderness: 1s/, "outOfOrderness: 10s");
  const slo = SloConfig.parse(configText);
  const configFile = join(stack.cfg.paths.root, "slo.yaml");
  writeFileSync(configFile, configText);
  const worker = (name: string) =>
    weir(name, ["run", "health", "--config", configFile, "--instance", name, "--data-dir", stack.cfg.paths.root]);
  const h1 = worker("health-1");
  const h2 = worker("health-2");

  const start = Math.ceil((Date.now() + 120_000) / 60_000) * 60_000;
  const seconds = 90;
  const end = start + seconds * 1000;
  const sim = weir("simulate", [
    "simulate",
    "--to",
    "kafka",
    "--scenario",
    "calm",
    "--duration",
    `${seconds}s`,
    "--rate",
    "800",
    "--fraud",
    "0",
    "--start",
    new Date(start).toISOString(),
    "--out",
    join(stack.cfg.paths.root, "sim"),
    "--force",
  ]);
  const simulated = await new Promise<number | null>((r) => sim.on("exit", (code) => r(code)));
  assert.equal(simulated, 0, outputs.get("simulate")?.().slice(-3000));

  // Chaos once the pipeline is writing: a broker and a worker at the same moment.
  await waitFor(
    "the first rows in ClickHouse",
    async () =>
      Number(
        (
          await rows<{ n: string }>(
            `SELECT count() AS n FROM weir.health_metrics WHERE window_start >= ${start / 1000}`,
          )
        )[0]?.n,
      ) > 100,
    300_000,
  );
  const broker = stack.local.process("kafka-2").record()?.pgid;
  assert.ok(broker, "kafka-2 runs");
  process.kill(-broker, "SIGKILL");
  h1.kill("SIGKILL");
  const killedAt = Date.now();
  await new Promise((r) => setTimeout(r, 10_000));
  const up = await stack.weir(["stack", "up"]);
  assert.equal(up.code, 0, `the killed broker did not come back:\n${up.out}`);
  console.log(`# broker down ${((Date.now() - killedAt) / 1000).toFixed(0)} s`);

  // One event per service far after the run, so every window closes.
  const producer = kafka("test-close").producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({
    topic: "logs.access",
    acks: -1,
    messages: SERVICES.map((service, i) => ({
      key: service,
      value: codec.encode(closingAccessLog(service, i, end + 60_000)),
    })),
  });
  await producer.disconnect();

  // The oracle: the topic itself, read_committed.
  const raw = (await readTopic(kafka("test-read"), "logs.access")).map((m) => codec.decode(m.value) as AccessLog);
  const expected = new Map<string, { n: number; errors: number }>();
  for (const e of raw) {
    if (e.ts < start || e.ts >= end) continue;
    const k = `${e.service} ${e.endpoint} ${Math.floor(e.ts / 1000)}`;
    const acc = expected.get(k) ?? { n: 0, errors: 0 };
    acc.n++;
    if (slo.isError(e.status, e.errorCode ?? null)) acc.errors++;
    expected.set(k, acc);
  }
  assert.ok(expected.size > 1000, `${expected.size} endpoint-seconds simulated`);

  type Row = { service: string; endpoint: string; s: string; requests: string; errors: string };
  let got: Row[] = [];
  // Measured 79-97 s from the kill (docs/scaling.md). The bound leaves room for what a takeover may
  // wait on a slow machine: the dead member's session (10 s), the producers' and offsets' coordinator
  // budgets (120 s and 60 s: stream/kafka/coordinator-retry.ts) and the restore, not for a hang.
  await waitFor(
    `${expected.size} final endpoint-seconds`,
    async () => {
      got = await rows<Row>(
        `SELECT service, endpoint, toUInt32(window_start) AS s, requests, errors FROM weir.health_metrics FINAL
         WHERE window_ms = 1000 AND level = 'ENDPOINT' AND final = 1 AND window_start >= ${start / 1000} AND window_start < ${end / 1000}`,
      );
      return got.length >= expected.size;
    },
    400_000,
  );
  console.log(`# every final row in ClickHouse ${((Date.now() - killedAt) / 1000).toFixed(0)} s after the kill`);
  assert.equal(h2.exitCode, null, `the surviving worker stopped:\n${outputs.get("health-2")?.().slice(-3000)}`);
  assert.equal(got.length, expected.size, "one final row per endpoint and second, no more, no fewer");
  const wrong: string[] = [];
  for (const r of got) {
    const k = `${r.service} ${r.endpoint} ${r.s}`;
    const x = expected.get(k);
    if (!x || x.n !== Number(r.requests) || x.errors !== Number(r.errors))
      wrong.push(`${k}: requests ${r.requests} errors ${r.errors}, expected ${JSON.stringify(x)}`);
  }
  assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} endpoint-seconds differ from the oracle`);
  console.log(
    `# ${raw.length.toLocaleString("en")} access events, ${expected.size} endpoint-seconds equal the oracle after a broker and a worker were SIGKILLed`,
  );
  // No secret in anything a weir process printed.
  const secrets = ["kafka-weir", "kafka-broker", "clickhouse-default"].map((s) =>
    readFileSync(join(stack.cfg.paths.root, "secrets", `${s}.password`), "utf8").trim(),
  );
  for (const [name, out] of outputs)
    for (const s of secrets) assert.ok(!out().includes(s), `a password in ${name}'s log`);
});
