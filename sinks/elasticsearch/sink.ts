// The Elasticsearch sink: records -> documents (the caller's `toDocument`, `index` and `id`) ->
// NDJSON `create` actions -> `_bulk` requests, several in flight, through the official client.
//
// Idempotence is the _id's job: every action is a `create` with an _id derived from the record, so
// a replay after a crash finds the document there and Elasticsearch answers 409, which counts as
// done (a duplicate), never as a failure and never as a second copy.
//
// Why not `client.helpers.bulk`: it is built for one-shot loads, and the runtime's flush() is a
// barrier it cannot give. (1) It offers no way to send a partial batch now, short of ending its
// datasource, and its flushInterval timer restarts with every document, so a steady trickle is
// never sent until flushBytes fill. (2) A request that fails as a whole (connection refused, a 429
// or 503 for the request) aborts the helper: its promise rejects, the documents of that request and
// of every body not yet sent are dropped, and which ones they were is not reported (onDrop only
// sees per-item failures). (3) Per-document acknowledgement exists only through onSuccess, which
// parses every document back from JSON. (4) Retries wait a fixed `wait`, without backoff or
// jitter, and only for items answered 429. So the sink does its own batching on `client.bulk`,
// keeping the helper's good parts: documents serialized once as they are written (so the size of a
// body is known), bodies sent at flushBytes or flushInterval, `concurrency` requests in flight,
// only the items that asked for it retried, and the others' failures reported per document.
//
// The batching, the flush barrier, retries and close are the batching sink's (sinks/batching/): a batch
// is sealed at flushBytes, on flush(), or when its first document is flushInterval old and a request
// slot is free (while every slot is busy it keeps filling, rather than queueing small bodies), and
// batches settle out of order. Here: the NDJSON encoding, the bulk request and what its answer means.
import { Client, type estypes } from "@elastic/elasticsearch";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { z } from "zod";
import type { Rec } from "../../stream/types.ts";
import { type Batch, reserve } from "../batching/batch.ts";
import { DurationSchema, parseOptions, RetriesSchema } from "../batching/options.ts";
import { BatchingSink, BatchingSinkError, type SinkMetricSet } from "../batching/sink.ts";
import { sinkCounterBy } from "../metrics.ts";
import {
  classifyItem,
  classifyRequestError,
  describeItemError,
  type ItemError,
  type RequestFailure,
} from "./errors.ts";

const MiB = 1024 * 1024;

export const ElasticsearchSinkConfigSchema = z.strictObject({
  /** Names the sink in logs, metrics and the runtime's records-out counter. */
  name: z.string().min(1).default("elasticsearch"),
  /** Elasticsearch's URL; not needed when a `client` is given. */
  node: z.url({ protocol: /^https?$/, error: "an http(s) URL such as http://127.0.0.1:9200" }).optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  apiKey: z.string().optional(),
  /**
   * A request is sent when its NDJSON body reaches this many bytes. Elasticsearch refuses bodies
   * above http.max_content_length (100 MiB by default); a few MiB is its own advice.
   */
  flushBytes: z
    .number()
    .int()
    .min(1024)
    .max(100 * MiB)
    .default(5 * MiB),
  /**
   * A batch is sent when its first document is this old (and a request slot is free), even if not
   * full. With the logs template's 1 s refresh it keeps write-to-searchable under the 2.5 s p99 goal
   * with room for a slow request (bench/results/elasticsearch-sink.md, "Freshness").
   */
  flushInterval: DurationSchema.default(250),
  /** Bulk requests in flight at once. */
  concurrency: z.number().int().min(1).max(32).default(2),
  /**
   * Documents written but not settled above which the runtime pauses its sources (about seven 5 MiB
   * bodies of log documents). The runtime's pause flushes, which sends the batch being filled however
   * small: a mark only a few bodies high makes many small requests under load.
   */
  highWater: z.number().int().min(1).default(50_000),
  /** Retries of a batch's request (or of its items that asked for it) after its first try; then flush() rejects. */
  retries: RetriesSchema,
  /** Timeout of one bulk request. */
  requestTimeout: DurationSchema.default(60_000),
});

