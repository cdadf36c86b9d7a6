// bench/stream/raw-consume.ts with @platformatic/kafka instead of kafkajs: the same topic, the same
// settings where the client has them (one group, read_committed, maxBytesPerPartition 1 MiB,
// maxBytes 16 MiB, maxWaitTime 100 ms, no commits), reading and counting N records, optionally
// decoding each value as the topology does. To compare Kafka clients, not to run weir.
//
// @platformatic/kafka is not a weir dependency: install it in a scratch directory and name its
// entry point (default below):
//   mkdir /tmp/pk && cd /tmp/pk && npm init -y && npm i @platformatic/kafka
//   node --import tsx bench/stream/raw-consume-platformatic.ts --topic T --expect N [--decode]
//        [--module /tmp/pk/node_modules/@platformatic/kafka/dist/index.js] [--brokers 127.0.0.1:9092]
//
// Prints one JSON line, with the fields of raw-consume.ts.
import { readFileSync } from "node:fs";
import { codecFor } from "../../schemas/codec.ts";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  return v === undefined || v.startsWith("--") ? "true" : v;
}

const TOPIC = arg("topic");
const EXPECT = Number(arg("expect"));
if (!TOPIC || !Number.isInteger(EXPECT) || EXPECT < 1) {
  console.error("usage: raw-consume-platformatic.ts --topic T --expect N [--decode] [--module PATH] [--brokers B]");
  process.exit(64);
}
const DECODE = arg("decode") === "true";
const MODULE = arg("module") ?? "/tmp/pk/node_modules/@platformatic/kafka/dist/index.js";
const BROKERS = (arg("brokers") ?? "127.0.0.1:9092").split(",");
const GROUP = `bench-raw-platformatic-${process.pid}-${Date.now()}`;
const IDLE_TIMEOUT_MS = Number(arg("idle-timeout-s") ?? 60) * 1000;

interface PkMessage {
  value: Buffer;
}
interface PkStream {
  on(event: "data", f: (m: PkMessage) => void): void;
  on(event: "error", f: (e: Error) => void): void;
  close(): Promise<void>;
}
interface PkConsumer {
  consume(o: Record<string, unknown>): Promise<PkStream>;
  close(force?: boolean): Promise<void>;
}
interface PkAdmin {
  deleteGroups(o: { groups: string[] }): Promise<void>;
  close(): Promise<void>;
}
const pk = (await import(MODULE)) as {
  Consumer: new (o: Record<string, unknown>) => PkConsumer;
  Admin: new (o: Record<string, unknown>) => PkAdmin;
  version?: string;
};
const version = (
  JSON.parse(readFileSync(new URL("../package.json", `file://${MODULE}`), "utf8")) as { version: string }
).version;

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const peakRssKiB = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? -1);
const codec = codecFor("AccessLog");

const started = performance.now();
const consumer = new pk.Consumer({
  clientId: "weir-bench-raw-platformatic",
  bootstrapBrokers: BROKERS,
  groupId: GROUP,
  sessionTimeout: 10_000,
  rebalanceTimeout: 30_000,
  heartbeatInterval: 1000,
});
const stream = await consumer.consume({
  topics: [TOPIC],
  mode: "earliest",
  autocommit: false,
  isolationLevel: 1, // READ_COMMITTED (also the client's default)
  maxBytesPerPartition: 1_048_576,
  maxBytes: 16 * 1_048_576,
  maxWaitTime: 100,
});

let count = 0;
let firstAt = 0;
let firstCpu = 0;
let lastProgress = performance.now();
let sink = 0;
const result = await new Promise<{ records: number; lastAt: number; lastCpu: number; error?: string }>(
  (resolve, reject) => {
    const idle = setInterval(() => {
      if (performance.now() - lastProgress > IDLE_TIMEOUT_MS) {
        clearInterval(idle);
        resolve({ records: count, lastAt: lastProgress, lastCpu: cpuMs(), error: "idle before reaching --expect" });
      }
    }, 1000);
    stream.on("error", reject);
    stream.on("data", (m) => {
      if (count >= EXPECT) return;
      if (count === 0) {
        firstAt = performance.now();
        firstCpu = cpuMs();
      }
      if (DECODE) sink += codec.decode(m.value).latencyUs;
      else sink += m.value.length;
      if ((++count & 1023) === 0) lastProgress = performance.now();
      if (count === EXPECT) {
        clearInterval(idle);
        resolve({ records: count, lastAt: performance.now(), lastCpu: cpuMs() });
      }
    });
  },
);
const elapsedMs = result.lastAt - firstAt;
console.log(
  JSON.stringify({
    client: `@platformatic/kafka ${version}`,
    decoded: DECODE,
    records: result.records,
    elapsedMs: Math.round(elapsedMs),
    recordsPerSec: elapsedMs > 0 ? Math.round(result.records / (elapsedMs / 1000)) : 0,
    cpuMsProcessing: Math.round(result.lastCpu - firstCpu),
    cpuMs: Math.round(cpuMs()),
    peakRssKiB: peakRssKiB(),
    startupMs: Math.round(firstAt - started),
    checksum: sink,
    ...(result.error ? { error: result.error } : {}),
  }),
);
await stream.close().catch(() => {});
await consumer.close(true).catch(() => {});
const admin = new pk.Admin({ clientId: "weir-bench-raw-platformatic", bootstrapBrokers: BROKERS });
await admin
  .deleteGroups({ groups: [GROUP] })
  .catch(() => {})
  .finally(() => admin.close());
process.exit(result.error ? 2 : 0);
