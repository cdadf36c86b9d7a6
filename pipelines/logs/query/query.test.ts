import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { PiiKey } from "../pii/key.ts";
import { PiiMasker } from "../pii/masker.ts";
import { piiToken } from "../pii/token.ts";
import { QueryError } from "./ast.ts";
import { LOG_SCHEMA, type LogSchema } from "./fields.ts";
import { compileLogQuery, queryLimits, type ResolveOptions } from "./query.ts";

const key = new PiiKey("query-test-key-0123456789abcdef0123456789", "given");
const pii = new PiiMasker({}, key);
const PHONE = piiToken("phone", "13800138000", key);

// Leading wildcards are allowed here: these tests are about compiling them (limits.test.ts refuses them by default).
const limits = queryLimits({ leadingWildcards: true });
const es = (q: string) => compileLogQuery(q, { pii, limits }).elasticsearch;
const ch = (q: string) => compileLogQuery(q, { pii, limits }).clickhouse;

/** A word or phrase typed without a field: the message, the logger (whole and word by word), any attribute's value. */
function bareEs(text: string): object {
  return {
    bool: {
      should: [
        { match_phrase: { message: text } },
        { term: { "log.logger": text } },
        { match_phrase: { "log.logger.words": text } },
        { term: { attributes: text } },
      ],
      minimum_should_match: 1,
    },
  };
}
function bareCh(text: string): string {
  const q = `'${text}'`;
  return `(positionCaseInsensitiveUTF8(message, ${q}) > 0 OR positionCaseInsensitiveUTF8(logger, ${q}) > 0 OR has(attr_values, ${q}))`;
}

function queryError(q: string, check: (e: QueryError) => void, options: ResolveOptions = { pii, limits }): void {
  assert.throws(
    () => compileLogQuery(q, options),
    (e: unknown) => {
      assert.ok(e instanceof QueryError, String(e));
      check(e);
      return true;
    },
    q,
  );
}