export type ElasticsearchSinkConfig = z.input<typeof ElasticsearchSinkConfigSchema>;

export interface ElasticsearchSinkOptions<V> extends ElasticsearchSinkConfig {
  /**
   * A record's document (its _source): an object, serialized with JSON.stringify, or a string taken
   * as the document's JSON text as it is (for callers with a faster serializer of their own).
   * Throwing rejects the record.
   */
  toDocument: (rec: Rec<V>) => object | string;
  /** The index a record's document goes to: a name, or a function of the record (e.g. a DailyIndexNamer's). */
  index: string | ((rec: Rec<V>) => string);
  /** The document's _id: deterministic, so that a replay is answered 409 instead of indexed twice. */
  id: (rec: Rec<V>) => string;
  logger?: Logger;
  /** Registers the sink's metrics (prefixed weir_elasticsearch_sink_) in this prom-client registry. */
  registry?: Registry;
  /** A client to share (then not closed by the sink); by default the sink makes its own from `node`. */
  client?: Client;
}

/** Counters as plain numbers; what /metrics reports is read from them when scraped. */
export interface ElasticsearchSinkStats {
  /** Documents Elasticsearch created. */
  docsIndexed: number;
  /** Documents answered 409: their _id existed (a replay, or a retry of a request that had landed). */
  duplicates: number;
  /** Records refused for good: by Elasticsearch, or by `toDocument`/`index`/`id` throwing. */
  rejected: number;
  /** `rejected` by error type (`document_parsing_exception`, ..., or `document-error` for the caller's functions). */
  rejectedByType: Record<string, number>;
  /** Bulk requests Elasticsearch answered. */
  requests: number;
  /** Requests sent again: after a failure of the whole request, or for the items that asked for it. */
  retries: number;
  /** Documents sent again. */
  retriedDocs: number;
  /** NDJSON bytes of the answered requests. */
  bytesSent: number;
  /** Seconds spent in answered bulk requests. */
  bulkSeconds: number;
}

export const REJECT_REASON = "rejected-by-sink";
/** The error type of records the caller's functions (`toDocument`, `index`, `id`) failed on. */
export const DOCUMENT_ERROR = "document-error";

export interface ElasticsearchRejectedRecord<V> {
  rec: Rec<V>;
  /** The dead letter's reason: always `rejected-by-sink`. */
  reason: string;
  /** `<error type>: <reason>` as Elasticsearch gave it. */
  message: string;
  /** Elasticsearch's error type (`document_parsing_exception`, `illegal_argument_exception`, ...) or `document-error`. */
  errorType: string;
  /** The item's HTTP status; null when the record never reached Elasticsearch. */
  status: number | null;
}

/** flush() could not get documents settled: retries ran out, or the failure is one no retry fixes. */
export class ElasticsearchSinkError extends BatchingSinkError<RequestFailure> {}

/**
 * The answer, cut to what the sink reads. `items.*.status` must stay in: with only `items.*.error`,
 * successful items would be filtered out whole and the list would no longer line up with the request.
 */
export const BULK_FILTER_PATH = [
  "errors",
  "items.*.status",
  "items.*.error.type",
  "items.*.error.reason",
  "items.*.error.caused_by.type",
  "items.*.error.caused_by.reason",
];

interface BulkAnswer {
  errors: boolean;
  items?: Array<Record<string, { status: number; error?: ItemError } | undefined>>;
}

/** Room past flushBytes for the document that crosses it. */
const BUFFER_SLACK = MiB;
/** Distinct indices whose action-line start is remembered. */
const ACTION_CACHE_SIZE = 1000;

export class ElasticsearchSink<V = unknown> extends BatchingSink<V, ElasticsearchRejectedRecord<V>, RequestFailure> {
  readonly config: z.output<typeof ElasticsearchSinkConfigSchema>;
  readonly stats: ElasticsearchSinkStats = {
    docsIndexed: 0,
    duplicates: 0,
    rejected: 0,
    rejectedByType: {},
    requests: 0,
    retries: 0,
    retriedDocs: 0,
    bytesSent: 0,
    bulkSeconds: 0,
  };
  private readonly toDocument: (rec: Rec<V>) => object | string;
  private readonly index: string | ((rec: Rec<V>) => string);
  private readonly id: (rec: Rec<V>) => string;
  private readonly client: Client;
  private readonly ownsClient: boolean;
  /** `{"create":{"_index":"<index>","_id":` per index. */
  private readonly actionHeads = new Map<string, string>();

