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
// A batch is sealed when it holds flushBytes, on flush(), or when its first document is
// flushInterval old and a request slot is free (while every slot is busy it keeps filling, rather
// than queueing small bodies). flush() resolves when every batch sealed before it is settled: each
// item created, a duplicate, or rejected (returned by takeRejected()).
import { Client, type estypes } from "@elastic/elasticsearch";
import pino, { type Logger } from "pino";
import type { Registry } from "prom-client";
import { z } from "zod";
import type { Sink } from "../../stream/sink.ts";
import { type Duration, ms, type Rec } from "../../stream/types.ts";
import { REQUEST_SECONDS_BUCKETS, sinkCounter, sinkCounterBy, sinkGauge, sinkHistogram } from "../metrics.ts";
import {
  classifyItem,
  classifyRequestError,
  describeItemError,
  type ItemError,
  type RequestFailure,
  retryDelay,
} from "./errors.ts";

const DurationSchema = z.union([z.number().nonnegative(), z.string()]).transform((d, ctx) => {
  try {
    return ms(d as Duration);
  } catch (e) {
    ctx.addIssue({ code: "custom", message: (e as Error).message });
    return z.NEVER;
  }
});

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
  retries: z
    .strictObject({
      /** Retries of one request (or of its items that asked for it) after its first try; then flush() rejects. */
      max: z.number().int().min(0).default(8),
      initialDelay: DurationSchema.default(200),
      maxDelay: DurationSchema.default(15_000),
    })
    .prefault({}),
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
export class ElasticsearchSinkError extends Error {
  constructor(
    message: string,
    readonly failure: RequestFailure,
    readonly attempts: number,
  ) {
    super(message);
    this.name = "ElasticsearchSinkError";
  }
}

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

/**
 * NDJSON action and source lines written into one buffer as records come: a request body is a slice
 * of it, and only the items retried alone are copied. The buffer and arrays are reused once the
 * batch is settled.
 */
interface Batch<V> {
  seq: number;
  buf: Buffer;
  /** Bytes of `buf` in use. */
  size: number;
  count: number;
  /** The records of items [0, count); an item's slot is cleared once it is settled. */
  recs: Array<Rec<V> | undefined>;
  /** ends[i]: the offset just past item i's source line. */
  ends: number[];
  /** settled[i] is 1 once item i is created, a duplicate or rejected. Set when the batch is sealed. */
  settled: Uint8Array;
  /** Items not settled yet. */
  left: number;
}

interface Waiter {
  seq: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** Room past flushBytes for the document that crosses it. */
const BUFFER_SLACK = MiB;
/** Buffers of settled batches kept for the next ones. */
const SPARE_BUFFERS = 4;
/** Distinct indices whose action-line start is remembered. */
const ACTION_CACHE_SIZE = 1000;
const EMPTY = new Uint8Array(0);

export class ElasticsearchSink<V = unknown> implements Sink<V> {
  readonly name: string;
  readonly highWater: number;
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
  private readonly log: Logger;
  private latency: { observe(seconds: number): void } | null = null;

  /** `{"create":{"_index":"<index>","_id":` per index. */
  private readonly actionHeads = new Map<string, string>();
  private readonly spare: Array<{ buf: Buffer; recs: Array<Rec<V> | undefined>; ends: number[] }> = [];
  private current: Batch<V>;
  /** Sealed batches waiting for a request slot, oldest first (a batch that failed goes back in front). */
  private readonly queue: Array<Batch<V>> = [];
  /** Sequence numbers of sealed batches not settled yet, ascending. */
  private readonly outstanding: number[] = [];
  private nextSeq = 1;
  private inflight = 0;
  private readonly requests = new Set<Promise<void>>();
  private pendingDocs = 0;
  private rejected: Array<ElasticsearchRejectedRecord<V>> = [];
  private waiters: Waiter[] = [];
  /** Set when a batch could not be settled; sending waits for the next flush() to try again. */
  private failure: ElasticsearchSinkError | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** The current batch is flushInterval old but every request slot was busy: it goes when one frees. */
  private overdue = false;
  private closed = false;
  private readonly sleepers = new Set<() => void>();
  /** Aborts the requests in flight when the sink closes. */
  private readonly abort = new AbortController();

