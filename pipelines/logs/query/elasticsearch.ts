// A resolved query as Elasticsearch query DSL: bool with filter (exact conditions, cacheable),
// must (full text), must_not and should; term/terms, prefix, wildcard, range and exists on keyword
// and numeric fields, match_phrase on text, keyed subfields of the `flattened` attributes field.
import { QueryError } from "./ast.ts";
import { LOG_SCHEMA, type LogField, type LogSchema } from "./fields.ts";
import type { SearchNode, Target } from "./resolve.ts";

export type EsQuery = Record<string, unknown>;

export function toElasticsearch(node: SearchNode, query: string, schema: LogSchema = LOG_SCHEMA): EsQuery {
  return new EsCompiler(query, schema).compile(node);
}

class EsCompiler {
  /** The keyword fields bare words search besides the text. */
  private readonly bareFields: LogField[];

  constructor(
    private readonly query: string,
    private readonly schema: LogSchema,
  ) {
    this.bareFields = schema.fields.filter((f) => f.bare !== undefined && f.kind === "keyword");
  }

  compile(n: SearchNode): EsQuery {
    switch (n.type) {
      case "all":
        return { match_all: {} };
      case "and": {
        const must: EsQuery[] = [];
        const filter: EsQuery[] = [];
        const mustNot: EsQuery[] = [];
        for (const c of n.children) {
          if (c.type === "not") mustNot.push(this.compile(c.child));
          else if (c.type === "phrase" || (c.type === "wildcard" && c.target.field?.kind === "text"))
            must.push(this.compile(c));
          else filter.push(this.compile(c));
        }
        const bool: EsQuery = {};
        if (must.length > 0) bool.must = must;
        if (filter.length > 0) bool.filter = filter;
        if (mustNot.length > 0) bool.must_not = mustNot;
        return { bool };
      }
      case "or":
        return { bool: { should: n.children.map((c) => this.compile(c)), minimum_should_match: 1 } };
      case "not":
        return { bool: { must_not: [this.compile(n.child)] } };
      case "phrase": {
        const phrase = { match_phrase: { [this.name(n.target)]: n.text } };
        if (!n.bare) return phrase;
        // Typed without a field: the logger (whole, and word by word) and any attribute's whole value too.
        const also: EsQuery[] = [];
        for (const f of this.bareFields) {
          also.push({ term: { [f.es]: n.text } });
          if (f.bare?.esWords !== undefined) also.push({ match_phrase: { [f.bare.esWords]: n.text } });
        }
        if (this.schema.bareAttributes) also.push({ term: { [this.schema.elasticsearch.attributes]: n.text } });
        return also.length === 0 ? phrase : { bool: { should: [phrase, ...also], minimum_should_match: 1 } };
      }
      case "equals": {
        const numeric = n.target.field?.kind === "integer";
        const values = n.values.map((v) => (numeric ? Number(v) : v));
        const name = this.name(n.target);
        return values.length === 1 ? { term: { [name]: values[0] } } : { terms: { [name]: values } };
      }
      case "wildcard": {
        const name = this.name(n.target);
        if (n.target.field?.kind === "text") {
          // Matches single words of the analysed text, which are lowercase.
          const words = (field: string) => ({
            wildcard: { [field]: { value: wildcardPattern(n.parts).toLowerCase(), case_insensitive: true } },
          });
          if (!n.bare) return words(name);
          const also: EsQuery[] = [];
          for (const f of this.bareFields) {
            also.push({ wildcard: { [f.es]: { value: wildcardPattern(n.parts) } } });
            if (f.bare?.esWords !== undefined) also.push(words(f.bare.esWords));
          }
          if (this.schema.bareAttributes)
            also.push({ wildcard: { [this.schema.elasticsearch.attributes]: { value: wildcardPattern(n.parts) } } });
          return also.length === 0
            ? words(name)
            : { bool: { should: [words(name), ...also], minimum_should_match: 1 } };
        }
        const prefixOnly = n.parts.length === 2 && n.parts[1] === "";
        if (prefixOnly) return { prefix: { [name]: { value: n.parts[0] } } };
        if (n.target.attribute !== undefined) {
          throw new QueryError(
            "Elasticsearch searches attributes only with a * at the end",
            this.query,
            n.span,
            `keyed fields of a flattened field take prefix queries: attr.${n.target.attribute}:${n.parts[0] ?? ""}*`,
          );
        }
        return { wildcard: { [name]: { value: wildcardPattern(n.parts) } } };
      }
      case "exists":
        return { exists: { field: this.name(n.target) } };
      case "range": {
        const unit = n.target.field?.kind === "duration" ? this.schema.elasticsearch.durationUnitNs : 1;
        const bounds: Record<string, number> = {};
        for (const op of ["gt", "gte", "lt", "lte"] as const) {
          const v = n[op];
          if (v !== undefined) bounds[op] = v / unit;
        }
        return { range: { [this.name(n.target)]: bounds } };
      }
      case "token": {
        const attributes = this.schema.elasticsearch.attributes;
        // A masked attribute holds `<display>[<token>]`; keyed flattened fields take no wildcards, the root one does.
        const inAttributes = { wildcard: { [attributes]: { value: `*[${n.token}]*` } } };
        if ("everywhere" in n.scope) {
          return {
            bool: {
              should: [
                { multi_match: { query: n.token, type: "phrase", fields: [...this.schema.elasticsearch.maskedText] } },
                inAttributes,
              ],
              minimum_should_match: 1,
            },
          };
        }
        if ("field" in n.scope) return { match_phrase: { [n.scope.field.es]: n.token } };
        return { bool: { filter: [{ exists: { field: `${attributes}.${n.scope.attribute}` } }, inAttributes] } };
      }
    }
  }

