// A property-based fuzz test of the query language through the logs API, against the local stack's
// real Elasticsearch and ClickHouse (fast-check). Queries come from the language's grammar (fields,
// values, phrases, wildcards, ranges, value lists, AND/OR/NOT, parentheses), from deep nesting of every
// kind, from long inputs, and from odd Unicode and bare syntax characters. For every one, through
// search and both stores' histograms, with a token scoped to one service:
//   - never a 500 (nor a 503/504): the answer is 200, or a 400/403 that says what is wrong;
//   - never a store's own error: no store ever refuses a query weir sent (its text never reaches the user);
//   - never a store down: both answer after every batch, and ClickHouse was not restarted;
//   - the scope is in every query sent, checked on what was sent (not only on the results).
//
// CI runs WEIR_FUZZ_RUNS cases per property (default 100). A longer run is one command:
//   WEIR_FUZZ_RUNS=5000 node --import tsx --test --test-force-exit test/integration/logs-search-fuzz.test.ts
// and WEIR_FUZZ_SEED=<seed> replays a run (fast-check prints the seed and the shrunk case of a failure).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ClickHouseClient } from "@clickhouse/client";
import type { Client } from "@elastic/elasticsearch";
import fc from "fast-check";
import pino from "pino";
import { type LogsApi, MAX_URL_BYTES, serveLogsApi } from "../../pipelines/logs/api/server.ts";
import { hashToken, TokenStore } from "../../pipelines/logs/api/tokens.ts";
import { ClickHouseLogHistogram, searchClickHouseClient } from "../../pipelines/logs/search/clickhouse-histogram.ts";
import { LogSearch } from "../../pipelines/logs/search/search.ts";
import {
  createLogsFixture,
  type LogsFixture,
  recordingClickHouse,
  recordingElasticsearch,
  type Sent,
} from "../support/logs-fixture.ts";
import { clickhouseClient, elasticsearchClient, endpoints, requireStack } from "../support/stack.ts";

const RUNS = Number(process.env.WEIR_FUZZ_RUNS ?? 100);
const SEED = process.env.WEIR_FUZZ_SEED !== undefined ? Number(process.env.WEIR_FUZZ_SEED) : undefined;
const GIFT = "wlt_fuzz-gift-only";
const ALL = "wlt_fuzz-all";
const ROUTES = ["search", "histogram-elasticsearch", "histogram-clickhouse"] as const;
/** What a store says when it refuses, in any of its forms: none of it may reach a user. */
const STORE_WORDS =
  /DB::Exception|Code: \d+|x_content|parse_exception|failed to parse|search_phase|root_cause|could not run this|query_shard_exception|too_many_(nested_)?clauses/i;

let es: Client;
let ch: ClickHouseClient;
let fixture: LogsFixture;
let api: LogsApi;
let histogram: ClickHouseLogHistogram;
let chUptime = 0;
const sent: Sent[] = [];
const counts = { cases: 0, ok: 0, refused: 0, sentToStores: 0, byCode: {} as Record<string, number> };

// ---- the queries ------------------------------------------------------------------------------------

const FIELDS = [
  "service",
  "svc",
  "level",
  "trace",
  "status",
  "endpoint",
  "host",
  "logger",
  "latency",
  "uid",
  "error",
  "msg",
  "message",
  "attr.reqId",
  "attributes.thread",
  "attr.x-y",
  "pii",
  "phone",
  "idcard",
  "email",
  "card",
  "sevice",
  "-service",
  "attr.",
  "event.duration",
];
const WORDS = [
  "timeout",
  "gift",
  "gift-svc",
  "pay-svc",
  "room-svc",
  "error",
  "ERROR",
  "warn",
  "50",
  "5xx",
  "503",
  "99999999999999999999",
  "-1",
  "1.5s",
  "250ms",
  "0.0000001ns",
  "99999999999h",
  "9999999h",
  "999999999999999",
  "2147483648",
  "9223372036854775808",
  "65536",
  "13800138000",
  "+86 138 0013 8000",
  "bob@example.com",
  "11010519491231002X",
  "6222021234567890128",
  "pii:ph_0123456789abcdef",
  "/room/{id}/enter",
  "a:b",
  "NaN",
  "Infinity",
  "1e400",
  "0x10",
  "and",
  "or",
  "not",
  "to",
  "TO",
  "null",
  "'; DROP TABLE x --",
  "\\",
  "%_",
  "😀",
  "ｇｉｆｔ",
  "\u0000",
  "\u202e",
];

