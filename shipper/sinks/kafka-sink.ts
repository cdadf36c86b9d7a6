// The shipper's Kafka sink: Flume's channel -> sink transaction. It takes a batch from the disk
// channel, sends it (idempotent producer, acks=all, lz4), and only when Kafka has acknowledged it
// does it report the batch delivered (checkpoints move) and commit it in the channel. A batch that
// fails is retried until Kafka takes it: nothing is ever dropped for being slow or unreachable.
// Records Kafka refuses for good (too large, invalid) are bisected out and replaced by dead letters.
//
// With a transactional id (the default), each batch is one Kafka transaction. A shipper killed
// with a batch in flight leaves it uncommitted; the next start aborts it (same transactional id)
// and sends it again, so read_committed consumers see it once. Without one, that batch can arrive
// twice. Either way, the only other copies are of a batch committed in the milliseconds before its
// checkpoint was written.
import kafkajs, { type Message, type Producer } from "kafkajs";
import type { Logger } from "pino";
import { z } from "zod";
import { KafkaClient } from "../../kafka/client.ts";
import { SOURCE_HEADER } from "../../kafka/headers.ts";
import type { KafkaSecurity } from "../../kafka/security.ts";
import type { ShipEntry } from "../types.ts";

// The lz4 codec is registered by kafka/codecs.ts (imported by kafka/client.ts).
const { CompressionTypes } = kafkajs;

export const KafkaSinkConfigSchema = z
  .object({
    /** Brokers; the agent fills them from WEIR_KAFKA_BROKERS or the local stack when absent. */
    brokers: z.array(z.string().min(1)).min(1).optional(),
    clientId: z.string().min(1).default("weir-ship"),
    compression: z.enum(["lz4", "gzip", "none"]).default("lz4"),
    /** Records per produce request, at most. */
    batchRecords: z.number().int().positive().default(4000),
    /** Payload bytes per produce request, at most (Kafka refuses a partition batch over message.max.bytes, 1 MiB). */
    batchBytes: z
      .number()
      .int()
      .positive()
      .default(2 * 1024 * 1024),
    /**
     * One Kafka transaction per batch (exactly once for read_committed consumers, at the cost of a
     * commit round trip per batch). Off: idempotent sends, at least once.
     */
    transactions: z.boolean().default(true),
    /** The transactional id; default: derived from the host and the data folder, so it survives restarts. */
    transactionalId: z.string().min(1).optional(),
    /** First retry delay; doubles up to maxBackoffMs, with jitter. */
    backoffMs: z.number().int().positive().default(200),
    maxBackoffMs: z.number().int().positive().default(10_000),
    /**
     * A batch Kafka has not acknowledged for this long makes the shipper unhealthy (/health 503,
     * weir_ship_kafka_failing), whether its sends fail or hang on a frozen broker.
     */
    stallMs: z.number().int().positive().default(5000),
    /**
     * A send (connecting, and the records up to the commit) without an answer for this long is given
     * up and sent again with a new producer, which fences the old one: a frozen broker shows as
     * retries. The commit itself is never given up (the batch would be in doubt).
     */
    sendTimeoutMs: z.number().int().positive().default(15_000),
  })
  .strict();
export type KafkaSinkConfig = z.output<typeof KafkaSinkConfigSchema>;

/** What the sink needs of the channel (DiskChannel has it). */
export interface ChannelSource {
  take(maxRecords: number, maxBytes: number, signal?: AbortSignal): Promise<{ payloads: Buffer[]; lastSeq: number }>;
  commit(uptoSeq: number): void;
}

export interface KafkaSinkHooks {
  decode(payload: Buffer): ShipEntry;
  /** Already in Kafka (its checkpoint is past it): committed without sending again. */
  alreadyDelivered?(entry: ShipEntry): boolean;
  /** The batch is sent and its transaction about to be committed: the last moment to note it is in doubt. */
  beforeCommit?(entries: ShipEntry[]): void;
  /** Kafka has every entry of this batch, in order: move the checkpoints. */
  delivered(entries: ShipEntry[]): void;
  /** A record Kafka refuses for good: what to send instead (a dead letter), or null to count it lost. */
  refused(entry: ShipEntry, reason: string, message: string): ShipEntry | null;
  /** Each acknowledged produce request: its duration and size, for metrics. */
  sent?(seconds: number, records: number): void;
  /** The record's source, sent as its weir-source header; null: none. */
  sourceOf?(entry: ShipEntry): string | null;
}

