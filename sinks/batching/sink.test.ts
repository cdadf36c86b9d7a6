// The batching sink's contract, on a sink as small as a new store's: JSON lines, one request function
// per try (a stand-in store that holds requests, fails them, refuses or defers some records on demand).
// The store's own sinks test their encoding and answers beside them (clickhouse/, elasticsearch/).
import assert from "node:assert/strict";
import { test } from "node:test";
import pino from "pino";
import { Registry } from "prom-client";
import type { Rec } from "../../stream/types.ts";
import { type Batch, reserve } from "./batch.ts";
import { RetriesSchema } from "./options.ts";
import {
  type BatchingSettings,
  BatchingSink,
  BatchingSinkError,
  type SendFailure,
  type SinkMetricSet,
} from "./sink.ts";

interface Item {
  n: number;
  /** The store refuses it, for good. */
  refuse?: boolean;
  /** The store asks for it again this many times. */
  busy?: number;
  /** The sink cannot encode it. */
  unencodable?: boolean;
  pad?: string;
}

/** A store's answer to one request: indices (in the request) refused for good, and to send again. */
interface Answer {
  refused: number[];
  again: number[];
}

/** A failure of a whole request, as a store's client throws it. */
class StoreError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
  }
}

/** The stand-in store: records each request, stores what it accepts, fails on demand. */
class FakeStore {
  readonly requests: number[][] = [];
  readonly stored: number[] = [];
  /** Whole-request failures to throw, one per request, before answering normally. */
  failures: StoreError[] = [];
  /** While set, each request waits in `waiting` until answer() lets it through. */
  gated = false;
  readonly waiting: Array<{ items: number[]; go: () => void }> = [];
  inFlight = 0;
  mostInFlight = 0;
  private readonly arrivals: Array<{ count: number; arrived: () => void }> = [];
  private readonly busyLeft = new Map<number, number>();

  readonly request = async (items: Item[], signal: AbortSignal): Promise<Answer> => {
    const ns = items.map((i) => i.n);
    this.requests.push(ns);
    for (const a of this.arrivals) if (a.count <= this.requests.length) a.arrived();
    this.mostInFlight = Math.max(this.mostInFlight, ++this.inFlight);
    try {
      if (this.gated) {
        await new Promise<void>((go, stop) => {
          this.waiting.push({ items: ns, go });
          signal.addEventListener("abort", () => stop(new StoreError("aborted", false)));
        });
      }
      const failure = this.failures.shift();
      if (failure) throw failure;
      const answer: Answer = { refused: [], again: [] };
      items.forEach((item, k) => {
        const busy = this.busyLeft.get(item.n) ?? item.busy ?? 0;
        if (item.refuse) answer.refused.push(k);
        else if (busy > 0) {
          this.busyLeft.set(item.n, busy - 1);
          answer.again.push(k);
        } else this.stored.push(item.n);
      });
      return answer;
    } finally {
      this.inFlight--;
    }
  };

  /** Lets the held request at `at` (the oldest by default) be answered. */
  answer(at = 0): void {
    (this.waiting.splice(at, 1)[0] ?? assert.fail("no request is held")).go();
  }

  /**
   * Resolves once `count` requests have arrived, however late timers run on a loaded machine. Its own
   * deadline keeps the event loop alive meanwhile (the sink's interval timer does not).
   */
  requested(count: number): Promise<void> {
    if (this.requests.length >= count) return Promise.resolve();
    return new Promise((arrived, late) => {
      const deadline = setTimeout(() => late(new Error(`request ${count} did not come within 10 s`)), 10_000);
      this.arrivals.push({
        count,
        arrived: () => {
          clearTimeout(deadline);
          arrived();
        },
      });
    });
  }
}

const quiet = pino({ level: "silent" });

/** A whole sink for a store that takes JSON lines: its encoding, its request, what a failure means. */
class LinesSink extends BatchingSink<Item, { rec: Rec<Item>; reason: string; message: string }, SendFailure> {
  readonly retriedRecords: number[] = [];
  released = false;

