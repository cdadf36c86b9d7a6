// The on-call search over the logs in Elasticsearch: search, trace, context and histogram (tail is in
// tail.ts). The CLI (`weir logs ...`) and the HTTP API both call this; neither builds a query of its
// own, so a token's service scope is applied in one place, inside the query Elasticsearch runs.
//
// Every read names the daily indices of its window (indices.ts) and sorts with a total order:
// @timestamp, the line's sequence number in its file, then _index and _seq_no, which together name
// one document. Lines that share a millisecond therefore come back in the same order every time, and
// a cursor (search_after) never skips or repeats one.
import { type Client, errors, type estypes } from "@elastic/elasticsearch";
import type { PiiMasker } from "../pii/masker.ts";
import { esShape } from "../query/elasticsearch.ts";
import { LOG_SCHEMA, type LogSchema } from "../query/fields.ts";
import { type CompiledLogQuery, compileLogQuery, type EsQuery, QueryError, type QueryLimits } from "../query/query.ts";
import { SearchError } from "./errors.ts";
import { type LogHit, type RawHit, toLogHit } from "./hit.ts";
import { LogIndices, logsIndexPrefix } from "./indices.ts";
import { esFixedInterval, histogramInterval } from "./interval.ts";
import { checkCount, checkWindow, DEFAULT_SEARCH_LIMITS, SearchLimitError, type SearchLimits } from "./limits.ts";
import { checkQueryScope, type ServiceScope, servicesToSearch } from "./scope.ts";

/** Fields of the mapping (infra/elasticsearch/logs-mappings.json) that are not in the query language's table. */
export const TIMESTAMP_FIELD = "@timestamp";
export const FILE_ID_FIELD = "weir.source.file_id";
export const SEQ_FIELD = "weir.source.seq";

export const DEFAULT_SEARCH_LIMIT = 100;
/** The default limits (search.limits of the logs config changes them). */
export const MAX_SEARCH_LIMIT = DEFAULT_SEARCH_LIMITS.maxResults;
export const DEFAULT_TRACE_LIMIT = 10_000;
export const MAX_TRACE_LIMIT = DEFAULT_SEARCH_LIMITS.maxTraceLines;
export const DEFAULT_CONTEXT_LINES = 20;
export const MAX_CONTEXT_LINES = DEFAULT_SEARCH_LIMITS.maxContextLines;
const PAGE = 1_000;

// Lines without a source (access lines not read from a file) sort as seq -1: a number, so that a
// search_after cursor holding it round-trips exactly (the default for a missing value is Long.MIN_VALUE,
// which a JavaScript number cannot hold).
const seqSort = (order: "asc" | "desc"): estypes.SortCombinations => ({
  [SEQ_FIELD]: { order, missing: -1, unmapped_type: "long" },
});
export const NEWEST_FIRST: estypes.SortCombinations[] = [
  { [TIMESTAMP_FIELD]: { order: "desc" } },
  seqSort("desc"),
  { _index: { order: "desc" } },
  { _seq_no: { order: "desc" } },
];
export const OLDEST_FIRST: estypes.SortCombinations[] = [
  { [TIMESTAMP_FIELD]: { order: "asc" } },
  seqSort("asc"),
  { _index: { order: "asc" } },
  { _seq_no: { order: "asc" } },
];

/** What selects lines, besides time. */
export interface LineFilter {
  /** The query language of docs/logs-query.md; empty: every line. */
  query?: string;
  /** Only these services. */
  services?: readonly string[];
  /** Levels: `error`, `warn,error`, `warn+` (WARN and above); see levelQuery. */
  levels?: readonly string[];
  /** The services the caller may read (an API token's); default all. */
  scope?: ServiceScope;
}

export interface SearchRequest extends LineFilter {
  from: number;
  to: number;
  /** Lines to return, newest first; default 100, at most 10,000. */
  limit?: number;
  /** The `next` of the previous page. */
  cursor?: string;
}