export interface KafkaSinkStats {
  sent: Map<string, number>;
  batches: number;
  bytes: number;
  retries: number;
  refused: number;
  /** Send errors in a row (sends given up after sendTimeoutMs included); 0 once a send succeeds. */
  failing: number;
  lastError: string | null;
  lastSuccess: number;
  /** When the batch being delivered was first sent (0: none is); its records wait since then. */
  waitingSince: number;
  /** Records of the batch being delivered. */
  waitingRecords: number;
  /** When the current send began (0: none in flight). */
  attemptSince: number;
}

/** Where a stalled or failing Kafka stands, for /health and /metrics. */
export interface KafkaSinkHealth {
  ok: boolean;
  /** Failed sends in a row, plus one for a send in flight longer than stallMs. */
  failing: number;
  /** How long the oldest record not yet acknowledged has waited for Kafka, in ms (0: none waits). */
  waitingMs: number;
  /** One line for /health. */
  detail: string;
}

/** A send that got no answer within sendTimeoutMs: given up and sent again. */
class SendTimeout extends Error {
  constructor(ms: number) {
    super(
      `no answer from Kafka within ${ms / 1000} s (sendTimeoutMs): the broker is frozen, overloaded or unreachable`,
    );
    this.name = "SendTimeout";
  }
}

/** Errors Kafka will answer the same way however often the batch is sent. */
const REFUSALS = new Set(["MESSAGE_TOO_LARGE", "RECORD_LIST_TOO_LARGE", "INVALID_RECORD", "CORRUPT_MESSAGE"]);
/** Errors after which the producer id is useless: a new producer must take over (possible duplicates). */
const FENCED = new Set(["OUT_OF_ORDER_SEQUENCE_NUMBER", "UNKNOWN_PRODUCER_ID", "INVALID_PRODUCER_EPOCH"]);

/** Kafka refuses record timestamps more than message.timestamp.after.max.ms (1 h) ahead of its clock. */
const MAX_AHEAD_MS = 30 * 60_000;

export class KafkaSink {
  readonly stats: KafkaSinkStats = {
    sent: new Map(),
    batches: 0,
    bytes: 0,
    retries: 0,
    refused: 0,
    failing: 0,
    lastError: null,
    lastSuccess: 0,
    waitingSince: 0,
    waitingRecords: 0,
    attemptSince: 0,
  };
  readonly client: KafkaClient;
  private producer: Producer | null = null;
  /**
   * Producers given up while Kafka was away (the last ABANDONED_KEPT): a disconnect while the broker
   * is down may not finish, or a request of theirs still retrying may reconnect once it is back, and
   * that socket kept a stopped shipper alive (ship-kafka-down test). stop() disconnects them again.
   */
  private readonly abandoned = new Set<Producer>();
  private readonly abort = new AbortController();
  private running: Promise<void> | null = null;
  private readonly compression: kafkajs.CompressionTypes;

  constructor(
    private readonly channel: ChannelSource,
    private readonly config: KafkaSinkConfig & {
      brokers: string[];
      transactionalId: string;
      security?: KafkaSecurity | undefined;
    },
    private readonly hooks: KafkaSinkHooks,
    private readonly log: Logger,
  ) {
    this.client = new KafkaClient({
      brokers: config.brokers,
      clientId: config.clientId,
      logger: log,
      security: config.security,
    });
    this.compression =
      config.compression === "lz4"
        ? CompressionTypes.LZ4
        : config.compression === "gzip"
          ? CompressionTypes.GZIP
          : CompressionTypes.None;
  }

  /** Starts the take -> send -> commit loop. Rejects only on a bug; Kafka being away is retried forever. */
  start(): Promise<void> {
    this.running ??= this.loop();
    return this.running;
  }