describe("both stores, query by query", () => {
  const cases: [string, object, string][] = [
    ["", { match_all: {} }, "1"],
    ["service:gift-svc", { term: { "service.name": "gift-svc" } }, "service = 'gift-svc'"],
    ["service.name:gift-svc", { term: { "service.name": "gift-svc" } }, "service = 'gift-svc'"],
    ["level:error", { term: { "log.level": "ERROR" } }, "level = 'ERROR'"],
    ["level:Warning", { term: { "log.level": "WARN" } }, "level = 'WARN'"],
    ["level:50", { term: { "log.level": "ERROR" } }, "level = 'ERROR'"],
    ["level >= warn", { terms: { "log.level": ["WARN", "ERROR", "FATAL"] } }, "level IN ('WARN', 'ERROR', 'FATAL')"],
    ["level < info", { terms: { "log.level": ["TRACE", "DEBUG"] } }, "level IN ('TRACE', 'DEBUG')"],
    ["level:*", { exists: { field: "log.level" } }, "1"],
    ["timeout", bareEs("timeout"), bareCh("timeout")],
    ['"read timed out"', bareEs("read timed out"), bareCh("read timed out")],
    ["com.live.gift.GiftController", bareEs("com.live.gift.GiftController"), bareCh("com.live.gift.GiftController")],
    [
      "GiftCont*",
      {
        bool: {
          should: [
            { wildcard: { message: { value: "giftcont*", case_insensitive: true } } },
            { wildcard: { "log.logger": { value: "GiftCont*" } } },
            { wildcard: { "log.logger.words": { value: "giftcont*", case_insensitive: true } } },
            { wildcard: { attributes: { value: "GiftCont*" } } },
          ],
          minimum_should_match: 1,
        },
      },
      "(like(lowerUTF8(message), '%giftcont%') OR like(lowerUTF8(logger), '%giftcont%') OR arrayExists(x -> like(x, 'GiftCont%'), attr_values))",
    ],
    ["msg:timeout", { match_phrase: { message: "timeout" } }, "positionCaseInsensitiveUTF8(message, 'timeout') > 0"],
    [
      "msg:time*",
      { wildcard: { message: { value: "time*", case_insensitive: true } } },
      "like(lowerUTF8(message), '%time%')",
    ],
    ["status:503", { term: { "http.response.status_code": 503 } }, "status = 503"],
    [
      "status:5xx",
      { range: { "http.response.status_code": { gte: 500, lte: 599 } } },
      "(status >= 500 AND status <= 599)",
    ],
    ["status >= 500", { range: { "http.response.status_code": { gte: 500 } } }, "status >= 500"],
    [
      "status:[400 TO 499]",
      { range: { "http.response.status_code": { gte: 400, lte: 499 } } },
      "(status >= 400 AND status <= 499)",
    ],
    ["status:(500 OR 503)", { terms: { "http.response.status_code": [500, 503] } }, "status IN (500, 503)"],
    ["status:*", { exists: { field: "http.response.status_code" } }, "status != 0"],
    ["latency > 1s", { range: { "event.duration": { gt: 1e9 } } }, "latency_us > 1000000"],
    [
      "latency:[100ms TO 1.5s]",
      { range: { "event.duration": { gte: 1e8, lte: 1.5e9 } } },
      "(latency_us >= 100000 AND latency_us <= 1500000)",
    ],
    ["latency < 800us", { range: { "event.duration": { lt: 800_000 } } }, "latency_us < 800"],
    ["latency >= 1500ns", { range: { "event.duration": { gte: 1500 } } }, "latency_us >= 1.5"],
    ["uid:100043296", { term: { "user.id": "100043296" } }, "uid = 100043296"],
    ["uid:(1 OR 2)", { terms: { "user.id": ["1", "2"] } }, "uid IN (1, 2)"],
    [
      "trace:032725aa9e77597fb752fc77ccacd1b0",
      { term: { "trace.id": "032725aa9e77597fb752fc77ccacd1b0" } },
      "trace_id = '032725aa9e77597fb752fc77ccacd1b0'",
    ],
    [
      "error:java.net.SocketTimeoutException",
      { term: { "error.type": "java.net.SocketTimeoutException" } },
      "error_type = 'java.net.SocketTimeoutException'",
    ],
    ["host:gift-svc-*", { prefix: { "host.name": { value: "gift-svc-" } } }, "like(host, 'gift-svc-%')"],
    [
      "endpoint:/room/*/enter",
      { wildcard: { "url.path": { value: "/room/*/enter" } } },
      "like(endpoint, '/room/%/enter')",
    ],
    ["endpoint:*?x*", { wildcard: { "url.path": { value: "*\\?x*" } } }, "like(endpoint, '%?x%')"],
    ["endpoint:/a%b_c*", { prefix: { "url.path": { value: "/a%b_c" } } }, "like(endpoint, '/a\\\\%b\\\\_c%')"],
    ["logger:*", { exists: { field: "log.logger" } }, "logger != ''"],
    ["attr.reqId:q-6c", { term: { "attributes.reqId": "q-6c" } }, "attr_values[indexOf(attr_keys, 'reqId')] = 'q-6c'"],
    [
      "attributes.thread:http-nio*",
      { prefix: { "attributes.thread": { value: "http-nio" } } },
      "like(attr_values[indexOf(attr_keys, 'thread')], 'http-nio%')",
    ],
    ["attr.thread:*", { exists: { field: "attributes.thread" } }, "has(attr_keys, 'thread')"],
    [
      "service:(gift-svc OR pay-svc)",
      { terms: { "service.name": ["gift-svc", "pay-svc"] } },
      "service IN ('gift-svc', 'pay-svc')",
    ],
    [
      "service:gift-svc OR service:pay-svc",
      { terms: { "service.name": ["gift-svc", "pay-svc"] } },
      "service IN ('gift-svc', 'pay-svc')",
    ],
    ["not level:info", { bool: { must_not: [{ term: { "log.level": "INFO" } }] } }, "NOT (level = 'INFO')"],
    [
      "timeout OR refused",
      {
        bool: {
          should: [bareEs("timeout"), bareEs("refused")],
          minimum_should_match: 1,
        },
      },
      `(${bareCh("timeout")} OR ${bareCh("refused")})`,
    ],
    [
      "(service:gift-svc OR service:pay-svc) AND NOT status:200 timeout",
      {
        bool: {
          must: [bareEs("timeout")],
          filter: [{ terms: { "service.name": ["gift-svc", "pay-svc"] } }],
          must_not: [{ term: { "http.response.status_code": 200 } }],
        },
      },
      `(service IN ('gift-svc', 'pay-svc') AND NOT (status = 200) AND ${bareCh("timeout")})`,
    ],
    [
      "service:gift-svc (level:error OR latency > 1s)",
      {
        bool: {
          filter: [
            { term: { "service.name": "gift-svc" } },
            {
              bool: {
                should: [{ term: { "log.level": "ERROR" } }, { range: { "event.duration": { gt: 1e9 } } }],
                minimum_should_match: 1,
              },
            },
          ],
        },
      },
      "(service = 'gift-svc' AND (level = 'ERROR' OR latency_us > 1000000))",
    ],
  ];
  for (const [query, expectedEs, expectedCh] of cases) {
    test(query || "(empty)", () => {
      const compiled = compileLogQuery(query, { pii, limits });
      assert.deepEqual(compiled.elasticsearch, expectedEs);
      assert.equal(compiled.clickhouse, expectedCh);
    });
  }
});

