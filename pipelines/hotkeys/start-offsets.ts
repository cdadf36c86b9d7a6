// Where a new deployment of the hot-key pipeline starts reading: a hot-key list is about the last
// minute, so a consumer group with no committed offset on an input partition starts at its end
// (`startAt: latest`, the default) instead of chewing through days of retention first. Partitions the
// group has committed keep their offsets: a restart resumes where it stopped. This is set before the
// worker joins, as Kafka's auto.offset.reset=latest would be for a Java consumer.
import { KafkaClient } from "../../kafka/client.ts";
import type { KafkaSecurity } from "../../kafka/security.ts";

export async function startNewPartitionsAtEnd(
  brokers: string[],
  groupId: string,
  topics: string[],
  security?: KafkaSecurity,
): Promise<number> {
  const admin = new KafkaClient({ clientId: `${groupId}-start`, brokers, security }).native.admin();
  await admin.connect();
  let moved = 0;
  try {
    const committed = await admin.fetchOffsets({ groupId, topics });
    for (const topic of topics) {
      const ends = await admin.fetchTopicOffsets(topic);
      const mine = committed.find((c) => c.topic === topic)?.partitions ?? [];
      const fresh = ends.filter((e) => {
        const c = mine.find((p) => p.partition === e.partition);
        return !c || c.offset === "-1";
      });
      if (fresh.length === 0) continue;
      await admin.setOffsets({
        groupId,
        topic,
        partitions: fresh.map((e) => ({ partition: e.partition, offset: e.high })),
      });
      moved += fresh.length;
    }
  } finally {
    await admin.disconnect();
  }
  return moved;
}
