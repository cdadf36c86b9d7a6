import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { QueryError, type QueryNode, type Value } from "./ast.ts";
import { parseQuery } from "./parser.ts";

/** A compact form of the tree: (and …), (or …), (not …), field:value, "phrase", field:*, ranges. */
function show(n: QueryNode): string {
  const value = (v: Value) =>
    v.kind === "phrase" ? JSON.stringify(v.text) : v.kind === "wildcard" ? `~${JSON.stringify(v.parts)}` : v.text;
  switch (n.type) {
    case "all":
      return "ALL";
    case "and":
    case "or":
      return `(${n.type} ${n.children.map(show).join(" ")})`;
    case "not":
      return `(not ${show(n.child)})`;
    case "match":
      return n.field ? `${n.field.name}:${value(n.value)}` : value(n.value);
    case "exists":
      return `${n.field.name}:*`;
    case "range":
      return `${n.field.name}${n.lower ? `${n.lower.inclusive ? "[" : "("}${value(n.lower.value)}` : "(-"},${n.upper ? `${value(n.upper.value)}${n.upper.inclusive ? "]" : ")"}` : "-)"}`;
  }
}

const parsed = (q: string) => show(parseQuery(q));

describe("boolean structure", () => {
  test("NOT binds tighter than AND, AND tighter than OR; AND is implied between terms", () => {
    assert.equal(parsed("a OR b c"), "(or a (and b c))");
    assert.equal(parsed("a b OR c"), "(or (and a b) c)");
    assert.equal(parsed("a b c"), "(and a b c)");
    assert.equal(parsed("NOT a b"), "(and (not a) b)");
    assert.equal(parsed("a AND NOT b OR c"), "(or (and a (not b)) c)");
    assert.equal(parsed("NOT NOT a"), "(not (not a))");
    assert.equal(parsed("(a OR b) c"), "(and (or a b) c)");
    assert.equal(parsed("a (b OR (c d))"), "(and a (or b (and c d)))");
  });

  test("keywords in any case, only as whole words", () => {
    assert.equal(parsed("a and b Or c"), "(or (and a b) c)");
    assert.equal(parsed("not a"), "(not a)");
    assert.equal(parsed("order android nothing"), "(and order android nothing)");
  });

  test("an empty query matches everything", () => {
    assert.equal(parsed(""), "ALL");
    assert.equal(parsed("  \t "), "ALL");
  });
});

