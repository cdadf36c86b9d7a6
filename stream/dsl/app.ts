// The DSL, in Kafka Streams' words: app.stream(topic) -> filter/map/flatMap/keyBy -> window ->
// aggregate, join, table, to. It only describes the topology; `runApp` (Kafka) and
// `TopologyTestDriver` (no broker) run it.
import { loadTopicCatalog, type TopicCatalog } from "../../schemas/catalog.ts";
import { codecFor } from "../../schemas/codec.ts";
import type { SchemaName, SchemaTypes } from "../../schemas/types.generated.ts";
import { streamJoin } from "../joins/stream-join.ts";
import { tableJoin } from "../joins/table-join.ts";
import { type AbsenceResult, absence } from "../operators/absence.ts";
import { type CoalescedDelta, coalesce } from "../operators/coalesce.ts";
import { type ProcessContext, processOperator, type StoreOptions } from "../operators/process.ts";
import { type SequenceMatch, type SequenceStep, sequence } from "../operators/sequence.ts";
import { filterOperator, flatMapOperator, mapOperator, mergeOperator, peekOperator } from "../operators/stateless.ts";
import type { Input, Operator, Port } from "../runtime/processor.ts";
import type { Sink } from "../sink.ts";
import { DEFAULT_SOURCE_SETTINGS, type SourceSettings } from "../time/watermark.ts";
import { type Duration, type ErrorPolicy, json, ms, type Rec, type Serde, TopologyError } from "../types.ts";
import { type Aggregator, counting } from "../windows/aggregator.ts";
import { DEFAULT_DISTINCT_CAP, type DistinctCount, distinctCount } from "../windows/distinct-count.ts";
import { type RollingSum, rollingSum } from "../windows/rolling.ts";
import {
  type TopKItem,
  type TopKResult,
  type TopKSketchSize,
  topKMerge,
  topKPartial,
  validateTopKSpec,
} from "../windows/top-k.ts";
import type { EmitMode, WindowDef, Windowed } from "../windows/window.ts";
import { Graph, type SourceOf } from "./graph.ts";

export interface StreamAppConfig {
  /** Consumer group id, and the prefix of the app's internal topics (repartition, changelog). */
  appId: string;
  /** Where bad records and unrouted late records go. Default `<appId>-dlq`. */
  dlqTopic?: string;
  /** What a record that fails to decode or throws in user code costs. Default `dlq`. */
  onError?: ErrorPolicy;
  /** `exactly-once` runs Kafka outputs, changelogs and offsets in one transaction per task. */
  guarantee?: "at-least-once" | "exactly-once";
  /** How often to checkpoint (flush sinks -> flush changelog -> commit offsets). Default 1s. */
  commitInterval?: Duration;
  /** The topic catalog that names schemas and keys of known topics. Default schemas/topics.yaml. */
  catalog?: TopicCatalog;
}

export interface SourceOptions<V> {
  /** Avro schema of the values; defaults to the catalog's schema for the topic. */
  schema?: SchemaName;
  /** For topics that are not Avro: how to read a value. */
  serde?: Serde<V>;
  /** The name of what messages are keyed by (for co-partitioning checks); defaults to the catalog's key. */
  key?: string;
  /** Event time of a value; default: its numeric `ts` field, else the Kafka timestamp. */
  timestamp?: (value: V, messageTs: number) => number;
  /** How far behind the newest record a record may arrive and still be on time. Default 0. */
  outOfOrderness?: Duration;
  /** A partition silent this long (and caught up) no longer holds back the watermark. Default 10s. */
  idleTimeout?: Duration;
  /**
   * Which source (a host's log file, a device) a record comes from. A partition's watermark is the
   * minimum over its sources, so one source read ahead of the others does not make their records
   * late (docs/stream.md, "Time"). Default: the `weir-source` header, which weir ship stamps on every
   * record; records without a source count as one source, the partition's own.
   */
  sourceOf?: (value: V, header: (name: string) => string | undefined) => string | null | undefined;
  /** A source silent this long (wall clock) stops holding its partition's watermark. Default: idleTimeout. */
  sourceIdleTimeout?: Duration;
  /**
   * How far (event time) a source may fall behind its partition's most advanced source and still hold
   * the partition's watermark; further behind, its records are judged like any other's (late, or
   * corrections). Default 30s.
   */
  maxSourceLag?: Duration;
  /** Sources tracked per partition; past it the longest idle is forgotten, or the record counts as the partition's own. Default 1000. */
  maxSources?: number;
}