  constructor(
    private readonly store: FakeStore,
    settings: Partial<BatchingSettings> = {},
  ) {
    super({
      kind: "LinesSink",
      name: "lines",
      flushInterval: 3_600_000,
      concurrency: 1,
      merge: false,
      highWater: 1000,
      retries: { max: 3, initialDelay: 1, maxDelay: 2 },
      logger: quiet,
      ...settings,
    });
  }

  protected encode(rec: Rec<Item>, out: Batch<Item>): boolean {
    if (rec.value.unencodable) {
      this.refuse({ rec, reason: "rejected-by-sink", message: "cannot be encoded" });
      return false;
    }
    const line = JSON.stringify(rec.value);
    reserve(out, line.length * 3 + 1);
    out.size += out.buf.write(line, out.size);
    out.buf[out.size++] = 0x0a;
    return true;
  }

  protected async send(b: Batch<Item>): Promise<void> {
    const items = b.unsettled();
    const lines = b.bytesOf(items).toString("utf8").split("\n").slice(0, -1);
    const started = performance.now();
    const answer = await this.store.request(
      lines.map((l) => JSON.parse(l) as Item),
      this.signal,
    );
    this.requestSeconds(started);
    for (const k of answer.refused) {
      const rec = this.settle(b, items[k] as number);
      if (rec) this.refuse({ rec, reason: "rejected-by-sink", message: `record ${rec.value.n} refused` });
    }
    if (answer.again.length === 0) return;
    const again = new Set(answer.again);
    items.forEach((i, k) => {
      if (!again.has(k)) this.settle(b, i);
    });
    throw this.failed({ kind: "transient", message: `${again.size} records asked to be sent again` });
  }

  protected classify(error: unknown): SendFailure {
    const e = error as StoreError;
    return { kind: e.transient ? "transient" : "fatal", message: e.message, retryAfterMs: e.retryAfterMs };
  }

  protected giveUp(f: SendFailure, attempts: number, records: number): Error {
    return new BatchingSinkError(`${records} records not stored after ${attempts} attempts: ${f.message}`, f, attempts);
  }

  protected override retried(records: number): void {
    this.retriedRecords.push(records);
  }

  protected override async release(): Promise<void> {
    this.released = true;
  }

  protected metricSet(): SinkMetricSet {
    return {
      labels: { sink: this.name },
      counters: [["weir_lines_sink_retries_total", "Retries.", () => this.retriedRecords.length]],
      pending: ["weir_lines_sink_pending_records", "Records not settled."],
      failing: ["weir_lines_sink_failing", "Tries failed in a row."],
      latency: ["weir_lines_sink_request_seconds", "Request durations."],
    };
  }
}

const rec = (n: number, extra: Partial<Item> = {}): Rec<Item> => ({ key: null, ts: 0, value: { n, ...extra } });
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);
/** Lets the answers given so far run through the sink (promise callbacks, no timers). */
const answered = () => new Promise((r) => setImmediate(r));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("concurrency 1: batches go one at a time in the order filled; batches queued behind a request are merged up to maxRecords", async () => {
  const store = new FakeStore();
  store.gated = true;
  const sink = new LinesSink(store, { maxRecords: 4, merge: true });
  for (const n of range(0, 4)) sink.write(rec(n)); // full: sealed and sent
  await answered();
  for (const batch of [[4], [5, 6], [7, 8, 9], [10]]) {
    for (const n of batch) sink.write(rec(n));
    void sink.flush(); // seals a small batch behind the held request
  }
  await answered();
  assert.equal(store.waiting.length, 1, "one request at a time");
  store.gated = false;
  store.answer();
  await sink.flush();
  assert.deepEqual(store.requests, [range(0, 4), [4, 5, 6], [7, 8, 9, 10]]);
  assert.deepEqual(store.stored, range(0, 11));
  assert.equal(store.mostInFlight, 1);
  assert.equal(sink.pending(), 0);
  await sink.close();
});

