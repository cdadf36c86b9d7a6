// `weir logs search <query>`: the query parsed, resolved against the field table (PII typed in it
// turned into tokens) and compiled for both stores at once, so a mistake is reported before either
// store is asked.

import { toClickHouseWhere } from "./clickhouse.ts";
import { type EsQuery, toElasticsearch } from "./elasticsearch.ts";
import { parseQuery } from "./parser.ts";
import { type ResolveOptions, resolveQuery, type SearchNode } from "./resolve.ts";

export interface CompiledLogQuery {
  /** The query as searched: fields resolved, PII replaced by tokens. */
  search: SearchNode;
  /** For the `query` of a search request. */
  elasticsearch: EsQuery;
  /** For `WHERE` (ClickHouse 18.16); every literal quoted. */
  clickhouse: string;
}

/** Throws QueryError (with the column, a caret and a hint) for any mistake, QueryLimitError for a query over the limits. */
export function compileLogQuery(query: string, options: ResolveOptions = {}): CompiledLogQuery {
  const search = resolveQuery(parseQuery(query, options.limits), query, options);
  return {
    search,
    elasticsearch: toElasticsearch(search, query, options.schema),
    clickhouse: toClickHouseWhere(search, options.schema),
  };
}

export { QueryError } from "./ast.ts";
export type { EsQuery } from "./elasticsearch.ts";
export { DEFAULT_QUERY_LIMITS, QueryLimitError, type QueryLimits, queryLimits } from "./limits.ts";
export type { ResolveOptions, SearchNode } from "./resolve.ts";