  /** Stops after the batch in flight: it is either acknowledged and committed, or stays in the channel. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.running?.catch(() => {});
    if (this.producer) this.abandoned.add(this.producer);
    this.producer = null;
    await Promise.race([
      Promise.allSettled([...this.abandoned].map((p) => p.disconnect())),
      new Promise((r) => setTimeout(r, 5000).unref()),
    ]);
    this.abandoned.clear();
  }

  private async loop(): Promise<void> {
    const { signal } = this.abort;
    while (!signal.aborted) {
      const taken = await this.channel.take(this.config.batchRecords, this.config.batchBytes, signal);
      if (taken.payloads.length === 0) continue;
      let entries = taken.payloads.map((p) => this.hooks.decode(p));
      const skip = this.hooks.alreadyDelivered;
      if (skip) entries = entries.filter((e) => !skip(e));
      if (entries.length > 0 && !(await this.deliver(entries))) return; // stopped mid-retry: the batch stays in the channel
      this.hooks.delivered(entries);
      this.channel.commit(taken.lastSeq);
    }
  }

  /** Whether Kafka takes batches: unhealthy once a batch has waited stallMs, or after 3 failed sends in a row. */
  health(now = Date.now()): KafkaSinkHealth {
    const s = this.stats;
    const { stallMs } = this.config;
    const waitingMs = s.waitingSince > 0 ? now - s.waitingSince : 0;
    const stalled = s.attemptSince > 0 && now - s.attemptSince >= stallMs ? 1 : 0;
    const failing = s.failing + stalled;
    const ok = waitingMs < stallMs && s.failing < 3;
    const detail = ok
      ? "ok"
      : `no acknowledgement for ${(waitingMs / 1000).toFixed(1)} s: ${s.waitingRecords} records wait (${s.failing} failed sends in a row${stalled ? ", one in flight" : ""}${s.lastError ? `; last error: ${s.lastError}` : ""})`;
    return { ok, failing, waitingMs, detail };
  }

  /** Sends until Kafka has every entry (true), or the sink is stopped (false). */
  private async deliver(entries: ShipEntry[]): Promise<boolean> {
    if (this.stats.waitingSince === 0) {
      this.stats.waitingSince = Date.now();
      this.stats.waitingRecords = entries.length;
    }
    try {
      return await this.deliverNow(entries);
    } finally {
      this.stats.waitingSince = 0;
      this.stats.waitingRecords = 0;
    }
  }