  constructor(options: ElasticsearchSinkOptions<V>) {
    const { toDocument, index, id, logger, registry, client, ...rest } = options;
    if (typeof toDocument !== "function") throw new TypeError("ElasticsearchSink: toDocument must be a function");
    if (typeof id !== "function") throw new TypeError("ElasticsearchSink: id must be a function of the record");
    if (typeof index !== "function" && (typeof index !== "string" || index === "")) {
      throw new TypeError("ElasticsearchSink: index must be an index name or a function of the record");
    }
    const config = parseOptions("ElasticsearchSink", ElasticsearchSinkConfigSchema, rest);
    if (!client && !config.node) {
      throw new TypeError("ElasticsearchSink: give `node` (e.g. http://127.0.0.1:9200) or a `client`");
    }
    super({
      kind: "ElasticsearchSink",
      name: config.name,
      maxBytes: config.flushBytes,
      flushInterval: config.flushInterval,
      concurrency: config.concurrency,
      merge: false,
      highWater: config.highWater,
      retries: config.retries,
      bufferBytes: config.flushBytes + BUFFER_SLACK,
      logger,
    });
    this.config = config;
    this.toDocument = toDocument;
    this.index = index;
    this.id = id;
    this.ownsClient = !client;
    this.client = client ?? new Client(clientOptions(config));
    if (registry) this.registerMetrics(registry);
  }

  // --- encoding -------------------------------------------------------------------------------------

  protected encode(rec: Rec<V>, b: Batch<V>): boolean {
    let action: string;
    let source: string;
    try {
      const doc = this.toDocument(rec);
      source = typeof doc === "string" ? doc : JSON.stringify(doc);
      if (typeof source !== "string" || source === "") throw new Error("toDocument returned no document");
      // A raw line break would end the NDJSON line early (JSON.stringify never writes one).
      if (typeof doc === "string" && source.includes("\n"))
        throw new Error("the document's JSON text has a line break");
      action = this.actionLine(typeof this.index === "string" ? this.index : this.index(rec), this.id(rec));
    } catch (e) {
      this.reject(rec, DOCUMENT_ERROR, `${(e as Error)?.message ?? e}`, null);
      return false;
    }
    // A UTF-16 code unit is at most 3 bytes of UTF-8.
    reserve(b, (action.length + source.length) * 3 + 2);
    b.size += b.buf.write(action, b.size);
    b.buf[b.size++] = 0x0a;
    b.size += b.buf.write(source, b.size);
    b.buf[b.size++] = 0x0a;
    return true;
  }

  private actionLine(index: string, id: string): string {
    if (typeof id !== "string") throw new Error(`id must be a string, got ${typeof id}`);
    let head = this.actionHeads.get(index);
    if (head === undefined) {
      if (typeof index !== "string" || index === "") throw new Error("index must be a non-empty string");
      if (this.actionHeads.size >= ACTION_CACHE_SIZE) this.actionHeads.clear();
      head = `{"create":{"_index":${JSON.stringify(index)},"_id":`;
      this.actionHeads.set(index, head);
    }
    return `${head}${JSON.stringify(id)}}}`;
  }

  private reject(rec: Rec<V>, errorType: string, message: string, status: number | null): void {
    this.stats.rejected++;
    this.stats.rejectedByType[errorType] = (this.stats.rejectedByType[errorType] ?? 0) + 1;
    this.refuse({ rec, reason: REJECT_REASON, message, errorType, status });
  }

  // --- sending --------------------------------------------------------------------------------------

  /** Sends the documents of a batch not settled yet: all of them the first time, then those that asked again. */
  protected send(b: Batch<V>): Promise<void> {
    return this.sendItems(b, b.left === b.count ? null : b.unsettled());
  }

