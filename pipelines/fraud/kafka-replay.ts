// The event topics' records of a period, read back from Kafka for `weir rules backtest --from --to`:
// the records whose Kafka timestamp (which weir ship sets to the event's time) is in [from, to), each
// partition read from a slack before `from` (events are shipped a little out of order) until a record
// a slack past `to`, or the end it had when the replay started (transaction markers included). The
// rules' state starts empty at `from`. Committed records only (read_committed), as the workers read
// them. Records come partition by partition, in offset order, each with its partition: a replay that
// keeps them in their partitions sees what a worker sees.
import { randomUUID } from "node:crypto";
import type { KafkaClient } from "../../kafka/client.ts";

export interface ReplayedRecord {
  topic: string;
  partition: number;
  key: string | null;
  value: Buffer;
  /** The record's Kafka timestamp (ms). */
  ts: number;
}

export interface KafkaReplayOptions {
  kafka: KafkaClient;
  topics: string[];
  from: number;
  to: number;
  /** How far out of order records may have been shipped (ms); default 5 min. */
  slackMs?: number;
  onRecord: (r: ReplayedRecord) => void;
}

/** Reads the topics' records of [from, to); returns their partition counts and how many records were given. */
export async function replayTopics(
  o: KafkaReplayOptions,
): Promise<{ partitions: Map<string, number>; records: number }> {
  const slack = o.slackMs ?? 300_000;
  const admin = o.kafka.native.admin();
  await admin.connect();
  const todo = new Map<string, { start: bigint; end: bigint }>();
  const partitions = new Map<string, number>();
  try {
    for (const topic of o.topics) {
      const ends = await admin.fetchTopicOffsets(topic);
      partitions.set(topic, ends.length);
      const starts = await admin.fetchTopicOffsetsByTimestamp(topic, Math.max(0, o.from - slack));
      for (const e of ends) {
        const s = starts.find((x) => x.partition === e.partition);
        const start = s && BigInt(s.offset) >= 0n ? BigInt(s.offset) : BigInt(e.high);
        if (start < BigInt(e.high)) todo.set(`${topic}#${e.partition}`, { start, end: BigInt(e.high) });
      }
    }
  } finally {
    await admin.disconnect();
  }
  let records = 0;
  if (todo.size === 0) return { partitions, records };
  const consumer = o.kafka.consumer({ groupId: `weir-backtest-${randomUUID()}`, assigner: undefined });
  let finish: () => void = () => {};
  let fail: (e: unknown) => void = () => {};
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const stopPartition = (topic: string, partition: number) => {
    if (!todo.delete(`${topic}#${partition}`)) return;
    consumer.pause([{ topic, partitions: [partition] }]);
    if (todo.size === 0) finish();
  };
  await consumer.connect();
  try {
    for (const topic of o.topics) await consumer.subscribe({ topic, fromBeginning: false });
    consumer.on(consumer.events.CRASH, (e) => fail(e.payload.error));
    // A transactional topic (weir ship writes in transactions) ends with a commit marker, which is never
    // delivered as a record: a fetch of nothing but markers is reported here, with its last offset.
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      const { topic, partition, lastOffset } = e.payload;
      const range = todo.get(`${topic}#${partition}`);
      if (range && lastOffset !== null && BigInt(lastOffset) + 1n >= range.end) stopPartition(topic, partition);
    });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const { topic, partition } = batch;
        const range = todo.get(`${topic}#${partition}`);
        if (!range) return;
        for (const m of batch.messages) {
          const offset = BigInt(m.offset);
          if (offset < range.start) continue;
          const ts = Number(m.timestamp);
          if (offset >= range.end || ts >= o.to + slack) {
            stopPartition(topic, partition);
            return;
          }
          if (m.value !== null && ts >= o.from && ts < o.to) {
            o.onRecord({ topic, partition, key: m.key?.toString("utf8") ?? null, value: m.value, ts });
            records++;
          }
          if (offset + 1n >= range.end) {
            stopPartition(topic, partition);
            return;
          }
        }
        // The batch's last offset counts the markers after its last record.
        if (BigInt(batch.lastOffset()) + 1n >= range.end) stopPartition(topic, partition);
      },
    });
    for (const [k, r] of todo) {
      const i = k.lastIndexOf("#");
      consumer.seek({ topic: k.slice(0, i), partition: Number(k.slice(i + 1)), offset: String(r.start) });
    }
    await done;
  } finally {
    await consumer.disconnect().catch(() => {});
  }
  return { partitions, records };
}