test("concurrency n: up to n requests in flight, settled in any order; flush() waits for every batch written before it, not after", async () => {
  const store = new FakeStore();
  store.gated = true;
  const sink = new LinesSink(store, { maxRecords: 2, concurrency: 3 });
  for (const n of range(0, 8)) sink.write(rec(n)); // four full batches
  await answered();
  assert.equal(store.waiting.length, 3, "three in flight, the fourth waits for a slot");
  let first = false;
  const flushed = sink.flush().then(() => {
    first = true;
  });
  sink.write(rec(8)); // after the flush: it does not wait for this one
  let second = false;
  const later = sink.flush().then(() => {
    second = true;
  });
  store.answer(2); // the newest first
  await answered();
  store.answer(1);
  await answered();
  assert.equal(first, false, "the oldest batch is not answered yet");
  assert.ok(sink.pending() > 0);
  store.answer(0);
  await answered();
  assert.equal(store.waiting.length, 2, "the waiting batches took the freed slots");
  store.answer(0);
  await flushed;
  assert.equal(first, true);
  assert.equal(second, false, "the batch written after the first flush is still held");
  store.answer(0);
  await later;
  assert.deepEqual(
    [...store.stored].sort((a, b) => a - b),
    range(0, 9),
  );
  assert.equal(store.mostInFlight, 3);
  assert.equal(sink.pending(), 0);
  await sink.close();
});

test("records the store refuses, and records that cannot be encoded, come back through takeRejected; the rest are acknowledged", async () => {
  const store = new FakeStore();
  const sink = new LinesSink(store, { maxRecords: 5 });
  for (const n of range(0, 12)) sink.write(rec(n, { refuse: n % 4 === 1, unencodable: n === 6 }));
  assert.equal(sink.pending(), 11, "a record that cannot be encoded is not pending");
  await sink.flush();
  assert.deepEqual(store.stored, [0, 2, 3, 4, 7, 8, 10, 11]);
  assert.deepEqual(
    sink.takeRejected().map((r) => [r.rec.value.n, r.message]),
    [
      [6, "cannot be encoded"],
      [1, "record 1 refused"],
      [5, "record 5 refused"],
      [9, "record 9 refused"],
    ],
  );
  assert.deepEqual(sink.takeRejected(), [], "taken once");
  assert.equal(store.requests.flat().includes(6), false);
  assert.equal(sink.pending(), 0);
  await sink.close();
});

test("transient failures are retried after a pause; after partial progress only the records not settled go again", async () => {
  const store = new FakeStore();
  store.failures = [new StoreError("connection refused", true)];
  const sink = new LinesSink(store, { maxRecords: 6 });
  for (const n of range(0, 6)) sink.write(rec(n, { busy: n === 2 ? 2 : n === 4 ? 1 : 0, refuse: n === 5 }));
  await sink.flush();
  assert.deepEqual(store.requests, [range(0, 6), range(0, 6), [2, 4], [2]]);
  assert.deepEqual(sink.retriedRecords, [6, 2, 1], "each retry counts the records it sends again");
  assert.deepEqual([...store.stored].sort(), [0, 1, 2, 3, 4]);
  assert.deepEqual(
    sink.takeRejected().map((r) => r.rec.value.n),
    [5],
    "refused once, not again on the retries",
  );
  assert.equal(sink.pending(), 0);
  await sink.close();
});

test("a retry waits at least as long as the store's Retry-After (up to maxDelay)", async () => {
  const store = new FakeStore();
  store.failures = [new StoreError("slow down", true, 80)];
  const sink = new LinesSink(store, { retries: { max: 3, initialDelay: 1, maxDelay: 1000 } });
  sink.write(rec(0));
  const started = performance.now();
  await sink.flush();
  assert.ok(performance.now() - started >= 75, "waited for Retry-After");
  assert.deepEqual(store.stored, [0]);
  await sink.close();
});

