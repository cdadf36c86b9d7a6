// The stream runtime's Kafka client on kafkajs (`StreamKafkaClient`, ./stream-client.ts): the worker's
// group consumer with the task assigner's protocol, its plain and transactional producers and its
// admin, built on the Kafka setup every weir process shares (kafka/client.ts). The only runtime
// module that knows kafkajs, so the client can be swapped (see docs/stream.md for the measurement
// against @platformatic/kafka).
import kafkajs, { type Consumer, type Producer, type Transaction } from "kafkajs";
import type { Logger } from "pino";
import { KafkaClient, type KafkaOptions, unreachableReason } from "../../kafka/client.ts";
import type { CompiledTopology } from "../dsl/compile.ts";
import { assignTasks } from "./assigner.ts";
import { type CoordinatorRetry, retryCoordinator } from "./coordinator-retry.ts";
import {
  type BatchEnd,
  errorName,
  type FetchedBatch,
  type GroupConsumer,
  type GroupConsumerOptions,
  KafkaUnreachableError,
  type NewTopic,
  type OutputProducer,
  type OutRecord,
  type PartitionList,
  type StreamAdmin,
  type StreamKafkaClient,
  TASK_TRANSACTION_TIMEOUT_MS,
  type TopicPartitionOffset,
  type TransactionalProducer,
} from "./stream-client.ts";

const { AssignerProtocol, CompressionTypes, ConfigResourceTypes, ConfigSource } = kafkajs;

const ASSIGNER_NAME = "weir-task-sticky";

/** How long a producer's creation (InitProducerId) waits for a transaction coordinator to settle. */
const PRODUCER_COORDINATOR_BUDGET_MS = 120_000;
/** How long a checkpoint's offsets (AddOffsetsToTxn, TxnOffsetCommit) and a group's offsets wait for it. */
const OFFSETS_COORDINATOR_BUDGET_MS = 60_000;

export class KafkajsStreamClient implements StreamKafkaClient {
  readonly client: KafkaClient;
  private readonly log: Logger | undefined;

  constructor(options: KafkaOptions | KafkaClient) {
    this.client = options instanceof KafkaClient ? options : new KafkaClient(options);
    this.log = options instanceof KafkaClient ? undefined : options.logger;
  }

  get brokers(): readonly string[] {
    return this.client.brokers;
  }

  admin(): StreamAdmin {
    return new KafkaAdmin(this.client.native.admin(), this.brokers, this.log);
  }

  async producer(): Promise<OutputProducer> {
    return new PlainProducer(await reachable(this.brokers, () => this.client.idempotentProducer()));
  }

  /**
   * kafkajs retries InitProducerId on an unsettled coordinator for about 50 s; a broker failing over
   * and one coming back can take longer between them, so a producer is made again (a new one: a
   * producer whose connect failed is not reused) until the budget is spent.
   */
  async transactionalProducer(transactionalId: string): Promise<TransactionalProducer> {
    return retryCoordinator(
      async () => {
        const p = await reachable(this.brokers, () =>
          this.client.idempotentProducer(transactionalId, TASK_TRANSACTION_TIMEOUT_MS),
        );
        const tp = new KafkajsTransactionalProducer(p, this.brokers, this.log);
        await tp.begin();
        return tp;
      },
      {
        budgetMs: PRODUCER_COORDINATOR_BUDGET_MS,
        maxMs: 5000,
        unreachable: true,
        onRetry: logRefusal(this.log, `the producer of ${transactionalId}`),
      },
    );
  }

  consumer(options: GroupConsumerOptions): GroupConsumer {
    const { topology, taskCounts, owned } = options.tasks;
    const consumer = this.client.consumer({
      groupId: options.groupId,
      assigner: [taskAssigner(topology, taskCounts, owned)],
      ...(options.sessionTimeout ? { sessionTimeout: options.sessionTimeout } : {}),
    });
    return new KafkajsGroupConsumer(consumer, options, this.brokers);
  }
}