  constructor(options: ElasticsearchSinkOptions<V>) {
    const { toDocument, index, id, logger, registry, client, ...config } = options;
    if (typeof toDocument !== "function") throw new TypeError("ElasticsearchSink: toDocument must be a function");
    if (typeof id !== "function") throw new TypeError("ElasticsearchSink: id must be a function of the record");
    if (typeof index !== "function" && (typeof index !== "string" || index === "")) {
      throw new TypeError("ElasticsearchSink: index must be an index name or a function of the record");
    }
    const parsed = ElasticsearchSinkConfigSchema.safeParse(config);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "options"}: ${i.message}`);
      throw new TypeError(`ElasticsearchSink: invalid options: ${problems.join("; ")}`);
    }
    this.config = parsed.data;
    if (!client && !this.config.node) {
      throw new TypeError("ElasticsearchSink: give `node` (e.g. http://127.0.0.1:9200) or a `client`");
    }
    this.name = this.config.name;
    this.highWater = this.config.highWater;
    this.toDocument = toDocument;
    this.index = index;
    this.id = id;
    this.log = logger ?? pino({ name: `weir-sink-${this.name}` });
    this.ownsClient = !client;
    this.client = client ?? new Client(clientOptions(this.config));
    this.current = this.emptyBatch();
    if (registry) this.registerMetrics(registry);
  }

  // --- Sink ---------------------------------------------------------------------------------------

  write(rec: Rec<V>): void {
    if (this.closed) throw new Error(`ElasticsearchSink ${this.name}: write after close`);
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
      return;
    }
    const b = this.current;
    // A UTF-16 code unit is at most 3 bytes of UTF-8.
    const most = (action.length + source.length) * 3 + 2;
    if (b.size + most > b.buf.length) this.grow(b, most);
    b.size += b.buf.write(action, b.size);
    b.buf[b.size++] = 0x0a;
    b.size += b.buf.write(source, b.size);
    b.buf[b.size++] = 0x0a;
    b.ends.push(b.size);
    b.recs[b.count++] = rec;
    this.pendingDocs++;
    if (b.size >= this.config.flushBytes) this.seal();
    else if (b.count === 1) this.armTimer();
  }

  flush(): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`ElasticsearchSink ${this.name}: flush after close`));
    this.seal();
    const last = this.nextSeq - 1;
    if (this.outstanding.length === 0 || (this.outstanding[0] as number) > last) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ seq: last, resolve, reject }));
    // A flush after a failure is a new attempt: the batch that failed is back at the front of the queue.
    if (this.failure) {
      this.failure = null;
      this.kick();
    }
    return done;
  }

  pending(): number {
    return this.pendingDocs;
  }

  takeRejected(): Array<ElasticsearchRejectedRecord<V>> {
    if (this.rejected.length === 0) return [];
    const out = this.rejected;
    this.rejected = [];
    return out;
  }

  /**
   * Stops sending and releases the client. Documents not yet settled are dropped: under the runtime
   * their offsets were never committed, so they are read again. Call flush() first to keep them.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const wake of [...this.sleepers]) wake();
    this.abort.abort();
    await Promise.allSettled([...this.requests]);
    const err = new Error(`ElasticsearchSink ${this.name}: closed`);
    for (const w of this.waiters.splice(0)) w.reject(err);
    if (this.ownsClient) await this.client.close();
  }

  // --- batching -----------------------------------------------------------------------------------

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

  private emptyBatch(): Batch<V> {
    const reused = this.spare.pop();
    return {
      seq: 0,
      // A buffer of a settled batch is used again: fresh memory costs a page fault per 4 KiB.
      buf: reused?.buf ?? Buffer.allocUnsafe(this.config.flushBytes + BUFFER_SLACK),
      size: 0,
      count: 0,
      recs: reused?.recs ?? [],
      ends: reused?.ends ?? [],
      settled: EMPTY,
      left: 0,
    };
  }

  private grow(b: Batch<V>, need: number): void {
    const next = Buffer.allocUnsafe(Math.max(b.buf.length * 2, b.size + need));
    b.buf.copy(next, 0, 0, b.size);
    b.buf = next;
  }

  private armTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    const batch = this.current;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.current !== batch || batch.count === 0) return;
      if (this.inflight >= this.config.concurrency || this.queue.length > 0) this.overdue = true;
      else this.seal();
    }, this.config.flushInterval);
    this.timer.unref();
  }

  private seal(): void {
    const b = this.current;
    if (b.count === 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.overdue = false;
    b.seq = this.nextSeq++;
    b.settled = new Uint8Array(b.count);
    b.left = b.count;
    this.outstanding.push(b.seq);
    this.queue.push(b);
    this.current = this.emptyBatch();
    if (!this.failure) this.kick();
  }

  private kick(): void {
    while (!this.failure && !this.closed && this.inflight < this.config.concurrency && this.queue.length > 0) {
      this.start(this.queue.shift() as Batch<V>);
    }
  }

  private start(b: Batch<V>): void {
    this.inflight++;
    const request: Promise<void> = this.sendItems(b, b.left === b.count ? null : unsettled(b)).then(
      () => {
        this.inflight--;
        this.requests.delete(request);
        this.settledBatch(b);
        // A batch that waited for a free slot goes now.
        if (this.overdue && this.queue.length === 0) this.seal();
        this.kick();
      },
      (e: unknown) => {
        this.inflight--;
        this.requests.delete(request);
        if (this.closed) return;
        // Not settled: back in front, every flush() waiting is told, nothing is sent until the next flush().
        this.queue.unshift(b);
        const err =
          e instanceof ElasticsearchSinkError
            ? e
            : new ElasticsearchSinkError(
                `ElasticsearchSink ${this.name}: ${(e as Error)?.message ?? e}`,
                classifyRequestError(e),
                1,
              );
        this.log.error({ sink: this.name, docs: b.left, err: err.message }, "bulk request failed; flush() rejects");
        this.failure ??= err;
        for (const w of this.waiters.splice(0)) w.reject(err);
      },
    );
    this.requests.add(request);
  }

  private settledBatch(b: Batch<V>): void {
    const at = this.outstanding.indexOf(b.seq);
    if (at >= 0) this.outstanding.splice(at, 1);
    if (this.spare.length < SPARE_BUFFERS) {
      b.recs.fill(undefined, 0, b.count); // the settled records are not kept alive
      b.ends.length = 0;
      this.spare.push({ buf: b.buf, recs: b.recs, ends: b.ends });
    }
    if (this.waiters.length > 0) {
      const lowest = this.outstanding.length > 0 ? (this.outstanding[0] as number) : Number.POSITIVE_INFINITY;
      const still: Waiter[] = [];
      for (const w of this.waiters) {
        if (w.seq < lowest) w.resolve();
        else still.push(w);
      }
      this.waiters = still;
    }
  }

  // --- sending ------------------------------------------------------------------------------------

  /**
   * Sends items of a batch (all of them when `items` is null) until each is settled. A request that
   * fails as a whole is tried again with backoff; of a request answered, only the items that asked
   * for it (429, 5xx) are. A body too large for the server is halved. Throws when retries run out or
   * no retry can help; the items settled so far stay settled.
   */
  private async sendItems(b: Batch<V>, items: number[] | null): Promise<void> {
    let todo = items;
    const { max, initialDelay, maxDelay } = this.config.retries;
    for (let attempt = 1; ; attempt++) {
      const count = todo ? todo.length : b.count;
      const body = todo ? bodyOf(b, todo) : b.buf.subarray(0, b.size);
      const started = performance.now();
      let answer: BulkAnswer;
      try {
        answer = await this.bulk(body);
      } catch (e) {
        if (this.closed) throw e;
        const f = classifyRequestError(e);
        if (f.kind === "too-large") {
          if (count === 1) {
            const i = todo ? (todo[0] as number) : 0;
            this.settleRejected(
              b,
              i,
              "request_entity_too_large",
              `${f.message} (the document alone is too large)`,
              413,
            );
            return;
          }
          const all = todo ?? Array.from({ length: b.count }, (_, i) => i);
          const mid = all.length >> 1;
          await this.sendItems(b, all.slice(0, mid));
          await this.sendItems(b, all.slice(mid));
          return;
        }
        if (f.kind !== "transient" || attempt > max) throw this.sinkError(f, attempt, count);
        const delay = retryDelay(attempt, initialDelay, maxDelay, f.retryAfterMs);
        this.stats.retries++;
        this.stats.retriedDocs += count;
        this.log.warn(
          { sink: this.name, docs: count, attempt, delayMs: delay, status: f.status, error: f.message },
          "bulk request failed; retrying",
        );
        await this.sleep(delay);
        if (this.closed) throw e;
        continue;
      }
      const seconds = (performance.now() - started) / 1000;
      this.stats.requests++;
      this.stats.bulkSeconds += seconds;
      this.stats.bytesSent += body.length;
      this.latency?.observe(seconds);

      if (!answer.errors) {
        this.stats.docsIndexed += count;
        if (todo) for (const i of todo) this.settle(b, i);
        else for (let i = 0; i < b.count; i++) this.settle(b, i);
        return;
      }
      const answered = answer.items ?? [];
      if (answered.length !== count) {
        throw this.sinkError(
          {
            kind: "fatal",
            status: null,
            message: `the bulk answer has ${answered.length} items for ${count} actions`,
            retryAfterMs: null,
          },
          attempt,
          count,
        );
      }
      const again: number[] = [];
      let fatal: string | null = null;
      let retryStatus = 0;
      let retryMessage = "";
      const rejectedTypes = new Map<string, { n: number; example: string }>();
      for (let k = 0; k < count; k++) {
        const i = todo ? (todo[k] as number) : k;
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
          again.push(i);
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
      if (fatal !== null) {
        throw this.sinkError(
          { kind: "fatal", status: null, message: fatal, retryAfterMs: null },
          attempt,
          again.length,
        );
      }
      if (again.length === 0) return;
      const f: RequestFailure = { kind: "transient", status: retryStatus, message: retryMessage, retryAfterMs: null };
      if (attempt > max) throw this.sinkError(f, attempt, again.length);
      todo = again;
      const delay = retryDelay(attempt, initialDelay, maxDelay, null);
      this.stats.retries++;
      this.stats.retriedDocs += again.length;
      this.log.warn(
        {
          sink: this.name,
          docs: again.length,
          of: count,
          attempt,
          delayMs: delay,
          status: retryStatus,
          error: retryMessage,
        },
        "documents not indexed yet; retrying them",
      );
      await this.sleep(delay);
      if (this.closed) throw new Error(`ElasticsearchSink ${this.name}: closed`);
    }
  }

  private async bulk(body: Buffer): Promise<BulkAnswer> {
    // The transport sends a Buffer body as it is (it serializes only arrays of objects).
    const answer = await this.client.bulk(
      { filter_path: BULK_FILTER_PATH, operations: body as unknown as estypes.BulkRequest["operations"] },
      { maxRetries: 0, requestTimeout: this.config.requestTimeout, signal: this.abort.signal },
    );
    return answer as unknown as BulkAnswer;
  }

  private settle(b: Batch<V>, i: number): void {
    if (b.settled[i]) return;
    b.settled[i] = 1;
    b.recs[i] = undefined;
    b.left--;
    this.pendingDocs--;
  }

  private settleRejected(b: Batch<V>, i: number, type: string, message: string, status: number): void {
    const rec = b.recs[i];
    if (rec) this.reject(rec, type, message, status);
    this.settle(b, i);
  }

  private reject(rec: Rec<V>, errorType: string, message: string, status: number | null): void {
    this.stats.rejected++;
    this.stats.rejectedByType[errorType] = (this.stats.rejectedByType[errorType] ?? 0) + 1;
    this.rejected.push({ rec, reason: REJECT_REASON, message, errorType, status });
  }

  private sinkError(f: RequestFailure, attempts: number, docs: number): ElasticsearchSinkError {
    const what =
      f.kind === "transient"
        ? `${docs} document${docs === 1 ? "" : "s"} not indexed after ${attempts} attempt${attempts === 1 ? "" : "s"} (Elasticsearch overloaded or unreachable; the next flush() tries again)`
        : `Elasticsearch refused the bulk request${hintFor(f.message)}`;
    return new ElasticsearchSinkError(`ElasticsearchSink ${this.name}: ${what}: ${f.message}`, f, attempts);
  }

  private sleep(delay: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(t);
        this.sleepers.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, delay);
      this.sleepers.add(wake);
    });
  }

  // --- metrics ------------------------------------------------------------------------------------

  /**
   * Adds weir_elasticsearch_sink_* metrics, labelled with this sink's name, to a prom-client registry
   * (other sinks of this kind in the same registry share the metrics, each under its own label).
   */
  registerMetrics(registry: Registry): void {
    const labels = { sink: this.name };
    const stats = this.stats;
    const counter = (name: string, help: string, read: () => number) => sinkCounter(registry, name, help, labels, read);
    counter("weir_elasticsearch_sink_docs_indexed_total", "Documents Elasticsearch created.", () => stats.docsIndexed);
    counter(
      "weir_elasticsearch_sink_duplicates_total",
      "Documents answered 409 (their _id existed: a replay).",
      () => stats.duplicates,
    );
    counter("weir_elasticsearch_sink_requests_total", "Bulk requests answered.", () => stats.requests);
    counter("weir_elasticsearch_sink_retries_total", "Bulk requests sent again.", () => stats.retries);
    counter("weir_elasticsearch_sink_retried_docs_total", "Documents sent again.", () => stats.retriedDocs);
    counter(
      "weir_elasticsearch_sink_bytes_sent_total",
      "NDJSON bytes of answered bulk requests.",
      () => stats.bytesSent,
    );
    sinkCounterBy(
      registry,
      "weir_elasticsearch_sink_rejected_total",
      "Records refused for good (dead-lettered), by error type.",
      labels,
      ["error_type"],
      () =>
        Object.entries(stats.rejectedByType).map(([type, n]): [Record<string, string>, number] => [
          { error_type: type },
          n,
        ]),
    );
    sinkGauge(
      registry,
      "weir_elasticsearch_sink_pending_docs",
      "Documents written to the sink and not yet settled.",
      labels,
      () => this.pending(),
    );
    this.latency = sinkHistogram(
      registry,
      "weir_elasticsearch_sink_bulk_seconds",
      "Duration of answered bulk requests.",
      labels,
      REQUEST_SECONDS_BUCKETS,
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

function unsettled<V>(b: Batch<V>): number[] {
  const out: number[] = [];
  for (let i = 0; i < b.count; i++) if (!b.settled[i]) out.push(i);
  return out;
}

/** The bytes of items `items` (ascending) of a batch, consecutive items copied as one run. */
function bodyOf<V>(b: Batch<V>, items: number[]): Buffer {
  const parts: Buffer[] = [];
  let k = 0;
  while (k < items.length) {
    const first = items[k] as number;
    let last = first;
    while (k + 1 < items.length && items[k + 1] === last + 1) last = items[++k] as number;
    k++;
    parts.push(b.buf.subarray(first === 0 ? 0 : (b.ends[first - 1] as number), b.ends[last] as number));
  }
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
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