export interface SearchResult {
  from: number;
  to: number;
  hits: LogHit[];
  /** Lines matching in the window; `gte` past 10,000 (counting further is a histogram's job). */
  total: { value: number; relation: "eq" | "gte" };
  /** Pass as `cursor` for the next (older) page; absent on the last page. */
  next?: string;
}

export interface TraceRequest {
  traceId: string;
  from: number;
  to: number;
  limit?: number;
  scope?: ServiceScope;
}

export interface TraceResult {
  traceId: string;
  from: number;
  to: number;
  /** Every line of the trace in the window, oldest first. */
  lines: LogHit[];
  /** The services the trace went through, in the order it reached them. */
  services: string[];
  /** More lines than `limit` matched. */
  truncated: boolean;
}

export interface ContextRequest {
  hitId: string;
  /** Lines before the hit and after it; default 20 each. */
  before?: number;
  after?: number;
  scope?: ServiceScope;
}

export interface ContextResult {
  hit: LogHit;
  /** The lines before the hit, the hit and the lines after it, in the order of the file (seq). */
  lines: LogHit[];
}

export interface HistogramRequest extends LineFilter {
  from: number;
  to: number;
  /** Bucket width; default chosen from the window (about `bars` buckets). */
  intervalMs?: number;
  bars?: number;
}

export interface HistogramResult {
  /** Where the counts come from. */
  store: "elasticsearch" | "clickhouse";
  from: number;
  to: number;
  intervalMs: number;
  /** Lines matching in the window: the sum of the buckets' counts. */
  total: number;
  /** Every bucket of the window, empty ones included, oldest first; `start` is ms since the epoch. */
  buckets: Array<{ start: number; count: number }>;
}

export interface LogSearchOptions {
  client: Client;
  /** Index prefix; default WEIR_LOGS_INDEX_PREFIX or `logs`. */
  prefix?: string;
  /** The pipeline's masker (same key): PII typed in a query is searched as its token. */
  pii?: PiiMasker;
  schema?: LogSchema;
  /** Where Elasticsearch is, for error messages. */
  url?: string;
  /** Default DEFAULT_SEARCH_LIMITS. */
  limits?: SearchLimits;
}

/** What Elasticsearch itself refuses in a query (its cluster settings; these defaults when it does not say). */
export interface EsQueryLimits {
  maxClauseCount: number;
  maxNestedDepth: number;
}

export const ES_DEFAULT_QUERY_LIMITS: EsQueryLimits = { maxClauseCount: 4096, maxNestedDepth: 30 };

/** The compiled filters of a request and the services it is limited to. */
export interface CompiledFilter {
  filter: EsQuery[];
  services: readonly string[] | undefined;
}

export class LogSearch {
  readonly client: Client;
  readonly indices: LogIndices;
  private readonly pii: PiiMasker | undefined;
  private readonly schema: LogSchema;
  private readonly serviceField: string;
  private readonly traceField: string;
  private readonly url: string;
  readonly limits: SearchLimits;
  private esLimits: Promise<EsQueryLimits> | undefined;

  constructor(options: LogSearchOptions) {
    this.client = options.client;
    this.indices = new LogIndices(options.prefix ?? logsIndexPrefix());
    this.pii = options.pii;
    this.schema = options.schema ?? LOG_SCHEMA;
    this.serviceField = esFieldOf(this.schema, "service");
    this.traceField = esFieldOf(this.schema, "trace");
    this.url = options.url ?? "Elasticsearch";
    this.limits = options.limits ?? DEFAULT_SEARCH_LIMITS;
  }

