// A checked expression as JavaScript closures, built once when the rule set compiles: evaluating it
// is a few direct calls instead of cel-js walking its syntax tree (a context object, an argument array
// and a dispatch per node, per event). No source text is generated and nothing is `eval`ed: each node
// becomes a closure over its children's closures.
//
// The closures only take the common path, where every value has the type the checker expects of it
// (a string field holds a string, a nullable field holds null or a string, a number is compared with a
// number). Anything else (a missing field, a null where a value is needed, a bigint sum, a type the
// closures do not know) gives UNSURE, and the caller evaluates the expression with cel-js instead, so
// values and errors stay cel-js's own: the closures are a shortcut, never a second semantics. An
// expression with a construct the closures do not build (comprehensions, `has`, the ternary, maps,
// lists, ...) gets no closure at all and is always evaluated by cel-js.
import type { ASTNode } from "@marcbachmann/cel-js";
import type { NamedList } from "../lists/matchers.ts";
import { networkOf } from "../lists/matchers.ts";
import { phoneDigits } from "../normalize.ts";
import { foldText, RE2_FUNCTION } from "./environment.ts";
import type { PatternTable } from "./regex.ts";

type Activation = Record<string, unknown>;
type Closure = (activation: Activation) => unknown;

/** Not the common path: evaluate with cel-js. */
export const UNSURE: unique symbol = Symbol("unsure");

/** What the closures need of the rule set: its lists (by CEL identifier), record constructors and patterns. */
export interface ClosureContext {
  constants: ReadonlyMap<string, NamedList>;
  /** The constructor of each record type the checker knows (event types, nested records, Registration). */
  constructors: ReadonlyMap<string, unknown>;
  patterns: PatternTable;
}

interface CheckedNode {
  op: string;
  args: unknown;
  checkedType?: { name: string; kind: string };
}

/**
 * The expression as closures (returning UNSURE off the common path), or undefined when it uses a
 * construct they do not build. Recursion over the tree is bounded by the parser's depth limit
 * (EXPRESSION_LIMITS.maxDepth), as is the closures' own nesting.
 */
export function compileClosure(ast: ASTNode, ctx: ClosureContext): Closure | undefined {
  return build(ast as unknown as CheckedNode, ctx);
}

function build(n: CheckedNode, ctx: ClosureContext): Closure | undefined {
  switch (n.op) {
    case "value": {
      const v = n.args;
      if (v !== null && typeof v === "object") return undefined;
      return () => v;
    }
    case "id":
      return variable(n, ctx);
    case ".":
      return field(n, ctx);
    case "!_": {
      const arg = build(n.args as CheckedNode, ctx);
      if (!arg) return undefined;
      return (a) => {
        const v = arg(a);
        return typeof v === "boolean" ? !v : UNSURE;
      };
    }
    case "&&":
    case "||":
      return logical(n, ctx);
    case "==":
    case "!=":
      return equality(n, ctx);
    case "<":
    case "<=":
    case ">":
    case ">=":
      return ordering(n, ctx);
    case "+":
    case "-":
    case "*":
    case "/":
      return arithmetic(n, ctx);
    case "in":
      return membership(n, ctx);
    case "call":
      return call(n, ctx);
    case "rcall":
      return methodCall(n, ctx);
    default:
      return undefined;
  }
}

/** A value of a record type: the record itself when it was made by that type's constructor. */
function ofRecord(ctor: unknown): (v: unknown) => unknown {
  return (v) => (v !== null && typeof v === "object" && v.constructor === ctor ? v : UNSURE);
}

/** A check that a value has the checked type; undefined when the closures do not know the type. */
function typeCheck(t: CheckedNode["checkedType"], ctx: ClosureContext): ((v: unknown) => unknown) | undefined {
  if (!t) return undefined;
  if (t.kind === "message") {
    const ctor = ctx.constructors.get(t.name);
    return ctor ? ofRecord(ctor) : undefined;
  }
  switch (t.name) {
    case "string":
      return (v) => (typeof v === "string" ? v : UNSURE);
    case "double":
      return (v) => (typeof v === "number" ? v : UNSURE);
    case "bool":
      return (v) => (typeof v === "boolean" ? v : UNSURE);
    case "dyn":
      // A nullable field: null or a scalar; a record or a list there is left to cel-js.
      return (v) =>
        v === null || typeof v === "string" || typeof v === "number" || typeof v === "boolean" ? v : UNSURE;
    default:
      return undefined;
  }
}