type ValueOf<S extends SchemaName | undefined, Fallback> = S extends SchemaName ? SchemaTypes[S] : Fallback;

export class StreamApp {
  readonly graph = new Graph();
  readonly appId: string;
  readonly dlqTopic: string;
  readonly onError: ErrorPolicy;
  readonly guarantee: "at-least-once" | "exactly-once";
  readonly commitInterval: number;
  private catalogCache: TopicCatalog | undefined;

  constructor(private readonly config: StreamAppConfig) {
    if (!/^[A-Za-z0-9._-]+$/.test(config.appId)) {
      throw new TopologyError(
        `appId ${JSON.stringify(config.appId)} may only contain letters, digits, '.', '_' and '-'`,
      );
    }
    this.appId = config.appId;
    this.dlqTopic = config.dlqTopic ?? `${config.appId}-dlq`;
    this.onError = config.onError ?? "dlq";
    this.guarantee = config.guarantee ?? "at-least-once";
    this.commitInterval = ms(config.commitInterval ?? 1000);
  }

  get catalog(): TopicCatalog {
    this.catalogCache ??= this.config.catalog ?? loadTopicCatalog();
    return this.catalogCache;
  }

  private catalogEntry(topic: string) {
    return this.catalog.topics.find((t) => t.name === topic);
  }

  /** A stream of the records of a topic. */
  stream<S extends SchemaName | undefined = undefined, V = unknown>(
    topic: string,
    options: SourceOptions<ValueOf<S, V>> & { schema?: S } = {},
  ): KStream<ValueOf<S, V>> {
    const entry = this.catalogEntry(topic);
    const { decode, encode, schemaName } = this.decoderFor(topic, options.schema ?? entry?.schema, options.serde);
    const keyName = options.key ?? entry?.key ?? "key";
    const extract = options.timestamp as ((v: unknown, m: number) => number) | undefined;
    const node = this.graph.add((id) => ({
      kind: "source" as const,
      id,
      topic,
      internal: false,
      decode,
      encode,
      ...(schemaName ? { schemaName } : {}),
      keyName,
      timestamp: extract ?? defaultTimestamp,
      outOfOrderness: ms(options.outOfOrderness ?? 0),
      idleTimeout: ms(options.idleTimeout ?? 10_000),
      sourceOf: (options.sourceOf as SourceOf | undefined) ?? null,
      sources: sourceSettings(options),
    }));
    return new KStream(this, node.id, "out", keyName, false);
  }

  /** A table of the latest value per key of a (compacted) topic, materialized per partition. */
  table<S extends SchemaName | undefined = undefined, V = unknown>(
    topic: string,
    options: { schema?: S; serde?: Serde<ValueOf<S, V>>; key?: string; name?: string } = {},
  ): KTable<ValueOf<S, V>> {
    const entry = this.catalogEntry(topic);
    const { decode, encode, schemaName } = this.decoderFor(topic, options.schema ?? entry?.schema, options.serde);
    const keyName = options.key ?? entry?.key ?? "key";
    const store = this.graph.claimStore(options.name ?? `table.${topic}`, `table(${topic})`);
    const node = this.graph.add((id) => ({
      kind: "table" as const,
      id,
      topic,
      decode,
      encode,
      ...(schemaName ? { schemaName } : {}),
      keyName,
      store,
    }));
    return new KTable(node.id, keyName, topic, store);
  }