/** Logs a coordinator's refusal: the first, then every tenth (a retry every second would flood the log). */
function logRefusal(log: Logger | undefined, what: string): CoordinatorRetry["onRetry"] {
  return (e, attempt, waitMs) => {
    if (attempt !== 1 && attempt % 10 !== 0) return;
    log?.warn(
      { attempt, retryInMs: waitMs, err: (e as Error).message },
      `${what}: the coordinator is not settled (${errorName(e)}); asking again (attempt ${attempt})`,
    );
  };
}

/** Runs a call, turning kafkajs' "no broker answered" errors into KafkaUnreachableError. */
async function reachable<T>(brokers: readonly string[], call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    const reason = unreachableReason(e);
    if (reason !== null) throw new KafkaUnreachableError(brokers, reason, { cause: e });
    throw e;
  }
}

class KafkajsGroupConsumer implements GroupConsumer {
  constructor(
    private readonly c: Consumer,
    options: GroupConsumerOptions,
    private readonly brokers: readonly string[],
  ) {
    c.on(c.events.GROUP_JOIN, (e) => options.onAssignment(e.payload.memberAssignment));
    c.on(c.events.END_BATCH_PROCESS, (e) => options.onBatchEnd(e.payload as BatchEnd));
    c.on(c.events.CRASH, (e) => options.onCrash(e.payload.error, e.payload.restart));
  }

  connect(): Promise<void> {
    return reachable(this.brokers, () => this.c.connect());
  }

  subscribe(topics: string[]): Promise<void> {
    return this.c.subscribe({ topics, fromBeginning: true });
  }

  run(eachBatch: (fetched: FetchedBatch) => Promise<void>): Promise<void> {
    return this.c.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 1, eachBatch });
  }

  pause(partitions: PartitionList[]): void {
    this.c.pause(partitions);
  }

  resume(partitions: PartitionList[]): void {
    this.c.resume(partitions);
  }

  seek(position: TopicPartitionOffset): void {
    this.c.seek(position);
  }

  commitOffsets(offsets: TopicPartitionOffset[]): Promise<void> {
    return this.c.commitOffsets(offsets);
  }

  disconnect(): Promise<void> {
    return this.c.disconnect();
  }
}

function toMessages(records: OutRecord[]) {
  return records.map((r) => ({
    key: r.key,
    value: r.value,
    timestamp: String(Math.max(0, Math.floor(r.ts))),
    ...(r.partition !== null ? { partition: r.partition } : {}),
    ...(r.headers ? { headers: r.headers } : {}),
  }));
}

/** Says where a failed send was going, which kafkajs' errors do not. */
async function describeFailure<T>(records: OutRecord[], send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (e) {
    const topics = new Map<string, { n: number; bytes: number }>();
    for (const r of records) {
      const t = topics.get(r.topic) ?? { n: 0, bytes: 0 };
      t.n++;
      t.bytes += (r.value?.length ?? 0) + (r.key?.length ?? 0);
      topics.set(r.topic, t);
    }
    const where = [...topics].map(([t, x]) => `${t} (${x.n} records, ${x.bytes} bytes)`).join(", ");
    (e as Error).message = `${(e as Error).message} [sending to ${where}]`;
    throw e;
  }
}

/** A record batch must stay under the broker's message.max.bytes (1 MiB by default). */
const MAX_REQUEST_BYTES = 768 * 1024;

