// The sink's batching, ordering, retries and splitting, against a stand-in for the HTTP client that
// answers as ClickHouse 18.16 does. Whether the real server agrees is test/integration/clickhouse-sink.test.ts.
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { test } from "node:test";
import type { ClickHouseClient } from "@clickhouse/client";
import pino from "pino";
import { Registry } from "prom-client";
import type { Rec } from "../../stream/types.ts";
import { classify, cleanMessage } from "./errors.ts";
import type { ColumnSpec } from "./rowbinary.ts";
import { ClickHouseSink, ClickHouseSinkError } from "./sink.ts";

interface Row {
  i: number;
  bad?: boolean;
}

/** The RowBinary tests' table: `i UInt32, s String`; a row whose s is "bad" is refused by the server. */
const RB_COLUMNS: ColumnSpec[] = [
  { name: "i", type: "UInt32" },
  { name: "s", type: "String" },
];

function rowBinaryRows(body: Buffer): Row[] {
  const rows: Row[] = [];
  for (let at = 0; at < body.length; ) {
    const i = body.readUInt32LE(at);
    const n = body[at + 4] as number; // the tests' strings are shorter than 128 bytes: a one-byte length
    const s = body.toString("utf8", at + 5, at + 5 + n);
    at += 5 + n;
    rows.push(s === "bad" ? { i, bad: true } : { i });
  }
  return rows;
}

