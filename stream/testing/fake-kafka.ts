// An in-memory Kafka behind the worker's `StreamKafkaClient`, for unit tests of what happens between
// the worker and the broker: the checkpoint order, fencing, rebalances, restore, transaction
// timeouts. It keeps what those depend on and nothing more:
// - partitions as logs with dense offsets; transactional records, commit/abort markers, and the
//   last stable offset (read_committed readers stop before an open transaction, skip aborted records
//   and markers; a fetch of only those reaches `onBatchEnd`, never `eachBatch`);
// - transactional ids with epochs: a new producer with an id fences the old one and aborts its open
//   transaction; a transaction open longer than its timeout is aborted and its epoch bumped;
// - consumer groups: committed offsets, generations, and a rebalance that waits until every member
//   has rejoined (a member rejoins between batches, so one held in a checkpoint holds the group, and
//   the group refuses its commits meanwhile); tasks assigned by the worker's own assignTasks;
//   positions back at the committed offsets after every rejoin; pauses that outlive assignments;
// - transaction commits refused by a coordinator that moved or is loading, or committed with the
//   answer lost (`failCommits`), as a broker failing over or coming back makes them;
// - a journal of what happened in order (sends, acknowledgements, commits), for order assertions.
// Offsets, sizes and timings are not Kafka's; nothing here is a benchmark.
import { assignTasks } from "../kafka/assigner.ts";
import { partitionFor } from "../kafka/partitioner.ts";
import {
  type FetchedBatch,
  type FetchedMessage,
  type GroupConsumer,
  type GroupConsumerOptions,
  isRebalance,
  KafkaUnreachableError,
  type NewTopic,
  type OutputProducer,
  type OutRecord,
  type PartitionList,
  type StreamAdmin,
  type StreamKafkaClient,
  type TopicPartitionOffset,
  type TransactionalProducer,
} from "../kafka/stream-client.ts";

/** An error as the Kafka client reports one: Kafka's error name in `type`. */
export class FakeKafkaError extends Error {
  constructor(
    readonly type: string,
    message: string = type,
  ) {
    super(message);
    this.name = "KafkaJSProtocolError";
  }
}

export interface FakeKafkaOptions {
  /** How long a transaction may stay open. Default 60 s. */
  transactionTimeoutMs?: number;
  /** How long a plain send waits before Kafka acknowledges it. Default 1 ms. */
  ackDelayMs?: number;
  /** Records per fetch, at most. Default 50. */
  maxBatch?: number;
  /** How long a rebalance waits for a member to rejoin before dropping it from the group. Default 30 s. */
  rebalanceTimeoutMs?: number;
  /**
   * A member that neither heartbeats nor polls (between batches) for this long is dropped from the
   * group (it joins again as a new member when it can). Default: sessions never expire.
   */
  sessionTimeoutMs?: number;
  /** How long making a transactional producer takes (InitProducerId, fencing the older one). Default 0. */
  producerInitMs?: number;
}

/** A record as a read_committed reader sees it. */
export interface StoredRecord {
  partition: number;
  offset: number;
  key: string | null;
  value: Buffer | null;
  timestamp: number;
  headers: Record<string, string>;
}

interface Transaction {
  id: string;
  epoch: number;
  state: "open" | "committed" | "aborted";
  /** The first send: the broker's timeout runs from there. */
  startedAt: number | null;
  partitions: Set<Partition>;
}

interface Entry {
  offset: number;
  key: Buffer | null;
  value: Buffer | null;
  timestamp: number;
  headers: Record<string, string>;
  txn: Transaction | null;
  marker: boolean;
}

class Partition {
  readonly entries: Entry[] = [];
  /** The log start: records before it were deleted (DeleteRecords). */
  logStart = 0;

  constructor(
    readonly topic: string,
    readonly index: number,
  ) {}

  get end(): number {
    return this.entries.length;
  }

