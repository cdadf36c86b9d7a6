// Which services a request may read. A token of the HTTP API may be limited to some services: its
// requests then search only those services' lines, because the service filter is part of the query
// Elasticsearch runs (a count, a histogram, a trace or a tail can never include other services' lines,
// as they could if results were filtered afterwards). Asking by name for a service outside the scope,
// as a parameter or as `service:x` in the query, is refused rather than answered with nothing.
import type { SearchNode } from "../query/query.ts";
import { SearchError } from "./errors.ts";

/** Services a caller may see: `all`, or these names. */
export type ServiceScope = "all" | readonly string[];

/**
 * The services to filter on: those asked for (each must be in scope), else the whole scope; undefined
 * when nothing limits them.
 */
export function servicesToSearch(
  requested: readonly string[] | undefined,
  scope: ServiceScope = "all",
): readonly string[] | undefined {
  const asked = requested !== undefined && requested.length > 0 ? [...new Set(requested)] : undefined;
  if (scope === "all") return asked;
  if (asked === undefined) return scope;
  const outside = asked.filter((s) => !scope.includes(s));
  if (outside.length > 0) throw forbidden(outside, scope);
  return asked;
}

/**
 * Services a query asks for by exact name, outside any NOT: `service:a`, `service:(a OR b)`.
 * Wildcards are not counted: the scope's filter limits what they match.
 */
export function servicesNamedIn(node: SearchNode, out: Set<string> = new Set(), negated = false): Set<string> {
  switch (node.type) {
    case "and":
    case "or":
      for (const c of node.children) servicesNamedIn(c, out, negated);
      break;
    case "not":
      servicesNamedIn(node.child, out, !negated);
      break;
    case "equals":
      if (!negated && node.target.field?.name === "service") for (const v of node.values) out.add(v);
      break;
    default:
      break;
  }
  return out;
}

/** Refuses a query that names a service outside the scope. */
export function checkQueryScope(node: SearchNode, scope: ServiceScope = "all"): void {
  if (scope === "all") return;
  const outside = [...servicesNamedIn(node)].filter((s) => !scope.includes(s));
  if (outside.length > 0) throw forbidden(outside, scope);
}

function forbidden(outside: readonly string[], scope: readonly string[]): SearchError {
  return new SearchError(
    "forbidden",
    `this token may not read ${outside.length === 1 ? "service" : "services"} ${outside.join(", ")}`,
    `its services: ${scope.join(", ")}; ask for a token that covers the others`,
  );
}
