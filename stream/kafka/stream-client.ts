// What a stream worker needs of Kafka: a group consumer, producers (plain and transactional) and an
// admin. The worker is handed one: `KafkajsStreamClient` (./client.ts) in production, the in-memory
// `FakeKafkaCluster` (stream/testing/fake-kafka.ts) in unit tests, so the checkpoint order, fencing,
// rebalances and restore are tested without a broker. Offsets are decimal strings: Kafka's are
// 64-bit. Nothing here knows the client library.
import type { CompiledTopology } from "../dsl/compile.ts";

/**
 * How long a task's transaction may stay open. A checkpoint holds it open while the sinks flush, so
 * this is how long a store may be down before the broker aborts the transaction and the worker has
 * to start over from its last commit. A crashed worker's open transaction does not wait for it: its
 * successor's producer fences it at once. Under the broker's transaction.max.timeout.ms (15 min).
 */
export const TASK_TRANSACTION_TIMEOUT_MS = 300_000;

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface TopicPartitionOffset extends TopicPartition {
  offset: string;
}

export interface PartitionList {
  topic: string;
  partitions: number[];
}

export interface OutRecord {
  topic: string;
  /** null: the default partitioner's choice (murmur2 of the key). */
  partition: number | null;
  key: string | null;
  value: Buffer | null;
  ts: number;
  headers?: Record<string, string>;
}

export interface NewTopic {
  topic: string;
  partitions: number;
  config: Record<string, string>;
}

export interface StreamKafkaClient {
  /** Where the client connects (host:port each), for messages. */
  readonly brokers: readonly string[];
  admin(): StreamAdmin;
  /** An idempotent producer (acks=all) for outputs outside transactions. */
  producer(): Promise<OutputProducer>;
  /**
   * A transactional producer with its transaction open. Getting it fences any older producer with
   * the same id (a zombie task): that one's open transaction is aborted, its next call rejects.
   */
  transactionalProducer(transactionalId: string): Promise<TransactionalProducer>;
  consumer(options: GroupConsumerOptions): GroupConsumer;
}

export interface OutputProducer {
  /** Sends one batch after another, in order; once a send fails, every later one fails too. */
  send(records: OutRecord[]): Promise<void>;
  close(): Promise<void>;
}

export interface TransactionalProducer extends OutputProducer {
  /** How long its transaction may stay open before the broker aborts it (and bumps its epoch). */
  readonly transactionTimeoutMs: number;
  /** Commits the consumer offsets with the transaction, then the transaction, and opens the next one. */
  commit(groupId: string, offsets: TopicPartitionOffset[]): Promise<void>;
}

export interface StreamAdmin {
  /** Partition count of each topic that exists. */
  partitionCounts(topics: string[]): Promise<Map<string, number>>;
  createTopics(topics: NewTopic[]): Promise<void>;
  /** Earliest and last stable offsets per partition (the end a read_committed reader reaches). */
  offsets(topic: string): Promise<Map<number, { low: string; high: string }>>;
  /** Committed offsets of a group, keyed `topic#partition`; "-1" where nothing is committed. */
  committed(groupId: string, topics: string[]): Promise<Map<string, string>>;
  /** The configs set on each topic itself (not the broker's defaults), of the topics that exist. */
  topicConfigs(topics: string[]): Promise<Map<string, Record<string, string>>>;
  /** Sets these configs of a topic and keeps its other ones (an incremental alter). */
  alterTopicConfig(topic: string, set: Record<string, string>): Promise<void>;
  /**
   * Deletes a topic's records before the given offsets (each partition's log start moves there):
   * Kafka's DeleteRecords. An offset past a partition's end is refused.
   */
  deleteRecords(topic: string, partitions: Array<{ partition: number; offset: string }>): Promise<void>;
  close(): Promise<void>;
}

export interface FetchedMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: string;
  headers?: Record<string, unknown>;
}

/** One fetch of one partition, handed to the worker (kafkajs' EachBatchPayload, as much as is used). */
export interface FetchedBatch {
  batch: {
    topic: string;
    partition: number;
    messages: FetchedMessage[];
    /** The offset of the last record fetched, transaction markers and aborted records included. */
    lastOffset(): string;
    /** Records between this batch's last and the partition's end. */
    offsetLag(): string;
  };
  /** Marks a record handled: the next fetch of the partition starts after it. */
  resolveOffset(offset: string): void;
  /** Keeps the membership alive during a long batch; rejects when the group is rebalancing. */
  heartbeat(): Promise<void>;
  isRunning(): boolean;
  /** The partition was seeked or reassigned since this fetch: its records are fetched again. */
  isStale(): boolean;
}

export interface BatchEnd {
  topic: string;
  partition: number;
  lastOffset: string;
  offsetLag: string;
  /** Records handed to the worker: 0 for a fetch of only transaction markers or aborted records. */
  batchSize: number;
}

