// `weir simulate --to kafka`: every record encoded with its schema's codec (Avro single-object
// encoding) and produced to its catalog topic, keyed as the catalog says, acks=all. With --dirty,
// some messages are ones a consumer must dead-letter: not Avro at all, an unknown fingerprint, or a
// truncated body; each is recorded in the ground truth by topic and its index in that topic's sends.
// App lines, which have no file position to be named by, get ids from their content (appLineId).
import { Kafka, logLevel, type Producer } from "kafkajs";
import { type KafkaSecurity, kafkajsSecurity } from "../../kafka/security.ts";
import { keyReader, loadTopicCatalog } from "../../schemas/catalog.ts";
import { type AvroCodec, codecFor } from "../../schemas/codec.ts";
import type { AppLog, SchemaName } from "../../schemas/types.generated.ts";
import type { EventWriter, RecordTypes, SimStream, StreamSummary } from "./event-writer.ts";
import type { GroundTruth } from "./ground-truth.ts";
import { type LineFormat, type StreamKind, TOPIC_OF } from "./platform.ts";
import type { Rng } from "./random.ts";

const SCHEMA_OF: Record<StreamKind, SchemaName> = {
  access: "AccessLog",
  app: "AppLog",
  coin: "CoinTxn",
  behavior: "BehaviorEvent",
  device: "DeviceReport",
};
const BATCH = 2000;
const MAX_IN_FLIGHT = 4;

export class KafkaEventWriter implements EventWriter {
  private readonly producer: Producer;
  private readonly batches = new Map<string, { key: string | null; value: Buffer }[]>();
  private readonly sentPerTopic = new Map<string, number>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private failure: Error | undefined;
  private readonly streams: KafkaStream<unknown>[] = [];
  private readonly catalog = loadTopicCatalog();
  written = 0;

  constructor(
    brokers: string[],
    private readonly truth: GroundTruth,
    private readonly dirtyRate: number,
    private readonly rng: Rng,
    security?: KafkaSecurity,
    /** Put before every catalog topic's name: a private copy of the topics (tests). */
    private readonly topicPrefix = "",
  ) {
    const kafka = new Kafka({
      clientId: "weir-simulate",
      brokers,
      ...kafkajsSecurity(security),
      logLevel: logLevel.ERROR,
    });
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5 });
  }

  async connect(): Promise<void> {
    await this.producer.connect();
  }

  stream<K extends StreamKind>(service: string, kind: K, format: LineFormat): SimStream<RecordTypes[K]> {
    const topic = TOPIC_OF[kind];
    const codec = codecFor(SCHEMA_OF[kind]) as unknown as AvroCodec<RecordTypes[K]>;
    const s = new KafkaStream<RecordTypes[K]>(
      this,
      service,
      kind,
      format,
      `${this.topicPrefix}${topic}`,
      codec,
      keyReader(this.catalog.topic(topic)),
    );
    this.streams.push(s as KafkaStream<unknown>);
    return s;
  }

  enqueue(topic: string, key: string | null, value: Buffer): void {
    let batch = this.batches.get(topic);
    if (!batch) {
      batch = [];
      this.batches.set(topic, batch);
    }
    const index = this.sentPerTopic.get(topic) ?? 0;
    this.sentPerTopic.set(topic, index + 1);
    if (this.dirtyRate > 0 && this.rng.next() < this.dirtyRate) batch.push(this.dirtyMessage(topic, key, value, index));
    batch.push({ key, value });
    if (batch.length >= BATCH) this.send(topic);
  }

  private dirtyMessage(
    topic: string,
    key: string | null,
    good: Buffer,
    goodIndex: number,
  ): { key: string | null; value: Buffer } {
    const r = this.rng.next();
    let value: Buffer;
    let reason: string;
    if (r < 0.4) {
      value = Buffer.from(`{"not":"avro","index":${goodIndex}}`);
      reason = "not-single-object";
    } else if (r < 0.7) {
      value = Buffer.from(good);
      value.writeUInt32LE(this.rng.u32(), 2);
      reason = "unknown-fingerprint";
    } else {
      value = good.subarray(0, Math.max(11, good.length - 5));
      reason = "truncated";
    }
    // The dirty message goes just before the good one: its index is the good one's, which moves up.
    this.sentPerTopic.set(topic, goodIndex + 2);
    this.truth.add({ kind: "dirty-kafka", topic, index: goodIndex, reason, bytes: value.length });
    return { key, value };
  }

  private send(topic: string): void {
    const batch = this.batches.get(topic);
    if (!batch || batch.length === 0) return;
    this.batches.set(topic, []);
    const p = this.producer
      .send({ topic, acks: -1, messages: batch })
      .catch((e: Error) => {
        this.failure ??= e;
      })
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  /** Sends what is batched and waits until at most a few sends are in flight; rethrows a send failure. */
  async flush(all = false): Promise<void> {
    for (const topic of this.batches.keys()) this.send(topic);
    while (this.inFlight.size > (all ? 0 : MAX_IN_FLIGHT)) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
  }

  async close(): Promise<StreamSummary[]> {
    try {
      await this.flush(true);
    } finally {
      await this.producer.disconnect();
    }
    return this.streams.map((s) => s.summary());
  }
}