test("a failure no retry fixes rejects flush() at once; nothing is sent until the next flush(), which sends the failed batch first", async () => {
  const store = new FakeStore();
  store.failures = [new StoreError("no such table", false)];
  const sink = new LinesSink(store, { maxRecords: 3 });
  for (const n of range(0, 3)) sink.write(rec(n));
  await assert.rejects(
    sink.flush(),
    (e: unknown) => e instanceof BatchingSinkError && e.attempts === 1 && /no such table/.test(e.message),
  );
  assert.deepEqual(sink.retriedRecords, []);
  for (const n of range(3, 7)) sink.write(rec(n)); // one full batch sealed, one filling
  await answered();
  assert.equal(store.requests.length, 1, "nothing is sent between a failure and the next flush()");
  assert.equal(sink.pending(), 7);
  await sink.flush();
  assert.deepEqual(store.requests, [range(0, 3), range(0, 3), range(3, 6), [6]]);
  assert.deepEqual(store.stored, range(0, 7));
  assert.equal(sink.pending(), 0);
  await sink.close();
});

test("when retries run out flush() rejects with the attempts made; the records settled before stay settled", async () => {
  const store = new FakeStore();
  const sink = new LinesSink(store, { retries: { max: 2, initialDelay: 1, maxDelay: 2 } });
  for (const n of range(0, 4)) sink.write(rec(n, { busy: n === 3 ? 100 : 0 }));
  await assert.rejects(sink.flush(), (e: unknown) => {
    assert.ok(e instanceof BatchingSinkError);
    assert.equal(e.attempts, 3);
    assert.match(e.message, /^1 records not stored after 3 attempts: 1 records asked to be sent again/);
    return true;
  });
  assert.deepEqual(store.stored, [0, 1, 2]);
  assert.equal(sink.pending(), 1);
  await assert.rejects(sink.flush(), /after 3 attempts/, "the next flush() tries again");
  assert.deepEqual(store.requests.slice(3), [[3], [3], [3]], "only the record not settled");
  await sink.close();
});

test("retries are unbounded by default: a store down for 40 tries is waited out, /health says so from the third failed try, and it clears when the store answers", async () => {
  const store = new FakeStore();
  store.failures = Array.from({ length: 40 }, () => new StoreError("connect ECONNREFUSED 127.0.0.1:9200", true));
  const registry = new Registry();
  const sink = new LinesSink(store, { retries: RetriesSchema.parse({ initialDelay: 1, maxDelay: 2 }) });
  sink.registerMetrics(registry);
  assert.equal(RetriesSchema.parse({}).max, undefined, "no retries.max by default");
  for (const n of range(0, 5)) sink.write(rec(n));
  assert.deepEqual(sink.health(), { ok: true, failing: 0, failingMs: 0, pending: 5, detail: "ok" });
  const flushed = sink.flush();
  let settled = false;
  void flushed.then(() => (settled = true));
  await store.requested(2);
  assert.equal(sink.health().ok, true, "one failed try is not an outage");
  await store.requested(10);
  const h = sink.health();
  assert.equal(h.ok, false);
  assert.ok(h.failing >= 3, `${h.failing} failed tries`);
  assert.equal(h.pending, 5);
  assert.match(
    h.detail,
    /^\d+ tries failed in a row for \d+\.\d s, 5 records wait \(retried without limit\); last error: connect ECONNREFUSED/,
  );
  assert.match(await registry.metrics(), /^weir_lines_sink_failing\{sink="lines"\} ([3-9]|\d\d)$/m);
  assert.equal(settled, false, "flush() waits for the store");
  await flushed;
  assert.equal(store.requests.length, 41, "40 failed tries and the one that landed");
  assert.deepEqual(store.stored, range(0, 5));
  assert.deepEqual(sink.health(), { ok: true, failing: 0, failingMs: 0, pending: 0, detail: "ok" });
  assert.match(await registry.metrics(), /^weir_lines_sink_failing\{sink="lines"\} 0$/m);
  await sink.close();
});

