// Schema migrations for ClickHouse: the `.sql` files of a folder, applied in name order, each
// recorded with its sha256 in `<database>.schema_migrations`. A file is applied once; a file that
// changed after it was applied is refused, because the tables it made no longer match its text.
//
// ClickHouse has no transactional DDL: a file that fails half-way is not recorded, and runs again
// from its first statement next time. So statements are written to be repeatable
// (`CREATE ... IF NOT EXISTS`), and a statement that is not (18.16 has no `ADD COLUMN IF NOT
// EXISTS`) goes in a file of its own.

import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type ClickHouseClient, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { type ClickHouseAuth, clickhouseCredentials } from "../credentials.ts";
import { cleanMessage } from "./errors.ts";
import { ident, sql } from "./sql.ts";

export interface MigrationFile {
  name: string;
  path: string;
  sha256: string;
  statements: string[];
}

export interface MigrationOptions {
  /** The folder of `.sql` files. */
  dir: string;
  /** A client to use; or `url` to make one (closed when done). */
  client?: ClickHouseClient;
  url?: string;
  /** The user `url` connects as; the default user without a password when absent. */
  auth?: ClickHouseAuth | undefined;
  /** Where `schema_migrations` lives (created if missing). Default `weir`. */
  database?: string;
  /** Report what would be applied, change nothing. */
  dryRun?: boolean;
}

export interface MigrationResult {
  /** Files applied by this run (or that would be, in a dry run), in order. */
  applied: MigrationFile[];
  /** Files applied before, unchanged. */
  unchanged: string[];
  /** Names recorded as applied that are no longer in the folder. */
  missing: string[];
  dryRun: boolean;
}

/** A migration that cannot be applied; names the file. */
export class MigrationError extends Error {
  constructor(
    readonly file: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = "MigrationError";
  }
}

/**
 * Splits a file into statements: a statement ends with `;` at the end of a line (spaces and a
 * `--` comment may follow). `--` comments are dropped; quotes and block comments are respected,
 * so a `;` or `--` inside a string, a quoted name or a block comment is text.
 */
export function splitStatements(text: string): string[] {
  const statements: string[] = [];
  let current = "";
  let i = 0;
  const n = text.length;
  const endStatement = () => {
    const s = current.trim();
    if (s.length > 0) statements.push(s);
    current = "";
  };
  while (i < n) {
    const c = text[i] as string;
    if (c === "-" && text[i + 1] === "-") {
      while (i < n && text[i] !== "\n") i++;
      continue;
    }
    if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      const j = end < 0 ? n : end + 2;
      current += text.slice(i, j);
      i = j;
      continue;
    }
    if (c === "'" || c === '"' || c === "`") {
      let j = i + 1;
      while (j < n && text[j] !== c) j += text[j] === "\\" ? 2 : 1;
      current += text.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    if (c === ";" && restOfLineIsBlank(text, i + 1)) {
      endStatement();
      i++;
      continue;
    }
    current += c;
    i++;
  }
  endStatement();
  return statements;
}

function restOfLineIsBlank(text: string, from: number): boolean {
  for (let j = from; j < text.length; j++) {
    const c = text[j];
    if (c === "\n") return true;
    if (c === "-" && text[j + 1] === "-") return true;
    if (c !== " " && c !== "\t" && c !== "\r") return false;
  }
  return true;
}

/** The folder's `.sql` files in name order, read, hashed and split. */
export function loadMigrations(dir: string): MigrationFile[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((name) => {
      const path = join(dir, name);
      const bytes = readFileSync(path);
      return {
        name,
        path,
        sha256: createHash("sha256").update(bytes).digest("hex"),
        statements: splitStatements(bytes.toString("utf8")),
      };
    });
}

export async function migrate(options: MigrationOptions): Promise<MigrationResult> {
  const files = loadMigrations(options.dir);
  const database = options.database ?? "weir";
  const dryRun = !!options.dryRun;
  if (!options.client && !options.url) throw new TypeError("migrate: give a client or a url");
  const client =
    options.client ??
    createClient({
      url: options.url as string,
      ...clickhouseCredentials(options.auth),
      log: { level: ClickHouseLogLevel.OFF },
    });
  try {
    const table = ident(database, "schema_migrations");
    if (!dryRun) {
      await client.command({ query: sql`CREATE DATABASE IF NOT EXISTS ${ident(database)}` });
      // Plain MergeTree and DateTime: what 18.16 knows. One row per applied file.
      await client.command({
        query: sql`CREATE TABLE IF NOT EXISTS ${table} (name String, sha256 String, statements UInt32, applied_at DateTime) ENGINE = MergeTree ORDER BY name`,
      });
    }
    const recorded = await appliedMigrations(client, database);
    const result: MigrationResult = { applied: [], unchanged: [], missing: [], dryRun };
    const names = new Set(files.map((f) => f.name));
    result.missing = [...recorded.keys()].filter((name) => !names.has(name)).sort();
    for (const file of files) {
      const before = recorded.get(file.name);
      if (before === undefined) continue;
      if (!before.has(file.sha256) || before.size > 1) {
        throw new MigrationError(
          file.path,
          `migration ${file.path} was applied (sha256 ${[...before].map((h) => h.slice(0, 12)).join(", ")}) but has changed since (sha256 now ${file.sha256.slice(0, 12)})`,
          "a migration that ran must not change: restore the file, and put the change in a new file that sorts after it",
        );
      }
    }
    for (const file of files) {
      if (recorded.has(file.name)) {
        result.unchanged.push(file.name);
        continue;
      }
      result.applied.push(file);
      if (dryRun) continue;
      for (const [k, statement] of file.statements.entries()) {
        try {
          await client.command({ query: statement });
        } catch (e) {
          throw new MigrationError(
            file.path,
            `migration ${file.path}, statement ${k + 1} of ${file.statements.length}, failed: ${cleanMessage(String((e as Error)?.message ?? e))}`,
            "fix the file (it was not recorded as applied) and run weir migrate again",
          );
        }
      }
      await client.command({
        query: sql`INSERT INTO ${table} (name, sha256, statements, applied_at) VALUES (${file.name}, ${file.sha256}, ${file.statements.length}, now())`,
      });
    }
    return result;
  } finally {
    if (!options.client) await client.close();
  }
}

/** name -> the checksums it was recorded with (more than one means it was edited and applied twice by an old runner). */
async function appliedMigrations(client: ClickHouseClient, database: string): Promise<Map<string, Set<string>>> {
  const exists = await client.query({
    query: sql`SELECT count() AS n FROM system.tables WHERE database = ${database} AND name = 'schema_migrations'`,
    format: "JSONEachRow",
  });
  const [row] = await exists.json<{ n: string | number }>();
  const out = new Map<string, Set<string>>();
  if (Number(row?.n ?? 0) === 0) return out;
  const rs = await client.query({
    query: sql`SELECT name, sha256 FROM ${ident(database, "schema_migrations")}`,
    format: "JSONEachRow",
  });
  for (const r of await rs.json<{ name: string; sha256: string }>()) {
    const set = out.get(r.name) ?? new Set<string>();
    set.add(r.sha256);
    out.set(r.name, set);
  }
  return out;
}
