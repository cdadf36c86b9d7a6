import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_PATTERN_LENGTH, PatternError, PatternTable, repeatProduct } from "./regex.ts";

describe("PatternTable (RE2)", () => {
  it("matches in linear time a pattern that makes a backtracking engine run for minutes", () => {
    const t = new PatternTable();
    t.add("(a+)+$");
    // JavaScript's RegExp takes about a minute on this; RE2 answers at once.
    assert.equal(t.test(`${"a".repeat(40)}!`, "(a+)+$"), false);
    assert.equal(t.test("aaaa", "(a+)+$"), true);
  });

  it("uses RE2 syntax: inline flags work, backreferences and lookaround are refused", () => {
    const t = new PatternTable();
    t.add("(?i)cydia");
    assert.equal(t.test("/Applications/CYDIA.app", "(?i)cydia"), true);
    assert.throws(() => t.add("(a)\\1"), PatternError);
    assert.throws(() => t.add("a(?=b)"), PatternError);
  });

  it("searches anywhere in the text, like CEL's matches", () => {
    const t = new PatternTable();
    t.add("wx_[0-9a-f]{6}");
    assert.equal(t.test("加我 wx_8f3a2c 谢谢", "wx_[0-9a-f]{6}"), true);
  });

  it("refuses long patterns and nested counted repetitions", () => {
    const t = new PatternTable();
    assert.throws(() => t.add("a".repeat(MAX_PATTERN_LENGTH + 1)), /at most/);
    assert.throws(() => t.add("((a{100}){100}){100}"), /nest to 1000000 copies/);
    assert.equal(repeatProduct("[{]{3}(x{2}){5}"), 10);
    assert.equal(repeatProduct("\\{100}a{3}"), 3);
  });

  it("refuses a pattern it was not given at compile time", () => {
    assert.throws(() => new PatternTable().test("x", "x"), /not compiled/);
  });
});