/** Answers INSERTs like 18.16: a bad row fails the whole request, naming its 1-based row when `hints`. */
class FakeClickHouse {
  requests: Row[][] = [];
  queries: string[] = [];
  /** What system.columns lists for the table. */
  columns: ColumnSpec[] = RB_COLUMNS;
  columnQueries = 0;
  transientFailures = 0;
  fatal = false;
  hints = true;
  delayMs = 0;
  get stored(): number[] {
    return this.requests.flatMap((r) => (r.some((x) => x.bad) ? [] : r.map((x) => x.i)));
  }
  async exec(params: { query: string; values: Readable }): Promise<{ stream: Readable }> {
    const chunks: Buffer[] = [];
    for await (const c of params.values) chunks.push(Buffer.from(c));
    const body = Buffer.concat(chunks);
    const rows = params.query.endsWith("FORMAT RowBinary")
      ? rowBinaryRows(body)
      : body
          .toString("utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Row);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    this.queries.push(params.query);
    if (this.transientFailures > 0) {
      this.transientFailures--;
      throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8123"), { code: "ECONNREFUSED" });
    }
    if (this.fatal) {
      throw new Error(
        "Code: 60, e.displayText() = DB::Exception: Table weir.nope doesn't exist., e.what() = DB::Exception\n",
      );
    }
    const bad = rows.findIndex((r) => r.bad);
    this.requests.push(bad >= 0 ? rows.map((r) => ({ ...r, bad: true })) : rows);
    if (bad >= 0) {
      const at = this.hints ? `: (at row ${bad + 1})\n` : "";
      throw new Error(
        `Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected " before: x (while read the value of key i)${at}, e.what() = DB::Exception\n`,
      );
    }
    return { stream: Readable.from([]) };
  }
  async query(params: { query: string }): Promise<{ json(): Promise<unknown> }> {
    this.columnQueries++;
    assert.match(params.query, /FROM system\.columns WHERE database = 'weir' AND table = 't'/);
    if (this.transientFailures > 0) {
      this.transientFailures--;
      throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8123"), { code: "ECONNREFUSED" });
    }
    return { json: async () => this.columns };
  }
  async close(): Promise<void> {}
}

function sinkOf(fake: FakeClickHouse, options: Partial<ConstructorParameters<typeof ClickHouseSink<Row>>[0]> = {}) {
  return new ClickHouseSink<Row>({
    url: "http://127.0.0.1:8123",
    database: "weir",
    table: "t",
    client: fake as unknown as ClickHouseClient,
    logger: pino({ level: "silent" }),
    retries: { max: 3, initialDelay: 1, maxDelay: 5 },
    toRow: (r) => r.value,
    ...options,
  });
}

const rec = (i: number, bad = false): Rec<Row> => ({ key: null, ts: 0, value: bad ? { i, bad } : { i } });

function rowBinarySinkOf(
  fake: FakeClickHouse,
  options: Partial<ConstructorParameters<typeof ClickHouseSink<Row>>[0]> = {},
) {
  return sinkOf(fake, {
    format: "RowBinary",
    columns: RB_COLUMNS,
    // The server refuses s = "bad" (the encoder cannot know); i = -1 does not fit UInt32 (the encoder refuses it).
    toRow: (r) => ({ i: r.value.i, s: r.value.bad ? "bad" : `row ${r.value.i}` }),
    ...options,
  });
}

test("a full batch is sent at once, the rest on flush, in order, one INSERT per batch", async () => {
  const fake = new FakeClickHouse();
  const sink = sinkOf(fake, { batchSize: 4, flushInterval: "1h" });
  for (let i = 0; i < 10; i++) sink.write(rec(i));
  assert.equal(sink.pending(), 10);
  await sink.flush();
  assert.equal(sink.pending(), 0);
  assert.deepEqual(fake.stored, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.ok(fake.requests.every((r) => r.length <= 4));
  assert.equal(fake.queries[0], "INSERT INTO `weir`.`t` FORMAT JSONEachRow");
  assert.equal(sink.stats.rowsWritten, 10);
  await sink.flush(); // nothing pending: resolves at once
  await sink.close();
});

test("a batch is sent when its first row is flushInterval old", async () => {
  const fake = new FakeClickHouse();
  const sink = sinkOf(fake, { batchSize: 1000, flushInterval: 20 });
  sink.write(rec(1));
  sink.write(rec(2));
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual(fake.stored, [1, 2]);
  assert.equal(sink.pending(), 0);
  await sink.close();
});

test("small batches queued behind a slow INSERT go out together, still in order", async () => {
  const fake = new FakeClickHouse();
  fake.delayMs = 30;
  const sink = sinkOf(fake, { batchSize: 3, flushInterval: "1h" });
  for (let i = 0; i < 3; i++) sink.write(rec(i)); // sealed, sent
  for (let i = 3; i < 5; i++) {
    sink.write(rec(i));
    const f = sink.flush(); // seals a batch of one while the first is in flight
    if (i === 4) await f;
  }
  assert.deepEqual(fake.stored, [0, 1, 2, 3, 4]);
  assert.deepEqual(
    fake.requests.map((r) => r.length),
    [3, 2],
  );
  await sink.close();
});

test("transient failures are retried; flush resolves once ClickHouse has the rows", async () => {
  const fake = new FakeClickHouse();
  fake.transientFailures = 2;
  const sink = sinkOf(fake);
  sink.write(rec(1));
  await sink.flush();
  assert.deepEqual(fake.stored, [1]);
  assert.equal(sink.stats.retries, 2);
});

test("flush rejects when retries run out, keeps the rows, and the next flush tries again", async () => {
  const fake = new FakeClickHouse();
  fake.transientFailures = 100;
  const sink = sinkOf(fake, { retries: { max: 2, initialDelay: 1, maxDelay: 2 } });
  sink.write(rec(1));
  sink.write(rec(2));
  await assert.rejects(sink.flush(), (e: unknown) => e instanceof ClickHouseSinkError && e.attempts === 3);
  assert.equal(sink.pending(), 2);
  sink.write(rec(3)); // buffered while failed; not sent before the next flush
  fake.transientFailures = 0;
  await sink.flush();
  assert.deepEqual(fake.stored, [1, 2, 3]);
  assert.equal(sink.pending(), 0);
  await sink.close();
});

test("a failure no retry can fix rejects flush at once, naming the table", async () => {
  const fake = new FakeClickHouse();
  fake.fatal = true;
  const sink = sinkOf(fake);
  sink.write(rec(1));
  await assert.rejects(sink.flush(), /refused the insert into weir\.t: Code 60: Table weir\.nope doesn't exist/);
  assert.equal(sink.stats.retries, 0);
  await sink.close();
});

for (const hints of [true, false]) {
  test(`bad rows are split out and rejected, the others land in order (${hints ? "with" : "without"} the server's row number)`, async () => {
    const fake = new FakeClickHouse();
    fake.hints = hints;
    const sink = sinkOf(fake, { batchSize: 100 });
    const bad = new Set([0, 17, 18, 63, 99]);
    for (let i = 0; i < 100; i++) sink.write(rec(i, bad.has(i)));
    await sink.flush();
    assert.deepEqual(
      fake.stored,
      Array.from({ length: 100 }, (_, i) => i).filter((i) => !bad.has(i)),
    );
    const rejected = sink.takeRejected();
    assert.deepEqual(
      rejected.map((r) => r.rec.value.i),
      [...bad],
    );
    for (const r of rejected) {
      assert.equal(r.reason, "sink-rejected");
      assert.match(r.message, /^Code 27: Cannot parse input/);
    }
    assert.deepEqual(sink.takeRejected(), []);
    assert.equal(sink.stats.rejected, 5);
    assert.equal(sink.stats.batches, 1);
    assert.equal(sink.pending(), 0);
    await sink.close();
  });
}

test("rows of any size and script survive the batch buffer growing and being reused", async () => {
  const fake = new FakeClickHouse();
  const sink = sinkOf(fake, { batchSize: 50, flushInterval: "1h" });
  const text = (i: number) => `直播-${i}-${'é😀\n"'.repeat(i * 37)}`;
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 120; i++) sink.write({ key: null, ts: 0, value: { i, text: text(i) } as Row });
    await sink.flush();
  }
  const rows = fake.requests.flat() as Array<Row & { text: string }>;
  assert.equal(rows.length, 360);
  for (const r of rows) assert.equal(r.text, text(r.i));
  assert.equal(sink.stats.bytesWritten, Buffer.byteLength(rows.map((r) => `${JSON.stringify(r)}\n`).join("")));
  await sink.close();
});

test("a batch that fails while being split goes again from its first row not settled: no row inserted or rejected twice", async () => {
  const fake = new FakeClickHouse();
  const sink = sinkOf(fake, { batchSize: 100, retries: { max: 1, initialDelay: 1, maxDelay: 1 } });
  // The rows after the bad one fail twice for a passing reason: retries run out mid-split.
  const exec = fake.exec.bind(fake);
  let calls = 0;
  fake.exec = (params) => {
    calls++;
    if (calls === 4 || calls === 5) fake.transientFailures = 1;
    return exec(params);
  };
  for (let i = 0; i < 10; i++) sink.write(rec(i, i === 4));
  await assert.rejects(sink.flush(), (e: unknown) => e instanceof ClickHouseSinkError && e.attempts === 2);
  assert.equal(sink.pending(), 5);
  await sink.flush();
  assert.deepEqual(
    fake.requests.map((r) => r.map((x) => x.i)),
    [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [0, 1, 2, 3], [4], [5, 6, 7, 8, 9]],
  );
  assert.deepEqual(fake.stored, [0, 1, 2, 3, 5, 6, 7, 8, 9]);
  assert.deepEqual(
    sink.takeRejected().map((r) => r.rec.value.i),
    [4],
  );
  assert.equal(sink.stats.rejected, 1);
  assert.equal(sink.pending(), 0);
  await sink.close();
});

test("a record whose toRow throws is rejected, not thrown", async () => {
  const fake = new FakeClickHouse();
  const sink = sinkOf(fake, {
    toRow: (r) => {
      if (r.value.i === 2) throw new Error("no endpoint");
      return r.value;
    },
  });
  for (let i = 0; i < 4; i++) sink.write(rec(i));
  await sink.flush();
  assert.deepEqual(fake.stored, [0, 1, 3]);
  const [r] = sink.takeRejected();
  assert.equal(r?.rec.value.i, 2);
  assert.equal(r?.message, "toRow failed: no endpoint");
});

test("options are validated", () => {
  const fake = new FakeClickHouse();
  assert.throws(() => sinkOf(fake, { batchSize: 0 }), /batchSize/);
  assert.throws(() => sinkOf(fake, { url: "ftp://x" }), /url/);
  assert.throws(() => sinkOf(fake, { flushInterval: "soon" }), /flushInterval: not a duration/);
  const s = sinkOf(fake);
  assert.equal(s.config.batchSize, 10_000);
  assert.equal(s.config.flushInterval, 1000);
  assert.equal(s.highWater, 50_000);
});

test("metrics are read from the counters when scraped", async () => {
  const fake = new FakeClickHouse();
  const registry = new Registry();
  const sink = sinkOf(fake, { registry, name: "health" });
  sink.write(rec(1));
  sink.write(rec(2, true));
  await sink.flush();
  const text = await registry.metrics();
  assert.match(text, /weir_clickhouse_sink_rows_written_total\{sink="health",table="weir.t"\} 1/);
  assert.match(text, /weir_clickhouse_sink_rejected_total\{sink="health",table="weir.t"\} 1/);
  assert.match(text, /weir_clickhouse_sink_insert_seconds_count\{sink="health",table="weir.t"\} 1/);
});

test("errors are classified by ClickHouse's code, in 18.16's format and the modern one", () => {
  const old = classify(
    new Error(
      "Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected , before: .5: (at row 12)\n, e.what() = DB::Exception\n",
    ),
  );
  assert.deepEqual(old, {
    kind: "rows",
    code: 27,
    row: 12,
    message: "Code 27: Cannot parse input: expected , before: .5: (at row 12)",
  });
  assert.equal(classify(Object.assign(new Error("x"), { code: "252" })).kind, "transient");
  assert.equal(
    classify(new Error("Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS) (version 24.8.1)")).kind,
    "transient",
  );
  assert.equal(
    classify(new Error("Code: 81. DB::Exception: Database x doesn't exist. (UNKNOWN_DATABASE)")).kind,
    "fatal",
  );
  assert.equal(classify(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })).kind, "transient");
  assert.equal(classify(new Error("Timeout error.")).kind, "transient");
  assert.equal(
    cleanMessage("Code: 60. DB::Exception: Table a.b doesn't exist. (UNKNOWN_TABLE) (version 24.8.1)"),
    "Code 60: Table a.b doesn't exist. (UNKNOWN_TABLE)",
  );
});

