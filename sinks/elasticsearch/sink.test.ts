// The sink's batching, acknowledgement, retries and rejections, against a stand-in for the client
// that answers `_bulk` as Elasticsearch does (per-item statuses, 409 for an existing _id) and fails
// on demand with the transport's own error classes. Whether the real server agrees is
// test/integration/elasticsearch-sink.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Client, errors } from "@elastic/elasticsearch";
import pino from "pino";
import { Registry } from "prom-client";
import type { Rec } from "../../stream/types.ts";
import {
  BULK_FILTER_PATH,
  DOCUMENT_ERROR,
  ElasticsearchSink,
  ElasticsearchSinkError,
  type ElasticsearchSinkOptions,
  REJECT_REASON,
} from "./sink.ts";

interface Doc {
  i: number;
  service?: string;
  /** The stand-in refuses it as the mapping would. */
  bad?: boolean;
  /** The stand-in answers 429 for it this many times. */
  busy?: number;
  /** The stand-in answers 413 for any request holding it. */
  huge?: boolean;
  /** The stand-in answers 404 index_not_found_exception. */
  noIndex?: boolean;
}

interface Item {
  status: number;
  error?: { type: string; reason: string };
}

class FakeElasticsearch {
  readonly stored = new Map<string, Doc>();
  /** Each request: the _ids it carried, in order. */
  readonly requests: string[][] = [];
  readonly filterPaths: unknown[] = [];
  /** Whole-request failures to throw, one per request, before answering normally. */
  failures: Error[] = [];
  /** While set, each request waits for `release()`. */
  gated = false;
  private gates: Array<() => void> = [];
  private readonly busyLeft = new Map<string, number>();

  async bulk(
    params: { operations: Buffer; filter_path: unknown },
    options: { signal?: AbortSignal } = {},
  ): Promise<{ errors: boolean; items: unknown[] }> {
    const lines = params.operations.toString("utf8").split("\n");
    assert.equal(lines.pop(), "", "a body ends with a newline");
    const actions: Array<{ index: string; id: string; doc: Doc }> = [];
    for (let k = 0; k < lines.length; k += 2) {
      const action = JSON.parse(lines[k] as string) as { create: { _index: string; _id: string } };
      actions.push({ index: action.create._index, id: action.create._id, doc: JSON.parse(lines[k + 1] as string) });
    }
    this.requests.push(actions.map((a) => a.id));
    this.filterPaths.push(params.filter_path);
    if (this.gated) {
      await new Promise<void>((resolve, reject) => {
        this.gates.push(resolve);
        options.signal?.addEventListener("abort", () => reject(new errors.RequestAbortedError("aborted")));
      });
    }
    const failure = this.failures.shift();
    if (failure) throw failure;
    if (actions.some((a) => a.doc.huge)) {
      throw new errors.ResponseError({ body: "", statusCode: 413, headers: {}, warnings: null, meta: {} as never });
    }
    const items = actions.map(({ index, id, doc }): { create: Item } => {
      const key = `${index}/${id}`;
      if (doc.noIndex) {
        return {
          create: { status: 404, error: { type: "index_not_found_exception", reason: `no such index [${index}]` } },
        };
      }
      if (doc.busy) {
        const left = this.busyLeft.get(key) ?? doc.busy;
        if (left > 0) {
          this.busyLeft.set(key, left - 1);
          return { create: { status: 429, error: { type: "es_rejected_execution_exception", reason: "queue full" } } };
        }
      }
      if (doc.bad) {
        return {
          create: {
            status: 400,
            error: { type: "document_parsing_exception", reason: "failed to parse field [i] of type [long]" },
          },
        };
      }
      if (this.stored.has(key)) {
        return {
          create: {
            status: 409,
            error: { type: "version_conflict_engine_exception", reason: `[${id}]: version conflict` },
          },
        };
      }
      this.stored.set(key, doc);
      return { create: { status: 201 } };
    });
    return { errors: items.some((x) => x.create.status >= 300), items };
  }

