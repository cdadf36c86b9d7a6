// The stream runtime against the real broker: two workers of one topology share the tasks; one is
// killed with SIGKILL mid-stream; the other takes its tasks over, restores their state from the
// changelogs, and the final windows equal a batch computation of the input: no count lost, none
// doubled. A poison record lands in the DLQ and everything after it is processed.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { after, before, test } from "node:test";
import type { Admin } from "kafkajs";
import { codecFor } from "../../schemas/codec.ts";
import type { TestEvent } from "../fixtures/windowed-sum.ts";
import { kafkaClient, requireServices, uniqueName } from "../support/stack.ts";

const kafka = kafkaClient("weir-stream-test");
let admin: Admin;
const children: ChildProcess[] = [];
const logs = new Map<string, string>();
const topicsToDelete: string[] = [];

before(async () => {
  await requireServices(["kafka"]);
  admin = kafka.admin();
  await admin.connect();
});

after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  await admin.deleteTopics({ topics: topicsToDelete }).catch(() => {});
  await admin.disconnect();
});

function startWorker(env: Record<string, string>, name: string): ChildProcess {
  const child = spawn(process.execPath, ["cli/weir.mjs", "run", "test/fixtures/windowed-sum.ts", "--instance", name], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let log = "";
  const keep = (d: Buffer) => {
    log += d;
    logs.set(name, log);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  child.on("exit", (code, signal) => {
    if (code !== 0 && signal !== "SIGKILL" && signal !== "SIGTERM")
      console.error(`${name} exited ${code}:\n${log.slice(-4000)}`);
  });
  children.push(child);
  return child;
}

async function consumeAll<T>(
  topic: string,
  decode: (b: Buffer) => T,
  expectAtLeast: number,
  timeoutMs: number,
): Promise<T[]> {
  const consumer = kafka.consumer({ groupId: uniqueName("reader"), readUncommitted: false });
  const out: T[] = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(resolve, timeoutMs);
      let quiet: NodeJS.Timeout | null = null;
      consumer
        .run({
          eachMessage: async ({ message }) => {
            if (message.value) out.push(decode(message.value));
            if (out.length >= expectAtLeast) {
              if (quiet) clearTimeout(quiet);
              quiet = setTimeout(() => {
                clearTimeout(deadline);
                resolve();
              }, 3000);
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return out;
}

function batchTruth(events: TestEvent[]): Map<string, { n: number; sum: number }> {
  const m = new Map<string, { n: number; sum: number }>();
  for (const e of events) {
    const start = e.ts - (e.ts % 1000);
    const k = `${e.group}@${start}`;
    const a = m.get(k) ?? { n: 0, sum: 0 };
    a.n++;
    a.sum += e.v;
    m.set(k, a);
  }
  return m;
}

for (const guarantee of ["at-least-once", "exactly-once"] as const) {
  test(`two workers, one SIGKILLed mid-stream: final windows equal the batch computation (${guarantee})`, {
    timeout: 300_000,
  }, async () => {
    const id = uniqueName("rt");
    const input = `test.${id}.in`;
    const output = `test.${id}.out`;
    const dlq = `test.${id}.dlq`;
    const appId = `test-${id}`;
    topicsToDelete.push(input, output, dlq, `${appId}-sums-changelog`, `${appId}-sums-repartition`);
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: input, numPartitions: 4, replicationFactor: 1 },
        { topic: output, numPartitions: 2, replicationFactor: 1 },
        { topic: dlq, numPartitions: 1, replicationFactor: 1 },
      ],
    });
    const env = {
      WEIR_TEST_APP: appId,
      WEIR_TEST_IN: input,
      WEIR_TEST_OUT: output,
      WEIR_TEST_DLQ: dlq,
      WEIR_TEST_GUARANTEE: guarantee,
    };
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const events: TestEvent[] = [];
    // Two hours ago (the closing record, an hour later, stays behind the worker's clock): records are
    // written with their event time, and a fixed date more than 7 days old (the broker's retention)
    // had the input and repartition records deleted under the workers by the next retention check.
    const t0 = Math.floor(Date.now() / 60_000) * 60_000 - 2 * 3_600_000;
    const send = async (from: number, count: number) => {
      const messages = [];
      for (let i = from; i < from + count; i++) {
        const e: TestEvent = {
          ts: t0 + Math.floor(i / 40) * 10 + (i % 7),
          user: `u${i % 53}`,
          group: `g${i % 11}`,
          v: i % 97,
        };
        events.push(e);
        messages.push({ key: e.user, value: JSON.stringify(e) });
      }
      await producer.send({ topic: input, acks: -1, messages });
    };
    try {
      const a = startWorker(env, "a");
      const b = startWorker(env, "b");
      const total = 120_000;
      const chunk = 4000;
      for (let i = 0; i < total; i += chunk) {
        await send(i, chunk);
        if (i === chunk * 5) {
          // A poison record in the middle of a partition.
          await producer.send({ topic: input, acks: -1, messages: [{ key: "u1", value: "{not json" }] });
        }
        if (i === chunk * 12) {
          await new Promise((r) => setTimeout(r, 1500));
          a.kill("SIGKILL");
        }
        await new Promise((r) => setTimeout(r, 150));
      }
      // Close every window: a far-future record on every partition (its own window stays open).
      const closing = [];
      for (let p = 0; p < 4; p++)
        closing.push({
          partition: p,
          key: `close${p}`,
          value: JSON.stringify({ ts: t0 + 3_600_000, user: `close${p}`, group: "close", v: 0 }),
        });
      await producer.send({ topic: input, acks: -1, messages: closing });

      const truth = batchTruth(events);
      const got = new Map<string, { n: number; sum: number }>();
      const dupes: string[] = [];
      const keyed = await consumeKeyed(output, truth.size);
      for (const r of keyed) {
        const k = `${r.key}@${r.value.start}`;
        if (got.has(k)) dupes.push(`${k} again at partition ${r.partition}, offset ${r.offset}`);
        got.set(k, r.value.value);
      }
      assert.equal(b.exitCode, null, "the surviving worker is still running");
      const letters = await consumeAll(dlq, (buf) => codecFor("DeadLetter").decode(buf), 1, 20_000);
      assert.deepEqual(
        letters.map((l) => l.reason),
        ["decode-error"],
        `dead letters: ${letters.map((l) => `${l.reason} ${l.message}`).slice(0, 3)}`,
      );
      assert.equal(letters[0]?.reason, "decode-error");
      assert.equal(letters[0]?.origin.topic, input);
      assert.equal(letters[0]?.raw.toString(), "{not json");
      const missing = [...truth.keys()].filter((k) => !got.has(k));
      if (missing.length > 0) {
        const tail = (logs.get("b") ?? "").split("\n").slice(-30).join("\n");
        assert.fail(
          `${missing.length} of ${truth.size} windows never arrived: ${missing.slice(0, 8)}; the surviving worker's log ends:\n${tail}`,
        );
      }
      const wrong = [...truth]
        .filter(([k, v]) => JSON.stringify(got.get(k)) !== JSON.stringify(v))
        .map(([k, v]) => `${k}: expected ${JSON.stringify(v)}, got ${JSON.stringify(got.get(k))}`);
      assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} windows differ from the batch computation`);
      assert.deepEqual(dupes, [], "no window is emitted twice (transactional output)");

      // The survivor serves its metrics and health: healthy again after restoring what it took over.
      const port = /"metricsPort":(\d+)/.exec(logs.get("b") ?? "")?.[1];
      assert.ok(port, "the worker logs its metrics port");
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      assert.equal(health.status, 200);
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(metrics, /weir_stream_records_in_total\{[^}]*task="0_\d"/);
      assert.match(metrics, /weir_stream_restore_seconds_count\{[^}]*\} [1-9]/);
      // The poison record was counted by whichever worker read it (maybe the one that was killed).
      assert.match(metrics, /# TYPE weir_stream_dead_letters_total gauge/);
    } finally {
      await producer.disconnect();
      for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
      if (process.env.WEIR_TEST_KEEP_LOGS) {
        const { writeFileSync } = await import("node:fs");
        for (const [name, log] of logs) writeFileSync(`/tmp/weir-${guarantee}-${name}.log`, log);
      }
    }
  });
}

async function consumeKeyed(topic: string, expect: number) {
  const consumer = kafka.consumer({ groupId: uniqueName("reader"), readUncommitted: false });
  const out: Array<{
    key: string;
    partition: number;
    offset: string;
    value: { start: number; value: { n: number; sum: number } };
  }> = [];
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(resolve, 120_000);
      consumer
        .run({
          eachMessage: async ({ message, partition }) => {
            out.push({
              key: message.key?.toString() ?? "",
              partition,
              offset: message.offset,
              value: JSON.parse(message.value?.toString() ?? "null"),
            });
            if (out.length >= expect) {
              clearTimeout(deadline);
              setTimeout(resolve, 2000);
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return out;
}