/**
 * Reads ClickHouse SQL the way the server does: string literals (with backslash escapes) become `?`
 * in the skeleton and are returned decoded. A value that broke out of its literal would show in the skeleton.
 */
function readSql(sql: string): { skeleton: string; literals: string[] } {
  const escapes: Record<string, string> = { n: "\n", r: "\r", t: "\t", "0": "\0", b: "\b", f: "\f" };
  let skeleton = "";
  const literals: string[] = [];
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i] as string;
    if (c === "`" || c === '"') throw new Error(`a quoted identifier in ${sql}`);
    if (c === "-" && sql[i + 1] === "-") throw new Error(`a comment in ${sql}`);
    if (c !== "'") {
      skeleton += c;
      continue;
    }
    let lit = "";
    for (i++; ; i++) {
      if (i >= sql.length) throw new Error(`an unterminated literal in ${sql}`);
      const d = sql[i] as string;
      if (d === "\\") {
        const e = sql[++i] as string;
        lit += escapes[e] ?? e;
      } else if (d === "'") {
        break;
      } else {
        lit += d;
      }
    }
    literals.push(lit);
    skeleton += "?";
  }
  return { skeleton, literals };
}

describe("injection", () => {
  const hostile = [
    "x' OR 1=1 --",
    "\\' OR 1=1 --",
    "'); DROP TABLE logs; --",
    "`id`",
    "a\\",
    "line\nbreak\ttab\0nul",
    "' || '",
    "%_\\%",
  ];

  test("values stay inside their literals, whatever they hold", () => {
    for (const v of hostile) {
      const quoted = `"${v.replace(/[\\"]/g, "\\$&")}"`; // a phrase, \ and " escaped as the language wants
      const shapes: [string, string, string[]][] = [
        [`service:${quoted}`, "service = ?", [v]],
        [`msg:${quoted}`, "positionCaseInsensitiveUTF8(message, ?) > 0", [v]],
        [`attr.reqId:${quoted}`, "attr_values[indexOf(attr_keys, ?)] = ?", ["reqId", v]],
        [`service:(a OR ${quoted})`, "service IN (?, ?)", ["a", v]],
      ];
      for (const [query, skeleton, literals] of shapes) {
        const sql = readSql(ch(query));
        assert.equal(sql.skeleton, skeleton, query);
        assert.deepEqual(sql.literals, literals, query);
      }
    }
  });

  test("wildcard values: LIKE's own characters escaped, then quoted", () => {
    const sql = readSql(ch("host:a\\'b%c_d\\\\e*"));
    assert.equal(sql.skeleton, "like(host, ?)");
    assert.deepEqual(sql.literals, ["a'b\\%c\\_d\\\\e%"]);
  });

  test("in Elasticsearch a value is only ever a term's value, never query syntax", () => {
    assert.deepEqual(es('service:"a OR b* AND c:d"'), { term: { "service.name": "a OR b* AND c:d" } });
    assert.deepEqual(es('msg:"x\\" OR \\"y"'), { match_phrase: { message: 'x" OR "y' } });
  });

  test("field names: unknown ones are refused, attribute names limited to what services write", () => {
    for (const q of ["service`:x", "`service`:x", "service--:x", "servi'ce:x"]) {
      queryError(q, (e) => assert.match(e.problem, /unknown field/));
    }
    for (const q of ["attr.a'b:x", "attr.a`b:x", "attr.a\\\\b:x", "attr.:x", "attr.a b:x"]) {
      assert.throws(() => compileLogQuery(q, { pii }), QueryError, q);
    }
    const sql = readSql(ch("attr.a--b.c@d:x"));
    assert.equal(sql.skeleton, "attr_values[indexOf(attr_keys, ?)] = ?");
    assert.deepEqual(sql.literals, ["a--b.c@d", "x"]);
  });

  test("the field table's own names are checked before they become SQL", () => {
    const bad: LogSchema = {
      ...LOG_SCHEMA,
      fields: LOG_SCHEMA.fields.map((f) => (f.name === "service" ? { ...f, ch: "svc; DROP TABLE logs" } : f)),
    };
    assert.throws(() => compileLogQuery("service:x", { schema: bad }), /no plain ClickHouse column name/);
    const renamed: LogSchema = {
      ...LOG_SCHEMA,
      fields: LOG_SCHEMA.fields.map((f) => (f.name === "service" ? { ...f, ch: "service_name", es: "svc.name" } : f)),
    };
    const c = compileLogQuery("service:x", { schema: renamed });
    assert.equal(c.clickhouse, "service_name = 'x'");
    assert.deepEqual(c.elasticsearch, { term: { "svc.name": "x" } });
  });
});

