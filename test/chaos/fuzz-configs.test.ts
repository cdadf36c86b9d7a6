// Fuzzed YAML into every configuration weir reads (the SLO file, logs.yaml, a ship config, the hot
// keys config, the alert scenes) and into the risk team's rules folder (YAML and CEL). Whatever the
// text, the result is the config or a ConfigError that names the file and says what is wrong, in
// bounded time; a rules folder compiles or lists its problems, each with its file. Deep nesting,
// alias bombs and huge flow collections are the hostile cases a mutation rarely reaches, so they are
// tried by name too.
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import fc from "fast-check";
import { PROJECT_ROOT } from "../../infra/stack/config.ts";
import { Scenes } from "../../pipelines/alerts/scenes.ts";
import { compileRuleSet } from "../../pipelines/fraud/rules/compile.ts";
import { SloConfig } from "../../pipelines/health/slo.ts";
import { loadHotKeysConfig } from "../../pipelines/hotkeys/config.ts";
import { parseLogsConfig } from "../../pipelines/logs/config.ts";
import { ConfigError } from "../../schemas/config/yaml-config.ts";
import { loadShipConfig } from "../../shipper/config.ts";
import { bounded, fuzzParams, mutated } from "./support/fuzz.ts";

const dir = mkdtempSync(join(tmpdir(), "weir-fuzz-configs-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const read = (path: string) => readFileSync(join(PROJECT_ROOT, path), "utf8");

const SHIP_YAML = `dataDir: ${dir}/ship
channel: { maxBytes: 64MiB, fsync: interval }
kafka: { brokers: [127.0.0.1:9092], compression: lz4, batchRecords: 4000 }
metrics: { port: 0 }
sources:
  - name: pay-app
    paths: ["/var/log/pay-svc/app.log*"]
    format: { type: text, timezone: Asia/Shanghai }
    multiline: { start: '^\\d{4}-', flushMs: 2000 }
    topic: logs.app
    pathTemplate: /var/log/{service}/*
  - name: services
    paths: ["/var/log/*/events.log*"]
    route: { field: kind, topics: { coin: events.coin }, default: logs.app }
    keyField: uid
    fields: { env: prod }
`;

/** Each config: its valid text and how weir reads it. */
const CONFIGS: Array<{ name: string; valid: string; read: (text: string) => unknown }> = [
  { name: "slo.yaml", valid: read("pipelines/health/slo.yaml"), read: (t) => SloConfig.parse(t, "slo.yaml") },
  { name: "logs.yaml", valid: read("pipelines/logs/logs.yaml"), read: (t) => parseLogsConfig(t, "logs.yaml") },
  { name: "scenes.yaml", valid: read("pipelines/alerts/scenes.yaml"), read: (t) => Scenes.parse(t, "scenes.yaml") },
  {
    name: "hotkeys.yaml",
    valid: read("pipelines/hotkeys/hotkeys.yaml"),
    read: (t) => {
      const file = join(dir, "hotkeys.yaml");
      writeFileSync(file, t);
      return loadHotKeysConfig(file);
    },
  },
  {
    name: "ship.yaml",
    valid: SHIP_YAML,
    read: (t) => {
      const file = join(dir, "ship.yaml");
      writeFileSync(file, t);
      return loadShipConfig(file);
    },
  },
];

/** Texts no mutation of a real config is likely to reach. */
const HOSTILE: Array<[string, string]> = [
  ["a 10,000-deep flow sequence", `a: ${"[".repeat(10_000)}${"]".repeat(10_000)}`],
  ["100,000 unclosed [", `a: ${"[".repeat(100_000)}`],
  ["a 10,000-deep flow mapping", `a: ${"{b: ".repeat(10_000)}1${"}".repeat(10_000)}`],
  ["3,000 nested block mappings", Array.from({ length: 3000 }, (_, i) => `${" ".repeat(i)}k:`).join("\n")],
  ["5,000 nested block sequences", `${Array.from({ length: 5000 }, (_, i) => `${" ".repeat(i * 2)}- `).join("\n")}x`],
  ["20,000 compact sequences on one line", `${"- ".repeat(20_000)}x`],
  ["20,000 compact mappings on one line", `${"a: ".repeat(20_000)}x`],
  [
    "an alias bomb",
    "a: &a [1,2,3,4,5,6,7,8,9]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]",
  ],
  ["a recursive alias", "a: &a [*a]"],
  ["10,000 duplicate keys", Array.from({ length: 10_000 }, () => "k: 1").join("\n")],
  ["a 4 MiB scalar", `a: ${"x".repeat(4 << 20)}`],
  ["NUL bytes", "a: \u0000\u0000\nb: [\u0000]"],
  ["a lone surrogate and a BOM", "\ufeffa: \ud800\n"],
  ["tags", "a: !!binary aGVsbG8=\nb: !!js/function 'function(){}'\nc: !<tag:yaml.org,2002:set> {x}"],
];

/** The property: the config, or a ConfigError naming the file, short enough to read. */
function readsOrSaysWhy(name: string, readConfig: (text: string) => unknown, text: string): void {
  try {
    bounded(`${name} (${text.length} chars)`, () => readConfig(text));
  } catch (e) {
    assert.ok(e instanceof ConfigError, `${name}: not a ConfigError: ${(e as Error)?.stack?.slice(0, 800)}`);
    assert.ok(e.message.includes(name), `${name}: the error names the file: ${e.message.slice(0, 200)}`);
    assert.ok(e.problems.length > 0 && e.problems.length <= 50, `${name}: ${e.problems.length} problems`);
    assert.ok(e.message.length < 20_000, `${name}: a ${e.message.length}-character error`);
    for (const p of e.problems) assert.ok(p.message.length > 0);
  }
}

describe("YAML configs: the config or a ConfigError that says where and why", () => {
  for (const { name, valid, read: readConfig } of CONFIGS) {
    test(`${name}: the file weir ships is valid`, () => {
      readConfig(valid);
    });
    test(`${name}: mutated`, { timeout: 300_000 }, () => {
      fc.assert(
        fc.property(
          fc.oneof(
            { weight: 6, arbitrary: mutated(fc.constant(valid)) },
            { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
          ),
          (text) => readsOrSaysWhy(name, readConfig, text),
        ),
        fuzzParams(150),
      );
    });
    test(`${name}: hostile texts`, { timeout: 300_000 }, () => {
      for (const [what, text] of HOSTILE) readsOrSaysWhy(`${name}`, readConfig, `${text}\n`);
    });
  }
});

describe("rules folders: compiled, or every problem with its file", () => {
  const root = join(dir, "rules");
  cpSync(join(PROJECT_ROOT, "rules"), root, { recursive: true });
  // One rules file is fuzzed at a time; the others are removed so that a run compiles one file.
  const files = ["examples/spam.yaml", "examples/windows.yaml", "examples/sequences.yaml", "examples/emulator.yaml"];
  const originals = new Map(files.map((f) => [f, readFileSync(join(root, f), "utf8")]));
  for (const f of ["examples/fake-phone.yaml", "examples/root.yaml"]) rmSync(join(root, f));

  function compileWith(file: string, text: string) {
    for (const f of files) writeFileSync(join(root, f), f === file ? text : "rules: []\n");
    const result = bounded(`compiling ${file}`, () => compileRuleSet(root), 5_000);
    for (const p of result.problems) {
      assert.ok(p.file.length > 0 && p.message.length > 0, JSON.stringify(p));
      assert.ok(p.message.length < 2_000, `a ${p.message.length}-character problem`);
    }
    assert.equal(result.plan === undefined, result.problems.length > 0, "a plan exactly when there is no problem");
    return result;
  }

  /** CEL: tokens of the language, identifiers the rules see, and garbage, put together at random. */
  const celToken = fc.constantFrom(
    "event.amount",
    "event.uid",
    "event.text",
    "event.type",
    "event.build.hardware",
    "device.root",
    "is_gift",
    "@contact_words",
    "@root_packages",
    "fold(",
    "size(",
    ".matches(",
    ".exists(p, ",
    "p",
    "in",
    "&&",
    "||",
    "!",
    "==",
    "!=",
    ">=",
    "<",
    "+",
    "-",
    "*",
    "/",
    "%",
    "?",
    ":",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ".",
    "1",
    "0",
    "1e308",
    "-9223372036854775808",
    "18446744073709551615u",
    '"a"',
    "'b'",
    'r"\\d+"',
    'b"\\xff"',
    "null",
    "true",
    "has(event.x)",
    "dyn(",
    "int(",
    "string(",
    "timestamp(",
    "duration(",
    '"(a+)+$"',
    "\u0000",
    "\ud800",
    "\n",
  );
  const cel = fc.oneof(
    fc.array(celToken, { maxLength: 30 }).map((t) => t.join(" ")),
    fc.integer({ min: 1, max: 2000 }).map((n) => `${"(".repeat(n)}1${")".repeat(n)}`),
    fc.integer({ min: 1, max: 2000 }).map((n) => `${"!".repeat(n)}true`),
    fc.integer({ min: 1, max: 3000 }).map((n) => Array.from({ length: n }, () => "event.amount").join(" + ") + " > 0"),
    fc.string({ maxLength: 100 }),
  );
  const spam = originals.get("examples/spam.yaml") as string;

  test("a rule's `when` replaced by fuzzed CEL", { timeout: 300_000 }, () => {
    fc.assert(
      fc.property(cel, (expr) => {
        const text = spam.replace(/when: >-\n(?: {6}.*\n)+/, `when: ${JSON.stringify(expr)}\n`);
        compileWith("examples/spam.yaml", text);
      }),
      fuzzParams(60),
    );
  });

  test("mutated rules files", { timeout: 300_000 }, () => {
    fc.assert(
      fc.property(fc.constantFrom(...files), fc.integer(), (file, seed) => {
        const text = fc.sample(mutated(fc.constant(originals.get(file) as string)), { seed, numRuns: 1 })[0] as string;
        compileWith(file, text);
      }),
      fuzzParams(40),
    );
  });

  test("hostile rules files", { timeout: 300_000 }, () => {
    for (const [, text] of HOSTILE) compileWith("examples/spam.yaml", `${text}\n`);
  });
});
