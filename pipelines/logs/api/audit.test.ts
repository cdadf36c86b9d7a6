import assert from "node:assert/strict";
import { test } from "node:test";
import { PiiKey } from "../pii/key.ts";
import { PiiMasker } from "../pii/masker.ts";
import { piiToken } from "../pii/token.ts";
import { maskQuery, QUERY_SHOWN } from "./audit.ts";

const key = new PiiKey("audit-test-key-0123456789abcdef0123456789", "given");

test("with the pipeline's masker: the query as the pipeline stores lines, token and all", () => {
  const token = piiToken("phone", "13800138000", key);
  assert.equal(maskQuery("level:error 13800138000", new PiiMasker({}, key)), `level:error 138****8000[${token}]`);
  assert.equal(maskQuery("service:gift-svc", new PiiMasker({}, key)), "service:gift-svc");
});

test("without a key: what a person may see of each value, nothing more", () => {
  assert.equal(maskQuery('"+86 138 0013 8000" bob@example.com'), '"138****8000" b***@example.com');
  assert.equal(maskQuery("card:6222021234567890128"), "card:****0128");
});

test("a long query is cut after masking, so a cut never leaves a number half masked", () => {
  const long = `${"x".repeat(QUERY_SHOWN - 5)} 13800138000`;
  const shown = maskQuery(long);
  assert.ok(!shown.includes("13800138"), shown.slice(-20));
  assert.ok(shown.endsWith("…"));
  assert.equal(shown.length, QUERY_SHOWN + 1);
});
