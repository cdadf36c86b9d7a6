// The one batch whose fate a killed shipper cannot know: it sent the batch and asked Kafka to commit
// its transaction, and died before the answer. If the commit landed, sending the batch again would
// duplicate it; if not, the next start's producer aborts it and it must be sent again.
//
// Before each commit the sink writes an intent (the batch's last record and every file position the
// batch moves). At start, an intent the checkpoints do not cover is in doubt, and Kafka is asked: the
// probe record is looked for near the end of its topic, read_committed. Found: the batch committed
// (a transaction is all or nothing) and its checkpoints move. Not found, or Kafka cannot say within
// the time limit: the batch is sent again, a duplicate rather than a loss.
import { randomUUID } from "node:crypto";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import type { Kafka } from "kafkajs";
import type { Logger } from "pino";
import type { TopicCatalog } from "../../schemas/catalog.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { SchemaName } from "../../schemas/types.generated.ts";
import type { LinePosition, ShipEntry } from "../types.ts";

export interface CommitIntent {
  probe: { topic: string; fileId: string; offset: number };
  /** The last position per file in the batch. */
  positions: LinePosition[];
}

export function intentOf(entries: ShipEntry[]): CommitIntent {
  const last = entries[entries.length - 1] as ShipEntry;
  const byFile = new Map<string, LinePosition>();
  for (const e of entries) byFile.set(e.position.fileId, e.position);
  return {
    probe: { topic: last.topic, fileId: last.position.fileId, offset: last.position.offset },
    positions: [...byFile.values()],
  };
}

/** Written before every commit, so it must be cheap: no fsync (it protects against the shipper's crash, not the machine's). */
export function writeIntent(path: string, intent: CommitIntent): void {
  writeFileSync(`${path}.tmp`, JSON.stringify(intent));
  renameSync(`${path}.tmp`, path);
}

export function readIntent(path: string): CommitIntent | null {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as CommitIntent;
  } catch {
    return null;
  }
}

export function clearIntent(path: string): void {
  rmSync(path, { force: true });
}

/** Where a shipped record was read, whatever its schema: `source` for events, `origin` for dead letters. */
function positionOf(schema: SchemaName, value: Buffer): { fileId: string; offset: number } | null {
  try {
    const rec = codecFor(schema).decode(value) as {
      source?: { fileId: string; offset: number } | null;
      origin?: { fileId: string | null; fileOffset: number | null };
    };
    if (rec.source) return { fileId: rec.source.fileId, offset: rec.source.offset };
    if (rec.origin?.fileId && rec.origin.fileOffset !== null)
      return { fileId: rec.origin.fileId, offset: rec.origin.fileOffset };
  } catch {
    // Another producer's record in the same topic: not ours.
  }
  return null;
}

/**
 * Whether the probe record is in its topic, read_committed, among the last `lookback` records of each
 * partition. Gives up (false: send again) after `timeoutMs`.
 */
export async function committedInKafka(
  kafka: Kafka,
  intent: CommitIntent,
  catalog: TopicCatalog,
  log: Logger,
  lookback = 20_000,
  timeoutMs = 30_000,
): Promise<boolean> {
  const { topic, fileId, offset } = intent.probe;
  const schema = catalog.topic(topic).schema;
  const admin = kafka.admin();
  const groupId = `weir-ship-probe-${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 100, sessionTimeout: 10_000 });
  let found = false;
  try {
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(topic);
    const start = new Map(ends.map((p) => [p.partition, Math.max(Number(p.low), Number(p.high) - lookback)]));
    const high = new Map(ends.map((p) => [p.partition, Number(p.high)]));
    const pending = new Set(ends.filter((p) => Number(p.high) > Number(p.low)).map((p) => p.partition));
    if (pending.size === 0) return false;
    let lastProgress = Date.now();
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: false });
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        lastProgress = Date.now();
        for (const m of batch.messages) {
          if (!m.value) continue;
          const p = positionOf(schema, m.value);
          if (p && p.fileId === fileId && p.offset === offset) found = true;
        }
        // Transaction markers take the last offsets: a partition is read once a batch reaches near its end.
        if (Number(batch.lastOffset()) >= (high.get(batch.partition) ?? 0) - 2) pending.delete(batch.partition);
      },
    });
    await joined;
    for (const [partition, from] of start) consumer.seek({ topic, partition, offset: String(from) });
    lastProgress = Date.now();
    const deadline = Date.now() + timeoutMs;
    while (!found && pending.size > 0 && Date.now() < deadline && Date.now() - lastProgress < 5000) {
      await new Promise((r) => setTimeout(r, 50));
    }
    return found;
  } catch (e) {
    log.warn({ err: (e as Error).message }, "could not ask Kafka whether the last batch committed: sending it again");
    return false;
  } finally {
    await consumer.disconnect().catch(() => {});
    await admin.deleteGroups([groupId]).catch(() => {});
    await admin.disconnect().catch(() => {});
  }
}