  /** Lines matching a filter in a window, newest first. */
  async search(req: SearchRequest): Promise<SearchResult> {
    const size = checkCount(req.limit ?? DEFAULT_SEARCH_LIMIT, "maxResults", this.limits, "limit");
    checkWindow(req.from, req.to, this.limits);
    const { filter, services } = this.compileFilter(req);
    filter.push(timeRange(req.from, req.to));
    const res = await this.run({
      index: this.indices.forWindow(req.from, req.to, services),
      query: { bool: { filter } },
      sort: NEWEST_FIRST,
      size,
      track_total_hits: MAX_SEARCH_LIMIT,
      ...(req.cursor !== undefined ? { search_after: decodeCursor(req.cursor) } : {}),
    });
    const hits = res.hits.hits;
    const total = res.hits.total as estypes.SearchTotalHits;
    const result: SearchResult = {
      from: req.from,
      to: req.to,
      hits: hits.map((h) => toLogHit(h as RawHit)),
      total: { value: total.value, relation: total.relation },
    };
    const last = hits[hits.length - 1];
    if (hits.length === size && last?.sort) result.next = encodeCursor(last.sort);
    return result;
  }

  /** Every line of one trace, across services and daily indices, oldest first. */
  async trace(req: TraceRequest): Promise<TraceResult> {
    const traceId = req.traceId.trim();
    if (traceId === "" || /\s/.test(traceId) || traceId.length > 256) {
      throw new SearchError(
        "bad-request",
        `${JSON.stringify(req.traceId)} is not a trace id`,
        "give the trace id as logged, e.g. 032725aa9e77597fb752fc77ccacd1b0",
      );
    }
    const limit = checkCount(req.limit ?? DEFAULT_TRACE_LIMIT, "maxTraceLines", this.limits, "limit");
    checkWindow(req.from, req.to, this.limits);
    const services = servicesToSearch(undefined, req.scope);
    const filter: EsQuery[] = [{ term: { [this.traceField]: traceId } }, timeRange(req.from, req.to)];
    if (services) filter.push({ terms: { [this.serviceField]: [...services] } });
    const lines: LogHit[] = [];
    let after: estypes.SortResults | undefined;
    let truncated = false;
    for (;;) {
      const want = Math.min(PAGE, limit - lines.length + 1);
      const res = await this.run({
        index: this.indices.forWindow(req.from, req.to, services),
        query: { bool: { filter } },
        sort: OLDEST_FIRST,
        size: want,
        track_total_hits: false,
        ...(after ? { search_after: after } : {}),
      });
      const hits = res.hits.hits;
      for (const h of hits) {
        if (lines.length === limit) {
          truncated = true;
          break;
        }
        lines.push(toLogHit(h as RawHit));
      }
      if (truncated || hits.length < want) break;
      after = hits[hits.length - 1]?.sort;
    }
    const seen = new Set<string>();
    for (const l of lines) seen.add(l.service);
    return { traceId, from: req.from, to: req.to, lines, services: [...seen], truncated };
  }

  /** The lines around one line in its file: `before` lines before it and `after` after it, by seq. */
  async context(req: ContextRequest): Promise<ContextResult> {
    const before = checkCount(req.before ?? DEFAULT_CONTEXT_LINES, "maxContextLines", this.limits, "lines", 0);
    const after = checkCount(req.after ?? DEFAULT_CONTEXT_LINES, "maxContextLines", this.limits, "lines", 0);
    const hit = await this.find(req.hitId, req.scope);
    const source = hit.source;
    if (!source) {
      throw new SearchError(
        "unprocessable",
        `line ${hit.id} has no place in a file (it was not shipped from one), so it has no lines around it`,
        `see its request's other lines with \`weir logs trace ${hit.traceId ?? "<trace-id>"}\`, or search around ${hit.time}`,
      );
    }
    const sameFile: EsQuery[] = [
      { term: { [FILE_ID_FIELD]: source.fileId } },
      { term: { [this.serviceField]: hit.service } },
    ];
    const index = this.indices.ofService(hit.service);
    const side = (range: Record<string, number>, order: "asc" | "desc", size: number): estypes.MsearchRequestItem[] => [
      { index, ignore_unavailable: true, allow_no_indices: true },
      {
        query: { bool: { filter: [...sameFile, { range: { [SEQ_FIELD]: range } }] } },
        sort: [seqSort(order), { _index: { order } }, { _seq_no: { order } }],
        size,
        track_total_hits: false,
        timeout: `${this.limits.timeoutMs}ms`,
      },
    ];
    const searches = [
      ...(before > 0 ? side({ lt: source.seq }, "desc", before) : []),
      ...(after > 0 ? side({ gt: source.seq }, "asc", after) : []),
    ];
    const lines: LogHit[] = [hit];
    if (searches.length > 0) {
      const res = await this.call(() => this.client.msearch({ searches }));
      const answers = res.responses.map((r) => {
        if ("error" in r) throw this.responseFailure(r.status, r.error);
        if (r.timed_out) throw this.timedOut();
        return r.hits.hits.map((h) => toLogHit(h as RawHit));
      });
      const earlier = before > 0 ? (answers[0] ?? []) : [];
      const later = before > 0 ? (answers[1] ?? []) : (answers[0] ?? []);
      lines.unshift(...earlier.reverse());
      lines.push(...later);
    }
    return { hit, lines };
  }

