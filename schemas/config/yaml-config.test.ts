import assert from "node:assert/strict";
import { test } from "node:test";
import { z } from "zod";
import { ConfigError, parseYamlConfig, validateConfig, YAML_LIMITS, yamlNesting } from "./yaml-config.ts";

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

// Found by test/chaos/fuzz-configs.test.ts: a 10,000-deep text was a "Maximum call stack size
// exceeded" ConfigError, 100,000 unclosed brackets could exhaust the heap, and an alias bomb threw
// yaml's plain ReferenceError (a stack trace at the command line).
test("collections nested deeper than the limit are refused before parsing, with where", () => {
  const cases: Array<[string, number]> = [
    [`name: ${"[".repeat(100_000)}`, 1],
    [`name: ${"{a: ".repeat(1000)}1${"}".repeat(1000)}`, 1],
    [Array.from({ length: 3000 }, (_, i) => `${" ".repeat(i)}k:`).join("\n"), 65],
    [`name: x\nlist:\n  ${"- ".repeat(5000)}x`, 3],
  ];
  for (const [text, line] of cases) {
    assert.throws(
      () => load(text),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.problems.length === 1 &&
        e.problems[0]?.line === line &&
        /nest more than 64 levels deep/.test(e.message),
      text.slice(0, 40),
    );
  }
  // What real configs hold passes: block scalars, quotes with brackets, comments with brackets.
  const fine = `name: "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["  # ${"[".repeat(100)}
server:
  hosts:
    - a
    - b
  port: 8080
x: |
${Array.from({ length: 100 }, (_, i) => `  ${" ".repeat(i)}{[`).join("\n")}
`;
  assert.equal(yamlNesting(fine, YAML_LIMITS.maxNesting), undefined);
  assert.equal(yamlNesting(`a: ${"[".repeat(60)}${"]".repeat(60)}`, YAML_LIMITS.maxNesting), undefined);
});

test("an alias bomb is a ConfigError, not yaml's ReferenceError", () => {
  const bomb =
    "a: &a [1,2,3,4,5,6,7,8,9]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]";
  assert.throws(
    () => load(bomb),
    (e: unknown) => e instanceof ConfigError && /aliases \(\*name\) cannot be expanded/.test(e.message),
  );
});

test("a text with thousands of mistakes lists the first ones and how many more", () => {
  const text = Array.from({ length: 500 }, (_, i) => `k${i}: 1`).join("\n");
  assert.throws(
    () => load(`name: x\n${text}`),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.problems.length === YAML_LIMITS.maxProblems + 1 &&
      e.problems.at(-1)?.message === `and ${500 - YAML_LIMITS.maxProblems} more problems`,
  );
});
