import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadMigrations, splitStatements } from "./migrate.ts";

test("statements end with ; at a line's end; -- comments are dropped", () => {
  const text = `-- a header comment; with a semicolon;
CREATE DATABASE IF NOT EXISTS weir;

CREATE TABLE t -- trailing comment;
(
    a String, -- the id; unique
    b UInt8
)
ENGINE = MergeTree ORDER BY a; -- done

SELECT 1;   
SELECT 2`;
  assert.deepEqual(splitStatements(text), [
    "CREATE DATABASE IF NOT EXISTS weir",
    "CREATE TABLE t \n(\n    a String, \n    b UInt8\n)\nENGINE = MergeTree ORDER BY a",
    "SELECT 1",
    "SELECT 2",
  ]);
});

test("a ; or -- inside quotes, quoted names or block comments is text", () => {
  const text = `INSERT INTO t VALUES ('a;
-- not a comment', 'it\\'s;
');
SELECT \`odd;
name\` FROM t /* a;
block */ WHERE x = 'y''z;
';`;
  assert.deepEqual(splitStatements(text), [
    "INSERT INTO t VALUES ('a;\n-- not a comment', 'it\\'s;\n')",
    "SELECT `odd;\nname` FROM t /* a;\nblock */ WHERE x = 'y''z;\n'",
  ]);
});

test("a ; in the middle of a line does not end the statement; empty files have none", () => {
  assert.deepEqual(splitStatements("SELECT 1; SELECT 2;\n"), ["SELECT 1; SELECT 2"]);
  assert.deepEqual(splitStatements("-- nothing here\n\n  \n"), []);
  assert.deepEqual(splitStatements(";\n;\n"), []);
});

test("migrations load in name order with their sha256, .sql files only", () => {
  const dir = mkdtempSync(join(tmpdir(), "weir-migrations-"));
  try {
    writeFileSync(join(dir, "010_b.sql"), "SELECT 10;\n");
    writeFileSync(join(dir, "002_a.sql"), "SELECT 2;\nSELECT 3;\n");
    writeFileSync(join(dir, "README.md"), "not a migration");
    const files = loadMigrations(dir);
    assert.deepEqual(
      files.map((f) => [f.name, f.statements.length]),
      [
        ["002_a.sql", 2],
        ["010_b.sql", 1],
      ],
    );
    // sha256 of the file's bytes, as `sha256sum` prints it.
    assert.equal(files[0]?.sha256, createHash("sha256").update("SELECT 2;\nSELECT 3;\n").digest("hex"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the health migration splits into its three statements", () => {
  const [health] = loadMigrations(fileURLToPath(new URL("../../infra/clickhouse", import.meta.url)));
  assert.equal(health?.name, "001_health.sql");
  assert.deepEqual(
    health?.statements.map((s) => s.split("\n")[0]),
    [
      "CREATE DATABASE IF NOT EXISTS weir",
      "CREATE TABLE IF NOT EXISTS weir.health_metrics",
      "CREATE TABLE IF NOT EXISTS weir.health_alerts",
    ],
  );
});
