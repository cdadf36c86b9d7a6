// The search API made safe for every team (issue 14), against the local stack's real Elasticsearch and
// ClickHouse: the two reproductions (NOT x 1,000 to the ClickHouse histogram, which stopped the
// ClickHouse server; ( x 2,000, which overflowed the parser's stack) answer 400 before either store
// is asked, and both stores stay up; the limits refuse by name; every query sent carries the stores'
// limits; a token is held to its rate, concurrency and tails; the audit line.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, test } from "node:test";
import type { ClickHouseClient } from "@clickhouse/client";
import type { Client } from "@elastic/elasticsearch";
import pino from "pino";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";
import { type LogsApi, serveLogsApi } from "../../pipelines/logs/api/server.ts";
import { hashToken, TokenStore } from "../../pipelines/logs/api/tokens.ts";
import { ClickHouseLogHistogram, searchClickHouseClient } from "../../pipelines/logs/search/clickhouse-histogram.ts";
import { SEARCH_QUERY_SETTINGS, SEARCH_USER } from "../../pipelines/logs/search/clickhouse-search-user.ts";
import { searchLimits } from "../../pipelines/logs/search/limits.ts";
import { LogSearch } from "../../pipelines/logs/search/search.ts";
import {
  createLogsFixture,
  type LogsFixture,
  recordingClickHouse,
  recordingElasticsearch,
  type Sent,
} from "../support/logs-fixture.ts";
import { clickhouseClient, elasticsearchClient, endpoints, requireStack } from "../support/stack.ts";

const GIFT = "wlt_limits-test-gift-only";
const ALL = "wlt_limits-test-all";
const tokens = new TokenStore([
  { name: "gift-oncall", sha256: hashToken(GIFT), services: ["gift-svc"] },
  { name: "sre", sha256: hashToken(ALL), services: "*" },
]);

let es: Client;
let ch: ClickHouseClient;
let fixture: LogsFixture;
let api: LogsApi;
let search: LogSearch;
let histogram: ClickHouseLogHistogram;
const sent: Sent[] = [];
const logLines: Array<Record<string, unknown>> = [];

function logger() {
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of chunk.toString("utf8").split("\n")) if (l) logLines.push(JSON.parse(l));
      done();
    },
  });
  return pino({ level: "info" }, sink);
}