  /** Lets the oldest held request (or the one at `at`) be answered. */
  release(at = 0): void {
    const [gate] = this.gates.splice(at, 1);
    assert.ok(gate, "a request is held");
    gate();
  }

  get held(): number {
    return this.gates.length;
  }

  async close(): Promise<void> {}
}

const quiet = pino({ level: "silent" });

function sinkOf(fake: FakeElasticsearch, options: Partial<ElasticsearchSinkOptions<Doc>> = {}) {
  return new ElasticsearchSink<Doc>({
    client: fake as unknown as Client,
    logger: quiet,
    retries: { max: 3, initialDelay: 1, maxDelay: 5 },
    flushInterval: "1h",
    toDocument: (r) => r.value,
    index: (r) => `logs-${r.value.service ?? "svc"}`,
    id: (r) => `id-${r.value.i}`,
    ...options,
  });
}

const rec = (i: number, extra: Partial<Doc> = {}): Rec<Doc> => ({ key: null, ts: 0, value: { i, ...extra } });
const tick = () => new Promise((r) => setTimeout(r, 5));
/** Waits for something timers make happen, however late a loaded machine runs them. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await tick();
  assert.ok(done(), "did not happen within 2.5 s");
}
const ids = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => `id-${from + k}`);

test("a body is sent when it reaches flushBytes, the rest on flush; each item a create with its _index and _id", async () => {
  const fake = new FakeElasticsearch();
  // Each item is about 70 bytes of NDJSON: 1 KiB holds 15.
  const sink = sinkOf(fake, { flushBytes: 1024 });
  for (let i = 0; i < 40; i++) sink.write(rec(i, { service: i % 2 ? "a" : "b" }));
  assert.equal(sink.pending(), 40);
  await sink.flush();
  assert.equal(sink.pending(), 0);
  assert.equal(fake.requests.length, 3);
  assert.deepEqual(fake.requests.flat(), ids(0, 40));
  assert.ok((fake.requests[0] as string[]).length >= 14);
  assert.deepEqual(fake.stored.get("logs-a/id-1"), { i: 1, service: "a" });
  assert.deepEqual(fake.stored.get("logs-b/id-2"), { i: 2, service: "b" });
  assert.deepEqual(fake.filterPaths[0], BULK_FILTER_PATH);
  assert.equal(sink.stats.docsIndexed, 40);
  assert.equal(sink.stats.requests, 3);
  assert.ok(sink.stats.bytesSent > 40 * 60);
  assert.deepEqual(sink.takeRejected(), []);
  await sink.close();
});

test("flush() waits for every batch written before it, even when a later one is answered first", async () => {
  const fake = new FakeElasticsearch();
  fake.gated = true;
  const sink = sinkOf(fake, { flushBytes: 1024, concurrency: 2 });
  let n = 0;
  while (fake.requests.length < 2) sink.write(rec(n++)); // fills two bodies
  for (let i = 0; i < 3; i++) sink.write(rec(n++)); // and starts a third
  await tick();
  assert.equal(fake.held, 2, "two requests in flight at once");
  let flushed = false;
  const done = sink.flush().then(() => {
    flushed = true;
  });
  await tick();
  fake.release(fake.held - 1); // the newest request, and the batch the flush sealed
  await tick();
  fake.release(fake.held - 1);
  await tick();
  assert.equal(flushed, false, "the oldest batch is not answered yet");
  assert.ok(sink.pending() > 0);
  fake.release(0);
  await done;
  assert.equal(flushed, true);
  assert.equal(sink.pending(), 0);
  assert.equal(fake.stored.size, n);
  await sink.close();
});

test("a replay is answered 409: counted as duplicates, settled, not rejected", async () => {
  const fake = new FakeElasticsearch();
  const sink = sinkOf(fake);
  for (let i = 0; i < 10; i++) sink.write(rec(i));
  await sink.flush();
  for (let i = 5; i < 15; i++) sink.write(rec(i));
  await sink.flush();
  assert.equal(fake.stored.size, 15);
  assert.equal(sink.stats.docsIndexed, 15);
  assert.equal(sink.stats.duplicates, 5);
  assert.equal(sink.stats.rejected, 0);
  assert.equal(sink.pending(), 0);
  await sink.close();
});

test("only the items answered 429 are sent again, after a pause; flush() resolves when they land", async () => {
  const fake = new FakeElasticsearch();
  const sink = sinkOf(fake);
  for (let i = 0; i < 10; i++) sink.write(rec(i, i % 3 === 0 ? { busy: i === 9 ? 2 : 1 } : {}));
  await sink.flush();
  assert.deepEqual(fake.requests, [ids(0, 10), ["id-0", "id-3", "id-6", "id-9"], ["id-9"]]);
  assert.equal(fake.stored.size, 10);
  assert.equal(sink.stats.retries, 2);
  assert.equal(sink.stats.retriedDocs, 5);
  assert.equal(sink.stats.docsIndexed, 10);
  assert.equal(sink.stats.duplicates, 0);
  await sink.close();
});

test("a document Elasticsearch refuses is rejected with its error type and reason; the rest of its request lands", async () => {
  const fake = new FakeElasticsearch();
  const sink = sinkOf(fake);
  for (let i = 0; i < 10; i++) sink.write(rec(i, i === 4 ? { bad: true } : {}));
  await sink.flush();
  const rejected = sink.takeRejected();
  assert.equal(rejected.length, 1);
  const [r] = rejected;
  assert.equal(r?.rec.value.i, 4);
  assert.equal(r?.reason, REJECT_REASON);
  assert.equal(r?.errorType, "document_parsing_exception");
  assert.equal(r?.status, 400);
  assert.equal(r?.message, "document_parsing_exception: failed to parse field [i] of type [long]");
  assert.equal(fake.stored.size, 9);
  assert.equal(fake.requests.length, 1, "a refused document is not retried");
  assert.deepEqual(sink.stats.rejectedByType, { document_parsing_exception: 1 });
  assert.deepEqual(sink.takeRejected(), [], "taken once");
  await sink.close();
});

test("records the caller's functions fail on are rejected as document-error; write() never throws for them", async () => {
  const fake = new FakeElasticsearch();
  const sink = sinkOf(fake, {
    toDocument: (r) => {
      if (r.value.i === 1) throw new Error("no service");
      return r.value;
    },
    id: (r) => {
      if (r.value.i === 2) throw new Error("no id");
      return `id-${r.value.i}`;
    },
  });
  const cyclic = rec(3) as Rec<Doc> & { value: { self?: unknown } };
  cyclic.value.self = cyclic.value;
  for (const r of [rec(0), rec(1), rec(2), cyclic, rec(4)]) sink.write(r);
  assert.equal(sink.pending(), 2);
  await sink.flush();
  const rejected = sink.takeRejected();
  assert.deepEqual(
    rejected.map((r) => [r.rec.value.i, r.errorType, r.status]),
    [
      [1, DOCUMENT_ERROR, null],
      [2, DOCUMENT_ERROR, null],
      [3, DOCUMENT_ERROR, null],
    ],
  );
  assert.equal(rejected[0]?.message, "no service");
  assert.match(rejected[2]?.message ?? "", /circular/);
  assert.deepEqual(fake.requests, [["id-0", "id-4"]]);
  await sink.close();
});

test("a document given as JSON text is sent as it is; text with a line break is rejected, not sent", async () => {
  const fake = new FakeElasticsearch();
  const sink = sinkOf(fake, {
    toDocument: (r) => (r.value.i === 1 ? '{"i":1,\n"x":2}' : `{"i":${r.value.i},"text":true}`),
  });
  for (let i = 0; i < 3; i++) sink.write(rec(i));
  await sink.flush();
  assert.deepEqual(fake.stored.get("logs-svc/id-2"), { i: 2, text: true });
  assert.equal(fake.stored.size, 2);
  assert.deepEqual(
    sink.takeRejected().map((r) => [r.rec.value.i, r.errorType, r.message]),
    [[1, DOCUMENT_ERROR, "the document's JSON text has a line break"]],
  );
  await sink.close();
});

test("a request the transport aborts (not close()) is retried, as is one that timed out", async () => {
  const fake = new FakeElasticsearch();
  fake.failures = [new errors.TimeoutError("Request timed out"), new errors.RequestAbortedError("Request aborted")];
  const sink = sinkOf(fake, { retries: { max: 2, initialDelay: 1, maxDelay: 2 } });
  for (let i = 0; i < 3; i++) sink.write(rec(i));
  await sink.flush();
  assert.equal(fake.requests.length, 3);
  assert.equal(fake.stored.size, 3);
  await sink.close();
});

test("a request failing as a whole is retried; when retries run out flush() rejects, nothing is dropped, the next flush() sends again", async () => {
  const fake = new FakeElasticsearch();
  const refused = () => new errors.ConnectionError("connect ECONNREFUSED 127.0.0.1:9200");
  const overloaded = () =>
    new errors.ResponseError({
      body: {
        error: { type: "es_rejected_execution_exception", reason: "rejected execution of coordinating operation" },
      },
      statusCode: 429,
      headers: {},
      warnings: null,
      meta: {} as never,
    });
  fake.failures = [refused(), overloaded(), refused(), overloaded()];
  const sink = sinkOf(fake, { retries: { max: 2, initialDelay: 1, maxDelay: 2 } });
  for (let i = 0; i < 5; i++) sink.write(rec(i));
  await assert.rejects(
    sink.flush(),
    (e: unknown) =>
      e instanceof ElasticsearchSinkError &&
      e.attempts === 3 &&
      /5 documents not indexed after 3 attempts/.test(e.message) &&
      /Elasticsearch overloaded or unreachable/.test(e.message),
  );
  assert.equal(sink.pending(), 5);
  assert.equal(fake.stored.size, 0);
  // Written after the failure: held until the next flush(), then sent with the rest.
  sink.write(rec(5));
  await tick();
  assert.equal(fake.requests.length, 3, "nothing is sent between a failure and the next flush()");
  await sink.flush();
  assert.equal(sink.pending(), 0);
  assert.deepEqual(
    [...fake.stored.keys()].sort(),
    ids(0, 6).map((id) => `logs-svc/${id}`),
  );
  assert.equal(sink.stats.retries, 3);
  await sink.close();
});

test("an error no retry fixes (the index may not be created) rejects flush() at once, with a hint", async () => {
  const fake = new FakeElasticsearch();
  const sink = sinkOf(fake);
  sink.write(rec(0));
  sink.write(rec(1, { noIndex: true }));
  await assert.rejects(sink.flush(), (e: unknown) => {
    assert.ok(e instanceof ElasticsearchSinkError);
    assert.match(e.message, /index_not_found_exception/);
    assert.match(e.message, /action\.auto_create_index/);
    return true;
  });
  assert.equal(fake.requests.length, 1, "not retried");
  assert.equal(sink.stats.retries, 0);
  assert.equal(sink.pending(), 1, "the other document is settled");
  await sink.close();
});

test("a body larger than the server takes is halved until the document too large stands alone", async () => {
  const fake = new FakeElasticsearch();
  const sink = sinkOf(fake);
  for (let i = 0; i < 8; i++) sink.write(rec(i, i === 5 ? { huge: true } : {}));
  await sink.flush();
  const rejected = sink.takeRejected();
  assert.deepEqual(
    rejected.map((r) => [r.rec.value.i, r.errorType, r.status]),
    [[5, "request_entity_too_large", 413]],
  );
  assert.equal(fake.stored.size, 7);
  assert.deepEqual(fake.requests, [ids(0, 8), ids(0, 4), ids(4, 8), ids(4, 6), ["id-4"], ["id-5"], ids(6, 8)]);
  await sink.close();
});

test("flushInterval sends a partial batch when a slot is free; while every slot is busy the batch keeps filling", async () => {
  const fake = new FakeElasticsearch();
  fake.gated = true;
  const sink = sinkOf(fake, { flushInterval: 10, concurrency: 1 });
  sink.write(rec(0));
  await until(() => fake.requests.length === 1);
  assert.deepEqual(fake.requests, [["id-0"]], "sent by the timer, no flush()");
  for (let i = 1; i < 6; i++) {
    sink.write(rec(i));
    await new Promise((r) => setTimeout(r, 15));
  }
  assert.equal(fake.requests.length, 1, "the only slot is busy: nothing more is sent");
  fake.release();
  await until(() => fake.requests.length === 2);
  assert.deepEqual(fake.requests[1], ids(1, 6), "what waited goes as one body once the slot frees");
  fake.gated = false;
  fake.release();
  await sink.flush();
  assert.equal(fake.stored.size, 6);
  await sink.close();
});

test("close() stops sending and rejects a waiting flush(); write after close throws", async () => {
  const fake = new FakeElasticsearch();
  fake.gated = true;
  const sink = sinkOf(fake);
  sink.write(rec(0));
  const flushed = sink.flush();
  await tick();
  await sink.close();
  await assert.rejects(flushed, /closed/);
  assert.throws(() => sink.write(rec(1)), /write after close/);
  await assert.rejects(sink.flush(), /flush after close/);
});

test("options are validated, naming the option", () => {
  const fake = new FakeElasticsearch();
  assert.throws(() => sinkOf(fake, { flushBytes: 10 }), /flushBytes/);
  assert.throws(() => sinkOf(fake, { concurrency: 0 }), /concurrency/);
  assert.throws(() => sinkOf(fake, { flushInterval: "soon" }), /flushInterval: not a duration/);
  assert.throws(() => sinkOf(fake, { index: "" }), /index must be/);
  assert.throws(
    () =>
      new ElasticsearchSink<Doc>({
        toDocument: (r) => r.value,
        index: "x",
        id: (r) => String(r.value.i),
        logger: quiet,
      }),
    /give `node`/,
  );
  assert.throws(() => sinkOf(fake, { node: "ftp://x" } as never), /node: an http\(s\) URL/);
  const sink = sinkOf(fake);
  assert.equal(sink.highWater, 50_000);
  assert.equal(sink.config.flushBytes, 5 * 1024 * 1024);
  assert.equal(sink.config.concurrency, 2);
});

test("metrics: documents, duplicates, rejections by type, requests, pending", async () => {
  const fake = new FakeElasticsearch();
  const registry = new Registry();
  const sink = sinkOf(fake, { registry, name: "es-logs" });
  for (let i = 0; i < 4; i++) sink.write(rec(i, i === 3 ? { bad: true } : {}));
  sink.write(rec(0));
  await sink.flush();
  sink.write(rec(9));
  const text = await registry.metrics();
  assert.match(text, /weir_elasticsearch_sink_docs_indexed_total\{sink="es-logs"\} 3/);
  assert.match(text, /weir_elasticsearch_sink_duplicates_total\{sink="es-logs"\} 1/);
  assert.match(
    text,
    /weir_elasticsearch_sink_rejected_total\{sink="es-logs",error_type="document_parsing_exception"\} 1/,
  );
  assert.match(text, /weir_elasticsearch_sink_requests_total\{sink="es-logs"\} 1/);
  assert.match(text, /weir_elasticsearch_sink_pending_docs\{sink="es-logs"\} 1/);
  assert.match(text, /weir_elasticsearch_sink_bulk_seconds_count\{sink="es-logs"\} 1/);
  await sink.close();
});