  private decoderFor(
    topic: string,
    schema: SchemaName | undefined,
    serde: Serde<unknown> | undefined,
  ): { decode: (b: Buffer) => unknown; encode: (v: unknown) => Buffer; schemaName?: string } {
    if (serde) return { decode: (b) => serde.decode(b), encode: (v) => serde.encode(v) };
    if (!schema) {
      throw new TopologyError(
        `topic ${topic} is not in the topic catalog: give its schema (stream(topic, { schema })) or a serde`,
      );
    }
    const codec = codecFor(schema);
    return { decode: (b) => codec.decode(b), encode: (v) => codec.encode(v as never), schemaName: schema };
  }

  internalTopic(name: string, suffix: "repartition" | "changelog"): string {
    return `${this.appId}-${name}-${suffix}`;
  }
}

function sourceSettings(o: {
  idleTimeout?: Duration;
  sourceIdleTimeout?: Duration;
  maxSourceLag?: Duration;
  maxSources?: number;
}): SourceSettings {
  const maxSources = o.maxSources ?? DEFAULT_SOURCE_SETTINGS.maxSources;
  if (!Number.isInteger(maxSources) || maxSources < 1) {
    throw new TopologyError(`maxSources must be a positive integer, got ${JSON.stringify(o.maxSources)}`);
  }
  return {
    idleTimeout: ms(o.sourceIdleTimeout ?? o.idleTimeout ?? DEFAULT_SOURCE_SETTINGS.idleTimeout),
    maxLag: ms(o.maxSourceLag ?? DEFAULT_SOURCE_SETTINGS.maxLag),
    maxSources,
  };
}

function defaultTimestamp(value: unknown, messageTs: number): number {
  const ts = (value as { ts?: unknown } | null)?.ts;
  return typeof ts === "number" ? ts : messageTs;
}

export class KTable<V> {
  declare readonly __value: V;
  constructor(
    readonly nodeId: number,
    readonly keyName: string,
    readonly topic: string,
    /** The store each task materializes the table in. */
    readonly store: string,
  ) {}
}

export interface JoinOptions {
  /** Records of the two sides join when their timestamps are at most this far apart. */
  within: Duration;
  /** How long after `within` a record may still arrive and join. Default 0. */
  grace?: Duration;
  /** Names the join's buffers (their changelog topics). */
  name: string;
}

export class KStream<V> {
  declare readonly __value: V;

  constructor(
    readonly app: StreamApp,
    readonly nodeId: number,
    readonly port: Port,
    /** What the records are keyed by, for co-partitioning checks. */
    readonly keyName: string,
    /** Re-keyed since it was read: a stateful step must repartition first. */
    readonly keyChanged: boolean,
  ) {}

  private get graph(): Graph {
    return this.app.graph;
  }

  private next<U>(node: { id: number }, keyName = this.keyName, keyChanged = this.keyChanged, input: Input = "main") {
    this.graph.connect(this.nodeId, node.id, this.port, input);
    return new KStream<U>(this.app, node.id, "out", keyName, keyChanged);
  }

  /** An operator fed by this stream. */
  private through<U>(operator: Operator, keyName = this.keyName, keyChanged = this.keyChanged): KStream<U> {
    return this.next<U>(this.graph.addOperator(operator), keyName, keyChanged);
  }

  filter(predicate: (value: V, key: string | null) => boolean): KStream<V> {
    return this.through(filterOperator((r) => predicate(r.value as V, r.key)));
  }

  /** Maps values; the key and timestamp stay. */
  map<U>(fn: (value: V, key: string | null, ts: number) => U): KStream<U> {
    return this.through(mapOperator((r) => ({ key: r.key, value: fn(r.value as V, r.key, r.ts), ts: r.ts })));
  }

