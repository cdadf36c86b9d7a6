import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ASTNode } from "@marcbachmann/cel-js";
import type { CompiledExpression } from "../cel/expression.ts";
import { eventActivation, holds, newCounters, safeEvaluate, withVariable } from "./evaluate.ts";

/** An expression that counts its evaluations (as cel-js or the closures would evaluate it). */
function counted(text: string, variables: string[], f: (a: Record<string, unknown>) => unknown) {
  const calls = { n: 0 };
  const evaluate = (a: Record<string, unknown>) => {
    calls.n++;
    return f(a);
  };
  const e: CompiledExpression = {
    evaluate,
    interpreted: evaluate,
    closure: false,
    type: "bool",
    text,
    fields: variables,
    variables,
    ast: {} as ASTNode,
  };
  return { e, calls };
}

describe("shared evaluation", () => {
  it("evaluates a text several rules share once per event, and again for the next event", () => {
    const text = `event.n > 1 /* ${Math.random()} */`;
    const a = counted(text, ["event"], (x) => (x.event as { n: number }).n > 1);
    const b = counted(text, ["event"], (x) => (x.event as { n: number }).n > 1);
    const first = eventActivation({ n: 2 }, null, null);
    assert.equal(safeEvaluate(a.e, first, newCounters()), true);
    assert.equal(safeEvaluate(b.e, first, newCounters()), true);
    assert.equal(a.calls.n + b.calls.n, 1);
    const second = eventActivation({ n: 0 }, null, null);
    assert.equal(safeEvaluate(b.e, second, newCounters()), false);
    assert.equal(a.calls.n + b.calls.n, 2);
    // An aggregate added to the event's activation keeps its shared results.
    assert.equal(safeEvaluate(a.e, withVariable(second, "count", 3), newCounters()), false);
    assert.equal(a.calls.n + b.calls.n, 2);
  });

  it("counts a shared failure as an error of every rule that reads it", () => {
    const text = `event.missing /* ${Math.random()} */`;
    const { e, calls } = counted(text, ["event"], () => {
      throw new Error("No such key: missing\nmore");
    });
    const act = eventActivation({}, null, null);
    const c1 = newCounters();
    const c2 = newCounters();
    assert.equal(holds(e, act, c1), false);
    assert.equal(holds(e, act, c2), false);
    assert.equal(calls.n, 1);
    assert.deepEqual([c1.errors, c2.errors, c1.evaluations, c2.evaluations], [1, 1, 1, 1]);
    assert.equal(c2.lastError, "No such key: missing");
  });

  it("evaluates an expression reading more than the event every time", () => {
    const { e, calls } = counted(`count >= 3 /* ${Math.random()} */`, ["count"], (x) => (x.count as number) >= 3);
    const act = withVariable(eventActivation({}, null, null), "count", 4);
    assert.equal(safeEvaluate(e, act, newCounters()), true);
    assert.equal(safeEvaluate(e, act, newCounters()), true);
    assert.equal(calls.n, 2);
  });
});