  /** The first offset of a transaction still open, else the end. */
  lastStable(): number {
    for (const e of this.entries) if (e.txn?.state === "open") return e.offset;
    return this.end;
  }

  append(e: Omit<Entry, "offset">): void {
    this.entries.push({ ...e, offset: this.entries.length });
  }
}

class Group {
  readonly committed = new Map<string, number>();
  members: FakeConsumer[] = [];
  generation = 0;
  rebalancing = false;
  private readonly rejoined = new Set<FakeConsumer>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly rebalanceTimeoutMs: number,
    sessionTimeoutMs: number | undefined,
    journal: string[],
  ) {
    if (sessionTimeoutMs === undefined) return;
    const sessions = setInterval(
      () => {
        const expired = this.members.filter((m) => Date.now() - m.lastSeen > sessionTimeoutMs);
        if (expired.length === 0) return;
        for (const m of expired) journal.push(`session-expired ${m.id}`);
        this.members = this.members.filter((m) => !expired.includes(m));
        this.rebalance();
      },
      Math.max(1, Math.floor(sessionTimeoutMs / 5)),
    );
    sessions.unref();
  }

  join(m: FakeConsumer): void {
    m.lastSeen = Date.now();
    this.members.push(m);
    this.rebalance();
  }

  leave(m: FakeConsumer): void {
    if (!this.members.includes(m)) return;
    this.members = this.members.filter((x) => x !== m);
    this.rebalance();
  }

  isMember(m: FakeConsumer): boolean {
    return this.members.includes(m) && m.generation === this.generation;
  }

  /**
   * Every member must rejoin (between its batches) before anyone is assigned anything; one that has
   * not within the rebalance timeout is dropped (it joins again as a new member when it can).
   */
  private rebalance(): void {
    this.generation++;
    this.rebalancing = true;
    this.rejoined.clear();
    for (const m of this.members) m.needsRejoin = true;
    if (this.timer) clearTimeout(this.timer);
    const generation = this.generation;
    this.timer = setTimeout(() => {
      if (this.generation !== generation || !this.rebalancing) return;
      this.members = this.members.filter((m) => this.rejoined.has(m));
      this.complete();
    }, this.rebalanceTimeoutMs);
    this.timer.unref();
    this.complete();
  }

  rejoin(m: FakeConsumer): void {
    if (!this.members.includes(m)) {
      this.join(m); // dropped meanwhile: back as a new member, and everyone rejoins once more
      return;
    }
    m.generation = this.generation;
    this.rejoined.add(m);
    this.complete();
  }

  private complete(): void {
    if (!this.members.every((m) => this.rejoined.has(m))) return;
    this.rebalancing = false;
    if (this.timer) clearTimeout(this.timer);
    const first = this.members[0];
    if (!first) return;
    const { topology, taskCounts } = first.options.tasks;
    const owned = this.members.map((m) => ({ id: m.id, owned: m.options.tasks.owned() }));
    const plan = assignTasks(topology, taskCounts, owned);
    for (const m of this.members) m.assign(plan.get(m.id) ?? {});
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One send after another; once one fails, every later one fails too (as the real producers). */
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

export class FakeKafkaCluster {
  /** What happened, in order: `send`, `ack`, `tx-send`, `tx-commit`, `commit-offsets`, ... (tests add their own). */
  readonly journal: string[] = [];
  /** Called once offsets are committed (by a group member or a transaction), with what was committed. */
  onCommit: ((groupId: string, offsets: TopicPartitionOffset[]) => void) | null = null;
  readonly transactionTimeoutMs: number;
  readonly ackDelayMs: number;
  readonly maxBatch: number;
  readonly rebalanceTimeoutMs: number;
  readonly sessionTimeoutMs: number | undefined;
  readonly producerInitMs: number;
  /** No broker answers: every call of a client (connect, admin, producer) fails as unreachable. */
  unreachable = false;
  /** Alters of topic configs are refused (a principal without AlterConfigs on topics). */
  refuseAlterConfigs = false;
  private deleteRecordsFailure: Error | null = null;
  private readonly topics = new Map<string, { partitions: Partition[]; config: Record<string, string> }>();
  private readonly groups = new Map<string, Group>();
  private readonly epochs = new Map<string, number>();
  private readonly open = new Map<string, Transaction>();
  private readonly held = new Set<string>();
  private readonly failing = new Map<string, Error>();
  private commitFailures: { error: Error; times: number; applied: boolean } | null = null;
  private roundRobin = 0;

  constructor(options: FakeKafkaOptions = {}) {
    this.transactionTimeoutMs = options.transactionTimeoutMs ?? 60_000;
    this.ackDelayMs = options.ackDelayMs ?? 1;
    this.maxBatch = options.maxBatch ?? 50;
    this.rebalanceTimeoutMs = options.rebalanceTimeoutMs ?? 30_000;
    this.sessionTimeoutMs = options.sessionTimeoutMs;
    this.producerInitMs = options.producerInitMs ?? 0;
  }

  /** A client for one worker (one process); `kill()` on it is that process dying. */
  client(name: string): FakeStreamClient {
    return new FakeStreamClient(this, name);
  }

  createTopic(name: string, partitions: number, config: Record<string, string> = {}): void {
    if (this.topics.has(name)) throw new FakeKafkaError("TOPIC_ALREADY_EXISTS", `topic ${name} exists`);
    this.topics.set(name, {
      partitions: Array.from({ length: partitions }, (_, i) => new Partition(name, i)),
      config,
    });
    this.journal.push(`create-topic ${name}`);
  }

  topicConfig(name: string): Record<string, string> | undefined {
    return this.topics.get(name)?.config;
  }

  /** Sets configs of a topic, keeping the others; with `refuseAlterConfigs`, refused as unauthorized. */
  alterTopicConfig(name: string, set: Record<string, string>): void {
    if (this.refuseAlterConfigs) {
      throw new FakeKafkaError("TOPIC_AUTHORIZATION_FAILED", `not authorized to alter the configs of ${name}`);
    }
    const t = this.topics.get(name);
    if (!t) throw new FakeKafkaError("UNKNOWN_TOPIC_OR_PARTITION", `topic ${name} does not exist`);
    t.config = { ...t.config, ...set };
    this.journal.push(`alter-config ${name} ${Object.entries(set).map(([k, v]) => `${k}=${v}`)}`);
  }

  /** Moves partitions' log starts forward (DeleteRecords); fails with `failDeleteRecords`'s error if set. */
  deleteRecords(name: string, partitions: Array<{ partition: number; offset: number }>): void {
    if (this.deleteRecordsFailure) throw this.deleteRecordsFailure;
    const parts = this.topicOf(name).partitions;
    for (const { partition, offset } of partitions) {
      const p = parts[partition];
      if (!p) throw new FakeKafkaError("UNKNOWN_TOPIC_OR_PARTITION", `${name} has no partition ${partition}`);
      if (offset > p.end) throw new FakeKafkaError("OFFSET_OUT_OF_RANGE", `${name}#${partition}: ${offset} > ${p.end}`);
    }
    for (const { partition, offset } of partitions) {
      const p = parts[partition] as Partition;
      p.logStart = Math.max(p.logStart, offset);
    }
    this.journal.push(`delete-records ${partitions.map((p) => `${name}#${p.partition}<${p.offset}`)}`);
  }

  /** Every later DeleteRecords fails with `error` (null: they succeed again). */
  failDeleteRecords(error: Error | null): void {
    this.deleteRecordsFailure = error;
  }

  /** A partition's log start (0 until records are deleted). */
  logStart(name: string, partition: number): number {
    return this.topicOf(name).partitions[partition]?.logStart ?? 0;
  }

  partitionCount(name: string): number | undefined {
    return this.topics.get(name)?.partitions.length;
  }

  /** Appends records outside any transaction, as an upstream producer does. */
  produce(
    topic: string,
    records: Array<{
      key: string | null;
      value: string | Buffer | null;
      partition?: number;
      timestamp?: number;
      headers?: Record<string, string>;
    }>,
  ): void {
    for (const r of records) {
      const value = typeof r.value === "string" ? Buffer.from(r.value) : r.value;
      const ts = r.timestamp ?? Date.now();
      this.append(
        { topic, key: r.key, value, partition: r.partition ?? null, ts, ...(r.headers ? { headers: r.headers } : {}) },
        null,
      );
    }
  }

  /** The records of a topic as a read_committed reader sees them, partition by partition. */
  records(topic: string): StoredRecord[] {
    this.expireTransactions();
    const out: StoredRecord[] = [];
    for (const p of this.topicOf(topic).partitions) {
      const stable = p.lastStable();
      for (const e of p.entries.slice(p.logStart)) {
        if (e.offset >= stable) break;
        if (e.marker || e.txn?.state === "aborted") continue;
        const key = e.key?.toString("utf8") ?? null;
        out.push({
          partition: p.index,
          offset: e.offset,
          key,
          value: e.value,
          timestamp: e.timestamp,
          headers: e.headers,
        });
      }
    }
    return out;
  }

  /** The group's committed offset of a partition, if any. */
  committed(groupId: string, topic: string, partition: number): number | undefined {
    return this.group(groupId).committed.get(`${topic}#${partition}`);
  }

  /** Consumers fetch nothing of this topic until `release` (a slow restore, a far broker). */
  hold(topic: string): void {
    this.held.add(topic);
  }

  release(topic: string): void {
    this.held.delete(topic);
  }

  isHeld(topic: string): boolean {
    return this.held.has(topic);
  }

  /** Every later send of a record to this topic fails with `error` (null: they succeed again). */
  failSendsTo(topic: string, error: Error | null): void {
    if (error) this.failing.set(topic, error);
    else this.failing.delete(topic);
  }

  /**
   * The next `times` transaction commits fail with `error` (a coordinator that moved or is loading):
   * refused before anything is done, the transaction left open; or, with `applied`, committed and
   * the answer lost (a commit whose response never came back).
   */
  failCommits(error: Error, times: number, applied = false): void {
    this.commitFailures = { error, times, applied };
  }

  /** The failure the next commit meets, if any. */
  takeCommitFailure(): { error: Error; applied: boolean } | null {
    const f = this.commitFailures;
    if (!f || f.times <= 0) return null;
    f.times--;
    return { error: f.error, applied: f.applied };
  }

  group(groupId: string): Group {
    let g = this.groups.get(groupId);
    if (!g) {
      g = new Group(this.rebalanceTimeoutMs, this.sessionTimeoutMs, this.journal);
      this.groups.set(groupId, g);
    }
    return g;
  }

  topicOf(name: string): { partitions: Partition[] } {
    const t = this.topics.get(name);
    if (!t) throw new FakeKafkaError("UNKNOWN_TOPIC_OR_PARTITION", `topic ${name} does not exist`);
    return t;
  }

  /**
   * Appends a record, inside `txn` or outside any transaction, to its own partition or else the
   * default partitioner's (murmur2 of the key, round robin without one).
   */
  append(r: OutRecord, txn: Transaction | null): void {
    const failure = this.failing.get(r.topic);
    if (failure) throw failure;
    const partitions = this.topicOf(r.topic).partitions;
    const index =
      r.partition ?? (r.key !== null ? partitionFor(r.key, partitions.length) : this.roundRobin++ % partitions.length);
    const p = partitions[index];
    if (!p) throw new FakeKafkaError("UNKNOWN_TOPIC_OR_PARTITION", `${r.topic} has no partition ${index}`);
    const key = r.key === null ? null : Buffer.from(r.key, "utf8");
    p.append({ key, value: r.value, timestamp: r.ts, headers: r.headers ?? {}, txn, marker: false });
    txn?.partitions.add(p);
  }

  // --- transactions ------------------------------------------------------------------------------

  /** A new producer for `id`: bumps its epoch, which fences the older one and aborts its open transaction. */
  fence(id: string): number {
    this.expireTransactions();
    const epoch = (this.epochs.get(id) ?? -1) + 1;
    this.epochs.set(id, epoch);
    this.journal.push(`fence ${id} epoch ${epoch}`);
    const old = this.open.get(id);
    if (old) this.end(old, "aborted");
    return epoch;
  }

  /** The open transaction of `id` at `epoch`, begun if none is; rejects a fenced or timed-out producer. */
  transaction(id: string, epoch: number): Transaction {
    this.expireTransactions();
    const current = this.epochs.get(id);
    if (current !== epoch) {
      throw new FakeKafkaError("INVALID_PRODUCER_EPOCH", `producer ${id} epoch ${epoch} was fenced by ${current}`);
    }
    let txn = this.open.get(id);
    if (!txn) {
      txn = { id, epoch, state: "open", startedAt: null, partitions: new Set() };
      this.open.set(id, txn);
    }
    return txn;
  }

  end(txn: Transaction, state: "committed" | "aborted"): void {
    txn.state = state;
    this.open.delete(txn.id);
    for (const p of txn.partitions) {
      p.append({ key: null, value: null, timestamp: Date.now(), headers: {}, txn, marker: true });
    }
    this.journal.push(`tx-${state === "committed" ? "commit" : "abort"} ${txn.id}`);
  }

  /** The broker aborts a transaction open too long and bumps its producer's epoch. */
  private expireTransactions(): void {
    for (const txn of [...this.open.values()]) {
      if (txn.startedAt !== null && Date.now() - txn.startedAt > this.transactionTimeoutMs) {
        this.end(txn, "aborted");
        this.epochs.set(txn.id, txn.epoch + 1);
        this.journal.push(`tx-timeout ${txn.id}`);
      }
    }
  }

  lastStable(p: Partition): number {
    this.expireTransactions();
    return p.lastStable();
  }
}

export class FakeStreamClient implements StreamKafkaClient {
  readonly brokers = ["fake:9092"];
  killed = false;
  private readonly consumers: FakeConsumer[] = [];
  private consumerCount = 0;

  constructor(
    readonly cluster: FakeKafkaCluster,
    readonly name: string,
  ) {}

  /** Batches its consumers have handed to the worker and not got back (a worker busy or stuck). */
  batchesInFlight(): number {
    return this.consumers.filter((c) => c.inBatch).length;
  }

  /** The process dies: its consumers stop and leave the group (their session ends), every later call fails. */
  kill(): void {
    this.killed = true;
    for (const c of this.consumers) c.stopDead();
  }

  check(): void {
    if (this.killed) throw new FakeKafkaError("NETWORK_EXCEPTION", `${this.name} is dead`);
    if (this.cluster.unreachable) throw new KafkaUnreachableError(this.brokers, "connect ECONNREFUSED (fake)");
  }

  admin(): StreamAdmin {
    return new FakeAdmin(this);
  }

  async producer(): Promise<OutputProducer> {
    this.check();
    return new FakePlainProducer(this);
  }

  async transactionalProducer(transactionalId: string): Promise<TransactionalProducer> {
    this.check();
    if (this.cluster.producerInitMs > 0) await sleep(this.cluster.producerInitMs);
    return new FakeTransactionalProducer(this, transactionalId, this.cluster.fence(transactionalId));
  }

  consumer(options: GroupConsumerOptions): GroupConsumer {
    const c = new FakeConsumer(this, `${this.name}-${++this.consumerCount}`, options);
    this.consumers.push(c);
    return c;
  }
}

class FakeAdmin implements StreamAdmin {
  constructor(private readonly client: FakeStreamClient) {}

  async partitionCounts(topics: string[]): Promise<Map<string, number>> {
    this.client.check();
    const out = new Map<string, number>();
    for (const t of topics) {
      const n = this.client.cluster.partitionCount(t);
      if (n !== undefined) out.set(t, n);
    }
    return out;
  }

  async createTopics(topics: NewTopic[]): Promise<void> {
    this.client.check();
    for (const t of topics) this.client.cluster.createTopic(t.topic, t.partitions, t.config);
  }

  async offsets(topic: string): Promise<Map<number, { low: string; high: string }>> {
    this.client.check();
    const { cluster } = this.client;
    const parts = cluster.topicOf(topic).partitions;
    return new Map(parts.map((p) => [p.index, { low: String(p.logStart), high: String(cluster.lastStable(p)) }]));
  }

  async committed(groupId: string, topics: string[]): Promise<Map<string, string>> {
    this.client.check();
    const { cluster } = this.client;
    const out = new Map<string, string>();
    for (const t of topics) {
      for (const p of cluster.topicOf(t).partitions) {
        out.set(`${t}#${p.index}`, String(cluster.committed(groupId, t, p.index) ?? -1));
      }
    }
    return out;
  }

  async topicConfigs(topics: string[]): Promise<Map<string, Record<string, string>>> {
    this.client.check();
    const out = new Map<string, Record<string, string>>();
    for (const t of topics) {
      const config = this.client.cluster.topicConfig(t);
      if (config) out.set(t, { ...config });
    }
    return out;
  }

  async alterTopicConfig(topic: string, set: Record<string, string>): Promise<void> {
    this.client.check();
    this.client.cluster.alterTopicConfig(topic, set);
  }

  async deleteRecords(topic: string, partitions: Array<{ partition: number; offset: string }>): Promise<void> {
    this.client.check();
    this.client.cluster.deleteRecords(
      topic,
      partitions.map((p) => ({ partition: p.partition, offset: Number(p.offset) })),
    );
  }

  async close(): Promise<void> {}
}

function topicsOf(records: OutRecord[]): string {
  return [...new Set(records.map((r) => r.topic))].join(",");
}

class FakePlainProducer implements OutputProducer {
  private readonly queue = new SendQueue();

  constructor(private readonly client: FakeStreamClient) {}

  send(records: OutRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    const { cluster } = this.client;
    cluster.journal.push(`send ${topicsOf(records)}`);
    return this.queue.push(async () => {
      await sleep(cluster.ackDelayMs);
      this.client.check();
      for (const r of records) cluster.append(r, null);
      cluster.journal.push(`ack ${topicsOf(records)}`);
    });
  }

  async close(): Promise<void> {}
}

class FakeTransactionalProducer implements TransactionalProducer {
  readonly transactionTimeoutMs: number;
  private queue = new SendQueue();

  constructor(
    private readonly client: FakeStreamClient,
    private readonly id: string,
    private readonly epoch: number,
  ) {
    this.transactionTimeoutMs = client.cluster.transactionTimeoutMs;
  }

  send(records: OutRecord[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    const { cluster } = this.client;
    return this.queue.push(async () => {
      this.client.check();
      const txn = cluster.transaction(this.id, this.epoch);
      txn.startedAt ??= Date.now();
      for (const r of records) cluster.append(r, txn);
      cluster.journal.push(`tx-send ${this.id} ${topicsOf(records)}`);
    });
  }

  async commit(groupId: string, offsets: TopicPartitionOffset[]): Promise<void> {
    await this.queue.push(async () => {
      this.client.check();
      const { cluster } = this.client;
      const txn = cluster.transaction(this.id, this.epoch);
      const failure = cluster.takeCommitFailure();
      if (failure && !failure.applied) {
        cluster.journal.push(`tx-refused ${this.id} ${(failure.error as FakeKafkaError).type}`);
        throw failure.error;
      }
      cluster.journal.push(`tx-offsets ${this.id} ${offsets.map((o) => `${o.topic}#${o.partition}=${o.offset}`)}`);
      const group = cluster.group(groupId);
      for (const o of offsets) group.committed.set(`${o.topic}#${o.partition}`, Number(o.offset));
      cluster.end(txn, "committed");
      cluster.onCommit?.(groupId, offsets);
      if (failure) {
        cluster.journal.push(`tx-answer-lost ${this.id}`);
        throw failure.error;
      }
    });
    this.queue = new SendQueue();
  }

  async close(): Promise<void> {
    if (this.client.killed) return; // its transaction stays open until fenced or timed out
    try {
      const txn = this.client.cluster.transaction(this.id, this.epoch);
      if (txn.startedAt !== null) this.client.cluster.end(txn, "aborted");
    } catch {
      // fenced: nothing of ours is open
    }
  }
}

class FakeConsumer implements GroupConsumer {
  needsRejoin = false;
  /** When the member last heartbeat or polled between batches (the group's session timer runs from here). */
  lastSeen = Date.now();
  /** Inside `eachBatch`: the member cannot rejoin until it returns. */
  inBatch = false;
  generation = -1;
  private running = false;
  private topics: string[] = [];
  private assignment: Array<{ topic: string; partition: number }> = [];
  private readonly positions = new Map<string, number>();
  private readonly paused = new Set<string>();
  private readonly seeks = new Map<string, number>();
  private next = 0;
  private readonly group: Group;

  constructor(
    private readonly client: FakeStreamClient,
    readonly id: string,
    readonly options: GroupConsumerOptions,
  ) {
    this.group = client.cluster.group(options.groupId);
  }

  async connect(): Promise<void> {
    this.client.check();
  }

  async subscribe(topics: string[]): Promise<void> {
    this.topics = topics;
  }

  async run(eachBatch: (fetched: FetchedBatch) => Promise<void>): Promise<void> {
    this.client.check();
    this.running = true;
    this.group.join(this);
    void this.loop(eachBatch);
  }

  /** After a rejoin: the new assignment, every position back at the committed offset. */
  assign(assignment: Record<string, number[]>): void {
    this.assignment = [];
    for (const [topic, partitions] of Object.entries(assignment)) {
      if (!this.topics.includes(topic)) continue;
      for (const partition of partitions) {
        this.assignment.push({ topic, partition });
        const key = `${topic}#${partition}`;
        this.positions.set(key, this.group.committed.get(key) ?? 0);
        this.seeks.set(key, (this.seeks.get(key) ?? 0) + 1);
      }
    }
    this.options.onAssignment(assignment);
  }

  private async loop(eachBatch: (fetched: FetchedBatch) => Promise<void>): Promise<void> {
    while (this.running) {
      this.lastSeen = Date.now(); // between batches the consumer heartbeats by itself
      // Rebalancing, or dropped by the group (its session expired): join again.
      if (this.needsRejoin || !this.group.members.includes(this)) {
        this.needsRejoin = false;
        this.group.rejoin(this);
      }
      const fetch = this.group.rebalancing ? null : this.nextFetch();
      if (!fetch) {
        await sleep(1);
        continue;
      }
      try {
        await this.deliver(fetch.partition, fetch.from, fetch.to, eachBatch);
      } catch (e) {
        if (isRebalance(e)) continue; // rejoins at the top
        this.running = false;
        this.options.onCrash(e as Error, false);
        return;
      }
      await new Promise((r) => setImmediate(r));
    }
  }

  private nextFetch(): { partition: Partition; from: number; to: number } | null {
    const { cluster } = this.client;
    const n = this.assignment.length;
    for (let i = 0; i < n; i++) {
      const tp = this.assignment[(this.next + i) % n] as { topic: string; partition: number };
      const key = `${tp.topic}#${tp.partition}`;
      if (this.paused.has(key) || cluster.isHeld(tp.topic)) continue;
      const partition = cluster.topicOf(tp.topic).partitions[tp.partition] as Partition;
      // Below the log start Kafka answers OFFSET_OUT_OF_RANGE and the consumer resets to earliest.
      const from = Math.max(this.positions.get(key) ?? 0, partition.logStart);
      const stable = cluster.lastStable(partition);
      if (from >= stable) continue;
      this.next = (this.next + i + 1) % n;
      return { partition, from, to: Math.min(stable, from + cluster.maxBatch) };
    }
    return null;
  }

  private async deliver(
    p: Partition,
    from: number,
    to: number,
    eachBatch: (fetched: FetchedBatch) => Promise<void>,
  ): Promise<void> {
    const key = `${p.topic}#${p.index}`;
    const messages: FetchedMessage[] = [];
    for (const e of p.entries.slice(from, to)) {
      if (e.marker || e.txn?.state === "aborted") continue;
      const headers = Object.fromEntries(Object.entries(e.headers).map(([k, v]) => [k, Buffer.from(v)]));
      messages.push({ offset: String(e.offset), key: e.key, value: e.value, timestamp: String(e.timestamp), headers });
    }
    const lastOffset = String(to - 1);
    const offsetLag = String(p.end - to);
    const end = { topic: p.topic, partition: p.index, lastOffset, offsetLag, batchSize: messages.length };
    if (messages.length === 0) {
      this.positions.set(key, to);
      this.options.onBatchEnd(end);
      return;
    }
    const generation = this.group.generation;
    const seek = this.seeks.get(key) ?? 0;
    const stale = () => this.group.generation !== generation || (this.seeks.get(key) ?? 0) !== seek;
    let resolved: number | null = null;
    this.inBatch = true;
    try {
      await eachBatch({
        batch: {
          topic: p.topic,
          partition: p.index,
          messages,
          lastOffset: () => lastOffset,
          offsetLag: () => offsetLag,
        },
        resolveOffset: (offset) => {
          resolved = Number(offset);
        },
        heartbeat: async () => {
          if (!this.group.members.includes(this)) throw new FakeKafkaError("UNKNOWN_MEMBER_ID");
          this.lastSeen = Date.now();
          if (this.group.rebalancing || this.needsRejoin) throw new FakeKafkaError("REBALANCE_IN_PROGRESS");
        },
        isRunning: () => this.running,
        isStale: stale,
      });
    } finally {
      this.inBatch = false;
      if (resolved !== null && !stale()) this.positions.set(key, resolved + 1);
    }
    this.options.onBatchEnd(end);
  }

  pause(partitions: PartitionList[]): void {
    for (const { topic, partitions: ps } of partitions) for (const p of ps) this.paused.add(`${topic}#${p}`);
  }

  resume(partitions: PartitionList[]): void {
    for (const { topic, partitions: ps } of partitions) for (const p of ps) this.paused.delete(`${topic}#${p}`);
  }

  seek({ topic, partition, offset }: TopicPartitionOffset): void {
    const key = `${topic}#${partition}`;
    this.positions.set(key, Number(offset));
    this.seeks.set(key, (this.seeks.get(key) ?? 0) + 1);
  }

  async commitOffsets(offsets: TopicPartitionOffset[]): Promise<void> {
    this.client.check();
    const { cluster } = this.client;
    if (!this.group.members.includes(this)) throw new FakeKafkaError("UNKNOWN_MEMBER_ID");
    if (this.group.rebalancing) throw new FakeKafkaError("REBALANCE_IN_PROGRESS");
    if (!this.group.isMember(this)) throw new FakeKafkaError("ILLEGAL_GENERATION");
    for (const o of offsets) this.group.committed.set(`${o.topic}#${o.partition}`, Number(o.offset));
    cluster.journal.push(`commit-offsets ${offsets.map((o) => `${o.topic}#${o.partition}=${o.offset}`)}`);
    cluster.onCommit?.(this.options.groupId, offsets);
  }

  async disconnect(): Promise<void> {
    this.running = false;
    this.group.leave(this);
  }

  /** The process died: no more fetches; the group drops the member when its session ends (here: now). */
  stopDead(): void {
    this.running = false;
    this.group.leave(this);
  }
}