  /** Zero or more values per record; the key and timestamp stay. */
  flatMap<U>(fn: (value: V, key: string | null, ts: number) => Iterable<U>): KStream<U> {
    return this.through(
      flatMapOperator(function* (r: Rec) {
        for (const value of fn(r.value as V, r.key, r.ts)) yield { key: r.key, value, ts: r.ts };
      }),
    );
  }

  /** Re-keys the stream. A following aggregate or join repartitions it through a topic first. */
  keyBy(fn: (value: V, key: string | null) => string, keyName: string): KStream<V> {
    return this.through(
      mapOperator((r) => ({ key: fn(r.value as V, r.key), value: r.value, ts: r.ts }), "keyBy"),
      keyName,
      true,
    );
  }

  peek(fn: (value: V, key: string | null, ts: number) => void): KStream<V> {
    return this.through(peekOperator((r) => fn(r.value as V, r.key, r.ts)));
  }

  /** Records of both streams, as one stream. Both must be keyed alike. */
  merge(other: KStream<V>): KStream<V> {
    if (other.app !== this.app) throw new TopologyError("merge: the streams belong to different apps");
    const node = this.graph.addOperator(mergeOperator());
    this.graph.connect(other.nodeId, node.id, other.port, "main");
    const changed = this.keyChanged || other.keyChanged || this.keyName !== other.keyName;
    return this.next<V>(
      node,
      this.keyName === other.keyName ? this.keyName : `${this.keyName}|${other.keyName}`,
      changed,
    );
  }

  /**
   * Sends the records through an internal topic partitioned by their current key, so that every
   * record of a key reaches the same task in whatever process owns it. Watermarks travel along.
   */
  repartition(options: { name: string; serde?: Serde<V>; partitions?: number }): KStream<V> {
    const topic = this.app.internalTopic(options.name, "repartition");
    const serde = (options.serde ?? json<V>()) as Serde<unknown>;
    const out = this.graph.add((id) => ({
      kind: "repartition" as const,
      id,
      topic,
      serde,
      ...(options.partitions ? { partitions: options.partitions } : {}),
    }));
    this.graph.connect(this.nodeId, out.id, this.port);
    // An upstream task that has gone idle stops announcing; downstream gives up on it as late as its sources would.
    const upstream = this.graph.upstreamSources(out.id).map((s) => s.idleTimeout);
    const idleTimeout = upstream.length > 0 ? Math.max(...upstream) : 10_000;
    const source = this.graph.add((id) => ({
      kind: "source" as const,
      id,
      topic,
      internal: true,
      decode: (b: Buffer) => serde.decode(b),
      encode: (v: unknown) => serde.encode(v),
      keyName: this.keyName,
      timestamp: (_v: unknown, messageTs: number) => messageTs,
      outOfOrderness: 0,
      idleTimeout,
      sourceOf: null,
      sources: DEFAULT_SOURCE_SETTINGS,
    }));
    return new KStream<V>(this.app, source.id, "out", this.keyName, false);
  }

  private partitioned(what: string): KStream<V> {
    return this.keyChanged ? this.repartition({ name: what }) : this;
  }

  window(def: WindowDef): WindowedStream<V> {
    return new WindowedStream(this, def, { mode: "final" });
  }

  /** Windowed stream-stream join: records of both sides with the same key and timestamps at most `within` apart. */
  join<W, O>(
    other: KStream<W>,
    joiner: (left: V, right: W, key: string | null) => O,
    options: JoinOptions,
  ): KStream<O> {
    return this.streamJoin("inner", other, joiner as (l: V, r: W | null, k: string | null) => O, options);
  }

  /** Like join, and a left record that found no match by the time its window closed is emitted with null. */
  leftJoin<W, O>(
    other: KStream<W>,
    joiner: (left: V, right: W | null, key: string | null) => O,
    options: JoinOptions,
  ): KStream<O> {
    return this.streamJoin("left", other, joiner, options);
  }