const word = fc.oneof(
  fc.constantFrom(...WORDS),
  fc.stringMatching(/^[a-z0-9_.\-/]{1,12}$/),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 6 }),
);
/** A word with wildcards in it, or escapes. */
const wildWord = fc
  .tuple(fc.array(word, { minLength: 1, maxLength: 4 }), fc.boolean(), fc.boolean())
  .map(([parts, lead, trail]) => `${lead ? "*" : ""}${parts.join("*")}${trail ? "*" : ""}`.replaceAll(" ", ""));
const phrase = fc
  .string({ unit: "grapheme", maxLength: 20 })
  .map((s) => `"${s.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`);
const value = fc.oneof(word, wildWord, phrase, fc.constant("*"));
const comparison = fc
  .tuple(fc.constantFrom(...FIELDS), fc.constantFrom(">", ">=", "<", "<=", ":>", ":<="), word)
  .map(([f, op, v]) => `${f} ${op} ${v}`);
const range = fc
  .tuple(fc.constantFrom(...FIELDS), fc.oneof(word, fc.constant("*")), fc.oneof(word, fc.constant("*")))
  .map(([f, a, b]) => `${f}:[${a} TO ${b}]`);
const list = fc
  .tuple(
    fc.constantFrom(...FIELDS),
    fc.array(value, { minLength: 1, maxLength: 5 }),
    fc.constantFrom(" OR ", " AND ", " "),
  )
  .map(([f, vs, sep]) => `${f}:(${vs.join(sep)})`);
/** Numbers at the edges of what each store holds, with and without units, in comparisons and ranges of ordered fields. */
const number = fc
  .tuple(
    fc.oneof(
      fc.bigInt({ min: 0n, max: 2n ** 70n }).map(String),
      fc.double({ min: 0, max: 1e25, noNaN: true }).map((d) => String(d)),
      fc.constantFrom("0", "1", "32767", "65535", "65536", "2147483648", "4294967296", "9223372036854775807"),
    ),
    fc.constantFrom("", "", "ns", "us", "µs", "ms", "s", "m", "h", "xx"),
  )
  .map(([n, unit]) => `${n}${unit}`);
const ordered = fc.constantFrom("status", "latency", "duration", "level", "uid", "event.duration");
const numeric = fc.oneof(
  fc.tuple(ordered, fc.constantFrom(">", ">=", "<", "<=", ":"), number).map(([f, op, v]) => `${f} ${op} ${v}`),
  fc.tuple(ordered, number, number).map(([f, a, b]) => `${f}:[${a} TO ${b}]`),
);
const term = fc.oneof(
  { arbitrary: numeric, weight: 2 },
  { arbitrary: word, weight: 3 },
  { arbitrary: phrase, weight: 2 },
  { arbitrary: fc.tuple(fc.constantFrom(...FIELDS), value).map(([f, v]) => `${f}:${v}`), weight: 4 },
  { arbitrary: comparison, weight: 1 },
  { arbitrary: range, weight: 1 },
  { arbitrary: list, weight: 1 },
);

/** Queries of the language's grammar, right or nearly right. */
const grammarQuery: fc.Arbitrary<string> = fc.letrec<{ expr: string }>((tie) => ({
  expr: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    { arbitrary: term, weight: 4 },
    { arbitrary: tie("expr").map((e) => `NOT ${e}`), weight: 1 },
    { arbitrary: tie("expr").map((e) => `(${e})`), weight: 1 },
    {
      arbitrary: fc
        .tuple(tie("expr"), fc.constantFrom(" AND ", " OR ", " ", " and ", " || "), tie("expr"))
        .map(([a, op, b]) => `${a}${op}${b}`),
      weight: 2,
    },
  ),
})).expr;

