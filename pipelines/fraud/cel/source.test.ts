import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { MAX_EXPRESSION_LENGTH, MAX_NESTING, MAX_UNARY_RUN, prepareSource } from "./source.ts";

describe("prepareSource", () => {
  it("turns @lists into identifiers and matches into RE2, keeping every position", () => {
    const src = 'phoneDigits(event.phone) in @virtual_prefixes && event.text.matches("a+")';
    const p = prepareSource(src);
    assert.equal(p.text.length, src.length);
    assert.equal(p.text, 'phoneDigits(event.phone) in _virtual_prefixes && event.text.re2Test("a+")');
    assert.deepEqual(
      p.lists.map((l) => [l.name, l.start]),
      [["virtual_prefixes", 28]],
    );
    assert.deepEqual(p.problems, []);
  });

  it("leaves string literals alone, raw, triple-quoted and with escapes", () => {
    for (const s of [`"@x matches(" == 'y'`, `r"\\d+@z" == "a"`, `"""multi @line""" == "x\\"@q"`, `b'@x' == b'y'`]) {
      const p = prepareSource(s);
      assert.equal(p.text, s, s);
      assert.deepEqual(p.lists, []);
    }
  });

  it("lists the free names (macros, variables), not fields or calls", () => {
    const p = prepareSource("is_register && event.type == 'X' && size(event.sensors) > 1 && fresh");
    assert.deepEqual(
      p.names.map((n) => n.name),
      ["is_register", "event", "event", "fresh"],
    );
  });

  it("refuses reserved names, a bare @, an unclosed string", () => {
    assert.match(prepareSource("_virtual == 1").problems[0]?.message ?? "", /reserved; a list is written @virtual/);
    assert.match(prepareSource("re2Test(a, 'b')").problems[0]?.message ?? "", /re2Test is reserved/);
    assert.match(prepareSource("event.x in @ ").problems[0]?.message ?? "", /@ must be followed by a list's name/);
    assert.equal(prepareSource('event.x == "abc').problems[0]?.message, "this string is never closed");
  });

  it("refuses what would overflow the parser: length, nesting, unary chains", () => {
    assert.match(
      prepareSource("1".repeat(MAX_EXPRESSION_LENGTH + 1)).problems[0]?.message ?? "",
      /characters; at most/,
    );
    assert.match(prepareSource(`${"(".repeat(MAX_NESTING + 1)}1`).problems[0]?.message ?? "", /nest more than/);
    assert.match(prepareSource(`${"!".repeat(MAX_UNARY_RUN + 1)}true`).problems[0]?.message ?? "", /! or - in a row/);
    assert.deepEqual(prepareSource("a - -1 != -2 && !b").problems, []);
  });

  it("never throws and never changes the length (property)", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        const p = prepareSource(s);
        assert.equal(p.text.length, s.length);
      }),
      { numRuns: 2000 },
    );
  });
});