  private streamJoin<W, O>(
    type: "inner" | "left",
    other: KStream<W>,
    joiner: (l: V, r: W | null, k: string | null) => O,
    options: JoinOptions,
  ): KStream<O> {
    if (other.app !== this.app) throw new TopologyError("join: the streams belong to different apps");
    const left = this.partitioned(`${options.name}-left`);
    const right = other.partitioned(`${options.name}-right`);
    if (left.keyName !== right.keyName) {
      throw new TopologyError(
        `join ${options.name}: the left stream is keyed by ${left.keyName} and the right by ${right.keyName}; re-key one side with keyBy(...) so both are keyed alike`,
      );
    }
    const node = this.graph.addOperator(
      streamJoin(
        {
          type,
          within: ms(options.within),
          grace: ms(options.grace ?? 0),
          joiner: joiner as (l: unknown, r: unknown, k: string | null) => unknown,
        },
        options.name,
      ),
    );
    this.graph.connect(left.nodeId, node.id, left.port, "left");
    this.graph.connect(right.nodeId, node.id, right.port, "right");
    return new KStream<O>(this.app, node.id, "out", left.keyName, false);
  }

  /** Looks each record's key up in a table (same key, co-partitioned); records without a row are dropped. */
  joinTable<T, O>(table: KTable<T>, joiner: (value: V, row: T, key: string | null) => O): KStream<O> {
    return this.tableJoin("inner", table, joiner as (v: V, r: T | null, k: string | null) => O);
  }

  /** Like joinTable, and records without a row are joined with null. */
  leftJoinTable<T, O>(table: KTable<T>, joiner: (value: V, row: T | null, key: string | null) => O): KStream<O> {
    return this.tableJoin("left", table, joiner);
  }

  private tableJoin<T, O>(
    type: "inner" | "left",
    table: KTable<T>,
    joiner: (v: V, r: T | null, k: string | null) => O,
  ) {
    const stream = this.partitioned(`join-${table.topic}`);
    if (stream.keyName !== table.keyName) {
      throw new TopologyError(
        `joinTable(${table.topic}): the stream is keyed by ${stream.keyName} and the table by ${table.keyName}; re-key the stream with keyBy(...)`,
      );
    }
    const node = this.graph.addOperator(
      tableJoin(
        {
          type,
          tableStore: table.store,
          joiner: joiner as (v: unknown, r: unknown, k: string | null) => unknown,
        },
        `joinTable(${table.topic})`,
      ),
      [table.nodeId],
    );
    this.graph.connect(stream.nodeId, node.id, stream.port);
    return new KStream<O>(this.app, node.id, "out", stream.keyName, false);
  }

  /**
   * A custom stateful step with its own keyed store (changelogged like every store): sequences,
   * distinct counts, deduplication. `onWatermark` runs when the task's watermark advances.
   */
  process<O>(
    name: string,
    fn: (rec: Rec<V>, ctx: ProcessContext) => void,
    options: StoreOptions & { onWatermark?: (watermark: number, ctx: ProcessContext) => void } = {},
  ): KStream<O> {
    const stream = this.partitioned(name);
    const node = this.graph.addOperator(processOperator(name, fn as (rec: Rec, ctx: ProcessContext) => void, options));
    this.graph.connect(stream.nodeId, node.id, stream.port);
    return new KStream<O>(this.app, node.id, "out", stream.keyName, false);
  }

  /**
   * A custom operator (stream/runtime/processor.ts: its stores and the processor each task runs), as
   * Kafka Streams' process(ProcessorSupplier): for a step with several stores or hooks (restored,
   * close) that `process` does not offer. A re-keyed stream is repartitioned first when the operator
   * keeps state.
   */
  transform<O>(operator: Operator): KStream<O> {
    const stream = operator.stores.length > 0 ? this.partitioned(operator.name.replace(/[^A-Za-z0-9._-]/g, "-")) : this;
    const node = this.graph.addOperator(operator);
    this.graph.connect(stream.nodeId, node.id, stream.port);
    return new KStream<O>(this.app, node.id, "out", stream.keyName, stream.keyChanged && operator.stores.length === 0);
  }

