// The client ceiling for the stream-runtime benchmark: a kafkajs consumer built exactly as weir's
// worker builds its own (kafka/client.ts: one group, eachBatch, read_committed,
// maxBytesPerPartition 1 MiB, maxWaitTime 100 ms, manual offsets) that only reads the topic and
// counts its records; with --decode it also decodes each value as the topology does
// (codecFor("AccessLog").decode). weir's overhead over its own client is 1 - weir rate / this rate.
//
//   node --import tsx bench/stream/raw-consume.ts --topic T --expect N [--decode] [--group G]
//        [--brokers 127.0.0.1:9092] [--idle-timeout-s 60]
//
// Prints one JSON line when the N-th record is counted (fields as the Kafka Streams peer's):
// {records, elapsedMs, recordsPerSec, cpuMsProcessing, cpuMs, peakRssKiB, startupMs, decoded}.
// elapsedMs and cpuMsProcessing run from the first record to the N-th (no startup, no group join).
// Commits nothing; the group is deleted at exit.
import { readFileSync } from "node:fs";
import kafkajs from "kafkajs";
import { clientEndpoints } from "../../infra/stack/config.ts";
import { KafkaClient } from "../../kafka/client.ts";
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
  console.error(
    "usage: raw-consume.ts --topic T --expect N [--decode] [--group G] [--brokers B] [--idle-timeout-s 60]",
  );
  process.exit(64);
}
const DECODE = arg("decode") === "true";
const GROUP = arg("group") ?? `bench-raw-kafkajs-${process.pid}-${Date.now()}`;
const BROKERS = arg("brokers")?.split(",") ?? clientEndpoints().kafkaBrokers;
const IDLE_TIMEOUT_MS = Number(arg("idle-timeout-s") ?? 60) * 1000;

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const peakRssKiB = () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? -1);

const client = new KafkaClient({ brokers: BROKERS, clientId: "weir-bench-raw-consume" });
const consumer = client.consumer({ groupId: GROUP, assigner: undefined });
const codec = codecFor("AccessLog");

const started = performance.now();
let count = 0;
let firstAt = 0;
let firstCpu = 0;
let lastProgress = performance.now();
let sink = 0; // keeps the decode from being optimised away
let finish!: (r: { records: number; lastAt: number; lastCpu: number; error?: string }) => void;
const finished = new Promise<{ records: number; lastAt: number; lastCpu: number; error?: string }>((r) => {
  finish = r;
});

await consumer.connect();
await consumer.subscribe({ topics: [TOPIC], fromBeginning: true });
await consumer.run({
  autoCommit: false,
  eachBatchAutoResolve: false,
  partitionsConsumedConcurrently: 1,
  eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
    if (count >= EXPECT) return;
    if (count === 0 && batch.messages.length > 0) {
      firstAt = performance.now();
      firstCpu = cpuMs();
    }
    for (const m of batch.messages) {
      if (DECODE) sink += codec.decode(m.value as Buffer).latencyUs;
      else sink += (m.value as Buffer).length;
      resolveOffset(m.offset);
      if (++count === EXPECT) {
        finish({ records: count, lastAt: performance.now(), lastCpu: cpuMs() });
        return;
      }
    }
    lastProgress = performance.now();
    await heartbeat();
  },
});

const idle = setInterval(() => {
  if (performance.now() - lastProgress > IDLE_TIMEOUT_MS) {
    finish({
      records: count,
      lastAt: lastProgress,
      lastCpu: cpuMs(),
      error: `idle for ${IDLE_TIMEOUT_MS / 1000} s before reaching --expect`,
    });
  }
}, 1000);
const r = await finished;
clearInterval(idle);
const elapsedMs = r.lastAt - firstAt;
console.log(
  JSON.stringify({
    client: "kafkajs",
    decoded: DECODE,
    records: r.records,
    elapsedMs: Math.round(elapsedMs),
    recordsPerSec: elapsedMs > 0 ? Math.round(r.records / (elapsedMs / 1000)) : 0,
    cpuMsProcessing: Math.round(r.lastCpu - firstCpu),
    cpuMs: Math.round(cpuMs()),
    peakRssKiB: peakRssKiB(),
    startupMs: Math.round(firstAt - started),
    checksum: sink,
    ...(r.error ? { error: r.error } : {}),
  }),
);
await consumer.disconnect().catch(() => {});
// The group committed nothing; delete it so that runs leave nothing behind.
const admin = new kafkajs.Kafka({
  clientId: "weir-bench-raw-consume",
  brokers: BROKERS,
  logLevel: kafkajs.logLevel.NOTHING,
}).admin();
await admin
  .connect()
  .then(() => admin.deleteGroups([GROUP]))
  .catch(() => {})
  .finally(() => admin.disconnect());
process.exit(r.error ? 2 : 0);