function variable(n: CheckedNode, ctx: ClosureContext): Closure | undefined {
  const name = n.args as string;
  if (ctx.constants.has(name)) return undefined; // lists only as the right side of `in`
  const check = typeCheck(n.checkedType, ctx);
  if (!check || n.checkedType?.name === "dyn") return undefined;
  return (a) => {
    const v = Object.hasOwn(a, name) ? a[name] : undefined;
    return v === undefined ? UNSURE : check(v);
  };
}

function field(n: CheckedNode, ctx: ClosureContext): Closure | undefined {
  const [left, name] = n.args as [CheckedNode, string];
  if (left.checkedType?.kind !== "message" || typeof name !== "string") return undefined;
  const obj = build(left, ctx);
  const check = typeCheck(n.checkedType, ctx);
  if (!obj || !check) return undefined;
  return (a) => {
    const o = obj(a);
    if (o === UNSURE) return UNSURE;
    const v = (o as Record<string, unknown>)[name];
    return v === undefined ? UNSURE : check(v);
  };
}

function operands(n: CheckedNode, ctx: ClosureContext): [Closure, Closure] | undefined {
  const [l, r] = n.args as [CheckedNode, CheckedNode];
  const left = build(l, ctx);
  const right = left && build(r, ctx);
  return left && right ? [left, right] : undefined;
}

// CEL's && and || are commutative over errors (`error && false` is false); on the common path both
// sides are bools, and anything else goes to cel-js, which applies that rule.
function logical(n: CheckedNode, ctx: ClosureContext): Closure | undefined {
  const ops = operands(n, ctx);
  if (!ops) return undefined;
  const [left, right] = ops;
  const decisive = n.op === "||";
  return (a) => {
    const l = left(a);
    if (l === decisive) return decisive;
    if (typeof l !== "boolean") return UNSURE;
    const r = right(a);
    return typeof r === "boolean" ? r : UNSURE;
  };
}

/** CEL equality on the common path: same scalar types, a double and an int literal, or a scalar and null. */
function equals(l: unknown, r: unknown): boolean | typeof UNSURE {
  const tl = typeof l;
  const tr = typeof r;
  if (tl === tr && (tl === "string" || tl === "number" || tl === "boolean" || tl === "bigint")) return l === r;
  if (tl === "number" && tr === "bigint") return (l as number) === Number(r); // the environment's `double == int`
  if (r === null && (l === null || tl === "string" || tl === "number" || tl === "boolean")) return l === null;
  if (l === null && (tr === "string" || tr === "number" || tr === "boolean")) return false;
  return UNSURE;
}

function equality(n: CheckedNode, ctx: ClosureContext): Closure | undefined {
  const ops = operands(n, ctx);
  if (!ops) return undefined;
  const [left, right] = ops;
  const negate = n.op === "!=";
  return (a) => {
    const l = left(a);
    if (l === UNSURE) return UNSURE;
    const r = right(a);
    if (r === UNSURE) return UNSURE;
    const eq = equals(l, r);
    return eq === UNSURE ? UNSURE : eq !== negate;
  };
}

/** A number for ordering and arithmetic: a double, or an int exactly representable as one. */
function numeric(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") {
    const x = Number(v);
    return Number.isSafeInteger(x) ? x : undefined;
  }
  return undefined;
}

function ordering(n: CheckedNode, ctx: ClosureContext): Closure | undefined {
  const ops = operands(n, ctx);
  if (!ops) return undefined;
  const [left, right] = ops;
  const cmp: (l: number, r: number) => boolean =
    n.op === "<"
      ? (l, r) => l < r
      : n.op === "<="
        ? (l, r) => l <= r
        : n.op === ">"
          ? (l, r) => l > r
          : (l, r) => l >= r;
  return (a) => {
    const l = numeric(left(a));
    if (l === undefined) return UNSURE;
    const r = numeric(right(a));
    return r === undefined ? UNSURE : cmp(l, r);
  };
}

