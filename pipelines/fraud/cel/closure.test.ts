import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { registrationFacts } from "../engine/stage.ts";
import { CidrSet, PrefixTable, StringSet, WordList } from "../lists/matchers.ts";
import { fixtureRecord } from "../rules/fixtures.ts";
import type { ClosureContext } from "./closure.ts";
import { listIdentifier, recordConstructors, snapshotEnvironment } from "./environment.ts";
import { type CompiledExpression, compileExpression } from "./expression.ts";
import { PatternTable } from "./regex.ts";

const lists = [
  new StringSet("hardware", ["goldfish", "ranchu", "42"]),
  new PrefixTable("prefixes", [
    ["170", "virtual"],
    ["171", "virtual"],
  ]),
  new CidrSet("networks", [["47.100.0.0/16", "cloud"]]),
  new WordList("words", ["加v", "wx"]),
];
const patterns = new PatternTable();
const env = snapshotEnvironment(lists, patterns)
  .clone()
  .registerVariable("event", "BehaviorEvent")
  .registerVariable("registration", "Registration")
  .registerVariable("n", "double")
  .registerVariable("before", "BehaviorEvent");
const ctx: ClosureContext = {
  constants: new Map(lists.map((l) => [listIdentifier(l.name), l])),
  constructors: recordConstructors(),
  patterns,
};
const ROOTS = new Set(["event", "registration", "n", "before"]);

function compile(text: string): CompiledExpression {
  const r = compileExpression(env, text, patterns, ROOTS, ctx);
  if (!r.ok) throw new Error(`${text}: ${r.problems.map((p) => p.message).join("; ")}`);
  return r.compiled;
}

/** A behaviour event as the pipeline holds it: decoded from Avro, so nullable fields are null. */
function behavior(fields: Record<string, unknown>): Record<string, unknown> {
  return fixtureRecord("behavior", { at: "0s", type: "CHAT", ...fields }, "e1").record;
}

type Outcome = { value: unknown } | { error: true };
function run(f: () => unknown): Outcome {
  try {
    return { value: f() };
  } catch {
    return { error: true };
  }
}

/** The closures give what cel-js gives (a value or a failure) on every activation. */
function agrees(text: string, activations: Array<Record<string, unknown>>): CompiledExpression {
  const e = compile(text);
  for (const a of activations) {
    const fast = run(() => e.evaluate(a));
    const slow = run(() => e.interpreted(a));
    assert.deepEqual(fast, slow, `${text} on ${JSON.stringify(a, (_k, v) => (typeof v === "bigint" ? `${v}n` : v))}`);
  }
  return e;
}

describe("CEL closures", () => {
  const chat = behavior({ text: "加我 wx_abc123", ip: "47.100.3.7", roomId: 700001 });
  const silent = behavior({ type: "LOGIN", ip: "111.200.5.1" });
  const astral = behavior({ text: "𝒜𝒜b" });
  const reg = registrationFacts(
    behavior({ type: "REGISTER", phone: "17012345678", ip: "47.100.3.7" }),
    Buffer.alloc(32),
  );
  const acts = [
    { event: chat, registration: reg, n: 3, before: silent },
    { event: silent, registration: reg, n: Number.NaN, before: chat },
    { event: astral, registration: null, n: 0, before: astral },
    { event: { type: "CHAT" }, registration: reg, n: 1, before: chat }, // not a BehaviorEvent
    { event: chat, registration: reg, n: 2n, before: null }, // n not a double
    { registration: reg, n: 1 }, // no event at all
  ];

  it("gives cel-js's values and failures on the common path and off it", () => {
    for (const text of [
      'event.type == "CHAT"',
      'event.type != "CHAT" || event.success',
      "!event.success && event.text != null",
      "event.text == null",
      'event.text != null && event.text == "x"',
      "size(event.text) >= 3",
      "size(event.text) == 3",
      'fold(event.text).re2Test("(wx|vx)[_:]?[0-9a-z_]{5,}")',
      're2Test(fold(event.text), "wx")',
      "fold(event.text) in _words",
      "event.ip in _networks",
      "event.roomId in _hardware",
      "phoneDigits(event.phone) in _prefixes",
      "ipNetwork(event.ip, 24)",
      "event.uid == 100000001",
      "event.uid != 100000001",
      "event.uid - 1 > 100000000",
      "event.uid * 2 >= n * 3",
      "event.uid / 0 > 1.0",
      "event.uid / n > 1.0",
      "n >= 3",
      "n < 2.5",
      "event.ts - registration.ts < 3600000",
      "registration.phonePrefix in _prefixes",
      'event.text + "!" == "x!"',
      "before.uid == event.uid",
      "event.roomId == 700001",
      "event.roomId > 7",
      "event.text > 7",
      "event.uid",
      "event.text",
      "event.targetUid",
    ])
      agrees(text, acts);
  });

  it("are built for the common constructs and not for the others", () => {
    assert.equal(compile('event.type == "CHAT" && fold(event.text) in _words').closure, true);
    assert.equal(compile("ipNetwork(event.ip, 24)").closure, true);
    assert.equal(compile("has(event.text)").closure, false);
    assert.equal(compile("[1, 2].exists(x, x == 2)").closure, false);
    assert.equal(compile("n > 1.0 ? true : false").closure, false);
    assert.equal(agrees("has(event.text) && event.text != null", acts).closure, false);
  });

  it("decide alone when every value has the checked type", () => {
    const e = compile('event.type == "CHAT" && size(event.text) >= 3 && fold(event.text) in _words');
    // The closures read `event` once per place it is named (three); cel-js behind them would read it
    // three times more.
    let reads = 0;
    const act = {
      get event() {
        reads++;
        return chat;
      },
    };
    assert.equal(e.evaluate(act), true);
    assert.equal(reads, 3);
  });
});