  /**
   * Distinct values per key in a sliding event-time window ("distinct accounts per device within
   * 1 h"), emitted as soon as a record brings a value new to its key's window. Values are what `of`
   * returns (null or undefined: the record counts for nothing). State: each value's last-seen time,
   * at most `cap` values per key (default 1000, overflow counted and reported), dropped when the
   * watermark passes the window. See stream/windows/distinct-count.ts.
   */
  countDistinct(
    of: (value: V, key: string | null) => string | null | undefined,
    options: {
      name: string;
      within: Duration;
      grace?: Duration;
      cap?: number;
      maxKeys?: number;
    },
  ): AggregatedStream<V, DistinctCount<V>> {
    const operator = distinctCount(
      {
        size: ms(options.within),
        grace: ms(options.grace ?? 0),
        cap: options.cap ?? DEFAULT_DISTINCT_CAP,
        ...(options.maxKeys !== undefined ? { maxKeys: options.maxKeys } : {}),
        of: of as (value: unknown, key: string | null) => string | null | undefined,
      },
      options.name,
    );
    const stream = this.partitioned(options.name);
    const node = this.graph.addOperator(operator);
    this.graph.connect(stream.nodeId, node.id, stream.port);
    return new AggregatedStream<V, DistinctCount<V>>(this.app, node.id, stream.keyName);
  }

  /**
   * Sums (and counts) per key over a sliding event-time window, as of each record ("coins recharged by
   * this user in the last 24 h"): every record with a value emits its key's sum and count over
   * [its time - within, its time] at once. `of` gives the value (null or undefined: the record is not
   * counted; 1 counts records). At most `maxEntries` entries per key (past it the two oldest merge,
   * counted). See stream/windows/rolling.ts.
   */
  rollingSum(
    of: (value: V, key: string | null) => number | null | undefined,
    options: { name: string; within: Duration; grace?: Duration; maxEntries?: number; maxKeys?: number },
  ): AggregatedStream<V, RollingSum<V>> {
    const operator = rollingSum(
      {
        size: ms(options.within),
        grace: ms(options.grace ?? 0),
        ...(options.maxEntries !== undefined ? { maxEntries: options.maxEntries } : {}),
        ...(options.maxKeys !== undefined ? { maxKeys: options.maxKeys } : {}),
        of: of as (value: unknown, key: string | null) => number | null | undefined,
      },
      options.name,
    );
    const stream = this.partitioned(options.name);
    const node = this.graph.addOperator(operator);
    this.graph.connect(stream.nodeId, node.id, stream.port);
    return new AggregatedStream<V, RollingSum<V>>(this.app, node.id, stream.keyName);
  }

  /**
   * Sequences per key (EQL's `sequence by key with maxspan`): records matching each step in turn, in
   * event-time order, the last within `maxspan` of the first, emitted when the last step arrives.
   * Steps may test what earlier steps captured. See stream/operators/sequence.ts.
   */
  sequence(
    steps: ReadonlyArray<SequenceStep<V>>,
    options: { name: string; maxspan: Duration; grace?: Duration; maxPending?: number; maxKeys?: number },
  ): LateStream<V, SequenceMatch<V>> {
    const operator = sequence<V>(
      {
        steps,
        maxspan: ms(options.maxspan),
        grace: ms(options.grace ?? 0),
        maxPending: options.maxPending ?? 16,
        ...(options.maxKeys !== undefined ? { maxKeys: options.maxKeys } : {}),
      },
      options.name,
    );
    const stream = this.partitioned(options.name);
    const node = this.graph.addOperator(operator);
    this.graph.connect(stream.nodeId, node.id, stream.port);
    return new LateStream<V, SequenceMatch<V>>(this.app, node.id, stream.keyName);
  }