// Doubles with doubles, and doubles with int literals (the environment's `double * int` and the
// like); two ints (bigint arithmetic, overflow checked) and division by zero are cel-js's.
function arithmetic(n: CheckedNode, ctx: ClosureContext): Closure | undefined {
  const ops = operands(n, ctx);
  if (!ops) return undefined;
  const [left, right] = ops;
  const op = n.op;
  return (a) => {
    const l = left(a);
    const r = right(a);
    if (op === "+" && typeof l === "string" && typeof r === "string") return l + r;
    if (typeof l === "bigint" && typeof r === "bigint") return UNSURE;
    const x = numeric(l);
    const y = numeric(r);
    if (x === undefined || y === undefined) return UNSURE;
    switch (op) {
      case "+":
        return x + y;
      case "-":
        return x - y;
      case "*":
        return x * y;
      default:
        return y === 0 ? UNSURE : x / y;
    }
  };
}

/** `x in @list`: the environment's `string in <list>` (and `double in StringSet`). */
function membership(n: CheckedNode, ctx: ClosureContext): Closure | undefined {
  const [l, r] = n.args as [CheckedNode, CheckedNode];
  if (r.op !== "id") return undefined;
  const list = ctx.constants.get(r.args as string);
  const left = list && build(l, ctx);
  if (!list || !left) return undefined;
  const numbers = list.kind === "set";
  return (a) => {
    const v = left(a);
    if (typeof v === "string") return list.has(v);
    if (numbers && typeof v === "number") return (list as { has(v: number): boolean }).has(v);
    return UNSURE;
  };
}

function stringArgument(args: CheckedNode[], ctx: ClosureContext): Closure | undefined {
  return args.length === 1 ? build(args[0] as CheckedNode, ctx) : undefined;
}

/** The functions of the environment (cel/environment.ts) and `size` of a string. */
function call(n: CheckedNode, ctx: ClosureContext): Closure | undefined {
  const [name, args] = n.args as [string, CheckedNode[]];
  const unary = (f: (s: string) => unknown): Closure | undefined => {
    const arg = stringArgument(args, ctx);
    if (!arg) return undefined;
    return (a) => {
      const s = arg(a);
      return typeof s === "string" ? f(s) : UNSURE;
    };
  };
  switch (name) {
    case "size":
      return unary((s) => BigInt(codePoints(s)));
    case "fold":
      return unary(foldText);
    case "phoneDigits":
      return unary(phoneDigits);
    case "ipNetwork": {
      if (args.length !== 2) return undefined;
      const ops = operands({ op: name, args }, ctx);
      if (!ops) return undefined;
      const [ip, bits] = ops;
      return (a) => {
        const s = ip(a);
        const b = bits(a);
        return typeof s === "string" && typeof b === "bigint" ? networkOf(s, Number(b)) : UNSURE;
      };
    }
    case RE2_FUNCTION: {
      if (args.length !== 2 || (args[1] as CheckedNode).op !== "value") return undefined;
      const pattern = (args[1] as CheckedNode).args;
      const text = build(args[0] as CheckedNode, ctx);
      if (!text || typeof pattern !== "string") return undefined;
      const patterns = ctx.patterns;
      return (a) => {
        const s = text(a);
        return typeof s === "string" ? patterns.test(s, pattern) : UNSURE;
      };
    }
    default:
      return undefined;
  }
}

function methodCall(n: CheckedNode, ctx: ClosureContext): Closure | undefined {
  const [name, receiver, args] = n.args as [string, CheckedNode, CheckedNode[]];
  if (name !== RE2_FUNCTION || args.length !== 1 || (args[0] as CheckedNode).op !== "value") return undefined;
  const pattern = (args[0] as CheckedNode).args;
  const text = build(receiver, ctx);
  if (!text || typeof pattern !== "string") return undefined;
  const patterns = ctx.patterns;
  return (a) => {
    const s = text(a);
    return typeof s === "string" ? patterns.test(s, pattern) : UNSURE;
  };
}

/** CEL's size of a string: its code points, not its UTF-16 units. */
function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // A high surrogate followed by a low one is one code point.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** The expression's value by its closures when they are sure, else by cel-js (`whole`). */
export function withClosure(fast: Closure, whole: Closure): Closure {
  return (activation) => {
    let v: unknown;
    try {
      v = fast(activation);
    } catch {
      v = UNSURE;
    }
    return v === UNSURE ? whole(activation) : v;
  };
}