  /** One line by its id (a search hit's `id`), within the caller's services. */
  async find(hitId: string, scope?: ServiceScope): Promise<LogHit> {
    if (hitId === "" || hitId.length > 512) {
      throw new SearchError("bad-request", `${JSON.stringify(hitId)} is not a line id`, HIT_ID_HINT);
    }
    const services = servicesToSearch(undefined, scope);
    const filter: EsQuery[] = [{ ids: { values: [hitId] } }];
    if (services) filter.push({ terms: { [this.serviceField]: [...services] } });
    const res = await this.run({ index: this.indices.all, query: { bool: { filter } }, size: 1 });
    const raw = res.hits.hits[0];
    if (!raw) {
      throw new SearchError(
        "not-found",
        `no line with id ${hitId}${services ? " among this token's services" : ""}`,
        HIT_ID_HINT,
      );
    }
    return toLogHit(raw as RawHit);
  }

  /** Matching lines per interval over a window; the buckets' counts sum to the lines matching. */
  async histogram(req: HistogramRequest): Promise<HistogramResult> {
    checkWindow(req.from, req.to, this.limits);
    const intervalMs = histogramInterval(req.from, req.to, req.intervalMs, req.bars, this.limits.maxBuckets);
    const { filter, services } = this.compileFilter(req);
    filter.push(timeRange(req.from, req.to));
    const res = await this.run({
      index: this.indices.forWindow(req.from, req.to, services),
      query: { bool: { filter } },
      size: 0,
      track_total_hits: true,
      aggs: {
        lines: {
          date_histogram: {
            field: TIMESTAMP_FIELD,
            fixed_interval: esFixedInterval(intervalMs),
            min_doc_count: 0,
            format: "epoch_millis",
            extended_bounds: { min: req.from, max: req.to },
          },
        },
      },
    });
    const agg = res.aggregations?.lines as estypes.AggregationsDateHistogramAggregate | undefined;
    const raw = (agg?.buckets ?? []) as estypes.AggregationsDateHistogramBucket[];
    const buckets = raw.map((b) => ({ start: Number(b.key), count: b.doc_count }));
    return {
      store: "elasticsearch",
      from: req.from,
      to: req.to,
      intervalMs,
      total: (res.hits.total as estypes.SearchTotalHits).value,
      buckets,
    };
  }

  /**
   * The filter clauses of a request (query, services, levels) and the services it is limited to.
   * Throws QueryError for a bad query, SearchError (forbidden) for a service outside the scope.
   */
  compileFilter(f: LineFilter): CompiledFilter {
    const resolved = resolveLineFilter(f, { pii: this.pii, schema: this.schema, limits: this.limits.query });
    const filter: EsQuery[] = [];
    if (resolved.query) filter.push(resolved.query.elasticsearch);
    if (resolved.services) filter.push({ terms: { [this.serviceField]: [...resolved.services] } });
    if (resolved.levels) filter.push(resolved.levels.elasticsearch);
    return { filter, services: resolved.services };
  }