  /**
   * Absence per key ("A and no B within T"): an A is emitted when the watermark passes its time +
   * `within` + grace without a B of its key in between. See stream/operators/absence.ts.
   */
  absence(
    spec: {
      starts: (value: V, key: string | null) => boolean;
      capture: (value: V) => unknown;
      mayCancel: (value: V, key: string | null) => boolean;
      captureCancel: (value: V) => unknown;
      cancels: (cancel: unknown, started: unknown) => boolean;
    },
    options: { name: string; within: Duration; grace?: Duration; maxPending?: number; maxKeys?: number },
  ): LateStream<V, AbsenceResult> {
    const operator = absence<V>(
      {
        ...spec,
        within: ms(options.within),
        grace: ms(options.grace ?? 0),
        maxPending: options.maxPending ?? 16,
        ...(options.maxKeys !== undefined ? { maxKeys: options.maxKeys } : {}),
      },
      options.name,
    );
    const stream = this.partitioned(options.name);
    const node = this.graph.addOperator(operator);
    this.graph.connect(stream.nodeId, node.id, stream.port);
    return new LateStream<V, AbsenceResult>(this.app, node.id, stream.keyName);
  }

  /**
   * The heaviest keys per dimension over sliding event-time windows ("the 100 hottest rooms of the
   * last 10 s and 1 min, every second"). Each task sketches its own records with HeavyKeeper (no
   * repartition of the input), sends its lists through `<appId>-<name>-repartition` keyed by dimension,
   * and a second stage merges them into one list per dimension, window and slide. See
   * stream/windows/top-k.ts.
   */
  topK(
    of: (value: V, key: string | null) => TopKItem | null | undefined,
    options: {
      name: string;
      windows: Duration[];
      /** Event time per sketch and between lists. Default 1s. */
      slide?: Duration;
      k: number;
      /** Keys each task sends to the merge. Default 2 k. */
      partialK?: number;
      /** Each slide's sketch, per dimension. Default 2 x 1024 buckets. */
      sketch?: (dimension: string) => TopKSketchSize;
      maxDimensions?: number;
      /** Tasks of the merge stage. Default 1. */
      mergePartitions?: number;
    },
  ): KStream<TopKResult> {
    const spec = {
      of: of as (value: unknown, key: string | null) => TopKItem | null | undefined,
      windows: options.windows.map(ms),
      slide: ms(options.slide ?? 1000),
      k: options.k,
      partialK: options.partialK ?? 2 * options.k,
      sketch: options.sketch ?? (() => ({ width: 1024 })),
      maxDimensions: options.maxDimensions ?? 64,
    };
    validateTopKSpec(spec, options.name);
    const partials = this.through<unknown>(topKPartial(spec, options.name)).repartition({
      name: options.name,
      partitions: options.mergePartitions ?? 1,
    });
    return partials.through<TopKResult>(topKMerge(spec, options.name), "dimension", false);
  }

  /**
   * Aggregated writes: increments per key summed into one delta per key per `period` of event time,
   * each named by its writer (this step and its partition) and its period's end, for a sink that
   * applies each writer's deltas once (sinks/redis/). Every decision follows the input's order, so a
   * replay emits the same deltas; the step must read one source (re-key the stream first), and
   * repartitions a re-keyed stream. See stream/operators/coalesce.ts.
   */
  coalesce(
    amount: (value: V, key: string | null) => number,
    options: { name: string; period: Duration; grace?: Duration },
  ): KStream<CoalescedDelta> {
    const stream = this.partitioned(options.name);
    const sources = this.graph.upstreamSources(stream.nodeId);
    if (sources.length !== 1) {
      throw new TopologyError(
        `coalesce ${options.name}: its records come from ${sources.length} sources (${sources
          .map((s) => s.topic)
          .join(
            ", ",
          )}), whose interleaving a replay does not repeat; re-key the stream (keyBy) so it is read from one repartition topic`,
      );
    }
    const operator = coalesce(
      {
        amount: amount as (value: unknown, key: string | null) => number,
        period: ms(options.period),
        grace: ms(options.grace ?? 0),
      },
      options.name,
    );
    const node = this.graph.addOperator(operator);
    this.graph.connect(stream.nodeId, node.id, stream.port);
    return new KStream<CoalescedDelta>(this.app, node.id, "out", stream.keyName, false);
  }

