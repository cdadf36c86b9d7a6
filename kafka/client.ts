// The Kafka client setup every weir process shares: kafkajs, its log lines through pino, bounded
// retries, the lz4 codec (./codecs.ts), and the producer and consumer settings weir relies on. The
// shipper sends through it; the stream runtime builds its group consumer, producers and admin on it
// (stream/kafka/client.ts); benchmarks read with the worker's own consumer settings.
import kafkajs, { type Consumer, type Producer } from "kafkajs";
import type { Logger } from "pino";
import "./codecs.ts";
import { type KafkaSecurity, kafkajsSecurity } from "./security.ts";

const { Kafka, logLevel, Partitioners } = kafkajs;

export interface KafkaOptions {
  brokers: string[];
  clientId: string;
  logger?: Logger;
  /** TLS and SASL (./security.ts); none: plaintext. */
  security?: KafkaSecurity | undefined;
}

export class KafkaClient {
  private readonly kafka: InstanceType<typeof Kafka>;

  constructor(private readonly options: KafkaOptions) {
    const log = options.logger;
    this.kafka = new Kafka({
      clientId: options.clientId,
      brokers: options.brokers,
      ...kafkajsSecurity(options.security),
      logLevel: logLevel.WARN,
      logCreator: () => (entry) => {
        if (!log) return;
        const { message, ...rest } = entry.log;
        // Said once per producer because retries are bounded; they are, on purpose (docs/stream.md).
        if (message.startsWith("Limiting retries for the idempotent producer")) return;
        const fields = { ...rest, namespace: entry.namespace };
        if (entry.level <= logLevel.ERROR) log.error(fields, `kafka: ${message}`);
        else log.warn(fields, `kafka: ${message}`);
      },
      retry: { retries: 8, initialRetryTime: 200 },
    });
  }

  /** Where it connects (host:port each), for messages. */
  get brokers(): readonly string[] {
    return this.options.brokers;
  }

  /** The kafkajs client itself, for a caller that needs what these wrappers do not offer. */
  get native(): InstanceType<typeof Kafka> {
    return this.kafka;
  }

  /**
   * A connected kafkajs producer, idempotent, one request in flight (so a retried batch cannot
   * overtake a later one), never creating topics; acks=all is the caller's to pass. With a
   * transactional id the id survives restarts, so connecting aborts whatever a killed predecessor
   * left open (it fences it); `transactionTimeoutMs` is how long a transaction may stay open.
   */
  async idempotentProducer(transactionalId?: string, transactionTimeoutMs = 60_000): Promise<Producer> {
    const p = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
      ...(transactionalId ? { transactionalId, transactionTimeout: transactionTimeoutMs } : {}),
    });
    try {
      await p.connect();
    } catch (e) {
      // A transactional producer's connect fails after connecting when InitProducerId is refused:
      // its connections would stay open behind a producer nobody holds.
      await p.disconnect().catch(() => {});
      throw e;
    }
    return p;
  }

  /** A group member reading committed records only, as the stream worker reads its topics. */
  consumer(options: {
    groupId: string;
    assigner: Parameters<InstanceType<typeof Kafka>["consumer"]>[0]["partitionAssigners"];
    sessionTimeout?: number;
    maxBytesPerPartition?: number;
  }): Consumer {
    return this.kafka.consumer({
      groupId: options.groupId,
      ...(options.assigner ? { partitionAssigners: options.assigner } : {}),
      sessionTimeout: options.sessionTimeout ?? 10_000,
      rebalanceTimeout: 30_000,
      heartbeatInterval: 1000,
      maxBytesPerPartition: options.maxBytesPerPartition ?? 1_048_576,
      maxBytes: 16 * 1_048_576,
      maxWaitTimeInMs: 100,
      readUncommitted: false,
      allowAutoTopicCreation: false,
    });
  }
}

/** kafkajs errors that mean no broker answered (refused, reset, timed out, never connected). */
const UNREACHABLE_NAMES = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSRequestTimeoutError",
  "KafkaJSNoBrokerAvailableError",
  "KafkaJSBrokerNotFound",
  "KafkaJSLockTimeout",
]);

/**
 * Why a kafkajs error means Kafka did not answer, in one line ("connect ECONNREFUSED
 * 127.0.0.1:9092", "Request ApiVersions(key: 18, version: 2) timed out"), or null for any other
 * error. Looks through kafkajs' retry wrappers. kafkajs' "Broker not connected" (a request on a
 * broker whose connection never completed: what a frozen broker leaves) counts as unreachable.
 */
export function unreachableReason(e: unknown): string | null {
  let cur = e as { name?: unknown; message?: unknown; cause?: unknown; originalError?: unknown } | undefined;
  for (let depth = 0; cur && depth < 8; depth++) {
    const name = typeof cur.name === "string" ? cur.name : "";
    const message = typeof cur.message === "string" ? cur.message : "";
    if (message === "Broker not connected") {
      return "the broker took the connection but never answered its first request (frozen, overloaded, or not a Kafka port)";
    }
    if (UNREACHABLE_NAMES.has(name)) return message.replace(/^Connection error: /, "") || name;
    cur = (cur.cause ?? cur.originalError) as typeof cur;
  }
  return null;
}
