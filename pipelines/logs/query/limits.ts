// What one query may ask of the stores. The search API is handed to every service team, so a query is
// hostile until checked: these limits are checked on the query as typed and as resolved, before
// either store is asked, and a refusal names the limit, the query's value and the maximum.
//
// They also keep the stores' own parsers safe. ClickHouse 18.16 has no max_parser_depth: its parser
// recurses once per nested bracket or NOT and its server dies (SIGSEGV) past about 935 levels, whoever
// sends the query. Elasticsearch refuses a bool nested deeper than indices.query.bool.max_nested_depth
// (30) with a parse error that tells the user nothing. A query of depth d compiles to at most d + 2
// levels of bool and 2d + 4 levels of SQL brackets, so MAX_DEPTH_CEILING keeps both far away.
import { QueryError, type Span } from "./ast.ts";

export interface QueryLimits {
  /** Characters of the query text. */
  maxChars: number;
  /** Parentheses, NOT and value lists nested inside each other, as typed. */
  maxDepth: number;
  /** Conditions: every word, phrase, field:value, comparison, and each value of a value list. */
  maxTerms: number;
  /** Values with a `*` (other than `field:*`). */
  maxWildcards: number;
  /** `*` in one value. */
  maxWildcardStars: number;
  /**
   * A value starting with `*` (`*timeout`, `host:*-7`) makes Elasticsearch walk every term of the
   * field (the message's are the most numerous); refused unless allowed.
   */
  leadingWildcards: boolean;
}

export const DEFAULT_QUERY_LIMITS: QueryLimits = {
  maxChars: 4096,
  maxDepth: 16,
  maxTerms: 128,
  maxWildcards: 8,
  maxWildcardStars: 4,
  leadingWildcards: false,
};

/** The deepest any configuration may allow: see the head of this file. */
export const MAX_DEPTH_CEILING = 24;

/** The names a refusal gives a limit: what the configuration (`search.limits`) calls it. */
export type QueryLimitName = keyof QueryLimits;

/** A query over one of the limits: a QueryError (with column and caret) that says which limit, the value and the maximum. */
export class QueryLimitError extends QueryError {
  constructor(
    readonly limit: QueryLimitName,
    readonly value: number,
    readonly max: number,
    problem: string,
    query: string,
    span: Span,
    hint?: string,
  ) {
    super(problem, query, span, hint);
    this.name = "QueryLimitError";
  }
}

/** The limits with `overrides` applied; refuses values that could not be meant (or would reach a store's parser limit). */
export function queryLimits(overrides: Partial<QueryLimits> = {}): QueryLimits {
  const limits = { ...DEFAULT_QUERY_LIMITS, ...overrides };
  for (const key of ["maxChars", "maxDepth", "maxTerms", "maxWildcards", "maxWildcardStars"] as const) {
    const v = limits[key];
    if (!Number.isInteger(v) || v < (key === "maxWildcards" || key === "maxWildcardStars" ? 0 : 1)) {
      throw new RangeError(`query limit ${key} ${v} is not a whole number of at least 1`);
    }
  }
  if (limits.maxDepth > MAX_DEPTH_CEILING) {
    throw new RangeError(
      `query limit maxDepth ${limits.maxDepth} is over ${MAX_DEPTH_CEILING}: deeper queries reach Elasticsearch's and ClickHouse's own parser limits`,
    );
  }
  return limits;
}

/** The whole query, as the place of a refusal that is about all of it. */
export function wholeQuery(query: string): Span {
  return { start: 0, end: Math.max(1, query.length) };
}

export function checkQueryLength(query: string, limits: QueryLimits): void {
  if (query.length > limits.maxChars) {
    throw new QueryLimitError(
      "maxChars",
      query.length,
      limits.maxChars,
      `the query is ${query.length} characters long, over the limit of ${limits.maxChars} (maxChars)`,
      query.slice(0, 80),
      { start: 0, end: 1 },
      "search for fewer things at once",
    );
  }
}