/** Nesting of every kind, past any limit. */
const deepQuery = fc
  .tuple(fc.integer({ min: 1, max: 3000 }), fc.constantFrom("not", "paren", "list", "mixed", "unclosed", "closers"))
  .map(([n, shape]) => {
    switch (shape) {
      case "not":
        return `${"NOT ".repeat(n)}a`;
      case "paren":
        return `${"(".repeat(n)}a${")".repeat(n)}`;
      case "list":
        return `service:${"(".repeat(n)}gift-svc${")".repeat(n)}`;
      case "mixed":
        return `${"NOT (a OR ".repeat(n)}b${")".repeat(n)}`;
      case "unclosed":
        return `${"(".repeat(n)}a`;
      default:
        return `a${")".repeat(n)}`;
    }
  });

/** Long inputs: many terms, long values, up to and past the length limit. */
const longQuery = fc.oneof(
  fc
    .tuple(term, fc.integer({ min: 1, max: 600 }), fc.constantFrom(" ", " OR ", " AND "))
    .map(([t, n, sep]) => Array(n).fill(t).join(sep)),
  fc.array(term, { minLength: 50, maxLength: 300 }).map((ts) => ts.join(" OR ")),
  fc.string({ minLength: 3000, maxLength: 6000 }),
  fc.integer({ min: 1, max: 5000 }).map((n) => `msg:"${"x".repeat(n)}"`),
);

/** Odd Unicode and bare syntax. */
const garbageQuery = fc.oneof(
  fc.string({ unit: "binary", maxLength: 60 }),
  fc.string({ unit: "grapheme", maxLength: 60 }),
  fc
    .array(
      fc.constantFrom(
        "(",
        ")",
        '"',
        "\\",
        ":",
        "*",
        "[",
        "]",
        "{",
        "}",
        ">",
        "<",
        "=",
        " TO ",
        " AND ",
        " OR ",
        "NOT ",
        "a",
        " ",
        "\t",
        "\n",
        "\u00a0",
        "é",
        "𝔸",
      ),
      {
        maxLength: 80,
      },
    )
    .map((cs) => cs.join("")),
);

// ---- the property ----------------------------------------------------------------------------------

/** Deepest bracket level of `sql` at `at`, outside quoted literals. */
function depthAt(sql: string, at: number): number {
  let depth = 0;
  for (let i = 0; i < at; i++) {
    const c = sql[i];
    if (c === "'") {
      for (i++; i < at && sql[i] !== "'"; i++) if (sql[i] === "\\") i++;
    } else if (c === "(") depth++;
    else if (c === ")") depth--;
  }
  return depth;
}

/** The scope is a condition of the whole query: in the top-level filter, or a top-level AND of the WHERE. */
function checkScope(s: Sent): void {
  if (s.store === "elasticsearch") {
    const filter = (s.params.query as { bool?: { filter?: unknown[] } } | undefined)?.bool?.filter ?? [];
    assert.ok(
      filter.some((f) => JSON.stringify(f) === JSON.stringify({ terms: { "service.name": ["gift-svc"] } })),
      `no scope filter in ${JSON.stringify(s.params.query).slice(0, 300)}`,
    );
    for (const index of String(s.params.index).split(","))
      assert.ok(index.startsWith(`${fixture.prefix}-gift-svc-`), `index ${index} is another service's`);
    return;
  }
  const query = String(s.params.query);
  const where = query.indexOf(" WHERE ");
  const scope = query.indexOf(" AND service IN ('gift-svc')", where);
  assert.ok(where > 0 && scope > where, `no scope in ${query.slice(0, 300)}`);
  assert.equal(depthAt(query.slice(where), scope - where), 0, "the scope is inside brackets");
}

async function storesUp(): Promise<void> {
  const health = await es.cluster.health({ timeout: "5s" });
  assert.ok(["green", "yellow"].includes(health.status), `Elasticsearch is ${health.status}`);
  const [row] = await (await ch.query({ query: "SELECT uptime() AS up", format: "JSONEachRow" })).json<{
    up: number;
  }>();
  assert.ok(Number(row?.up) >= chUptime, "ClickHouse was restarted");
  chUptime = Number(row?.up);
}

