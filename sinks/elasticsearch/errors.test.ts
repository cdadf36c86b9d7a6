import assert from "node:assert/strict";
import { test } from "node:test";
import { errors } from "@elastic/elasticsearch";
import { classifyItem, classifyRequestError, describeItemError, parseRetryAfter } from "./errors.ts";

test("bulk items: created, a 409 on create is a duplicate, busy is retried, bad documents rejected, access problems fatal", () => {
  assert.equal(classifyItem(201), "created");
  assert.equal(classifyItem(200), "created");
  assert.equal(
    classifyItem(409, { type: "version_conflict_engine_exception", reason: "[x]: version conflict" }),
    "duplicate",
  );
  assert.equal(classifyItem(429, { type: "es_rejected_execution_exception" }), "retry");
  assert.equal(classifyItem(503, { type: "unavailable_shards_exception" }), "retry");
  assert.equal(classifyItem(500, { type: "null_pointer_exception" }), "retry");
  assert.equal(
    classifyItem(403, { type: "cluster_block_exception", reason: "index read-only / allow delete" }),
    "retry",
  );
  assert.equal(classifyItem(400, { type: "document_parsing_exception" }), "reject");
  assert.equal(classifyItem(400, { type: "mapper_parsing_exception" }), "reject");
  assert.equal(classifyItem(400, { type: "illegal_argument_exception" }), "reject");
  assert.equal(classifyItem(400, { type: "invalid_index_name_exception" }), "reject");
  assert.equal(classifyItem(400, { type: "index_closed_exception" }), "reject");
  assert.equal(classifyItem(409, { type: "something_else" }), "reject");
  assert.equal(classifyItem(404, { type: "index_not_found_exception" }), "fatal");
  assert.equal(classifyItem(403, { type: "security_exception" }), "fatal");
  assert.equal(classifyItem(401), "fatal");
});

test("an item's error reads as type: reason, with its causes", () => {
  assert.equal(
    describeItemError({
      type: "document_parsing_exception",
      reason: "failed to parse field [http.response.status_code] of type [long]",
      caused_by: { type: "illegal_argument_exception", reason: 'For input string: "OK"' },
    }),
    'document_parsing_exception: failed to parse field [http.response.status_code] of type [long] (caused by illegal_argument_exception: For input string: "OK")',
  );
  assert.equal(describeItemError(undefined, 500), "status 500");
  assert.equal(describeItemError({ type: "x", reason: "y".repeat(2000) }).length, 1003);
});

function responseError(statusCode: number, body: unknown, headers: Record<string, string> = {}) {
  return new errors.ResponseError({ body, statusCode, headers, warnings: null, meta: {} as never });
}

test("whole requests: no answer and overload are transient, 413 is split, other refusals are fatal", () => {
  const rejected = classifyRequestError(
    responseError(429, {
      error: { type: "es_rejected_execution_exception", reason: "rejected execution of coordinating operation" },
      status: 429,
    }),
  );
  assert.equal(rejected.kind, "transient");
  assert.equal(rejected.status, 429);
  assert.match(rejected.message, /^HTTP 429: es_rejected_execution_exception: rejected execution/);
  assert.equal(classifyRequestError(responseError(503, { error: "starting" })).kind, "transient");
  assert.equal(classifyRequestError(responseError(502, "<html>bad gateway</html>")).kind, "transient");
  assert.equal(classifyRequestError(responseError(413, "")).kind, "too-large");
  assert.equal(
    classifyRequestError(responseError(400, { error: { type: "parse_exception", reason: "x" } })).kind,
    "fatal",
  );
  assert.equal(
    classifyRequestError(responseError(401, { error: { type: "security_exception", reason: "x" } })).kind,
    "fatal",
  );
  assert.equal(
    classifyRequestError(new errors.ConnectionError("connect ECONNREFUSED 127.0.0.1:9200")).kind,
    "transient",
  );
  assert.equal(classifyRequestError(new errors.TimeoutError("Request timed out")).kind, "transient");
  assert.equal(classifyRequestError(new errors.RequestAbortedError("aborted")).kind, "aborted");
  assert.equal(
    classifyRequestError(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })).kind,
    "transient",
  );
  assert.equal(classifyRequestError(new TypeError("x is not a function")).kind, "fatal");
  const later = classifyRequestError(responseError(429, { error: "slow down" }, { "retry-after": "3" }));
  assert.equal(later.retryAfterMs, 3000);
});

test("Retry-After as seconds or an HTTP date", () => {
  const now = Date.UTC(2026, 10, 20, 12);
  assert.equal(parseRetryAfter("2", now), 2000);
  assert.equal(parseRetryAfter(new Date(now + 5000).toUTCString(), now), 5000);
  assert.equal(parseRetryAfter(undefined, now), null);
  assert.equal(parseRetryAfter("soon", now), null);
});