describe("fields and values that do not fit", () => {
  test("unknown fields: did you mean, the list, and attr.<name> for an attribute", () => {
    queryError("sevice:gift-svc", (e) => {
      assert.match(e.problem, /unknown field "sevice": did you mean service\?/);
      assert.equal(e.column, 1);
      assert.match(e.hint ?? "", /fields: message, service, level/);
    });
    queryError("levle:error", (e) => assert.match(e.problem, /did you mean level\?/));
    queryError("trace_idd:x", (e) => assert.match(e.problem, /did you mean trace\?/));
    queryError("phon:13800138000", (e) => assert.match(e.problem, /did you mean phone\?/));
    queryError("reqId:q-6c", (e) => {
      assert.doesNotMatch(e.problem, /did you mean/);
      assert.match(e.hint ?? "", /an attribute\? attr\.reqId/);
    });
    queryError("-level:info", (e) => assert.match(e.hint ?? "", /write NOT level:… \(not -level:…\)/));
    queryError("level:error http://x", (e) => {
      assert.equal(e.column, 13);
      assert.match(e.hint ?? "", /quote it/);
    });
  });

  test("values of the wrong type, with the column of the value", () => {
    const cases: [string, number, RegExp][] = [
      ["level:eror", 7, /unknown level "eror": did you mean ERROR\?/],
      ["status:abc", 8, /status is a number: "abc" is not one/],
      ["status:5*", 8, /status is a number/],
      ["uid:12a", 5, /uid is a number/],
      ["latency > 500", 11, /latency needs a unit/],
      ["latency > fast", 11, /"fast" is not a duration/],
      ["latency:1s", 9, /latency is compared, not matched/],
      ["service > a", 1, /service has no order: ranges work on level, status, latency/],
      ["uid >= 5", 1, /uid has no order/],
      ["msg:[a TO b]", 1, /message has no order/],
      ["attr.x > 1", 1, /attr\.x has no order/],
      ["level:z*", 7, /no level matches z\*/],
      ["level > fatal", 1, /no level is in this range/],
    ];
    for (const [q, column, problem] of cases) {
      queryError(q, (e) => {
        assert.match(e.problem, problem, q);
        assert.equal(e.column, column, q);
      });
    }
  });

  test("Elasticsearch takes only trailing wildcards on attributes: said before either store is asked", () => {
    queryError("attr.thread:*nio*", (e) => {
      assert.match(e.problem, /only with a \* at the end/);
      assert.equal(e.column, 13);
    });
  });
});

