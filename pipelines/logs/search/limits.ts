// What one request may ask of the stores, besides its query (query/limits.ts): how long a window, how
// many lines, how many buckets, how long Elasticsearch may work on it. Configured in the logs config
// under `search.limits` (docs/logs-search.md, "Limits"), with the query's limits beside them under the
// same names; a refusal names the setting, the request's value and the maximum.
import { z } from "zod";
import { ms } from "../../../stream/types.ts";
import { DEFAULT_QUERY_LIMITS, MAX_DEPTH_CEILING, type QueryLimits, queryLimits } from "../query/limits.ts";
import { SearchError } from "./errors.ts";
import { formatPeriod } from "./time.ts";

export interface SearchLimits {
  query: QueryLimits;
  /** The longest window a search, histogram or trace may cover, ms. */
  maxWindowMs: number;
  /** Lines of one search page or of a tail's backlog. */
  maxResults: number;
  /** Lines of one trace. */
  maxTraceLines: number;
  /** Lines on each side of a hit. */
  maxContextLines: number;
  /** Buckets of one histogram. */
  maxBuckets: number;
  /** Elasticsearch's `timeout` of every search, ms: a search still running then answers 504. */
  timeoutMs: number;
}

/** Elasticsearch's index.max_result_window: one page is at most this. */
export const RESULTS_CEILING = 10_000;
/** The ClickHouse search profile's max_result_rows: a histogram has at most this many buckets. */
export const BUCKETS_CEILING = 10_000;

export const DEFAULT_SEARCH_LIMITS: SearchLimits = {
  query: DEFAULT_QUERY_LIMITS,
  maxWindowMs: 31 * 86_400_000,
  maxResults: 10_000,
  maxTraceLines: 100_000,
  maxContextLines: 1_000,
  maxBuckets: 10_000,
  timeoutMs: 10_000,
};

const Duration = z.union([z.number().int().positive(), z.string()]).transform((v, ctx) => {
  try {
    const n = ms(v);
    if (n > 0) return n;
  } catch {
    // reported below
  }
  ctx.addIssue({ code: "custom", message: "a duration such as 10s, 31d" });
  return z.NEVER;
});
const Count = (max?: number) => (max === undefined ? z.number().int().min(1) : z.number().int().min(1).max(max));

/** `search.limits` of the logs config: every field optional, defaults above. */
export const SearchLimitsSchema = z.strictObject({
  maxChars: Count(65_536).default(DEFAULT_QUERY_LIMITS.maxChars),
  maxDepth: Count(MAX_DEPTH_CEILING).default(DEFAULT_QUERY_LIMITS.maxDepth),
  maxTerms: Count(1024).default(DEFAULT_QUERY_LIMITS.maxTerms),
  maxWildcards: z.number().int().min(0).max(64).default(DEFAULT_QUERY_LIMITS.maxWildcards),
  maxWildcardStars: z.number().int().min(0).max(16).default(DEFAULT_QUERY_LIMITS.maxWildcardStars),
  leadingWildcards: z.boolean().default(DEFAULT_QUERY_LIMITS.leadingWildcards),
  maxWindow: Duration.default(DEFAULT_SEARCH_LIMITS.maxWindowMs),
  maxResults: Count(RESULTS_CEILING).default(DEFAULT_SEARCH_LIMITS.maxResults),
  maxTraceLines: Count(1_000_000).default(DEFAULT_SEARCH_LIMITS.maxTraceLines),
  maxContextLines: Count(10_000).default(DEFAULT_SEARCH_LIMITS.maxContextLines),
  maxBuckets: Count(BUCKETS_CEILING).default(DEFAULT_SEARCH_LIMITS.maxBuckets),
  timeout: Duration.default(DEFAULT_SEARCH_LIMITS.timeoutMs),
});

/** `search.api` of the logs config: what one token may ask of `weir logs serve`. */
export const ApiLimitsSchema = z.strictObject({
  /** Requests per second a token may make on average ... */
  rate: z.number().positive().max(10_000).default(10),
  /** ... and in a burst, after a quiet while. */
  burst: z.number().int().min(1).max(100_000).default(20),
  /** Requests of one token being answered at once (a tail counts while its backlog is read). */
  concurrency: z.number().int().min(1).max(1024).default(4),
  /** Tails one token may keep open. */
  tails: z.number().int().min(1).max(1024).default(4),
});

export type ApiLimits = z.output<typeof ApiLimitsSchema>;

export const SearchConfigSchema = z.strictObject({
  limits: SearchLimitsSchema.prefault({}),
  api: ApiLimitsSchema.prefault({}),
  clickhouse: z
    .strictObject({
      /** The read-only user searches run as (its profile and quota: pipelines/logs/search/clickhouse-search-user.ts). */
      user: z
        .string()
        .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, "a ClickHouse user name")
        .default("weir_search"),
    })
    .prefault({}),
});

export type SearchConfig = z.output<typeof SearchConfigSchema>;

/** The limits of a `search.limits` section (or of none: the defaults). */
export function searchLimits(config: Partial<z.output<typeof SearchLimitsSchema>> = {}): SearchLimits {
  const c = SearchLimitsSchema.parse(config);
  return {
    query: queryLimits({
      maxChars: c.maxChars,
      maxDepth: c.maxDepth,
      maxTerms: c.maxTerms,
      maxWildcards: c.maxWildcards,
      maxWildcardStars: c.maxWildcardStars,
      leadingWildcards: c.leadingWildcards,
    }),
    maxWindowMs: c.maxWindow,
    maxResults: c.maxResults,
    maxTraceLines: c.maxTraceLines,
    maxContextLines: c.maxContextLines,
    maxBuckets: c.maxBuckets,
    timeoutMs: c.timeout,
  };
}

/** A request over a limit: 400, with the setting's name, the request's value and the maximum. */
export class SearchLimitError extends SearchError {
  constructor(
    readonly limit: string,
    readonly value: number,
    readonly max: number,
    message: string,
    hint?: string,
  ) {
    super("bad-request", message, hint);
    this.name = "SearchLimitError";
  }
}

export function checkWindow(from: number, to: number, limits: SearchLimits): void {
  const span = to - from;
  if (span > limits.maxWindowMs) {
    throw new SearchLimitError(
      "maxWindow",
      span,
      limits.maxWindowMs,
      `the window is ${formatPeriod(Math.round(span / 1000) * 1000)} long, over the limit of ${formatPeriod(limits.maxWindowMs)} (maxWindow)`,
      "search a shorter window: --since, or --from and --to",
    );
  }
}

/** A count asked for (lines, lines of context): a whole number from `min` to the limit. */
export function checkCount(n: number, limit: keyof SearchLimits, limits: SearchLimits, what: string, min = 1): number {
  const max = limits[limit] as number;
  if (!Number.isInteger(n) || n < min) {
    throw new SearchError("bad-request", `${what} ${n} is not a whole number from ${min} to ${max}`);
  }
  if (n > max) {
    throw new SearchLimitError(limit, n, max, `${what} ${n} is over the limit of ${max} (${limit})`);
  }
  return n;
}