  /**
   * One bulk request of items of a batch (all of them when `items` is null); of its answer, the items
   * created, duplicates and rejected are settled. Throws when items are left to retry (429, 5xx), when
   * one fails as every other would (a missing index, permissions), or when the request fails as a whole.
   * A body too large for the server is halved until it fits or one document stands alone, rejected.
   */
  private async sendItems(b: Batch<V>, items: number[] | null): Promise<void> {
    const count = items ? items.length : b.count;
    const body = items ? b.bytesOf(items) : b.bytes(0, b.count);
    const started = performance.now();
    let answer: BulkAnswer;
    try {
      answer = await this.bulk(body);
    } catch (e) {
      const f = classifyRequestError(e);
      if (f.kind !== "too-large") throw e;
      if (count === 1) {
        const i = items ? (items[0] as number) : 0;
        this.settleRejected(b, i, "request_entity_too_large", `${f.message} (the document alone is too large)`, 413);
        return;
      }
      const all = items ?? Array.from({ length: b.count }, (_, i) => i);
      const mid = all.length >> 1;
      await this.sendItems(b, all.slice(0, mid));
      await this.sendItems(b, all.slice(mid));
      return;
    }
    const seconds = this.requestSeconds(started);
    this.stats.requests++;
    this.stats.bulkSeconds += seconds;
    this.stats.bytesSent += body.length;

    if (!answer.errors) {
      this.stats.docsIndexed += count;
      if (items) for (const i of items) this.settle(b, i);
      else this.settleRange(b, 0, b.count);
      return;
    }
    const answered = answer.items ?? [];
    if (answered.length !== count) {
      throw this.failed({
        kind: "fatal",
        status: null,
        message: `the bulk answer has ${answered.length} items for ${count} actions`,
        retryAfterMs: null,
      });
    }
    let again = 0;
    let fatal: string | null = null;
    let retryStatus = 0;
    let retryMessage = "";
    const rejectedTypes = new Map<string, { n: number; example: string }>();
    for (let k = 0; k < count; k++) {
      const i = items ? (items[k] as number) : k;
      const item = firstValue(answered[k]);
      const status = item?.status ?? 0;
      const outcome = classifyItem(status, item?.error);
      if (outcome === "created") {
        this.stats.docsIndexed++;
        this.settle(b, i);
      } else if (outcome === "duplicate") {
        this.stats.duplicates++;
        this.settle(b, i);
      } else if (outcome === "reject") {
        const type = item?.error?.type ?? `status_${status}`;
        const message = describeItemError(item?.error, status);
        this.settleRejected(b, i, type, message, status);
        const seen = rejectedTypes.get(type);
        if (seen) seen.n++;
        else rejectedTypes.set(type, { n: 1, example: message });
      } else {
        again++;
        if (outcome === "fatal") fatal ??= describeItemError(item?.error, status);
        else if (!retryStatus) {
          retryStatus = status;
          retryMessage = describeItemError(item?.error, status);
        }
      }
    }
    for (const [type, { n, example }] of rejectedTypes) {
      this.log.warn({ sink: this.name, type, docs: n, example }, "documents rejected by Elasticsearch");
    }
    if (fatal !== null) throw this.failed({ kind: "fatal", status: null, message: fatal, retryAfterMs: null });
    if (again > 0)
      throw this.failed({ kind: "transient", status: retryStatus, message: retryMessage, retryAfterMs: null });
  }

  private async bulk(body: Buffer): Promise<BulkAnswer> {
    // The transport sends a Buffer body as it is (it serializes only arrays of objects).
    const answer = await this.client.bulk(
      { filter_path: BULK_FILTER_PATH, operations: body as unknown as estypes.BulkRequest["operations"] },
      { maxRetries: 0, requestTimeout: this.config.requestTimeout, signal: this.signal },
    );
    return answer as unknown as BulkAnswer;
  }

  private settleRejected(b: Batch<V>, i: number, type: string, message: string, status: number): void {
    const rec = this.settle(b, i);
    if (rec) this.reject(rec, type, message, status);
  }