function* chunks(records: OutRecord[]): Generator<OutRecord[]> {
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as OutRecord;
    const size = (r.value?.length ?? 0) + (r.key?.length ?? 0) + 64;
    if (bytes + size > MAX_REQUEST_BYTES && i > start) {
      yield records.slice(start, i);
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (start < records.length) yield start === 0 ? records : records.slice(start);
}

function byTopic(records: OutRecord[]) {
  const m = new Map<string, OutRecord[]>();
  for (const r of records) {
    const list = m.get(r.topic);
    if (list) list.push(r);
    else m.set(r.topic, [r]);
  }
  return [...m].map(([topic, rs]) => ({ topic, messages: toMessages(rs) }));
}

/**
 * Sends one after another. kafkajs runs concurrent sends side by side and retries each on its own,
 * so a retried batch can land after a later one: records reordered within a partition (a
 * watermark marker overtaking the records it covers). Once a send fails, every later one fails
 * too, so nothing is written out of order.
 */
class SendQueue {
  private tail: Promise<void> = Promise.resolve();
  private failed: unknown = null;

  push(send: () => Promise<void>): Promise<void> {
    const next = this.tail.then(async () => {
      if (this.failed) throw this.failed;
      try {
        await send();
      } catch (e) {
        this.failed = e;
        throw e;
      }
    });
    this.tail = next.catch(() => {});
    return next;
  }
}

class PlainProducer implements OutputProducer {
  private readonly queue = new SendQueue();

  constructor(private readonly p: Producer) {}

  send(records: OutRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    return this.queue.push(() => this.sendNow(records));
  }

  private async sendNow(records: OutRecord[]): Promise<void> {
    for (const chunk of chunks(records)) {
      await describeFailure(chunk, () =>
        this.p.sendBatch({ topicMessages: byTopic(chunk), acks: -1, compression: CompressionTypes.None }),
      );
    }
  }

  async close(): Promise<void> {
    await this.p.disconnect();
  }
}

class KafkajsTransactionalProducer implements TransactionalProducer {
  readonly transactionTimeoutMs = TASK_TRANSACTION_TIMEOUT_MS;
  private tx: Transaction | null = null;

  constructor(
    private readonly p: Producer,
    private readonly brokers: readonly string[],
    private readonly log: Logger | undefined,
  ) {}

  async begin(): Promise<void> {
    this.tx = await this.p.transaction();
  }

  private get active(): Transaction {
    if (!this.tx) throw new Error("no open transaction");
    return this.tx;
  }

  private queue = new SendQueue();

  send(records: OutRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    const tx = this.active;
    return this.queue.push(() => this.sendNow(tx, records));
  }

  /** A send kafkajs gave up on because a leader's broker did not answer is told as unreachable: the task is opened again. */
  private async sendNow(tx: Transaction, records: OutRecord[]): Promise<void> {
    for (const chunk of chunks(records)) {
      await reachable(this.brokers, () =>
        describeFailure(chunk, () =>
          tx.sendBatch({ topicMessages: byTopic(chunk), acks: -1, compression: CompressionTypes.None }),
        ),
      );
    }
  }

  /**
   * Commits the consumer offsets with the transaction, then the transaction, and opens the next one.
   * The offsets are sent again while a coordinator is not settled (./coordinator-retry.ts): kafkajs
   * finds both coordinators again on each call, and adding the group and its offsets to the same
   * transaction twice is harmless. EndTxn cannot be sent again through kafkajs (its transaction is
   * left "committing"), so a refused or unanswered commit rejects, and the task is opened again by
   * a new producer, which completes or aborts this transaction (stream/runtime/assigned-tasks.ts).
   */
  async commit(groupId: string, offsets: TopicPartitionOffset[]): Promise<void> {
    const tx = this.active;
    if (offsets.length > 0) {
      const topics = new Map<string, Array<{ partition: number; offset: string }>>();
      for (const o of offsets) {
        const list = topics.get(o.topic) ?? [];
        list.push({ partition: o.partition, offset: o.offset });
        topics.set(o.topic, list);
      }
      await retryCoordinator(
        () =>
          reachable(this.brokers, () =>
            tx.sendOffsets({
              consumerGroupId: groupId,
              topics: [...topics].map(([topic, partitions]) => ({ topic, partitions })),
            }),
          ),
        {
          budgetMs: OFFSETS_COORDINATOR_BUDGET_MS,
          unreachable: true,
          onRetry: logRefusal(this.log, `the offsets of ${groupId}'s transaction`),
        },
      );
    }
    await reachable(this.brokers, () => tx.commit());
    this.tx = null;
    this.queue = new SendQueue();
    await this.begin();
  }

  async close(): Promise<void> {
    try {
      if (this.tx?.isActive()) await this.tx.abort();
    } catch {
      // fenced or disconnected: the broker aborts it on timeout or when the next owner connects
    }
    await this.p.disconnect();
  }
}

class KafkaAdmin implements StreamAdmin {
  private connected = false;
  private defaultReplication: number | null = null;

  constructor(
    private readonly a: ReturnType<KafkaClient["native"]["admin"]>,
    private readonly brokers: readonly string[],
    private readonly log: Logger | undefined,
  ) {}

  private async ready() {
    if (!this.connected) {
      await reachable(this.brokers, () => this.a.connect());
      this.connected = true;
    }
    return this.a;
  }

  /** Partition count of each topic that exists. */
  partitionCounts(topics: string[]): Promise<Map<string, number>> {
    return reachable(this.brokers, () => this.partitionCountsNow(topics));
  }

  private async partitionCountsNow(topics: string[]): Promise<Map<string, number>> {
    const a = await this.ready();
    const existing = new Set(await a.listTopics());
    const wanted = topics.filter((t) => existing.has(t));
    const out = new Map<string, number>();
    if (wanted.length === 0) return out;
    const md = await a.fetchTopicMetadata({ topics: wanted });
    for (const t of md.topics) out.set(t.name, t.partitions.length);
    return out;
  }

  createTopics(topics: NewTopic[]): Promise<void> {
    return reachable(this.brokers, () => this.createTopicsNow(topics));
  }

  private async createTopicsNow(topics: NewTopic[]): Promise<void> {
    if (topics.length === 0) return;
    const a = await this.ready();
    const replicationFactor = await this.replicationFactor();
    // Not kafkajs's waitForLeaders: its wait gives up on UNKNOWN_TOPIC_OR_PARTITION, which a broker
    // answers while a cluster's metadata catches up (or a broker is down), and on the cluster test a
    // worker starting while a broker was killed crashed with it uncaught. The wait below retries it.
    await a.createTopics({
      waitForLeaders: false,
      topics: topics.map((t) => ({
        topic: t.topic,
        numPartitions: t.partitions,
        replicationFactor,
        configEntries: Object.entries(t.config).map(([name, value]) => ({ name, value })),
      })),
    });
    // A new partition answers NOT_LEADER_FOR_PARTITION (or UNKNOWN_TOPIC_OR_PARTITION) for a moment after
    // creation: wait until each serves.
    for (const t of topics) await this.offsets(t.topic);
  }

  /**
   * The replication factor of the topics a worker creates: the broker's default.replication.factor,
   * as Kafka Streams' replication.factor=-1 means (kafkajs' CreateTopics is too old to send -1), so a
   * worker on a 3-broker cluster replicates its changelogs 3 times with no setting of its own;
   * WEIR_TOPIC_REPLICATION_FACTOR overrides it.
   */
  private async replicationFactor(): Promise<number> {
    const override = process.env.WEIR_TOPIC_REPLICATION_FACTOR;
    if (override) return Number(override);
    if (this.defaultReplication !== null) return this.defaultReplication;
    const a = await this.ready();
    const { brokers } = await a.describeCluster();
    const node = brokers[0]?.nodeId;
    if (node === undefined) return 1;
    const { resources } = await a.describeConfigs({
      includeSynonyms: false,
      resources: [
        { type: ConfigResourceTypes.BROKER, name: String(node), configNames: ["default.replication.factor"] },
      ],
    });
    const value = Number(
      resources[0]?.configEntries.find((e) => e.configName === "default.replication.factor")?.configValue,
    );
    this.defaultReplication = Number.isInteger(value) && value > 0 ? value : 1;
    return this.defaultReplication;
  }

  /** Earliest and end (last stable) offsets per partition; retriable errors (a leader moving) are retried for 30 s. */
  async offsets(topic: string): Promise<Map<number, { low: string; high: string }>> {
    const a = await this.ready();
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const rows = await a.fetchTopicOffsets(topic);
        return new Map(rows.map((r) => [r.partition, { low: r.low, high: r.high }]));
      } catch (e) {
        if (!(e as { retriable?: boolean }).retriable || Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /**
   * Committed offsets of a group; -1 where nothing is committed. kafkajs asks the group's coordinator
   * once; one that moved or is loading (a task opened during a broker's failover) is asked again.
   */
  async committed(groupId: string, topics: string[]): Promise<Map<string, string>> {
    const a = await this.ready();
    const out = new Map<string, string>();
    if (topics.length === 0) return out;
    const fetched = await retryCoordinator(() => reachable(this.brokers, () => a.fetchOffsets({ groupId, topics })), {
      budgetMs: OFFSETS_COORDINATOR_BUDGET_MS,
      unreachable: true,
      onRetry: logRefusal(this.log, `the committed offsets of ${groupId}`),
    });
    for (const t of fetched) {
      for (const p of t.partitions) out.set(`${t.topic}#${p.partition}`, p.offset);
    }
    return out;
  }

  /** Topic-level configs (source TOPIC_CONFIG): what was set on the topic, not the broker's defaults. */
  async topicConfigs(topics: string[]): Promise<Map<string, Record<string, string>>> {
    const out = new Map<string, Record<string, string>>();
    const existing = (await this.partitionCounts(topics)).keys();
    const resources = [...existing].map((name) => ({ type: ConfigResourceTypes.TOPIC, name }));
    if (resources.length === 0) return out;
    const a = await this.ready();
    const described = await a.describeConfigs({ includeSynonyms: false, resources });
    for (const r of described.resources) {
      const config: Record<string, string> = {};
      for (const e of r.configEntries) {
        if (e.configSource === ConfigSource.TOPIC_CONFIG && e.configValue !== null)
          config[e.configName] = e.configValue;
      }
      out.set(r.resourceName, config);
    }
    return out;
  }

  /**
   * kafkajs has no IncrementalAlterConfigs, and AlterConfigs replaces every config set on the topic:
   * the topic's own configs are read and sent back with `set` merged in. A sensitive one (its value
   * is not readable) would be lost, so such a topic is refused.
   */
  async alterTopicConfig(topic: string, set: Record<string, string>): Promise<void> {
    const a = await this.ready();
    const described = await a.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
    });
    const own = (described.resources[0]?.configEntries ?? []).filter(
      (e) => e.configSource === ConfigSource.TOPIC_CONFIG,
    );
    const secret = own.find((e) => e.isSensitive || e.configValue === null);
    if (secret) throw new Error(`${topic} has a sensitive config ${secret.configName}: not altered, it would be lost`);
    const merged: Record<string, string> = Object.fromEntries(own.map((e) => [e.configName, e.configValue]));
    Object.assign(merged, set);
    await a.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: topic,
          configEntries: Object.entries(merged).map(([name, value]) => ({ name, value })),
        },
      ],
    });
  }

  async deleteRecords(topic: string, partitions: Array<{ partition: number; offset: string }>): Promise<void> {
    if (partitions.length === 0) return;
    const a = await this.ready();
    await a.deleteTopicRecords({ topic, partitions });
  }

  async close(): Promise<void> {
    if (this.connected) await this.a.disconnect();
    this.connected = false;
  }
}