  /** `--level error`, `--level warn,error`, `--level warn+` as an Elasticsearch query. */
  levelQuery(levels: readonly string[]): EsQuery {
    return compileLevels(levels, this.schema).elasticsearch;
  }

  /**
   * A search over the log indices, with the limits' `timeout`; a query Elasticsearch would refuse for
   * its clauses or nesting is refused here first, by name. Errors become SearchErrors.
   */
  async run(params: estypes.SearchRequest): Promise<estypes.SearchResponse> {
    if (params.query) await this.checkEsShape(params.query as EsQuery);
    const res = await this.call(() =>
      this.client.search({
        ignore_unavailable: true,
        allow_no_indices: true,
        timeout: `${this.limits.timeoutMs}ms`,
        ...params,
      }),
    );
    if (res.timed_out) throw this.timedOut();
    return res;
  }

  private timedOut(): SearchError {
    return new SearchError(
      "timeout",
      `Elasticsearch stopped the search after ${this.limits.timeoutMs} ms (the limits' timeout)`,
      "search a shorter window or a narrower query (a service, a level, a trace id)",
    );
  }

  /** Elasticsearch's own query limits, read once from its cluster settings. */
  esQueryLimits(): Promise<EsQueryLimits> {
    this.esLimits ??= this.client.cluster
      .getSettings({ include_defaults: true, flat_settings: true, filter_path: "*.indices.query.bool.*" })
      .then((r) => {
        const all = { ...r.defaults, ...r.persistent, ...r.transient } as Record<string, unknown>;
        const read = (key: string, fallback: number) => {
          const v = Number(all[key]);
          return Number.isInteger(v) && v > 0 ? v : fallback;
        };
        return {
          maxClauseCount: read("indices.query.bool.max_clause_count", ES_DEFAULT_QUERY_LIMITS.maxClauseCount),
          maxNestedDepth: read("indices.query.bool.max_nested_depth", ES_DEFAULT_QUERY_LIMITS.maxNestedDepth),
        };
      })
      // A user without the monitor privilege cannot read them: Elasticsearch's defaults are as good a guess.
      .catch(() => ES_DEFAULT_QUERY_LIMITS);
    return this.esLimits;
  }

  private async checkEsShape(query: EsQuery): Promise<void> {
    const es = await this.esQueryLimits();
    const shape = esShape(query);
    if (shape.clauses > es.maxClauseCount) {
      throw new SearchLimitError(
        "indices.query.bool.max_clause_count",
        shape.clauses,
        es.maxClauseCount,
        `the search has ${shape.clauses} clauses, over Elasticsearch's limit of ${es.maxClauseCount} (indices.query.bool.max_clause_count)`,
        "search for fewer values at once",
      );
    }
    if (shape.depth > es.maxNestedDepth) {
      throw new SearchLimitError(
        "indices.query.bool.max_nested_depth",
        shape.depth,
        es.maxNestedDepth,
        `the search nests ${shape.depth} bool queries, over Elasticsearch's limit of ${es.maxNestedDepth} (indices.query.bool.max_nested_depth)`,
        "use fewer parentheses and NOTs",
      );
    }
  }

  /** Calls Elasticsearch, turning what a user can act on into SearchErrors. */
  async call<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (e) {
      if (e instanceof errors.ResponseError) throw this.responseFailure(e.statusCode ?? 500, e.body?.error);
      if (
        e instanceof errors.ConnectionError ||
        e instanceof errors.TimeoutError ||
        e instanceof errors.NoLivingConnectionsError
      ) {
        throw new SearchError(
          "unavailable",
          `Elasticsearch at ${this.url} did not answer: ${e.message}`,
          "start the local stack (`weir stack up`), or point WEIR_ES_URL (or --url) at the cluster",
        );
      }
      throw e;
    }
  }

  private responseFailure(status: number, error: unknown): SearchError {
    const reason = reasonOf(error);
    if (status === 400) {
      // Elasticsearch's parse errors name its own DSL ("[bool] failed to parse field [must_not]"), which
      // the user never wrote: the reason goes to the server's log (storeReason), not to the user.
      const e = new SearchError(
        "bad-request",
        "Elasticsearch could not run this search",
        "simplify the query: fewer terms, parentheses and wildcards",
      );
      e.storeReason = reason;
      return e;
    }
    return new SearchError(
      "unavailable",
      `Elasticsearch at ${this.url} failed the search (${status}): ${reason}`,
      status === 429 ? "it is overloaded: try again in a moment, or with a shorter window" : undefined,
    );
  }
}