describe("values", () => {
  test('field:value, field:"phrase", bare terms and phrases; spaces around : allowed', () => {
    assert.equal(
      parsed('service:gift-svc level : error "read timed out" timeout'),
      '(and service:gift-svc level:error "read timed out" timeout)',
    );
    assert.equal(parsed('msg:"upstream did not answer"'), 'msg:"upstream did not answer"');
  });

  test("a value may hold colons, slashes, braces, = and dots", () => {
    assert.equal(
      parsed("trace:ab:cd endpoint:/room/{id}/enter status=200"),
      "(and trace:ab:cd endpoint:/room/{id}/enter status=200)",
    );
    assert.equal(parsed("host:10.0.0.1:8080"), "host:10.0.0.1:8080");
  });

  test("escapes: \\ makes any character literal; quotes and backslashes inside phrases", () => {
    assert.equal(parsed('msg:"a \\"quoted\\" word"'), 'msg:"a \\"quoted\\" word"');
    assert.equal(parsed('"back\\\\slash"'), '"back\\\\slash"');
    assert.equal(parsed("a\\:b"), "a:b", "an escaped colon is no field");
    assert.equal(parsed("gift\\*"), "gift*", "an escaped star is no wildcard");
    assert.equal(parsed("\\AND"), "AND", "an escaped keyword is a word");
    assert.equal(parsed('"OR"'), '"OR"');
    assert.equal(parsed("a\\ b"), "a b", "an escaped space joins");
    assert.equal(parsed("a\\(b\\)"), "a(b)");
  });

  test("wildcards, and field:* for existence", () => {
    assert.equal(parsed("host:gift*"), 'host:~["gift",""]');
    assert.equal(parsed("endpoint:*svc*"), 'endpoint:~["","svc",""]');
    assert.equal(parsed("logger:*"), "logger:*");
    const escaped = parseQuery("logger:\\*");
    assert.ok(
      escaped.type === "match" && escaped.value.kind === "term" && escaped.value.text === "*",
      "escaped: the value *",
    );
    assert.equal(parsed("time*"), '~["time",""]');
  });

  test("ranges: comparisons with or without a colon, brackets with TO in any case, open ends", () => {
    assert.equal(parsed("status >= 500"), "status[500,-)");
    assert.equal(parsed("status>500"), "status(500,-)");
    assert.equal(parsed("status:>=500"), "status[500,-)");
    assert.equal(parsed("latency < 1.5s"), "latency(-,1.5s)");
    assert.equal(parsed("latency<=250ms"), "latency(-,250ms]");
    assert.equal(parsed("status:[500 TO 599]"), "status[500,599]");
    assert.equal(parsed("status:[500 to *]"), "status[500,-)");
    assert.equal(parsed("status:[* TO 499]"), "status(-,499]");
    assert.equal(parsed("status:[* TO *]"), "status:*");
    assert.equal(parsed("status >= 500 latency > 1s"), "(and status[500,-) latency(1s,-))");
  });

  test("value lists: field:(a OR b), nested, with NOT and phrases", () => {
    assert.equal(parsed("service:(gift-svc OR pay-svc)"), "(or service:gift-svc service:pay-svc)");
    assert.equal(
      parsed('service:(a OR (b AND NOT c)) msg:("x y" z)'),
      '(and (or service:a (and service:b (not service:c))) (and msg:"x y" msg:z))',
    );
    assert.equal(parsed("status:(500 or 503) level:error"), "(and (or status:500 status:503) level:error)");
  });
});

describe("errors point at the column and say what was expected", () => {
  const cases: [string, number, RegExp, RegExp?][] = [
    ["a OR", 5, /expected a term after OR/, /quote it: "OR"/],
    ["a AND OR b", 7, /expected a term after AND/],
    ["(a", 3, /expected '\)'/, /'\(' at column 1/],
    ["a)", 2, /a '\)' without its '\('/],
    ["status:", 8, /expected a value after 'status:'/, /status:\*/],
    ['"abc', 1, /unterminated phrase: expected a closing "/],
    ["status:[500 599]", 13, /expected TO in the range/, /status:\[500 TO 599\]/],
    ["status:[500 TO 599", 19, /expected '\]' to close the range/, /column 8/],
    ["()", 1, /empty parentheses/],
    ["a \\", 3, /a \\ at the end escapes nothing/],
    ["AND a", 1, /expected a term, found AND/],
    ["status >= ", 8, /expected a number or duration after '>='/],
    ["service:()", 9, /expected values for service inside the parentheses/],
    [":x", 1, /expected a term, found ':'/],
    ['msg:""', 5, /an empty phrase matches nothing/],
    ["service:(a OR)", 14, /expected a value after OR/],
    ["level:and", 7, /found AND/, /level:"and"/],
  ];
  for (const [query, column, message, hint] of cases) {
    test(query, () => {
      assert.throws(
        () => parseQuery(query),
        (e: unknown) => {
          assert.ok(e instanceof QueryError, String(e));
          assert.equal(e.column, column, e.message);
          assert.match(e.problem, message);
          if (hint) assert.match(e.hint ?? "", hint);
          return true;
        },
      );
    });
  }

  test("the message shows the query with a caret under the mistake", () => {
    assert.throws(
      () => parseQuery("service:gift-svc AND"),
      (e: unknown) =>
        e instanceof QueryError &&
        e.message === "expected a term after AND (column 21)\n  service:gift-svc AND\n                      ^",
    );
  });
});
