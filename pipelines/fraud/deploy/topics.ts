// The two small compacted topics hot reload runs on (schemas/topics.yaml):
//
//   rules.snapshots  key: the app id; value: the RuleSnapshot deployed for it (weir rules deploy).
//                    Every worker reads it to its end when it starts, then follows it.
//   rules.status     key: app id/instance; value: the worker's RuleWorkerStatus (the version it runs,
//                    the last snapshot it refused), written on start, switch, refusal, every 30 s,
//                    and on a clean stop. weir rules status reads it.
//
// Why a status topic and not the consumer group's member metadata: a member's metadata is exchanged
// only when the group rebalances, and a switch must not rebalance the group (every worker would stop
// and its tasks move); a status record costs one small write per switch and heartbeat, survives the
// worker, says what it refused and why, and any client can read it without joining the group.
import { randomUUID } from "node:crypto";
import type { Consumer, Producer } from "kafkajs";
import { KafkaClient } from "../../../kafka/client.ts";
import { codecFor } from "../../../schemas/codec.ts";
import type { RuleSnapshot, RuleWorkerStatus } from "../../../schemas/types.generated.ts";

export const SNAPSHOTS_TOPIC = "rules.snapshots";
export const STATUS_TOPIC = "rules.status";

const snapshotCodec = codecFor("RuleSnapshot");
const statusCodec = codecFor("RuleWorkerStatus");

export interface TopicRecord<T> {
  key: string;
  value: T | null;
  offset: string;
}

/** Whether a topic exists. */
export async function topicExists(kafka: KafkaClient, topic: string): Promise<boolean> {
  const admin = kafka.native.admin();
  await admin.connect();
  try {
    return (await admin.listTopics()).includes(topic);
  } finally {
    await admin.disconnect();
  }
}

/**
 * Reads a (small, compacted) topic from its beginning; `onRecord` gets every record, and `caughtUp`
 * resolves once the records that were there when it started have all been read. `follow: false`
 * stops there.
 */
export class TopicReader<T> {
  private consumer: Consumer | null = null;
  private stopped = false;

  constructor(
    private readonly kafka: KafkaClient,
    private readonly topic: string,
    private readonly decode: (b: Buffer) => T,
  ) {}

  async read(onRecord: (r: TopicRecord<T>) => void, follow: boolean): Promise<void> {
    const admin = this.kafka.native.admin();
    await admin.connect();
    let ends: Map<number, bigint>;
    try {
      ends = new Map(
        (await admin.fetchTopicOffsets(this.topic))
          .filter((p) => BigInt(p.high) > BigInt(p.low))
          .map((p) => [p.partition, BigInt(p.high)]),
      );
    } finally {
      await admin.disconnect();
    }
    if (ends.size === 0 && !follow) return;
    const consumer = this.kafka.consumer({
      groupId: `weir-rules-reader-${randomUUID()}`,
      assigner: undefined,
      maxBytesPerPartition: 16 * 1024 * 1024,
    });
    this.consumer = consumer;
    let done: () => void = () => {};
    const caughtUp = new Promise<void>((r) => {
      done = r;
    });
    if (ends.size === 0) done();
    await consumer.connect();
    await consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        if (this.stopped) return;
        const key = message.key?.toString("utf8") ?? "";
        let value: T | null = null;
        if (message.value !== null) {
          try {
            value = this.decode(message.value);
          } catch {
            value = null;
          }
        }
        onRecord({ key, value, offset: message.offset });
        const end = ends.get(partition);
        if (end !== undefined && BigInt(message.offset) + 1n >= end) {
          ends.delete(partition);
          if (ends.size === 0) done();
        }
      },
    });
    await caughtUp;
    if (!follow) await this.stop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.consumer?.disconnect().catch(() => {});
    this.consumer = null;
  }
}

/** The latest snapshot of every app in the topic (or of one). */
export async function readSnapshots(kafka: KafkaClient, topic: string): Promise<Map<string, RuleSnapshot>> {
  const out = new Map<string, RuleSnapshot>();
  await new TopicReader(kafka, topic, (b) => snapshotCodec.decode(b)).read((r) => {
    if (r.value) out.set(r.key, r.value);
    else out.delete(r.key);
  }, false);
  return out;
}

export async function readStatuses(kafka: KafkaClient, topic: string): Promise<Map<string, RuleWorkerStatus>> {
  const out = new Map<string, RuleWorkerStatus>();
  await new TopicReader(kafka, topic, (b) => statusCodec.decode(b)).read((r) => {
    if (r.value) out.set(r.key, r.value);
    else out.delete(r.key);
  }, false);
  return out;
}

/** Follows the snapshots of one app: `onSnapshot` for the latest one at start (once caught up), then for each new one. */
export function followSnapshots(
  kafka: KafkaClient,
  topic: string,
  app: string,
  onSnapshot: (s: RuleSnapshot, initial: boolean) => void,
): { caughtUp: Promise<RuleSnapshot | null>; stop: () => Promise<void> } {
  const reader = new TopicReader(kafka, topic, (b) => snapshotCodec.decode(b));
  let initial = true;
  let latest: RuleSnapshot | null = null;
  const caughtUp = reader
    .read((r) => {
      if (r.key !== app || !r.value) return;
      if (initial) latest = r.value;
      else onSnapshot(r.value, false);
    }, true)
    .then(() => {
      initial = false;
      if (latest) onSnapshot(latest, true);
      return latest;
    });
  return { caughtUp, stop: () => reader.stop() };
}

/** Writes records of one of the two topics (idempotent, acks from all replicas). */
export class RecordWriter {
  private producer: Producer | null = null;

  constructor(private readonly kafka: KafkaClient) {}

  async snapshot(topic: string, s: RuleSnapshot): Promise<void> {
    await this.send(topic, s.app, snapshotCodec.encode(s));
  }

  async status(topic: string, s: RuleWorkerStatus): Promise<void> {
    await this.send(topic, s.worker, statusCodec.encode(s));
  }

  private async send(topic: string, key: string, value: Buffer): Promise<void> {
    this.producer ??= await this.kafka.idempotentProducer();
    await this.producer.send({ topic, acks: -1, messages: [{ key, value }] });
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => {});
    this.producer = null;
  }
}

export { KafkaClient };