/**
 * The group's assigner: whole tasks, sticky (./assigner.ts). Members announce the tasks they own in
 * the protocol's user data; the leader decodes them and hands out `assignTasks`.
 */
function taskAssigner(topology: CompiledTopology, taskCounts: Map<number, number>, owned: () => string[]) {
  return () => ({
    name: ASSIGNER_NAME,
    version: 1,
    async assign({ members }: { members: Array<{ memberId: string; memberMetadata: Buffer }>; topics: string[] }) {
      const decoded = members.map((m) => {
        let prev: string[] = [];
        try {
          const md = AssignerProtocol.MemberMetadata.decode(m.memberMetadata);
          if (md?.userData && md.userData.length > 0) prev = JSON.parse(md.userData.toString("utf8")).tasks ?? [];
        } catch {
          prev = [];
        }
        return { id: m.memberId, owned: prev };
      });
      return [...assignTasks(topology, taskCounts, decoded)].map(([memberId, assignment]) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 1,
          assignment,
          userData: Buffer.alloc(0),
        }),
      }));
    },
    protocol({ topics }: { topics: string[] }) {
      return {
        name: ASSIGNER_NAME,
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: 1,
          topics,
          userData: Buffer.from(JSON.stringify({ tasks: owned() })),
        }),
      };
    },
  });
}
