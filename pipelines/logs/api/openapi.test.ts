import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { OPENAPI } from "./openapi.ts";
import { ROUTES } from "./server.ts";

const COMMITTED = new URL("../../../docs/logs-api.openapi.json", import.meta.url);

test("docs/logs-api.openapi.json is the served document (regenerate: weir logs openapi > docs/logs-api.openapi.json)", () => {
  // Compared as data: the file is laid out by Biome, like every JSON file of the repository.
  assert.deepEqual(JSON.parse(readFileSync(COMMITTED, "utf8")), JSON.parse(JSON.stringify(OPENAPI)));
});

test("every route the server answers is described, and nothing else", () => {
  assert.deepEqual(Object.keys(OPENAPI.paths).sort(), ROUTES.map((r) => r.path).sort());
  for (const r of ROUTES) {
    const path = r.path.replace(/\{[^}]+\}/g, "x");
    assert.ok(r.pattern.test(path), `${r.path} is matched by its own pattern`);
  }
});

test("every reference resolves; /v1 routes need the bearer token, the others none", () => {
  const text = JSON.stringify(OPENAPI);
  for (const [, kind, name] of text.matchAll(/"#\/components\/(\w+)\/(\w+)"/g)) {
    const group = (OPENAPI.components as Record<string, Record<string, unknown>>)[kind as string];
    assert.ok(group?.[name as string] !== undefined, `#/components/${kind}/${name}`);
  }
  assert.deepEqual(OPENAPI.security, [{ bearer: [] }]);
  for (const [path, item] of Object.entries(OPENAPI.paths)) {
    const op = (item as { get: { security?: unknown[]; responses: Record<string, unknown> } }).get;
    if (path.startsWith("/v1/")) {
      assert.equal(op.security, undefined, path);
      for (const status of ["200", "400", "401", "403"]) assert.ok(op.responses[status], `${path} ${status}`);
    } else assert.deepEqual(op.security, [], path);
  }
});