describe("PII in queries", () => {
  const everywhere = (token: string) => ({
    es: {
      bool: {
        should: [
          {
            multi_match: {
              query: token,
              type: "phrase",
              fields: ["message", "error.message", "error.stack_trace", "url.query", "http.request.referrer"],
            },
          },
          { wildcard: { attributes: { value: `*[${token}]*` } } },
        ],
        minimum_should_match: 1,
      },
    },
    ch: `(position(message, '${token}') > 0 OR position(error_message, '${token}') > 0 OR position(error_stack, '${token}') > 0 OR position(url_query, '${token}') > 0 OR position(referrer, '${token}') > 0 OR arrayExists(x -> position(x, '${token}') > 0, attr_values))`,
  });

  test("a bare phone number is searched as its token wherever masked values are kept", () => {
    const c = compileLogQuery("13800138000", { pii });
    assert.deepEqual(c.elasticsearch, everywhere(PHONE).es);
    assert.equal(c.clickhouse, everywhere(PHONE).ch);
  });

  test("every spelling, and the pii fields, give the same token; the raw value reaches neither store", () => {
    for (const q of [
      '"+86 138 0013 8000"',
      "phone:13800138000",
      'phone:"+86 138-0013-8000"',
      "mobile:+8613800138000",
      "pii:13800138000",
      `pii:${PHONE.slice(4)}`,
    ]) {
      const c = compileLogQuery(q, { pii });
      assert.equal(c.clickhouse, everywhere(PHONE).ch, q);
      const out = JSON.stringify(c);
      for (const raw of ["13800138000", "0013", "8000"]) assert.ok(!out.includes(raw), `${q}: ${raw}`);
    }
    assert.equal(ch("email:Bob@Example.com"), everywhere(piiToken("email", "bob@example.com", key)).ch);
    assert.equal(ch("idcard:11010519491231002x"), everywhere(piiToken("idCard", "11010519491231002X", key)).ch);
    assert.equal(ch('card:"4111 1111 1111 1111"'), everywhere(piiToken("card", "4111111111111111", key)).ch);
    assert.equal(ch("bob@example.com"), everywhere(piiToken("email", "bob@example.com", key)).ch);
  });

  test("in a field: one attribute, the message, the query string", () => {
    assert.deepEqual(es("query:13800138000"), { match_phrase: { "url.query": PHONE } });
    assert.equal(ch("url.query:13800138000"), `position(url_query, '${PHONE}') > 0`);
    assert.deepEqual(es('referrer:"https://live.example.com/room/7"'), {
      match_phrase: { "http.request.referrer": "https://live.example.com/room/7" },
    });
    assert.deepEqual(es("attr.phone:13800138000"), {
      bool: {
        filter: [{ exists: { field: "attributes.phone" } }, { wildcard: { attributes: { value: `*[${PHONE}]*` } } }],
      },
    });
    assert.equal(ch("attr.phone:13800138000"), `position(attr_values[indexOf(attr_keys, 'phone')], '[${PHONE}]') > 0`);
    assert.deepEqual(es("msg:13800138000"), { match_phrase: { message: PHONE } });
    assert.equal(ch("msg:13800138000"), `position(message, '${PHONE}') > 0`);
  });

  test("among other words: the phrase searched as the pipeline stored it, masked", () => {
    const masked = `call 138****8000[${PHONE}] now`;
    assert.equal(pii.maskText("call 13800138000 now"), masked);
    assert.deepEqual(es('"call 13800138000 now"'), bareEs(masked));
    assert.deepEqual(es('msg:"call 13800138000 now"'), { match_phrase: { message: masked } });
    assert.equal(ch('attr.note:"call 13800138000 now"'), `attr_values[indexOf(attr_keys, 'note')] = '${masked}'`);
  });

  test("fields the masker does not touch keep the number as typed", () => {
    assert.equal(ch("trace:13800138000"), "trace_id = '13800138000'");
    assert.equal(ch("uid:13800138000"), "uid = 13800138000");
    assert.equal(ch("service:13800138000"), "service = '13800138000'");
  });

  test("without the key: refused with what to do, except a token typed as such", () => {
    queryError(
      "level:error 13800138000",
      (e) => {
        assert.match(e.problem, /looks like a phone number, which the logs hold only as a token/);
        assert.equal(e.column, 13);
        assert.match(e.hint ?? "", /WEIR_PII_KEY_FILE/);
      },
      { pii: undefined as unknown as PiiMasker },
    );
    queryError("email:bob@example.com", (e) => assert.match(e.problem, /needs the PII key/), {
      pii: undefined as unknown as PiiMasker,
    });
    assert.equal(compileLogQuery(`pii:${PHONE.slice(4)}`).clickhouse, everywhere(PHONE).ch);
  });

  test("what cannot be searched: parts of a value, wrong shapes, non-tokens", () => {
    queryError("13800138000*", (e) => assert.match(e.problem, /a wildcard cannot search for part of a masked value/));
    queryError("phone:138*", (e) => assert.match(e.problem, /phone searches one whole value/));
    queryError("phone:12345", (e) => {
      assert.match(e.problem, /"12345" is not a phone number/);
      assert.equal(e.column, 7);
    });
    queryError("email:bob", (e) => assert.match(e.problem, /not an email address/));
    queryError("pii:ph_xyz", (e) => assert.match(e.hint ?? "", /pii:ph_3f9a0c1d2e3f4a5b/));
    queryError("pii:*", (e) => assert.match(e.problem, /cannot be tested for existence/));
  });
});