test("RowBinary: rows land in order, one INSERT per batch naming its columns; the columns are checked once", async () => {
  const fake = new FakeClickHouse();
  const sink = rowBinarySinkOf(fake, { batchSize: 4, flushInterval: "1h" });
  for (let i = 0; i < 10; i++) sink.write(rec(i));
  await sink.flush();
  assert.deepEqual(fake.stored, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(
    fake.requests.map((r) => r.length),
    [4, 4, 2],
  );
  assert.equal(fake.queries[0], "INSERT INTO `weir`.`t` (`i`, `s`) FORMAT RowBinary");
  assert.equal(fake.columnQueries, 1);
  sink.write(rec(10));
  await sink.flush();
  assert.equal(fake.columnQueries, 1);
  // 4 bytes of i, a length byte, "row N"
  assert.equal(sink.stats.bytesWritten, 10 * (4 + 1 + 5) + (4 + 1 + 6));
  await sink.close();
});

test("RowBinary: a value that does not fit its column is rejected at write, naming the column; the rest land", async () => {
  const fake = new FakeClickHouse();
  const sink = rowBinarySinkOf(fake, {
    toRow: (r) => (r.value.i === 2 ? { i: -1, s: "x" } : r.value.i === 3 ? { i: 3, s: 3 } : { i: r.value.i, s: "ok" }),
  });
  for (let i = 0; i < 5; i++) sink.write(rec(i));
  assert.equal(sink.pending(), 3);
  const rejected = sink.takeRejected();
  assert.deepEqual(
    rejected.map((r) => [r.rec.value.i, r.reason, r.message]),
    [
      [2, "sink-rejected", "column i (UInt32): -1 is not an integer in 0..4294967295"],
      [3, "sink-rejected", "column s (String): 3 is not a string"],
    ],
  );
  await sink.flush();
  assert.deepEqual(fake.stored, [0, 1, 4]);
  assert.equal(sink.stats.rejected, 2);
  await sink.close();
});

for (const hints of [true, false]) {
  test(`RowBinary: rows the server refuses are split out by their recorded ends, also in merged batches (${hints ? "with" : "without"} the row number)`, async () => {
    const fake = new FakeClickHouse();
    fake.hints = hints;
    fake.delayMs = 5;
    const sink = rowBinarySinkOf(fake, { batchSize: 100, flushInterval: "1h" });
    const bad = new Set([0, 17, 18, 63, 99, 130, 131]);
    // A first batch goes out alone; the small ones sealed while it is in flight are merged into one INSERT.
    for (let i = 0; i < 100; i++) sink.write(rec(i, bad.has(i)));
    for (let i = 100; i < 140; i += 10) {
      for (let j = i; j < i + 10; j++) sink.write(rec(j, bad.has(j)));
      void sink.flush();
    }
    await sink.flush();
    assert.deepEqual(
      fake.stored,
      Array.from({ length: 140 }, (_, i) => i).filter((i) => !bad.has(i)),
    );
    assert.deepEqual(
      sink
        .takeRejected()
        .map((r) => r.rec.value.i)
        .sort((a, b) => a - b),
      [...bad],
    );
    assert.equal(sink.stats.batches, 2, "the 4 small batches went out merged");
    assert.equal(sink.pending(), 0);
    await sink.close();
  });
}

test("RowBinary: columns that differ from the table's stop the sink before any INSERT; the next flush checks again", async () => {
  const fake = new FakeClickHouse();
  fake.columns = [
    { name: "i", type: "UInt64" },
    { name: "other", type: "String" },
  ];
  const sink = rowBinarySinkOf(fake);
  sink.write(rec(1));
  await assert.rejects(
    sink.flush(),
    (e: unknown) =>
      e instanceof ClickHouseSinkError &&
      e.failure.kind === "fatal" &&
      e.message.includes("column i is UInt64 in the table, not UInt32; the table has no column s") &&
      e.message.includes("migrate the table"),
  );
  assert.deepEqual(fake.queries, []);
  fake.columns = [];
  await assert.rejects(sink.flush(), /the table does not exist \(create it: weir migrate\)/);
  fake.columns = [...RB_COLUMNS, { name: "extra", type: "Array(String)" }]; // a column not written takes its default
  await sink.flush();
  assert.deepEqual(fake.stored, [1]);
  await sink.close();
});

test("RowBinary: reading the table's columns is retried like an INSERT", async () => {
  const fake = new FakeClickHouse();
  fake.transientFailures = 2;
  const sink = rowBinarySinkOf(fake);
  sink.write(rec(1));
  await sink.flush();
  assert.deepEqual(fake.stored, [1]);
  assert.equal(sink.stats.retries, 2);
  assert.equal(fake.columnQueries, 3);
  await sink.close();
});

test("RowBinary options are validated", () => {
  const fake = new FakeClickHouse();
  assert.throws(() => sinkOf(fake, { format: "RowBinary" }), /columns: RowBinary needs the table's columns/);
  assert.throws(() => sinkOf(fake, { columns: RB_COLUMNS }), /columns: only for format "RowBinary"/);
  assert.throws(
    () => sinkOf(fake, { format: "RowBinary", columns: [{ name: "d", type: "Decimal(9, 2)" }] }),
    /columns: column type Decimal\(9, 2\): RowBinary is written here for .* use JSONEachRow/,
  );
});