  private name(t: Target): string {
    return t.field !== undefined ? t.field.es : `${this.schema.elasticsearch.attributes}.${t.attribute}`;
  }
}

/** What Elasticsearch counts in a query: bool queries nested in each other, and clauses. */
export interface EsShape {
  /** Bool queries inside each other (indices.query.bool.max_nested_depth, 30 by default). */
  depth: number;
  /** Every clause of every bool, every leaf query and every value of a `terms` (indices.query.bool.max_clause_count). */
  clauses: number;
}

/** The shape of any query DSL, walked with an explicit stack (it may come from anywhere). */
export function esShape(query: EsQuery): EsShape {
  let deepest = 0;
  let clauses = 0;
  const pending: Array<[unknown, number]> = [[query, 0]];
  for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
    const [node, depth] = item;
    if (Array.isArray(node)) {
      for (const x of node) pending.push([x, depth]);
      continue;
    }
    if (node === null || typeof node !== "object") continue;
    for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
      if (key === "bool" && value && typeof value === "object") {
        deepest = Math.max(deepest, depth + 1);
        for (const occur of ["must", "filter", "should", "must_not"]) {
          const c = (value as Record<string, unknown>)[occur];
          if (c === undefined) continue;
          const list = Array.isArray(c) ? c : [c];
          clauses += list.length;
          for (const x of list) pending.push([x, depth + 1]);
        }
      } else if (key === "terms" && value && typeof value === "object") {
        for (const v of Object.values(value as Record<string, unknown>)) if (Array.isArray(v)) clauses += v.length;
      } else if (LEAVES.has(key)) {
        clauses++;
      }
    }
  }
  return { depth: deepest, clauses };
}

const LEAVES = new Set([
  "term",
  "match_phrase",
  "multi_match",
  "prefix",
  "wildcard",
  "range",
  "exists",
  "match_all",
  "ids",
]);

/** Literal parts escaped (`\`, `*`, `?`), joined by `*`. */
function wildcardPattern(parts: string[]): string {
  return parts.map((p) => p.replace(/[\\*?]/g, "\\$&")).join("*");
}
