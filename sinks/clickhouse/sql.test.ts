import assert from "node:assert/strict";
import { test } from "node:test";
import { ident, literal, quoteIdentifier, quoteString, raw, SqlError, sql } from "./sql.ts";

test("quoteString escapes quotes, backslashes and control characters", () => {
  assert.equal(quoteString("plain"), "'plain'");
  assert.equal(quoteString("it's"), "'it\\'s'");
  assert.equal(quoteString("a\\b"), "'a\\\\b'");
  assert.equal(quoteString("line\nnext\ttab\r\0"), "'line\\nnext\\ttab\\r\\0'");
  assert.equal(quoteString("\\'; DROP TABLE x; --"), "'\\\\\\'; DROP TABLE x; --'");
  assert.equal(quoteString("Ünïcødé 直播"), "'Ünïcødé 直播'");
});

test("quoteIdentifier backquotes names and escapes backquotes", () => {
  assert.equal(quoteIdentifier("health_metrics"), "`health_metrics`");
  assert.equal(quoteIdentifier("we`ird"), "`we\\`ird`");
  assert.equal(quoteIdentifier("back\\slash"), "`back\\\\slash`");
  assert.throws(() => quoteIdentifier(""), SqlError);
  assert.equal(ident("weir", "health_metrics").toString(), "`weir`.`health_metrics`");
});

test("literal writes numbers, bigints, booleans, nulls, dates and arrays", () => {
  assert.equal(literal(42), "42");
  assert.equal(literal(-1.5), "-1.5");
  assert.equal(literal(18446744073709551615n), "18446744073709551615");
  assert.equal(literal(true), "1");
  assert.equal(literal(null), "NULL");
  assert.equal(literal(new Date(1_700_000_000_999)), "toDateTime(1700000000)");
  assert.equal(literal(["a", 1, ["b'"]]), "['a', 1, ['b\\'']]");
  assert.throws(() => literal(Number.NaN), SqlError);
  assert.throws(() => literal(Number.POSITIVE_INFINITY), SqlError);
  assert.throws(() => literal(new Date(Number.NaN)), SqlError);
});

test("the sql tag quotes values and names and keeps raw text", () => {
  const name = "001_health.sql'); DROP DATABASE weir; --";
  assert.equal(
    sql`SELECT sha256 FROM ${ident("weir", "schema_migrations")} WHERE name = ${name} AND n > ${3}`,
    "SELECT sha256 FROM `weir`.`schema_migrations` WHERE name = '001_health.sql\\'); DROP DATABASE weir; --' AND n > 3",
  );
  assert.equal(
    sql`ALTER TABLE t DROP PARTITION ${raw("(1000,20261120)")}`,
    "ALTER TABLE t DROP PARTITION (1000,20261120)",
  );
});