const HIT_ID_HINT = "copy the id from the last column of `weir logs search` (or a hit's `id` in --json output)";

function esFieldOf(schema: LogSchema, name: string): string {
  const f = schema.fields.find((x) => x.name === name);
  if (!f) throw new Error(`log schema: no field "${name}"`);
  return f.es;
}

/** A request's filter resolved for either store: query, services (scope applied) and levels, compiled. */
export interface ResolvedFilter {
  /** Undefined when the query is empty: every line. */
  query: CompiledLogQuery | undefined;
  services: readonly string[] | undefined;
  levels: CompiledLogQuery | undefined;
}

/**
 * Compiles a request's filter once for both stores. Throws QueryError for a bad query, SearchError
 * (forbidden) when it names a service outside the scope.
 */
export function resolveLineFilter(
  f: LineFilter,
  options: { pii?: PiiMasker; schema?: LogSchema; limits?: QueryLimits } = {},
): ResolvedFilter {
  const compiled = compileLogQuery(f.query ?? "", options);
  checkQueryScope(compiled.search, f.scope);
  return {
    query: compiled.search.type === "all" ? undefined : compiled,
    services: servicesToSearch(f.services, f.scope),
    levels: f.levels && f.levels.length > 0 ? compileLevels(f.levels, options.schema) : undefined,
  };
}

/** `--level error`, `--level warn,error`, `--level warn+` (WARN and above), through the query language (aliases, pino numbers). */
export function compileLevels(levels: readonly string[], schema: LogSchema = LOG_SCHEMA): CompiledLogQuery {
  const terms: string[] = [];
  for (const p of levels.flatMap((l) => l.split(",")).map((l) => l.trim())) {
    const m = /^([A-Za-z]+|\d{2})(\+?)$/.exec(p);
    if (!m) {
      throw new SearchError(
        "bad-request",
        `level ${JSON.stringify(p)} is not a level`,
        "e.g. error, warn,error, or warn+ for WARN and above",
      );
    }
    terms.push(m[2] ? `level >= ${m[1]}` : `level:${m[1]}`);
  }
  try {
    return compileLogQuery(terms.join(" OR "), { schema });
  } catch (e) {
    if (e instanceof QueryError) throw new SearchError("bad-request", `level: ${e.problem}`, e.hint);
    throw e;
  }
}

function timeRange(from: number, to: number): EsQuery {
  return { range: { [TIMESTAMP_FIELD]: { gte: from, lte: to, format: "epoch_millis" } } };
}

function reasonOf(error: unknown): string {
  if (typeof error === "string") return error;
  const e = error as { type?: string; reason?: string; root_cause?: Array<{ reason?: string }> } | undefined;
  return e?.root_cause?.[0]?.reason ?? e?.reason ?? e?.type ?? "unknown error";
}

/** A page's last sort values as an opaque cursor. */
export function encodeCursor(sort: estypes.SortResults): string {
  return Buffer.from(JSON.stringify(sort)).toString("base64url");
}

export function decodeCursor(cursor: string): estypes.SortResults {
  let values: unknown;
  try {
    values = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    values = undefined;
  }
  if (
    !Array.isArray(values) ||
    values.length !== NEWEST_FIRST.length ||
    !values.every((v) => typeof v === "number" || typeof v === "string")
  ) {
    throw new SearchError(
      "bad-request",
      "the cursor is not one this search returned",
      "pass the `next` of the previous page as it was",
    );
  }
  return values as estypes.SortResults;
}