async function get(path: string, token = GIFT, base = api) {
  const res = await fetch(`${base.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json()) as { error?: Record<string, unknown> } & Record<string, unknown>;
  return { status: res.status, body, headers: res.headers };
}

/** Both stores answer, and ClickHouse was not restarted since `uptime` was read. */
async function storesUp(uptimeBefore?: number): Promise<number> {
  const health = await es.cluster.health({ timeout: "5s" });
  assert.ok(["green", "yellow"].includes(health.status), `Elasticsearch is ${health.status}`);
  const [row] = await (await ch.query({ query: "SELECT uptime() AS up", format: "JSONEachRow" })).json<{
    up: number;
  }>();
  const up = Number(row?.up);
  if (uptimeBefore !== undefined) assert.ok(up >= uptimeBefore, `ClickHouse restarted: uptime ${up} < ${uptimeBefore}`);
  return up;
}

const q = (query: string) => encodeURIComponent(query);

before(async () => {
  await requireStack();
  es = elasticsearchClient();
  ch = clickhouseClient();
  fixture = await createLogsFixture(es, ch);
  const limits = searchLimits();
  search = new LogSearch({
    client: recordingElasticsearch(es, sent),
    prefix: fixture.prefix,
    pii: fixture.masker,
    limits,
  });
  histogram = new ClickHouseLogHistogram({
    url: endpoints.clickhouseUrl,
    database: fixture.database,
    table: "logs",
    pii: fixture.masker,
    limits,
    client: recordingClickHouse(searchClickHouseClient(endpoints.clickhouseUrl), sent),
  });
  api = await serveLogsApi({
    search,
    clickhouse: histogram,
    tokens,
    logger: logger(),
    masker: fixture.masker,
    apiLimits: { rate: 1000, burst: 1000, concurrency: 16, tails: 1 },
    pollMs: 200,
  });
});

after(async () => {
  await api?.close();
  await histogram?.close();
  await fixture?.drop();
  await ch?.close();
  await es?.close();
});

test("NOT x 1,000 to the ClickHouse histogram (issue 14): 400 naming maxDepth before any store is asked; both stores stay up", async (t) => {
  const up = await storesUp();
  sent.length = 0;
  const began = performance.now();
  const r = await get(`/v1/logs/histogram?since=1d&store=clickhouse&q=${q(`${"NOT ".repeat(1000)}a`)}`);
  t.diagnostic(`answered ${r.status} in ${(performance.now() - began).toFixed(1)} ms`);
  assert.equal(r.status, 400);
  assert.equal(r.body.error?.code, "limit_exceeded");
  assert.deepEqual([r.body.error?.limit, r.body.error?.value, r.body.error?.max], ["maxDepth", 1000, 16]);
  assert.match(String(r.body.error?.message), /the query nests 1000 levels deep, over the limit of 16 \(maxDepth\)/);
  assert.equal(sent.length, 0, "nothing was sent to a store");
  await storesUp(up);
});

test("( x 2,000 (a 500 from a stack overflow before): 400 naming maxDepth; NOT x 40 to Elasticsearch: a readable 400", async (t) => {
  const up = await storesUp();
  const began = performance.now();
  const parens = await get(`/v1/logs/search?since=1h&q=${q(`${"(".repeat(2000)}a${")".repeat(2000)}`)}`);
  t.diagnostic(`( x 2000: ${parens.status} in ${(performance.now() - began).toFixed(1)} ms`);
  assert.equal(parens.status, 400);
  assert.deepEqual([parens.body.error?.limit, parens.body.error?.value], ["maxDepth", 2000]);
  const nots = await get(`/v1/logs/search?since=1h&q=${q(`${"NOT ".repeat(40)}a`)}`);
  assert.equal(nots.status, 400);
  assert.match(String(nots.body.error?.message), /40 levels deep, over the limit of 16 \(maxDepth\)/);
  assert.doesNotMatch(String(nots.body.error?.message), /failed to parse|must_not|bool/);
  await storesUp(up);
});

test("the deepest and widest query the limits allow runs on both stores; NOT NOT is simplified away", async () => {
  const deepest = `${"NOT (level:error OR ".repeat(8)}13800138000${")".repeat(8)}`;
  for (const store of ["elasticsearch", "clickhouse"]) {
    const r = await get(`/v1/logs/histogram?since=1h&store=${store}&q=${q(deepest)}`, ALL);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  const widest = Array.from({ length: 128 }, (_, i) => `w${i}`).join(" OR ");
  assert.equal((await get(`/v1/logs/histogram?since=1h&store=clickhouse&q=${q(widest)}`, ALL)).status, 200);
  assert.equal((await get(`/v1/logs/search?since=1h&q=${q(widest)}`, ALL)).status, 200);
  const plain = await get(`/v1/logs/search?since=1h&limit=1000&q=${q("level:error")}`, ALL);
  const doubled = await get(`/v1/logs/search?since=1h&limit=1000&q=${q("NOT NOT NOT NOT level:error")}`, ALL);
  assert.deepEqual(doubled.body.total, plain.body.total);
  assert.ok((plain.body.total as { value: number }).value > 0);
});

test("limits of a request, by name: terms, wildcards, window, lines, buckets", async () => {
  const refusal = async (path: string, limit: string, value: number, max: number) => {
    const r = await get(path, ALL);
    assert.equal(r.status, 400, path);
    assert.deepEqual(
      [r.body.error?.code, r.body.error?.limit, r.body.error?.value, r.body.error?.max],
      ["limit_exceeded", limit, value, max],
    );
    assert.match(String(r.body.error?.message), new RegExp(`\\(${limit}\\)`));
  };
  const words = Array.from({ length: 129 }, (_, i) => `w${i}`).join(" ");
  await refusal(`/v1/logs/search?q=${q(words)}`, "maxTerms", 129, 128);
  await refusal(`/v1/logs/search?q=${q("host:a*b*c*d*e*f")}`, "maxWildcardStars", 5, 4);
  await refusal(`/v1/logs/search?q=${q("msg:*out")}`, "leadingWildcards", 1, 0);
  await refusal(`/v1/logs/search?q=${q("x".repeat(4097))}`, "maxChars", 4097, 4096);
  await refusal("/v1/logs/search?since=40d", "maxWindow", 40 * 86_400_000, 31 * 86_400_000);
  await refusal("/v1/logs/histogram?since=40d&store=clickhouse", "maxWindow", 40 * 86_400_000, 31 * 86_400_000);
  await refusal("/v1/logs/search?limit=10001", "maxResults", 10_001, 10_000);
  await refusal("/v1/logs/trace/abc?limit=100001", "maxTraceLines", 100_001, 100_000);
  await refusal("/v1/logs/histogram?since=1d&interval=1s", "maxBuckets", 86_401, 10_000);
});

test("Elasticsearch: every search carries a timeout and a bounded size; the cluster's max_clause_count is read and respected", async () => {
  sent.length = 0;
  await get("/v1/logs/search?since=1h&limit=50&q=timeout", ALL);
  await get("/v1/logs/histogram?since=1h&store=elasticsearch&q=timeout", ALL);
  await get(`/v1/logs/trace/${"0".repeat(32)}`, ALL);
  const searches = sent.filter((s) => s.store === "elasticsearch");
  assert.ok(searches.length >= 3);
  for (const s of searches) {
    assert.equal(s.params.timeout, "10000ms");
    assert.ok(typeof s.params.size === "number" && s.params.size <= 10_000, JSON.stringify(s.params.size));
  }
  const cluster = await search.esQueryLimits();
  assert.ok(cluster.maxClauseCount >= 1024 && cluster.maxNestedDepth >= 20, JSON.stringify(cluster));
  // With the query limits raised as far as the configuration allows, 1,024 phone numbers (each looked
  // for in three text fields and the attributes) need more clauses than Elasticsearch allows: refused by its name.
  const wide = new LogSearch({
    client: es,
    prefix: fixture.prefix,
    pii: fixture.masker,
    limits: searchLimits({ maxChars: 65_536, maxTerms: 1024 }),
  });
  const phones = Array.from({ length: 1024 }, (_, i) => `138${String(i).padStart(8, "0")}`).join(" OR ");
  await assert.rejects(
    wide.search({ from: Date.now() - 3_600_000, to: Date.now(), query: phones }),
    (e: Error & { limit?: string; value?: number; max?: number }) => {
      assert.equal(e.limit, "indices.query.bool.max_clause_count");
      assert.equal(e.max, cluster.maxClauseCount);
      assert.ok((e.value as number) > cluster.maxClauseCount);
      return true;
    },
  );
});

test("ClickHouse: every query carries the search profile's limits, as the read-only search user", async () => {
  sent.length = 0;
  assert.equal((await get("/v1/logs/histogram?since=1h&store=clickhouse&q=timeout")).status, 200);
  const queries = sent.filter((s) => s.store === "clickhouse");
  assert.equal(queries.length, 1);
  const settings = queries[0]?.params.clickhouse_settings as Record<string, string>;
  for (const name of [
    "max_ast_depth",
    "max_ast_elements",
    "max_query_size",
    "max_execution_time",
    "max_result_rows",
    "readonly",
  ] as const) {
    assert.equal(settings[name], String(SEARCH_QUERY_SETTINGS[name]), name);
  }
  assert.equal(histogram.user, SEARCH_USER);
  // The user the stack created: it reads, it cannot write, and a query cannot raise its limits.
  const asUser = searchClickHouseClient(endpoints.clickhouseUrl);
  try {
    const [row] = await (
      await asUser.query({ query: "SELECT value FROM system.settings WHERE name = 'readonly'", format: "JSONEachRow" })
    ).json<{ value: string }>();
    assert.equal(row?.value, "1");
    await assert.rejects(
      asUser.command({ query: `CREATE TABLE ${fixture.database}.nope (a UInt8) ENGINE = Memory` }),
      /readonly/i,
    );
    await assert.rejects(
      asUser.query({ query: "SELECT 1", clickhouse_settings: { max_execution_time: 3600 } }),
      /Cannot override setting \(max_execution_time\) in readonly mode/,
    );
  } finally {
    await asUser.close();
  }
  // The token's scope is in the SQL ClickHouse ran.
  assert.match(String(queries[0]?.params.query), / AND service IN \('gift-svc'\)/);
});

test("a token is held to its rate (429, Retry-After) and its tails; other tokens are not", async () => {
  const strict = await serveLogsApi({
    search,
    tokens,
    logger: pino({ level: "silent" }),
    apiLimits: { rate: 0.5, burst: 2, concurrency: 4, tails: 1 },
  });
  try {
    assert.equal((await get("/v1/logs/search?since=5m", GIFT, strict)).status, 200);
    assert.equal((await get("/v1/logs/search?since=5m", GIFT, strict)).status, 200);
    const third = await get("/v1/logs/search?since=5m", GIFT, strict);
    assert.equal(third.status, 429);
    assert.equal(third.headers.get("retry-after"), "2");
    assert.deepEqual([third.body.error?.code, third.body.error?.limit], ["too_many_requests", "rate"]);
    assert.equal((await get("/v1/logs/search?since=5m", ALL, strict)).status, 200, "another token's budget is its own");
  } finally {
    await strict.close();
  }
  // One tail per token here: a second one is refused while the first is open, and allowed once it closed.
  const ac = new AbortController();
  const first = await fetch(`${api.url}/v1/logs/tail?backlog=0`, {
    headers: { authorization: `Bearer ${GIFT}` },
    signal: ac.signal,
  });
  assert.equal(first.status, 200);
  const second = await get("/v1/logs/tail?backlog=0");
  assert.equal(second.status, 429);
  assert.equal(second.body.error?.limit, "tails");
  assert.ok(second.headers.get("retry-after"));
  ac.abort();
  for (let i = 0; (await get("/v1/logs/search?since=1m")).status === 200; i++) {
    const again = await fetch(`${api.url}/v1/logs/tail?backlog=0`, { headers: { authorization: `Bearer ${GIFT}` } });
    if (again.status === 200) {
      await again.body?.cancel();
      break;
    }
    await again.body?.cancel();
    assert.ok(i < 50, "the closed tail was never given back");
    await new Promise((r) => setTimeout(r, 100));
  }
});

test("the audit line: token name and scope, store, time, results, the query PII-masked; never the token", async () => {
  logLines.length = 0;
  await get(`/v1/logs/search?since=1h&q=${q("timeout 13800138000")}`);
  const h = await get("/v1/logs/histogram?since=1h&store=clickhouse&q=level:error");
  await get(`/v1/logs/search?q=${q("NOT ".repeat(20))}a`);
  for (let i = 0; logLines.filter((l) => l.msg === "request").length < 3; i++) {
    assert.ok(i < 50, "audit lines missing");
    await new Promise((r) => setTimeout(r, 50));
  }
  const [found, counted, refused] = logLines.filter((l) => l.msg === "request");
  assert.equal(found?.token, "gift-oncall");
  assert.deepEqual(found?.scope, ["gift-svc"]);
  assert.equal(found?.store, "elasticsearch");
  assert.equal(typeof found?.results, "number");
  assert.equal(typeof found?.ms, "number");
  assert.match(String(found?.query), /^timeout 138\*\*\*\*8000\[pii:ph_[0-9a-f]{16}\]$/);
  assert.equal(counted?.store, "clickhouse");
  assert.equal(counted?.results, h.body.total);
  assert.ok((h.body.total as number) > 0);
  assert.equal(refused?.status, 400);
  assert.equal(refused?.limit, "maxDepth");
  const metrics = await (await fetch(`${api.url}/metrics`)).text();
  assert.match(metrics, /weir_logs_api_limited_total\{limit="maxDepth"\} [1-9]/);
  const all = JSON.stringify(logLines);
  for (const secret of [GIFT, ALL, "13800138000"]) assert.ok(!all.includes(secret), secret);
});

test("the CLI: a refusal by a limit is an error naming it, exit 2", async () => {
  const run = await new Promise<{ code: number; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [join(PROJECT_ROOT, "cli", "weir.mjs"), "logs", "histogram", "--store", "clickhouse", `${"NOT ".repeat(1000)}a`],
      {
        env: {
          ...process.env,
          WEIR_ES_URL: endpoints.elasticsearchUrl,
          WEIR_CLICKHOUSE_URL: endpoints.clickhouseUrl,
          WEIR_LOGS_DATABASE: fixture.database,
        },
      },
      (err, _stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stderr }),
    );
  });
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /the query nests 1000 levels deep, over the limit of 16 \(maxDepth\)/);
  await storesUp();
});
