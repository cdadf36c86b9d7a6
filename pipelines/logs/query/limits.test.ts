import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { PiiKey } from "../pii/key.ts";
import { PiiMasker } from "../pii/masker.ts";
import { QueryError } from "./ast.ts";
import { esShape } from "./elasticsearch.ts";
import { MAX_DEPTH_CEILING, QueryLimitError, queryLimits } from "./limits.ts";
import { parseQuery, typedDepth } from "./parser.ts";
import { compileLogQuery, type ResolveOptions } from "./query.ts";

const pii = new PiiMasker({}, new PiiKey("limits-test-key-0123456789abcdef0123456789", "given"));

function refused(
  q: string,
  limit: string,
  value: number,
  max: number,
  options: ResolveOptions = { pii },
): QueryLimitError {
  let caught: unknown;
  try {
    compileLogQuery(q, options);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof QueryLimitError, `${q.slice(0, 60)}: ${String(caught)}`);
  assert.ok(caught instanceof QueryError, "a limit is a query error: the API answers 400, the CLI exits 2");
  assert.equal(caught.limit, limit);
  assert.equal(caught.value, value);
  assert.equal(caught.max, max);
  assert.match(caught.message, new RegExp(`\\(${limit}\\)`), "the message names the limit");
  if (limit !== "leadingWildcards") assert.match(caught.message, new RegExp(`\\b${value}\\b.*\\b${max}\\b`));
  return caught;
}

/** Deepest nesting of brackets outside quoted literals in SQL. */
function sqlDepth(sql: string): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (c === "'") {
      for (i++; i < sql.length && sql[i] !== "'"; i++) if (sql[i] === "\\") i++;
    } else if (c === "(" || c === "[") deepest = Math.max(deepest, ++depth);
    else if (c === ")" || c === "]") depth--;
  }
  return deepest;
}

describe("nesting depth: bounded before the parser descends", () => {
  test("2,000 parentheses (the API's 500 of issue 14) are refused by name, not a stack overflow", () => {
    const e = refused(`${"(".repeat(2000)}a${")".repeat(2000)}`, "maxDepth", 2000, 16);
    assert.equal(e.column, 17, "the first level past the limit");
    assert.ok(e.message.length < 400, "a long query is shown cut around the place");
  });

  test("NOT x 1,000 (what stopped ClickHouse) is refused as 1,000 levels deep", () => {
    refused(`${"NOT ".repeat(1000)}a`, "maxDepth", 1000, 16);
  });

  test("value lists count: service:( nested 17 times", () => {
    refused(`service:${"(".repeat(17)}a${")".repeat(17)}`, "maxDepth", 17, 16);
  });

  test("16 levels pass, 17 do not; the limit is configurable up to a ceiling", () => {
    const deep = (n: number) => `${"NOT (a OR ".repeat(n / 2)}b${")".repeat(n / 2)}`;
    compileLogQuery(deep(16), { pii });
    refused(deep(18), "maxDepth", 18, 16);
    compileLogQuery(deep(18), { pii, limits: queryLimits({ maxDepth: 20 }) });
    assert.throws(() => queryLimits({ maxDepth: MAX_DEPTH_CEILING + 1 }), /parser limits/);
    assert.throws(() => queryLimits({ maxTerms: 0 }), /at least 1/);
  });

  test("the measured depth agrees with the parser's on every shape", () => {
    const shapes = [
      "a",
      "NOT a",
      "NOT NOT a b",
      "(a OR (b AND NOT (c)))",
      "service:(a OR (b OR c)) NOT level:error",
      'NOT "a (phrase)" NOT (x)',
      "NOT service:(a OR b)",
      "a\\(b (c)",
    ];
    for (const q of shapes) {
      const d = typedDepth(q);
      parseQuery(q, queryLimits({ maxDepth: Math.max(1, d) }));
      if (d > 1) assert.throws(() => parseQuery(q, queryLimits({ maxDepth: d - 1 })), QueryLimitError);
    }
  });

  test("at the deepest the limits allow, both stores' queries stay far from their parsers' limits", () => {
    const d = MAX_DEPTH_CEILING;
    const limits = queryLimits({ maxDepth: d });
    const shapes = [
      `${"NOT (a OR ".repeat(d / 2)}13800138000${")".repeat(d / 2)}`,
      `${"(a OR (b ".repeat(d / 2)}attr.k:13800138000${"))".repeat(d / 2)}`,
      `service:${"(a OR ".repeat(d)}b${")".repeat(d)}`,
      `${"NOT ".repeat(d - 1)}(latency:[1ms TO 2ms] OR x)`,
    ];
    for (const q of shapes) {
      const c = compileLogQuery(q, { pii, limits });
      // ClickHouse 18.16 dies past ~935 levels; Elasticsearch refuses past 30 (indices.query.bool.max_nested_depth).
      assert.ok(sqlDepth(c.clickhouse) <= 2 * d + 4, `${q}: ${sqlDepth(c.clickhouse)}`);
      assert.ok(esShape(c.elasticsearch).depth <= d + 2, `${q}: ${esShape(c.elasticsearch).depth}`);
    }
  });
});