test("retries.max set: when it runs out flush() rejects loudly, nothing is settled, refused or dropped, /health says the sink gave up; the next flush() tries again", async () => {
  const store = new FakeStore();
  store.failures = Array.from({ length: 6 }, () => new StoreError("connect ECONNREFUSED 127.0.0.1:8123", true));
  const sink = new LinesSink(store, {
    maxRecords: 3,
    retries: RetriesSchema.parse({ max: 2, initialDelay: 1, maxDelay: 2 }),
  });
  for (const n of range(0, 5)) sink.write(rec(n)); // one batch sealed, one filling
  await assert.rejects(sink.flush(), (e: unknown) => {
    assert.ok(e instanceof BatchingSinkError);
    assert.equal(e.attempts, 3, "the first try and retries.max retries");
    assert.equal(e.failure.kind, "transient");
    assert.match(e.message, /^3 records not stored after 3 attempts: connect ECONNREFUSED/);
    return true;
  });
  assert.deepEqual(store.requests, [range(0, 3), range(0, 3), range(0, 3)]);
  assert.equal(sink.pending(), 5, "every record still waits: the runtime commits no offset past them");
  assert.deepEqual(
    sink.takeRejected(),
    [],
    "an outage refuses nothing: no dead letter for a record the store never saw",
  );
  const h = sink.health();
  assert.equal(h.ok, false);
  assert.match(h.detail, /^gave up \(flush\(\) rejected\): 3 records not stored after 3 attempts/);
  await answered();
  assert.equal(store.requests.length, 3, "nothing is sent after giving up until the next flush()");
  // Still down: the next flush() gets a budget of its own and gives up again; then the store is back.
  await assert.rejects(sink.flush(), /after 3 attempts/);
  await sink.flush();
  assert.deepEqual(store.stored, range(0, 5));
  assert.equal(sink.pending(), 0);
  assert.equal(sink.health().ok, true);
  await sink.close();
});

test("a failed batch merged with the batches behind it keeps what was settled: no record is sent or refused twice", async () => {
  const store = new FakeStore();
  const sink = new LinesSink(store, { maxRecords: 10, merge: true, retries: { max: 1, initialDelay: 1, maxDelay: 1 } });
  for (const n of range(0, 4)) sink.write(rec(n, { refuse: n === 1, busy: n === 2 ? 3 : 0 }));
  await assert.rejects(sink.flush(), /1 records not stored after 2 attempts/);
  sink.write(rec(4));
  sink.write(rec(5));
  await sink.flush();
  assert.deepEqual(store.requests, [range(0, 4), [2], [2, 4, 5], [2]], "the next try merges record 2 with 4 and 5");
  assert.deepEqual(store.stored, [0, 3, 4, 5, 2]);
  assert.deepEqual(
    sink.takeRejected().map((r) => r.rec.value.n),
    [1],
  );
  assert.equal(sink.pending(), 0);
  await sink.close();
});

test("close() while a request is in flight aborts it, rejects the waiting flush(), releases the client; later writes and flushes fail", async () => {
  const store = new FakeStore();
  store.gated = true;
  const sink = new LinesSink(store);
  sink.write(rec(0));
  const flushed = sink.flush();
  await answered();
  assert.equal(store.waiting.length, 1);
  await sink.close();
  await assert.rejects(flushed, /LinesSink lines: closed/);
  assert.equal(store.inFlight, 0, "close() waited for the aborted request");
  assert.equal(sink.released, true);
  assert.throws(() => sink.write(rec(1)), /LinesSink lines: write after close/);
  await assert.rejects(sink.flush(), /flush after close/);
  await sink.close(); // a second close does nothing
});

test("close() during a retry's pause ends the pause at once", async () => {
  const store = new FakeStore();
  store.failures = [new StoreError("busy", true)];
  const sink = new LinesSink(store, { retries: { max: 3, initialDelay: 60_000, maxDelay: 60_000 } });
  sink.write(rec(0));
  const flushed = sink.flush();
  await store.requested(1);
  await answered();
  assert.deepEqual(sink.retriedRecords, [1], "pausing before its retry");
  const started = performance.now();
  await sink.close();
  assert.ok(performance.now() - started < 1000);
  await assert.rejects(flushed, /closed/);
  assert.equal(store.requests.length, 1);
});

