// The parts of LogSearch that build requests; what Elasticsearch answers is tested against the real
// server in test/integration/logs-search.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Client } from "@elastic/elasticsearch";
import { PiiKey } from "../pii/key.ts";
import { PiiMasker } from "../pii/masker.ts";
import { QueryError } from "../query/query.ts";
import { SearchError } from "./errors.ts";
import { decodeCursor, encodeCursor, LogSearch, NEWEST_FIRST } from "./search.ts";

// Never called: building requests needs no server.
const client = new Client({ node: "http://127.0.0.1:9" });
const key = new PiiKey("k".repeat(32), "given");
const search = new LogSearch({ client, prefix: "t_logs", pii: new PiiMasker({}, key) });

test("the filter of a request: the compiled query, the services, the levels", () => {
  const { filter, services } = search.compileFilter({
    query: "service:gift-svc msg:timeout",
    services: ["gift-svc"],
    levels: ["warn+"],
  });
  assert.deepEqual(services, ["gift-svc"]);
  assert.deepEqual(filter, [
    { bool: { must: [{ match_phrase: { message: "timeout" } }], filter: [{ term: { "service.name": "gift-svc" } }] } },
    { terms: { "service.name": ["gift-svc"] } },
    { terms: { "log.level": ["WARN", "ERROR", "FATAL"] } },
  ]);
  assert.deepEqual(search.compileFilter({}), { filter: [], services: undefined });
});

test("a scope becomes a filter of the query; asking outside it is refused", () => {
  const scope = ["gift-svc"];
  assert.deepEqual(search.compileFilter({ scope }).filter, [{ terms: { "service.name": ["gift-svc"] } }]);
  assert.throws(
    () => search.compileFilter({ scope, services: ["room-svc"] }),
    (e: SearchError) => e.kind === "forbidden",
  );
  assert.throws(
    () => search.compileFilter({ scope, query: "service:room-svc" }),
    (e: SearchError) => e.kind === "forbidden",
  );
});

test("a phone number typed in the query is searched as its token; the raw number is in no request", () => {
  const { filter } = search.compileFilter({ query: "13800138000" });
  const text = JSON.stringify(filter);
  assert.ok(!text.includes("13800138000"));
  assert.match(text, /pii:ph_[0-9a-f]{16}/);
  const noKey = new LogSearch({ client, prefix: "t_logs" });
  assert.throws(() => noKey.compileFilter({ query: "13800138000" }), QueryError);
});

test("levels: one, a list, at least one; mistakes said as level mistakes", () => {
  assert.deepEqual(search.levelQuery(["error"]), { term: { "log.level": "ERROR" } });
  assert.deepEqual(search.levelQuery(["warn,error"]), { terms: { "log.level": ["WARN", "ERROR"] } });
  assert.deepEqual(search.levelQuery(["50"]), { term: { "log.level": "ERROR" } });
  assert.throws(
    () => search.levelQuery(["eror"]),
    (e: SearchError) => e.kind === "bad-request" && /did you mean ERROR/.test(e.message),
  );
  assert.throws(
    () => search.levelQuery(["error OR 1"]),
    (e: SearchError) => e.kind === "bad-request",
  );
});

test("cursors round-trip the sort values; anything else is refused", () => {
  const sort = [1763641801250, 37, "logs-gift-svc-2026.11.20", 4711];
  assert.deepEqual(decodeCursor(encodeCursor(sort)), sort);
  assert.equal(NEWEST_FIRST.length, sort.length);
  for (const bad of ["", "not base64!", encodeCursor([1, 2]), encodeCursor([1, 2, 3, { a: 1 }] as never)]) {
    assert.throws(
      () => decodeCursor(bad),
      (e: SearchError) => e instanceof SearchError && e.kind === "bad-request",
    );
  }
});

test("limits are checked before Elasticsearch is asked", async () => {
  await assert.rejects(
    search.search({ from: 0, to: 1, limit: 10_001 }),
    /limit 10001 is over the limit of 10000 \(maxResults\)/,
  );
  await assert.rejects(
    search.search({ from: 0, to: 40 * 86_400_000 }),
    /the window is 40d long, over the limit of 31d \(maxWindow\)/,
  );
  await assert.rejects(search.search({ from: 0, to: 1, query: `${"NOT ".repeat(1000)}a` }), /1000 levels deep/);
  await assert.rejects(search.trace({ traceId: "a b", from: 0, to: 1 }), /is not a trace id/);
  await assert.rejects(search.context({ hitId: "x", before: -1 }), /lines -1/);
  await assert.rejects(
    search.histogram({ from: 0, to: 86_400_000, intervalMs: 1000 }),
    /86401 buckets, over the limit of 10000 \(maxBuckets\)/,
  );
});
