// One expression of a rule, compiled: parsed and type-checked by cel-js in the rule's environment,
// its regular expressions compiled to RE2, its cost bounded, and the fields it reads listed (they are
// the evidence a signal carries). Errors come back with the offset in the expanded text; the caller
// maps it to the file. No expression is ever turned into JavaScript source: the checked AST becomes
// closures where it can (cel/closure.ts, cel-js deciding whatever they are not sure of), else cel-js
// interprets it.
import type { ASTNode, Environment } from "@marcbachmann/cel-js";
import { type ClosureContext, compileClosure, withClosure } from "./closure.ts";
import { RE2_FUNCTION } from "./environment.ts";
import { PatternError, type PatternTable } from "./regex.ts";

/** Comprehensions (`exists`, `all`, `map`, `filter`, `exists_one`) inside each other. */
export const MAX_COMPREHENSION_NESTING = 2;
export const MAX_COMPREHENSIONS = 16;
const COMPREHENSIONS = new Set(["all", "exists", "exists_one", "map", "filter"]);

export interface ExpressionProblem {
  offset: number;
  message: string;
}

export interface CompiledExpression {
  /** Evaluates against an activation; throws cel-js's EvaluationError (a missing field, a null, ...). */
  evaluate(activation: Record<string, unknown>): unknown;
  /** cel-js's own evaluation, without closures: what `evaluate` must always agree with (bench/fraud/closures.ts). */
  interpreted(activation: Record<string, unknown>): unknown;
  /** Whether `evaluate` runs closures (cel/closure.ts) before falling back to cel-js. */
  closure: boolean;
  /** The CEL type the checker inferred: bool, string, double, dyn, ... */
  type: string;
  /** The expression as it was compiled (macros expanded, lists and matches rewritten). */
  text: string;
  /** Field paths read from the root variables, e.g. `event.phone`, `device.build.hardware`. */
  fields: string[];
  /** Root variables used (event, device, registration, aggregates, steps). */
  variables: string[];
  /** The checked syntax tree (what the engine reads to index rules by the event types they can match). */
  ast: ASTNode;
  /**
   * For `a && b && ...` (two to MAX_CONJUNCTS terms): each term compiled on its own, so that the
   * engine can evaluate a term several rules share once per event (CEL's `&&` is commutative: false
   * wins over an error, whatever the order).
   */
  conjuncts?: CompiledExpression[];
}

/** Terms of a conjunction compiled on their own (more: the expression is evaluated whole). */
export const MAX_CONJUNCTS = 16;

type Result = { ok: true; compiled: CompiledExpression } | { ok: false; problems: ExpressionProblem[] };

export function compileExpression(
  env: Environment,
  text: string,
  patterns: PatternTable,
  roots: ReadonlySet<string>,
  closures: ClosureContext | null = null,
): Result {
  let parsed: ReturnType<Environment["parse"]>;
  try {
    parsed = env.parse(text);
  } catch (e) {
    return { ok: false, problems: [celProblem(e)] };
  }
  const problems: ExpressionProblem[] = [];
  const fields = new Set<string>();
  const variables = new Set<string>();
  walk(parsed.ast, patterns, roots, fields, variables, problems);
  if (problems.length > 0) return { ok: false, problems };
  const checked = parsed.check();
  if (!checked.valid) return { ok: false, problems: [celProblem(checked.error)] };
  const fast = evaluator(parsed, closures);
  const compiled: CompiledExpression = {
    evaluate: fast ?? numericComparison(parsed.ast, parsed) ?? ((activation) => parsed(activation)),
    interpreted: (activation) => parsed(activation),
    closure: fast !== undefined,
    type: String(checked.type),
    text,
    fields: [...fields].sort(),
    variables: [...variables].sort(),
    ast: parsed.ast,
  };
  const conjuncts = compileConjuncts(env, compiled, closures);
  if (conjuncts) compiled.conjuncts = conjuncts;
  return { ok: true, compiled };
}

const COMPARISONS: Record<string, (a: number, b: number) => boolean> = {
  "<": (a, b) => a < b,
  "<=": (a, b) => a <= b,
  ">": (a, b) => a > b,
  ">=": (a, b) => a >= b,
  "==": (a, b) => a === b,
  "!=": (a, b) => a !== b,
};