async function ask(query: string, route: (typeof ROUTES)[number], scoped: boolean): Promise<void> {
  sent.length = 0;
  const path =
    route === "search"
      ? "/v1/logs/search?since=1h&limit=20"
      : `/v1/logs/histogram?since=1h&store=${route === "histogram-clickhouse" ? "clickhouse" : "elasticsearch"}`;
  const url = `${api.url}${path}&q=${encodeURIComponent(query)}`;
  const res = await fetch(url, { headers: { authorization: `Bearer ${scoped ? GIFT : ALL}` } });
  const text = await res.text();
  // Past the API's 64 KiB of URL, Node answers 431 before weir reads the request: far past any query limit.
  if (res.status === 431 && url.length > MAX_URL_BYTES) {
    counts.cases++;
    counts.byCode[431] = (counts.byCode[431] ?? 0) + 1;
    return;
  }
  counts.cases++;
  counts.byCode[res.status] = (counts.byCode[res.status] ?? 0) + 1;
  counts.sentToStores += sent.length;
  assert.ok(
    [200, 400, 403].includes(res.status),
    `${res.status} for ${JSON.stringify(query.slice(0, 200))}: ${text.slice(0, 300)}`,
  );
  if (res.status === 200) counts.ok++;
  else {
    counts.refused++;
    const error = (JSON.parse(text) as { error: { code: string; message: string } }).error;
    assert.ok(["bad_query", "limit_exceeded", "bad_request", "forbidden"].includes(error.code), error.code);
    assert.doesNotMatch(
      error.message,
      STORE_WORDS,
      `a store's error reached the user for ${JSON.stringify(query.slice(0, 200))}`,
    );
  }
  if (scoped) for (const s of sent) checkScope(s);
  else assert.ok(res.status !== 403);
}

function property(name: string, queries: fc.Arbitrary<string>) {
  test(`${name}: never a 500, never a store's error, both stores up, the scope in every query sent`, async (t) => {
    const began = performance.now();
    const before = counts.cases;
    let n = 0;
    const result = await fc.check(
      fc.asyncProperty(queries, fc.constantFrom(...ROUTES), fc.boolean(), async (query, route, all) => {
        await ask(query, route, !all);
        if (++n % 50 === 0) await storesUp();
      }),
      { numRuns: RUNS, seed: SEED },
    );
    if (result.failed) {
      // The shrunk case, cut: a deep or long one would fill the report.
      const [query, route, all] = result.counterexample ?? [];
      assert.fail(
        `seed ${result.seed}, path ${result.counterexamplePath}: ${route}, ${all ? "all services" : "scoped"}, ` +
          `query ${JSON.stringify(String(query)).slice(0, 300)} (${String(query).length} chars): ${String((result.errorInstance as Error)?.message ?? result.errorInstance).slice(0, 600)}`,
      );
    }
    await storesUp();
    t.diagnostic(`${counts.cases - before} cases in ${((performance.now() - began) / 1000).toFixed(1)} s`);
  });
}

before(async () => {
  await requireStack();
  es = elasticsearchClient();
  ch = clickhouseClient();
  fixture = await createLogsFixture(es, ch);
  const search = new LogSearch({
    client: recordingElasticsearch(es, sent),
    prefix: fixture.prefix,
    pii: fixture.masker,
  });
  histogram = new ClickHouseLogHistogram({
    url: endpoints.clickhouseUrl,
    database: fixture.database,
    table: "logs",
    pii: fixture.masker,
    client: recordingClickHouse(searchClickHouseClient(endpoints.clickhouseUrl), sent),
  });
  api = await serveLogsApi({
    search,
    clickhouse: histogram,
    tokens: new TokenStore([
      { name: "fuzz-gift", sha256: hashToken(GIFT), services: ["gift-svc"] },
      { name: "fuzz-all", sha256: hashToken(ALL), services: "*" },
    ]),
    logger: pino({ level: "silent" }),
    masker: fixture.masker,
    apiLimits: { rate: 10_000, burst: 10_000, concurrency: 16, tails: 1 },
  });
  await storesUp();
});

after(async () => {
  await api?.close();
  await histogram?.close();
  await fixture?.drop();
  await ch?.close();
  await es?.close();
  console.log(
    `fuzz: ${counts.cases} cases (${RUNS} per property), ${counts.ok} answered, ${counts.refused} refused with a 400/403, ${counts.sentToStores} queries sent to the stores; statuses ${JSON.stringify(counts.byCode)}`,
  );
});

property("the grammar", grammarQuery);
property("deep nesting", deepQuery);
property("long inputs", longQuery);
property("odd Unicode and bare syntax", garbageQuery);