test("backpressure: pending() counts records written and not settled, above highWater until the store catches up", async () => {
  const store = new FakeStore();
  store.gated = true;
  const sink = new LinesSink(store, { maxRecords: 3, highWater: 4 });
  assert.equal(sink.highWater, 4);
  for (const n of range(0, 8)) sink.write(rec(n));
  assert.equal(sink.pending(), 8);
  assert.ok(sink.pending() > sink.highWater, "the runtime would pause its sources");
  const flushed = sink.flush();
  await answered();
  store.answer();
  await answered();
  assert.equal(sink.pending(), 5);
  store.answer();
  await answered();
  assert.equal(sink.pending(), 2);
  store.answer();
  await flushed;
  assert.equal(sink.pending(), 0);
  await sink.close();
});

test("flushInterval without merging: a partial batch goes when a slot is free; while every slot is busy it keeps filling and goes when one frees", async () => {
  const store = new FakeStore();
  store.gated = true;
  const sink = new LinesSink(store, { flushInterval: 10, concurrency: 2 });
  sink.write(rec(0));
  await store.requested(1); // sent by its timer, no flush()
  sink.write(rec(1));
  await store.requested(2); // the second slot
  for (const n of range(2, 5)) {
    sink.write(rec(n));
    await sleep(30); // a timer set before this sleep's has fired when it ends
  }
  assert.equal(store.requests.length, 2, "both slots are busy: nothing more is sent");
  store.answer(1);
  await store.requested(3);
  assert.deepEqual(store.requests, [[0], [1], [2, 3, 4]], "what waited goes as one body once a slot frees");
  store.gated = false;
  store.answer();
  store.answer();
  await sink.flush();
  await sink.close();
});

test("flushInterval with merging: the timer seals batches behind a busy request, and they go out merged while they fit", async () => {
  const store = new FakeStore();
  store.gated = true;
  const sink = new LinesSink(store, { flushInterval: 10, merge: true, maxRecords: 3 });
  sink.write(rec(0));
  await store.requested(1);
  for (const batch of [[1, 2], [3, 4], [5], [6]]) {
    for (const n of batch) sink.write(rec(n));
    await sleep(30); // sealed by its timer
  }
  store.gated = false;
  store.answer();
  await sink.flush();
  // Kept filling instead, the batches would have been [1, 2, 3] (full) and [4, 5, 6].
  assert.deepEqual(store.requests, [[0], [1, 2], [3, 4, 5], [6]]);
  await sink.close();
});

test("records of any size survive buffers growing and being used again", async () => {
  const store = new FakeStore();
  const sink = new LinesSink(store, { maxRecords: 7, bufferBytes: 64 });
  const pad = (n: number) => `直播-${n}-${'é😀"\\'.repeat((n * 37) % 500)}`;
  const seen: Item[] = [];
  const original = store.request;
  (store as { request: FakeStore["request"] }).request = (items, signal) => {
    seen.push(...items);
    return original(items, signal);
  };
  for (let round = 0; round < 3; round++) {
    for (const n of range(round * 30, round * 30 + 30)) sink.write(rec(n, { pad: pad(n) }));
    await sink.flush();
  }
  assert.equal(seen.length, 90);
  for (const item of seen) assert.equal(item.pad, pad(item.n));
  assert.deepEqual(store.stored, range(0, 90));
  await sink.close();
});

test("metrics: the store's counters, the pending gauge and the request latency, under the sink's labels", async () => {
  const store = new FakeStore();
  store.failures = [new StoreError("busy", true)];
  const registry = new Registry();
  const sink = new LinesSink(store);
  sink.registerMetrics(registry);
  sink.write(rec(0));
  await sink.flush();
  sink.write(rec(1));
  const text = await registry.metrics();
  assert.match(text, /weir_lines_sink_retries_total\{sink="lines"\} 1/);
  assert.match(text, /weir_lines_sink_pending_records\{sink="lines"\} 1/);
  assert.match(text, /weir_lines_sink_request_seconds_count\{sink="lines"\} 1/, "answered requests only");
  await sink.close();
});