class KafkaStream<T> implements SimStream<T> {
  private events = 0;

  constructor(
    private readonly writer: KafkaEventWriter,
    readonly service: string,
    readonly kind: StreamKind,
    readonly format: LineFormat,
    private readonly topic: string,
    private readonly codec: AvroCodec<T>,
    private readonly key: (record: unknown) => string | null,
  ) {}

  write(record: T): void {
    // App log lines get their id from the shipper when shipped from files; here the stream names them.
    if (this.kind === "app") (record as AppLog).id = appLineId(this.service, this.events, record as AppLog);
    this.writer.enqueue(this.topic, this.key(record), this.codec.encode(record));
    this.events++;
    this.writer.written++;
  }

  summary(): StreamSummary {
    return {
      name: `${this.service}/${this.kind}`,
      service: this.service,
      kind: this.kind,
      format: this.format,
      events: this.events,
      lines: this.events,
      bytes: 0,
      dirty: 0,
      rotations: 0,
    };
  }
}

/**
 * The id of an app line produced straight to Kafka: `<service>:<n>:<hash>`, its number in the run's
 * stream of that service and a 53-bit hash of what it says (time, host, level, logger, message,
 * trace, span, error, attributes). The number alone restarts at 0 every run, so two runs gave
 * different lines one id, and the logs pipeline's Elasticsearch `create` kept only the first (a 409,
 * counted as a duplicate: a lost line). The shipper names a line by its file's fingerprint and its
 * offset; here the line's own content stands in for the fingerprint, so the id stays deterministic:
 * a run repeated with the same seed and start writes the same lines under the same ids (the stores
 * take them once), and lines that differ get different ids whatever the runs' options.
 */
export function appLineId(service: string, n: number, line: AppLog): string {
  const h = new LineHash();
  h.number(line.ts);
  h.text(line.host);
  h.text(line.level);
  h.text(line.logger);
  h.text(line.message);
  h.text(line.traceId);
  h.text(line.spanId);
  if (line.error !== null) {
    h.text(line.error.type);
    h.text(line.error.message);
    h.text(line.error.stack);
  }
  for (const k in line.attributes) {
    h.text(k);
    h.text(line.attributes[k] ?? null);
  }
  return `${service}:${n}:${h.digest()}`;
}

/** cyrb53 (two 32-bit multiply-xor lanes), fed field by field so that no string is built to hash. */
class LineHash {
  private h1 = 0xdeadbeef;
  private h2 = 0x41c6ce57;

  private unit(c: number): void {
    this.h1 = Math.imul(this.h1 ^ c, 2654435761);
    this.h2 = Math.imul(this.h2 ^ c, 1597334677);
  }

  /** A field's text, then a separator no UTF-16 unit equals, so ("ab", "c") and ("a", "bc") differ; null differs from "". */
  text(s: string | null): void {
    if (s !== null) for (let i = 0; i < s.length; i++) this.unit(s.charCodeAt(i));
    this.unit(s === null ? 0x1_0001 : 0x1_0000);
  }

  number(x: number): void {
    this.unit(x % 0x1_0000_0000);
    this.unit(Math.floor(x / 0x1_0000_0000));
  }

  digest(): string {
    let h1 = this.h1;
    let h2 = this.h2;
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
    h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
    h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    return (0x1_0000_0000 * (0x1f_ffff & h2) + (h1 >>> 0)).toString(36);
  }
}