describe("terms, wildcards, length", () => {
  test("terms: words, fields and each value of a list count; a repeated term counts once", () => {
    const words = Array.from({ length: 129 }, (_, i) => `w${i}`);
    refused(words.join(" "), "maxTerms", 129, 128);
    refused(`service:(${words.join(" OR ")})`, "maxTerms", 129, 128);
    compileLogQuery(words.slice(0, 128).join(" OR "), { pii });
    compileLogQuery(Array.from({ length: 500 }, () => "same").join(" "), { pii });
    refused("a b c", "maxTerms", 3, 2, { pii, limits: queryLimits({ maxTerms: 2 }) });
  });

  test("wildcards: how many values, how many stars, none leading unless allowed", () => {
    const nine = Array.from({ length: 9 }, (_, i) => `host:h${i}*`).join(" OR ");
    refused(nine, "maxWildcards", 9, 8);
    const stars = refused("host:a*b*c*d*e*f", "maxWildcardStars", 5, 4);
    assert.equal(stars.column, 6);
    const leading = refused("msg:*timeout", "leadingWildcards", 1, 0);
    assert.equal(leading.column, 5);
    refused("*out", "leadingWildcards", 1, 0);
    compileLogQuery("msg:*timeout", { pii, limits: queryLimits({ leadingWildcards: true }) });
    // field:* is a test for presence, and a level wildcard a list of levels: neither is a wildcard search.
    compileLogQuery("trace:* level:w* host:gift-svc-* endpoint:/room/*/enter", { pii });
  });

  test("durations past what both stores hold as 64-bit integers are refused, not sent", () => {
    assert.throws(() => compileLogQuery("latency > 99999999999h", { pii }), /longer than the stores can hold/);
    compileLogQuery("latency:[1ns TO 1000000h]", { pii });
  });

  test("length: the whole query, before anything is parsed", () => {
    refused("a".repeat(4097), "maxChars", 4097, 4096);
    refused("abc", "maxChars", 3, 2, { pii, limits: queryLimits({ maxChars: 2 }) });
  });
});

describe("redundant structure simplified before compiling", () => {
  const same = (a: string, b: string) => {
    const x = compileLogQuery(a, { pii });
    const y = compileLogQuery(b, { pii });
    assert.deepEqual(x.search, y.search, `${a} is ${b}`);
    assert.deepEqual(x.elasticsearch, y.elasticsearch);
    assert.equal(x.clickhouse, y.clickhouse);
  };

  test("NOT NOT x is x; NOT NOT NOT x is NOT x", () => {
    same("NOT NOT level:error", "level:error");
    same("NOT NOT NOT level:error", "NOT level:error");
    same("NOT (NOT (NOT (NOT timeout)))", "timeout");
    assert.equal(
      compileLogQuery("NOT NOT a", { pii }).clickhouse,
      "(positionCaseInsensitiveUTF8(message, 'a') > 0 OR positionCaseInsensitiveUTF8(logger, 'a') > 0 OR has(attr_values, 'a'))",
    );
  });

  test("nested ANDs and ORs flattened, repeated conditions kept once, groups of one unwrapped", () => {
    same("a AND (b AND (c AND a))", "a b c");
    same("((((a))))", "a");
    same("a OR (b OR (a OR c))", "a OR b OR c");
    same("service:gift-svc service:gift-svc level:error", "service:gift-svc level:error");
    same("service:(a OR (b OR a))", "service:(a OR b)");
    same("(a b) OR (b a)", "a b");
  });
});
