// Reads a topic to its end with kafkajs, read_committed, as weir's workers read. For clusters kcat
// cannot reach: Debian's kcat is built on librdkafka 2.0.2, whose SCRAM-SHA-512 Kafka 4 refuses
// ("invalid credentials"; fixed in librdkafka 2.6.1, edenhill/kcat#462). Elsewhere tests count with
// kcat (./kcat.ts), a client weir did not write.
import type { Kafka } from "kafkajs";
import type { KcatMessage } from "./kcat.ts";
import { uniqueName } from "./stack.ts";

/** Every committed message of `topic` up to the end offsets at the time of the call. */
export async function readTopic(kafka: Kafka, topic: string, timeoutMs = 120_000): Promise<KcatMessage[]> {
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  try {
    ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
  } finally {
    await admin.disconnect();
  }
  // By partition and offset: kafkajs may hand a batch over again (a rebalance as the group forms);
  // a record Kafka holds twice has two offsets and is kept twice.
  const out = new Map<string, KcatMessage>();
  if ([...ends.values()].every((e) => e === 0n)) return [];
  const consumer = kafka.consumer({ groupId: uniqueName("read"), readUncommitted: false });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const done = new Set<number>();
    for (const [p, e] of ends) if (e === 0n) done.add(p);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`reading ${topic} took more than ${timeoutMs} ms`)), timeoutMs);
      const check = (partition: number, next: bigint) => {
        if (next >= (ends.get(partition) ?? 0n)) done.add(partition);
        if (done.size === ends.size) {
          clearTimeout(timer);
          resolve();
        }
      };
      consumer
        .run({
          eachBatch: async ({ batch }) => {
            for (const m of batch.messages) {
              if (BigInt(m.offset) >= (ends.get(batch.partition) ?? 0n)) continue;
              if (m.value)
                out.set(`${batch.partition}@${m.offset}`, {
                  partition: batch.partition,
                  offset: Number(m.offset),
                  key: m.key,
                  value: m.value,
                });
            }
          },
        })
        .catch(reject);
      // Every fetch, also one of only transaction markers (which never reaches eachBatch), moves the end.
      consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
        const { partition, lastOffset, offsetLag } = e.payload;
        check(partition, offsetLag === "0" ? (ends.get(partition) ?? 0n) : BigInt(lastOffset) + 1n);
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return [...out.values()];
}
