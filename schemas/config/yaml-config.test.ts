import assert from "node:assert/strict";
import { test } from "node:test";
import { z } from "zod";
import { ConfigError, parseYamlConfig, validateConfig } from "./yaml-config.ts";

const Schema = z.strictObject({
  name: z.string(),
  server: z
    .strictObject({
      port: z.number().int().min(1).max(65535).default(80),
      hosts: z.array(z.string()).default([]),
    })
    .prefault({}),
});

function load(text: string, origin?: (path: PropertyKey[]) => string | undefined) {
  const { value, locate } = parseYamlConfig("app.yaml", text);
  return validateConfig("app.yaml", Schema, value, locate, origin);
}

function problems(fn: () => unknown) {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    return e.problems;
  }
  assert.fail("expected a ConfigError");
}

test("valid document gets defaults", () => {
  assert.deepEqual(load("name: a\n"), { name: "a", server: { port: 80, hosts: [] } });
});

test("wrong type names the line, column and dotted field", () => {
  const [p, ...rest] = problems(() => load("name: a\nserver:\n  port: eighty\n"));
  assert.equal(rest.length, 0);
  assert.equal(p?.field, "server.port");
  assert.equal(p?.line, 3);
  assert.equal(p?.column, 3);
  assert.match(p?.message ?? "", /number/);
});

test("unknown field is reported at the unknown key", () => {
  const [p] = problems(() => load("name: a\nserver:\n  prot: 81\n"));
  assert.deepEqual([p?.field, p?.line, p?.message], ["server.prot", 3, "unknown field"]);
});

test("array element errors carry the index", () => {
  const [p] = problems(() => load("name: a\nserver:\n  hosts:\n    - x\n    - 7\n"));
  assert.equal(p?.field, "server.hosts[1]");
  assert.equal(p?.line, 5);
});

test("a missing required field is reported where its parent starts", () => {
  const [p] = problems(() => load("server:\n  port: 81\n"));
  assert.equal(p?.field, "name");
  assert.equal(p?.line, 1);
});

test("YAML syntax errors name the line", () => {
  const [p] = problems(() => load("name: a\nserver:\n  port: [1,\n"));
  assert.ok((p?.line ?? 0) >= 3, `line ${p?.line}`);
});

test("duplicate keys are an error, not a silent override", () => {
  const [p] = problems(() => load("name: a\nname: b\n"));
  assert.match(p?.message ?? "", /unique|duplicate/i);
});

test("a value from the environment names its variable instead of a line", () => {
  const origin = (path: PropertyKey[]) => (path.join(".") === "server.port" ? "WEIR_PORT" : undefined);
  const [p] = problems(() =>
    validateConfig("app.yaml", Schema, { name: "a", server: { port: 0 } }, () => [9, 9], origin),
  );
  assert.equal(p?.line, 0);
  assert.match(p?.message ?? "", /WEIR_PORT/);
  assert.ok(p);
  assert.match(new ConfigError("app.yaml", [p]).message, /^app\.yaml: server\.port: /);
});

test("an empty file is an empty object", () => {
  const [p] = problems(() => load(""));
  assert.equal(p?.field, "name");
});
