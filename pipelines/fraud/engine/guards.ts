// Which event types an expression can be true for, read from its syntax tree, so a stage evaluates a
// rule only for events of those types (Falco indexes its rules by event type the same way). Most
// rules begin with `event.type == "REGISTER"` or a macro that expands to it; with a hundred rules, an
// event of one type meets a handful of them, not all.
//
// The guard is exact, never a guess: an expression is skipped for a type only when the tree proves it
// false for that type. `a && b` is false when either is (CEL's && is false when either side is false,
// whatever the other side does, errors included), so its guard is the intersection; `a || b` needs
// one of them, so the union; `event.type == "X"` and `event.type in ["X", "Y"]` name their types;
// anything else may hold for any type.
import type { ASTNode } from "@marcbachmann/cel-js";

/** The event types an expression can hold for; null: any type. */
export type TypeGuard = ReadonlySet<string> | null;

/** The guard of a boolean expression over `event` (iterative: the tree's depth is bounded, but nothing here relies on it). */
export function typeGuard(root: ASTNode, field = "type"): TypeGuard {
  // Post-order over && and || nodes; leaves are decided directly.
  const results = new Map<ASTNode, TypeGuard>();
  const stack: Array<{ node: ASTNode; expanded: boolean }> = [{ node: root, expanded: false }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as { node: ASTNode; expanded: boolean };
    const { node } = top;
    if (node.op === "&&" || node.op === "||") {
      const [l, r] = node.args as [ASTNode, ASTNode];
      if (!top.expanded) {
        top.expanded = true;
        stack.push({ node: l, expanded: false }, { node: r, expanded: false });
        continue;
      }
      stack.pop();
      const a = results.get(l) ?? null;
      const b = results.get(r) ?? null;
      results.set(node, node.op === "&&" ? intersect(a, b) : union(a, b));
      continue;
    }
    stack.pop();
    results.set(node, leaf(node, field));
  }
  return results.get(root) ?? null;
}

/** The guard of several expressions that must all hold (a rule's `when` and its aggregate's `where`). */
export function allOf(...guards: TypeGuard[]): TypeGuard {
  return guards.reduce<TypeGuard>((acc, g) => intersect(acc, g), null);
}

/** The guard of several entry points (a sequence's steps on one stream): any of them. */
export function anyOf(...guards: TypeGuard[]): TypeGuard {
  if (guards.length === 0) return null;
  return guards.reduce<TypeGuard>((acc, g) => union(acc, g), new Set());
}

function intersect(a: TypeGuard, b: TypeGuard): TypeGuard {
  if (a === null) return b;
  if (b === null) return a;
  return new Set([...a].filter((x) => b.has(x)));
}

function union(a: TypeGuard, b: TypeGuard): TypeGuard {
  if (a === null || b === null) return null;
  return new Set([...a, ...b]);
}

function leaf(node: ASTNode, field: string): TypeGuard {
  if (node.op === "==") {
    const [l, r] = node.args as [ASTNode, ASTNode];
    const lit = isField(l, field) ? literal(r) : isField(r, field) ? literal(l) : undefined;
    return lit === undefined ? null : new Set([lit]);
  }
  if (node.op === "in") {
    const [l, r] = node.args as [ASTNode, ASTNode];
    if (!isField(l, field) || r.op !== "list") return null;
    const out = new Set<string>();
    for (const item of r.args as ASTNode[]) {
      const lit = literal(item);
      if (lit === undefined) return null;
      out.add(lit);
    }
    return out;
  }
  return null;
}

function isField(n: ASTNode, field: string): boolean {
  if (n.op !== ".") return false;
  const [inner, name] = n.args as [ASTNode, string];
  return name === field && inner.op === "id" && inner.args === "event";
}

function literal(n: ASTNode): string | undefined {
  return n.op === "value" && typeof n.args === "string" ? n.args : undefined;
}
