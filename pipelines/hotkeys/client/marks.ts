// Keys marked hot by hand (`weir hotkeys mark room 7 --for 2h --reason "S12 final"`): a HotKeyMark in
// the compacted topic hotkeys.marks, keyed `<dimension>/<key>`, which every client reads from the
// start; removing a mark writes a null value. A drill before a big event goes through the same
// clients and callbacks as a key measured hot.
import { hostname, userInfo } from "node:os";
import { KafkaClient } from "../../../kafka/client.ts";
import type { KafkaSecurity } from "../../../kafka/security.ts";
import { codecFor } from "../../../schemas/codec.ts";
import type { HotKeyMark } from "../../../schemas/types.generated.ts";
import { DimensionName } from "../config.ts";

export const MAX_MARK_MS = 30 * 86_400_000;
export const MAX_REASON_LENGTH = 200;
export const MAX_MARK_KEY_LENGTH = 256;

export interface MarkTarget {
  brokers: string[];
  /** TLS and SASL of those brokers (kafka/security.ts). */
  security?: KafkaSecurity | undefined;
  topic?: string;
}

/** What is wrong with a mark's dimension and key, or null. */
export function markProblem(dimension: string, key: string): string | null {
  if (!DimensionName.safeParse(dimension).success)
    return `dimension ${JSON.stringify(dimension)}: letters, digits, '_', '.', '-' (1 to 64)`;
  if (key.length === 0 || key.length > MAX_MARK_KEY_LENGTH) return `key: 1 to ${MAX_MARK_KEY_LENGTH} characters`;
  return null;
}

export function buildMark(dimension: string, key: string, forMs: number, reason: string, now = Date.now()): HotKeyMark {
  const problem = markProblem(dimension, key);
  if (problem) throw new RangeError(problem);
  if (!(forMs > 0) || forMs > MAX_MARK_MS) throw new RangeError("--for: from 1 ms to 30 days");
  if (reason.length > MAX_REASON_LENGTH) throw new RangeError(`--reason: at most ${MAX_REASON_LENGTH} characters`);
  let who = "unknown";
  try {
    who = `${userInfo().username}@${hostname()}`;
  } catch {}
  return { id: `${dimension}/${key}`, dimension, key, until: now + forMs, reason, markedBy: who, markedAt: now };
}

async function produce(target: MarkTarget, id: string, value: Buffer | null): Promise<void> {
  const producer = await new KafkaClient({
    clientId: "weir-hotkeys-mark",
    brokers: target.brokers,
    security: target.security,
  }).idempotentProducer();
  try {
    await producer.send({ topic: target.topic ?? "hotkeys.marks", acks: -1, messages: [{ key: id, value }] });
  } finally {
    await producer.disconnect();
  }
}

export async function markKey(target: MarkTarget, mark: HotKeyMark): Promise<void> {
  await produce(target, mark.id, codecFor("HotKeyMark").encode(mark));
}

export async function unmarkKey(target: MarkTarget, dimension: string, key: string): Promise<void> {
  const problem = markProblem(dimension, key);
  if (problem) throw new RangeError(problem);
  await produce(target, `${dimension}/${key}`, null);
}

/** The marks in force: the topic read from its start to its end. */
export async function readMarks(target: MarkTarget, now = Date.now()): Promise<HotKeyMark[]> {
  const topic = target.topic ?? "hotkeys.marks";
  const kafka = new KafkaClient({
    clientId: "weir-hotkeys-marks",
    brokers: target.brokers,
    security: target.security,
  }).native;
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  const want = new Map(ends.map((e) => [e.partition, BigInt(e.high)]));
  const latest = new Map<string, HotKeyMark | null>();
  if ([...want.values()].every((h) => h === 0n)) return [];
  const consumer = kafka.consumer({ groupId: `weir-hotkeys-marks-${process.pid}-${Date.now()}`, maxWaitTimeInMs: 200 });
  const codec = codecFor("HotKeyMark");
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`could not read ${topic} to its end within 30 s`)), 30_000);
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ partition, message }) => {
            if (message.key)
              latest.set(
                message.key.toString("utf8"),
                message.value ? (codec.decode(message.value) as HotKeyMark) : null,
              );
            if (BigInt(message.offset) + 1n >= (want.get(partition) ?? 0n)) want.delete(partition);
            if (want.size === 0) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return [...latest.values()].filter((m): m is HotKeyMark => m !== null && m.until > now);
}