  protected classify(error: unknown): RequestFailure {
    const f = classifyRequestError(error);
    // Aborted, but not by close(): the transport gave up on the request (seen when another request on
    // its connections timed out, against an overloaded node). Nothing is known of its documents.
    if (f.kind === "aborted" && !this.signal.aborted) return { ...f, kind: "transient" };
    return f;
  }

  protected giveUp(f: RequestFailure, attempts: number, docs: number): ElasticsearchSinkError {
    const what =
      f.kind === "transient"
        ? `${docs} document${docs === 1 ? "" : "s"} not indexed after ${attempts} attempt${attempts === 1 ? "" : "s"} (retries.max ${this.retriesMax} ran out: Elasticsearch overloaded or unreachable; the next flush() tries again, and without retries.max the sink waits for it)`
        : `Elasticsearch refused the bulk request${hintFor(f.message)}`;
    return new ElasticsearchSinkError(`ElasticsearchSink ${this.name}: ${what}: ${f.message}`, f, attempts);
  }

  protected override retried(docs: number): void {
    this.stats.retries++;
    this.stats.retriedDocs += docs;
  }

  protected override async release(): Promise<void> {
    if (this.ownsClient) await this.client.close();
  }

  // --- metrics --------------------------------------------------------------------------------------

  protected metricSet(): SinkMetricSet {
    const stats = this.stats;
    return {
      labels: { sink: this.name },
      counters: [
        ["weir_elasticsearch_sink_docs_indexed_total", "Documents Elasticsearch created.", () => stats.docsIndexed],
        [
          "weir_elasticsearch_sink_duplicates_total",
          "Documents answered 409 (their _id existed: a replay).",
          () => stats.duplicates,
        ],
        ["weir_elasticsearch_sink_requests_total", "Bulk requests answered.", () => stats.requests],
        ["weir_elasticsearch_sink_retries_total", "Bulk requests sent again.", () => stats.retries],
        ["weir_elasticsearch_sink_retried_docs_total", "Documents sent again.", () => stats.retriedDocs],
        ["weir_elasticsearch_sink_bytes_sent_total", "NDJSON bytes of answered bulk requests.", () => stats.bytesSent],
      ],
      pending: ["weir_elasticsearch_sink_pending_docs", "Documents written to the sink and not yet settled."],
      failing: [
        "weir_elasticsearch_sink_failing",
        "Bulk tries failed in a row (Elasticsearch unreachable, restarting or overloaded); 0 while it answers.",
      ],
      latency: ["weir_elasticsearch_sink_bulk_seconds", "Duration of answered bulk requests."],
    };
  }

  /** Adds weir_elasticsearch_sink_* metrics, labelled with this sink's name, to a prom-client registry. */
  override registerMetrics(registry: Registry): void {
    super.registerMetrics(registry);
    sinkCounterBy(
      registry,
      "weir_elasticsearch_sink_rejected_total",
      "Records refused for good (dead-lettered), by error type.",
      { sink: this.name },
      ["error_type"],
      () =>
        Object.entries(this.stats.rejectedByType).map(([type, n]): [Record<string, string>, number] => [
          { error_type: type },
          n,
        ]),
    );
  }
}

function clientOptions(
  config: z.output<typeof ElasticsearchSinkConfigSchema>,
): ConstructorParameters<typeof Client>[0] {
  const auth =
    config.apiKey !== undefined
      ? { apiKey: config.apiKey }
      : config.username !== undefined
        ? { username: config.username, password: config.password ?? "" }
        : undefined;
  return {
    node: config.node as string,
    ...(auth ? { auth } : {}),
    requestTimeout: config.requestTimeout,
    // The sink retries with backoff and jitter itself; the transport's own retries come without a pause.
    maxRetries: 0,
  };
}

function firstValue<T>(o: Record<string, T> | undefined): T | undefined {
  if (!o) return undefined;
  for (const k in o) return o[k];
  return undefined;
}

function hintFor(message: string): string {
  if (message.includes("index_not_found_exception")) {
    return " (the index does not exist and may not be created here: allow action.auto_create_index for its pattern, or create it)";
  }
  if (message.includes("security_exception") || /HTTP 40[13]/.test(message)) {
    return " (check the credentials and that the user has the create_doc and auto_configure privileges on the indices)";
  }
  return "";
}