  /** Writes to a Kafka topic (Avro with the catalog's or the given schema, or a serde). */
  to(target: string | Sink<V>, options: { schema?: SchemaName; serde?: Serde<V> } = {}): void {
    if (typeof target !== "string") {
      const node = this.graph.add((id) => ({ kind: "toSink" as const, id, sink: target as Sink }));
      this.graph.connect(this.nodeId, node.id, this.port);
      return;
    }
    let encode: (v: unknown) => Buffer;
    if (options.serde) {
      const serde = options.serde as Serde<unknown>;
      encode = (v) => serde.encode(v);
    } else {
      const schema = options.schema ?? this.app.catalog.topics.find((t) => t.name === target)?.schema;
      if (!schema)
        throw new TopologyError(`to(${target}): the topic is not in the catalog; give its schema or a serde`);
      const codec = codecFor(schema);
      encode = (v) => codec.encode(v as never);
    }
    const node = this.graph.add((id) => ({ kind: "toTopic" as const, id, topic: target, encode }));
    this.graph.connect(this.nodeId, node.id, this.port);
  }
}

export class WindowedStream<V> {
  constructor(
    private readonly stream: KStream<V>,
    private readonly def: WindowDef,
    private readonly emit: EmitMode,
  ) {}

  /** Emit each window once, when it closes (watermark past end + grace). The default. */
  emitFinal(): WindowedStream<V> {
    return new WindowedStream(this.stream, this.def, { mode: "final" });
  }

  /**
   * Also emit updates while the window is open: every time stream time crosses a multiple of
   * `every` (0: on every record), for the windows that changed; then the final value.
   */
  emitEarly(every: Duration): WindowedStream<V> {
    return new WindowedStream(this.stream, this.def, { mode: "early", every: ms(every) });
  }

  aggregate<A, R = A>(aggregator: Aggregator<V, A, R>, options: { name: string }): AggregatedStream<V, R> {
    const app = this.stream.app;
    // Built first: a window kind may refuse the aggregator before anything is added to the graph.
    const operator = this.def.aggregate(options.name, this.emit, aggregator as Aggregator<unknown, unknown, unknown>);
    const input = this.stream.keyChanged ? this.stream.repartition({ name: options.name }) : this.stream;
    const node = app.graph.addOperator(operator);
    app.graph.connect(input.nodeId, node.id, input.port);
    return new AggregatedStream<V, R>(app, node.id, input.keyName);
  }

  count(options: { name: string }): AggregatedStream<V, number> {
    return this.aggregate(counting<V>(), options);
  }
}

/** The results of a windowed aggregation; `late()` is the stream of records that arrived after their window closed. */
export class AggregatedStream<V, R> extends KStream<Windowed<R>> {
  constructor(app: StreamApp, nodeId: number, keyName: string) {
    super(app, nodeId, "out", keyName, false);
  }

  /** Late input records. Unless routed somewhere, they go to the app's DLQ topic with reason late-event. */
  late(): KStream<V> {
    return new KStream<V>(this.app, this.nodeId, "late", this.keyName, false);
  }
}

/** The results of a stateful step over records of V; `late()` is the stream of its late input records. */
export class LateStream<V, O> extends KStream<O> {
  constructor(app: StreamApp, nodeId: number, keyName: string) {
    super(app, nodeId, "out", keyName, false);
  }

  /** Late input records. Unless routed somewhere, they go to the app's DLQ topic with reason late-event. */
  late(): KStream<V> {
    return new KStream<V>(this.app, this.nodeId, "late", this.keyName, false);
  }
}