  private async deliverNow(entries: ShipEntry[]): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      if (this.abort.signal.aborted) return false;
      try {
        await this.send(entries);
        return true;
      } catch (e) {
        const code = errorType(e);
        if (code && REFUSALS.has(code)) return this.deliverRefused(entries, code, e as Error);
        this.stats.retries++;
        this.stats.failing++;
        this.stats.lastError = (e as Error).message;
        // A transaction that failed is aborted; a producer that cannot abort (Kafka away) or was
        // fenced is replaced, and connecting again aborts whatever it left open.
        if (e instanceof SendTimeout || this.config.transactions || (code && FENCED.has(code))) {
          await this.resetProducer();
        }
        const delay = Math.min(this.config.maxBackoffMs, this.config.backoffMs * 2 ** Math.min(attempt, 16));
        const wait = delay / 2 + Math.random() * (delay / 2);
        if (attempt === 0 || attempt % 10 === 0) {
          this.log.warn(
            { err: (e as Error).message, code, attempt, records: entries.length, retryInMs: Math.round(wait) },
            "kafka send failed; retrying the same batch (nothing is dropped, sources pause once the channel is full)",
          );
        }
        await sleep(wait, this.abort.signal);
      }
    }
  }

  /** One or more records Kafka will never take: halve the batch until the culprits are alone, then dead-letter them. */
  private async deliverRefused(entries: ShipEntry[], code: string, e: Error): Promise<boolean> {
    if (entries.length > 1) {
      const mid = entries.length >> 1;
      return (await this.deliver(entries.slice(0, mid))) && (await this.deliver(entries.slice(mid)));
    }
    const entry = entries[0] as ShipEntry;
    this.stats.refused++;
    this.log.error(
      { code, topic: entry.topic, fileId: entry.position.fileId, offset: entry.position.offset },
      e.message,
    );
    const instead = this.hooks.refused(entry, `kafka-${code.toLowerCase().replaceAll("_", "-")}`, e.message);
    if (instead && instead.topic !== entry.topic) return this.deliver([instead]);
    return true;
  }

  private async send(entries: ShipEntry[]): Promise<void> {
    const started = performance.now();
    this.stats.attemptSince = Date.now();
    // Until the commit, a send that hangs (a frozen broker) is given up after sendTimeoutMs: the next
    // attempt's producer fences this one, so what it still writes is aborted (or, without
    // transactions, may arrive twice, which that mode allows).
    const deadline = new SendDeadline(this.config.sendTimeoutMs);
    try {
      this.producer ??= await deadline.race(
        this.client.idempotentProducer(this.config.transactions ? this.config.transactionalId : undefined),
        (late) => void this.giveUp(late),
      );
      const producer = this.producer;
      const now = Date.now();
      const byTopic = new Map<string, Message[]>();
      let bytes = 0;
      for (const e of entries) {
        let list = byTopic.get(e.topic);
        if (!list) {
          list = [];
          byTopic.set(e.topic, list);
        }
        const ts = e.ts > now + MAX_AHEAD_MS || e.ts < 0 ? now : e.ts;
        const source = this.hooks.sourceOf?.(e) ?? null;
        list.push({
          key: e.key,
          value: e.value,
          timestamp: String(Math.floor(ts)),
          ...(source !== null ? { headers: { [SOURCE_HEADER]: source } } : {}),
        });
        bytes += e.value.length;
      }
      const batch = {
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        acks: -1,
        compression: this.compression,
      };
      if (this.config.transactions) {
        const tx = await deadline.race(producer.transaction());
        try {
          await deadline.race(tx.sendBatch(batch));
          deadline.clear();
          this.hooks.beforeCommit?.(entries);
          await tx.commit();
        } catch (e) {
          if (!(e instanceof SendTimeout)) await tx.abort().catch(() => {});
          throw e;
        }
      } else {
        await deadline.race(producer.sendBatch(batch));
      }
      this.hooks.sent?.((performance.now() - started) / 1000, entries.length);
      this.stats.batches++;
      this.stats.bytes += bytes;
      this.stats.failing = 0;
      this.stats.lastSuccess = Date.now();
      for (const [topic, messages] of byTopic)
        this.stats.sent.set(topic, (this.stats.sent.get(topic) ?? 0) + messages.length);
    } finally {
      deadline.clear();
      this.stats.attemptSince = 0;
    }
  }

  private async resetProducer(): Promise<void> {
    const old = this.producer;
    this.producer = null;
    // A producer of a frozen broker may not even disconnect: wait a second at most.
    if (old) await Promise.race([this.giveUp(old), new Promise((r) => setTimeout(r, 1000))]);
  }

  /** Disconnects a producer no longer used, and keeps it for stop() to disconnect again. */
  private async giveUp(producer: Producer): Promise<void> {
    this.abandoned.add(producer);
    if (this.abandoned.size > ABANDONED_KEPT) this.abandoned.delete(this.abandoned.values().next().value as Producer);
    await producer.disconnect().catch(() => {});
  }
}

/** Given-up producers kept for stop(): the most recent ones (an older one has long finished retrying). */
const ABANDONED_KEPT = 64;

/** One send's time limit: each step raced against it; a step answering after it is given up (and cleaned up). */
class SendDeadline {
  private timer: NodeJS.Timeout | null = null;
  private readonly expired: Promise<never>;
  private passed = false;

  constructor(ms: number) {
    this.expired = new Promise<never>((_, reject) => {
      this.timer = setTimeout(() => {
        this.passed = true;
        reject(new SendTimeout(ms));
      }, ms);
    });
    this.expired.catch(() => {});
  }

  race<T>(step: Promise<T>, late?: (value: T) => void): Promise<T> {
    if (this.timer === null && !this.passed) return step;
    step.then(
      (v) => {
        if (this.passed) late?.(v);
      },
      () => {},
    );
    return Promise.race([step, this.expired]);
  }

  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** The Kafka error code behind a kafkajs error, looking through its retry wrappers. */
function errorType(e: unknown): string | null {
  let cur = e as { type?: unknown; cause?: unknown; originalError?: unknown; errors?: unknown[] } | undefined;
  for (let depth = 0; cur && depth < 6; depth++) {
    if (typeof cur.type === "string") return cur.type;
    if (Array.isArray(cur.errors) && cur.errors.length > 0) {
      const inner = errorType(cur.errors[0]);
      if (inner) return inner;
    }
    cur = (cur.cause ?? cur.originalError) as typeof cur;
  }
  return null;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