export interface GroupConsumerOptions {
  groupId: string;
  sessionTimeout?: number;
  /** The tasks the group hands out (whole tasks, sticky: ./assigner.ts) and those this member owns now. */
  tasks: { topology: CompiledTopology; taskCounts: Map<number, number>; owned(): string[] };
  /** This member's assignment (topic -> partitions) after every (re)join; positions are back at the committed offsets. */
  onAssignment(assignment: Record<string, number[]>): void;
  /** After every fetch, also one that never reaches `eachBatch` (only transaction markers or aborted records). */
  onBatchEnd(end: BatchEnd): void;
  /** The consumer failed; `restart`: it rejoins by itself. */
  onCrash(error: Error, restart: boolean): void;
}

/** A read_committed member of a consumer group that commits only when told to. */
export interface GroupConsumer {
  connect(): Promise<void>;
  /** From the beginning where the group has committed nothing. */
  subscribe(topics: string[]): Promise<void>;
  /** Starts fetching; one batch at a time is handed over, and awaited. */
  run(eachBatch: (fetched: FetchedBatch) => Promise<void>): Promise<void>;
  /** Paused partitions are not fetched, and stay paused across reassignments until resumed. */
  pause(partitions: PartitionList[]): void;
  resume(partitions: PartitionList[]): void;
  seek(position: TopicPartitionOffset): void;
  /** Rejects with a rebalance error (`isRebalance`) when the group has moved on without this member. */
  commitOffsets(offsets: TopicPartitionOffset[]): Promise<void>;
  disconnect(): Promise<void>;
}

/**
 * Kafka did not answer: no broker could be reached, or none answered in time. The client turns its
 * library's connection errors into this; what else goes wrong (a missing topic, a refused request)
 * stays what it is. A worker that meets it before it has joined its group waits and tries again.
 */
export class KafkaUnreachableError extends Error {
  constructor(
    readonly brokers: readonly string[],
    /** What the connection attempt ended with, in one line. */
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`Kafka at ${brokers.join(",")} did not answer: ${reason}`, options);
    this.name = "KafkaUnreachableError";
  }
}

export function isUnreachable(e: unknown): e is KafkaUnreachableError {
  return e instanceof KafkaUnreachableError;
}

// Kafka's names, and kafkajs' older ones for the same codes (14: GROUP_LOAD_IN_PROGRESS, 15:
// GROUP_COORDINATOR_NOT_AVAILABLE, 16: NOT_COORDINATOR_FOR_GROUP).
const REBALANCE_ERRORS =
  /^(REBALANCE_IN_PROGRESS|UNKNOWN_MEMBER_ID|ILLEGAL_GENERATION|NOT_COORDINATOR(_FOR_GROUP)?|(GROUP_)?COORDINATOR_NOT_AVAILABLE)$/;
const COORDINATOR_ERRORS =
  /^(NOT_COORDINATOR(_FOR_GROUP)?|(GROUP_)?COORDINATOR_NOT_AVAILABLE|(GROUP|COORDINATOR)_LOAD_IN_PROGRESS|CONCURRENT_TRANSACTIONS)$/;

/** Whether `e` or one of its causes (kafkajs wraps what it retried or gave up on) has a `type` matching. */
function hasType(e: unknown, names: RegExp): boolean {
  for (let c = e as { type?: string; cause?: unknown } | undefined, depth = 0; c && depth < 5; depth++) {
    if (typeof c.type === "string" && names.test(c.type)) return true;
    c = c.cause as typeof c;
  }
  return false;
}

/**
 * Errors of a group that is rebalancing or has dropped this member: a rejoin follows, not a failure.
 * Errors carry Kafka's error name in `type`; kafkajs wraps an error it does not retry
 * (UNKNOWN_MEMBER_ID) in one of its own, so the causes count.
 */
export function isRebalance(e: unknown): boolean {
  return hasType(e, REBALANCE_ERRORS);
}

/**
 * A group or transaction coordinator that has moved (NOT_COORDINATOR), has none elected yet
 * (COORDINATOR_NOT_AVAILABLE), is still loading its state after taking over (LOAD_IN_PROGRESS), or is
 * still completing the previous transaction (CONCURRENT_TRANSACTIONS): what a broker failing over, or
 * coming back and taking its partitions' leadership back, answers for a while. Nothing was done by
 * the request that got it, so the request may be sent again, to the coordinator found again.
 */
export function isCoordinatorUnsettled(e: unknown): boolean {
  return hasType(e, COORDINATOR_ERRORS);
}

/** The error's Kafka name (`type`, its own or its causes': kafkajs wraps what it gave up on) or, failing that, its class name. */
export function errorName(e: unknown): string {
  for (let c = e as { type?: string; cause?: unknown } | undefined, depth = 0; c && depth < 5; depth++) {
    if (typeof c.type === "string") return c.type;
    c = c.cause as typeof c;
  }
  return String((e as Error)?.name);
}

/** A producer another one with its transactional id has fenced: the task has moved. */
export function isFenced(e: unknown): boolean {
  return /FENCED|INVALID_PRODUCER_EPOCH|ProducerFenced/i.test(errorName(e));
}