/**
 * `name <op> number` (a rule's condition on its aggregate: `cards >= 4`), the most evaluated expression
 * of a stateful rule, as a comparison in JavaScript when the variable holds a number; anything else
 * (a bigint, a missing variable, a NaN) goes to cel-js, so values and errors stay CEL's.
 */
function numericComparison(
  ast: ASTNode,
  whole: (activation: Record<string, unknown>) => unknown,
): ((activation: Record<string, unknown>) => unknown) | undefined {
  const compare = COMPARISONS[ast.op];
  if (!compare) return undefined;
  const [l, r] = ast.args as [ASTNode, ASTNode];
  if (l?.op !== "id" || r?.op !== "value") return undefined;
  const name = l.args as unknown as string;
  const literal = r.args as unknown;
  if (typeof literal !== "bigint" && typeof literal !== "number") return undefined;
  const limit = Number(literal);
  if (!Number.isSafeInteger(limit) && typeof literal === "bigint") return undefined;
  return (activation) => {
    const v = activation[name];
    return typeof v === "number" && !Number.isNaN(v) ? compare(v, limit) : whole(activation);
  };
}

/** The expression's closures with cel-js behind them, or undefined when it has no closures. */
function evaluator(
  parsed: (activation: Record<string, unknown>) => unknown,
  closures: ClosureContext | null,
): ((activation: Record<string, unknown>) => unknown) | undefined {
  const ast = (parsed as unknown as { ast: ASTNode }).ast;
  const fast = closures ? compileClosure(ast, closures) : undefined;
  return fast ? withClosure(fast, parsed) : undefined;
}

/** The terms of a boolean `&&` chain, each compiled from its span of the text; undefined when any is not a plain boolean. */
function compileConjuncts(
  env: Environment,
  whole: CompiledExpression,
  closures: ClosureContext | null,
): CompiledExpression[] | undefined {
  if (whole.ast.op !== "&&" || whole.type !== "bool") return undefined;
  const terms: ASTNode[] = [];
  const stack: ASTNode[] = [whole.ast];
  while (stack.length > 0) {
    const n = stack.pop() as ASTNode;
    if (n.op === "&&") {
      const [l, r] = n.args as [ASTNode, ASTNode];
      stack.push(r, l);
    } else terms.push(n);
    if (terms.length + stack.length > MAX_CONJUNCTS) return undefined;
  }
  const out: CompiledExpression[] = [];
  for (const t of terms) {
    const range = (t as { range?: { start: number; end: number } }).range;
    if (!range) return undefined;
    const text = whole.text.slice(range.start, range.end);
    let parsed: ReturnType<Environment["parse"]>;
    try {
      parsed = env.parse(text);
    } catch {
      return undefined;
    }
    const checked = parsed.check();
    if (!checked.valid || String(checked.type) !== "bool") return undefined;
    const fast = evaluator(parsed, closures);
    out.push({
      evaluate: fast ?? ((activation) => parsed(activation)),
      interpreted: (activation) => parsed(activation),
      closure: fast !== undefined,
      type: "bool",
      text,
      fields: whole.fields,
      variables: whole.variables,
      ast: parsed.ast,
    });
  }
  return out;
}

/** An error of cel-js as an offset and a message in the rule's words (`matches`, `@list`). */
export function celProblem(e: unknown): ExpressionProblem {
  if (e instanceof RangeError) return { offset: 0, message: "the expression nests too deeply to parse" };
  const err = e as { message?: string; range?: { start: number }; node?: { range?: { start: number } } };
  const offset = err.range?.start ?? err.node?.range?.start ?? 0;
  const first = String(err.message ?? e).split("\n")[0] as string;
  return { offset, message: inRuleWords(first) };
}

export function inRuleWords(message: string): string {
  return message
    .replaceAll(RE2_FUNCTION, "matches")
    .replace(/\b_([a-z][a-z0-9_]*)\b/g, "@$1")
    .replace(/^No such key: (.*)$/, "no field $1");
}

interface Frame {
  node: ASTNode;
  comprehensionDepth: number;
  /** Names bound by enclosing comprehensions (not root variables there). */
  bound: ReadonlySet<string>;
}

