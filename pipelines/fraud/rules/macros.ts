// Macros (Falco's shared conditions): a named expression any rule of the set may use by its name,
// e.g. `is_fresh_account && event.amount > 1000`. A macro may use other macros; a cycle is refused,
// naming it. Expansion is textual (the macro's text in brackets), so a macro is type-checked where it
// is used, against that rule's stream; the expanded text keeps a map back to the macro's own lines.
// Graph walks are iterative (Kahn's algorithm); the expanded size is capped, since macros that each
// use the next twice double at every level.
import { ExpandedText, type ExpressionOrigin } from "../cel/expanded.ts";
import { type PreparedSource, prepareSource } from "../cel/source.ts";

/** The longest an expression may grow to once its macros are expanded. */
export const MAX_EXPANDED_LENGTH = 32 * 1024;

export interface MacroDef {
  name: string;
  text: string;
  origin: ExpressionOrigin;
  /** Where the macro's name is written (for duplicate and cycle errors). */
  nameOrigin: { file: string; line: number; column: number; field: string };
  description?: string;
}

export interface ExpansionProblem {
  origin: ExpressionOrigin;
  offset: number;
  message: string;
}

export class MacroSet {
  private readonly expanded = new Map<string, ExpandedText>();
  private readonly prepared = new Map<string, PreparedSource>();
  readonly problems: ExpansionProblem[] = [];
  /** Macros in a cycle or with errors of their own: uses of them are reported once, at the use. */
  private readonly broken = new Set<string>();

  constructor(readonly defs: ReadonlyMap<string, MacroDef>) {
    for (const def of defs.values()) {
      const p = prepareSource(def.text);
      this.prepared.set(def.name, p);
      for (const e of p.problems) this.problems.push({ origin: def.origin, offset: e.offset, message: e.message });
      if (p.problems.length > 0) this.broken.add(def.name);
    }
    this.expandInOrder();
  }

  has(name: string): boolean {
    return this.defs.has(name);
  }

  /** The macros `source` uses directly. */
  usedBy(source: PreparedSource): string[] {
    return [...new Set(source.names.filter((n) => this.defs.has(n.name)).map((n) => n.name))];
  }

  /** Every macro `name` uses, directly or not (for a rule's fingerprint). */
  closure(names: string[]): string[] {
    const seen = new Set<string>();
    const stack = [...names];
    while (stack.length > 0) {
      const n = stack.pop() as string;
      if (seen.has(n)) continue;
      seen.add(n);
      const p = this.prepared.get(n);
      if (p) stack.push(...this.usedBy(p));
    }
    return [...seen].sort();
  }

  /**
   * Expands the macros of a prepared expression. Returns undefined (and adds a problem) when a macro
   * it uses is broken or the expansion grows too large.
   */
  expand(source: PreparedSource, origin: ExpressionOrigin, problems: ExpansionProblem[]): ExpandedText | undefined {
    const out = new ExpandedText();
    let prev = 0;
    for (const id of source.names) {
      if (!this.defs.has(id.name)) continue;
      if (this.broken.has(id.name)) {
        problems.push({ origin, offset: id.start, message: `macro ${id.name} has errors of its own (see above)` });
        return undefined;
      }
      const body = this.expanded.get(id.name) as ExpandedText;
      out.append(source.text.slice(prev, id.start), origin, prev);
      out.append("(", origin, id.start, true);
      out.appendExpanded(body);
      out.append(")", origin, id.start, true);
      prev = id.end;
      if (out.length > MAX_EXPANDED_LENGTH) {
        problems.push({
          origin,
          offset: id.start,
          message: `with its macros expanded the expression passes ${MAX_EXPANDED_LENGTH} characters (macros using macros several times multiply)`,
        });
        return undefined;
      }
    }
    out.append(source.text.slice(prev), origin, prev);
    return out;
  }

  private expandInOrder(): void {
    // Kahn's algorithm over "uses": a macro is expanded after every macro it uses.
    const uses = new Map<string, string[]>();
    const usedBy = new Map<string, string[]>();
    const pending = new Map<string, number>();
    for (const [name, p] of this.prepared) {
      const deps = this.usedBy(p);
      uses.set(name, deps);
      pending.set(name, deps.length);
      for (const d of deps) usedBy.set(d, [...(usedBy.get(d) ?? []), name]);
    }
    const ready = [...pending].filter(([, n]) => n === 0).map(([name]) => name);
    while (ready.length > 0) {
      const name = ready.pop() as string;
      const def = this.defs.get(name) as MacroDef;
      const deps = uses.get(name) as string[];
      const brokenDep = deps.find((d) => this.broken.has(d));
      if (brokenDep) this.broken.add(name);
      if (!this.broken.has(name)) {
        const e = this.expand(this.prepared.get(name) as PreparedSource, def.origin, this.problems);
        if (e) this.expanded.set(name, e);
        else this.broken.add(name);
      }
      for (const user of usedBy.get(name) ?? []) {
        const left = (pending.get(user) as number) - 1;
        pending.set(user, left);
        if (left === 0) ready.push(user);
      }
    }
    // What is left is in a cycle, or uses one.
    const left = new Set([...pending].filter(([, n]) => n > 0).map(([name]) => name));
    const reported = new Set<string>();
    for (const start of left) {
      if (reported.has(start)) continue;
      const cycle = findCycle(start, (n) => (uses.get(n) ?? []).filter((d) => left.has(d)));
      for (const n of left) this.broken.add(n);
      if (!cycle) continue;
      for (const n of cycle) reported.add(n);
      const first = this.defs.get(cycle[0] as string) as MacroDef;
      const p = this.prepared.get(first.name) as PreparedSource;
      const at = p.names.find((n) => n.name === cycle[1])?.start ?? 0;
      this.problems.push({
        origin: first.origin,
        offset: at,
        message: `macros use each other in a cycle: ${[...cycle, cycle[0]].join(" -> ")}; a macro cannot use itself`,
      });
    }
  }
}

/** A cycle reachable from `start` (as a list of nodes), found by an iterative depth-first walk. */
function findCycle(start: string, next: (n: string) => string[]): string[] | undefined {
  const onPath = new Map<string, number>();
  const path: string[] = [];
  const iters: Array<{ node: string; i: number }> = [{ node: start, i: 0 }];
  onPath.set(start, 0);
  path.push(start);
  const done = new Set<string>();
  while (iters.length > 0) {
    const top = iters[iters.length - 1] as { node: string; i: number };
    const succ = next(top.node);
    if (top.i >= succ.length) {
      iters.pop();
      path.pop();
      onPath.delete(top.node);
      done.add(top.node);
      continue;
    }
    const n = succ[top.i++] as string;
    const at = onPath.get(n);
    if (at !== undefined) return path.slice(at);
    if (done.has(n)) continue;
    onPath.set(n, path.length);
    path.push(n);
    iters.push({ node: n, i: 0 });
  }
  return undefined;
}