// Iterative: cel-js bounds the AST's depth and size, but nothing here should depend on it.
function walk(
  root: ASTNode,
  patterns: PatternTable,
  roots: ReadonlySet<string>,
  fields: Set<string>,
  variables: Set<string>,
  problems: ExpressionProblem[],
): void {
  let comprehensions = 0;
  const stack: Frame[] = [{ node: root, comprehensionDepth: 0, bound: new Set() }];
  while (stack.length > 0) {
    const { node, comprehensionDepth, bound } = stack.pop() as Frame;
    const push = (n: unknown, depth = comprehensionDepth, b = bound) => {
      if (n && typeof n === "object" && "op" in (n as object))
        stack.push({ node: n as ASTNode, comprehensionDepth: depth, bound: b });
    };
    switch (node.op) {
      case "value":
        break;
      case "id": {
        const name = node.args as string;
        if (roots.has(name) && !bound.has(name)) {
          variables.add(name);
          fields.add(name);
        }
        break;
      }
      case ".":
      case ".?": {
        const path = fieldPath(node);
        if (path && roots.has(path.root) && !bound.has(path.root)) {
          variables.add(path.root);
          fields.add(path.path);
          break;
        }
        push((node.args as [ASTNode, string])[0]);
        break;
      }
      case "call": {
        const [name, args] = node.args as [string, ASTNode[]];
        if (name === RE2_FUNCTION) checkPattern(args[1], patterns, problems);
        for (const a of args) push(a);
        break;
      }
      case "rcall": {
        const [name, receiver, args] = node.args as [string, ASTNode, ASTNode[]];
        if (name === RE2_FUNCTION) checkPattern(args[0], patterns, problems);
        if (COMPREHENSIONS.has(name) && args.length >= 2 && args[0]?.op === "id") {
          comprehensions++;
          const depth = comprehensionDepth + 1;
          if (depth > MAX_COMPREHENSION_NESTING) {
            problems.push({
              offset: node.range.start,
              message: `comprehensions (${[...COMPREHENSIONS].join(", ")}) nest at most ${MAX_COMPREHENSION_NESTING} deep: each level multiplies the work per event`,
            });
            break;
          }
          if (comprehensions > MAX_COMPREHENSIONS) {
            problems.push({ offset: node.range.start, message: `at most ${MAX_COMPREHENSIONS} comprehensions` });
            break;
          }
          const inner = new Set(bound);
          inner.add(args[0].args as string);
          push(receiver);
          for (const a of args.slice(1)) push(a, depth, inner);
          break;
        }
        push(receiver);
        for (const a of args) push(a);
        break;
      }
      case "list":
        for (const a of node.args as ASTNode[]) push(a);
        break;
      case "map":
        for (const [k, v] of node.args as Array<[ASTNode, ASTNode]>) {
          push(k);
          push(v);
        }
        break;
      default:
        // operators: one, two or three operands
        if (Array.isArray(node.args)) for (const a of node.args as unknown[]) push(a);
        else push(node.args);
    }
  }
}

/** `event.build.hardware` as root `event` and path, when the chain is only field selections. */
function fieldPath(node: ASTNode): { root: string; path: string } | undefined {
  const parts: string[] = [];
  let n: ASTNode = node;
  while (n.op === "." || n.op === ".?") {
    const [inner, field] = n.args as [ASTNode, string];
    parts.push(field);
    n = inner;
  }
  if (n.op !== "id") return undefined;
  const root = n.args as string;
  return { root, path: [root, ...parts.reverse()].join(".") };
}

function checkPattern(arg: ASTNode | undefined, patterns: PatternTable, problems: ExpressionProblem[]): void {
  if (!arg) return;
  if (arg.op !== "value" || typeof arg.args !== "string") {
    problems.push({
      offset: arg.range.start,
      message: "matches() takes a literal pattern (a string in quotes), so it is checked and compiled once",
    });
    return;
  }
  try {
    patterns.add(arg.args);
  } catch (e) {
    problems.push({
      offset: arg.range.start,
      message: e instanceof PatternError ? e.message : `not an RE2 regular expression: ${(e as Error).message}`,
    });
  }
}
