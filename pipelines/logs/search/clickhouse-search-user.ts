// The read-only ClickHouse user the logs search runs as (`weir logs histogram --store clickhouse`, the
// logs API), with a profile and a quota of its own: ClickHouse 18.16 has no SQL users, so it is a
// users.d file beside the server's users.xml, which `weir stack up` writes and ClickHouse reloads
// within seconds, without a restart.
//
// The profile is readonly=1, so its settings cannot be changed by a query: 18.16 accepts a setting in a
// request only when its value is the profile's. The search sends these same values with every query
// (pipelines/logs/search/clickhouse-histogram.ts), so a query always carries its limits, and a search
// run against a server whose profile differs fails loudly ("Cannot override setting") instead of
// running without them. Nothing here limits the parser's depth (18.16 has no max_parser_depth, and its
// server dies past ~935 nested brackets): weir's query limits keep its SQL under 30 levels of brackets.
//
// It belongs to the search, which runs against any cluster: `weir stack up` (infra/stack/clickhouse.ts)
// writes this file for the local stack; elsewhere it is installed by hand (`searchUserXml()`). It
// imports nothing.

export const SEARCH_USER = "weir_search";

/** The settings of the search profile, sent with every search query. */
export const SEARCH_QUERY_SETTINGS = {
  readonly: 1,
  /** Seconds a query may run. */
  max_execution_time: 30,
  /** weir's deepest SQL needs 47 AST levels (query limits maxDepth 16; 63 at the ceiling of 24). */
  max_ast_depth: 200,
  max_ast_elements: 20_000,
  /** Bytes of SQL; weir refuses a longer query itself, with this number. */
  max_query_size: 131_072,
  /** A histogram has at most 10,000 buckets (search.limits.maxBuckets' ceiling). */
  max_result_rows: 10_000,
  result_overflow_mode: "throw",
  max_memory_usage: 2_000_000_000,
} as const;

/** In the profile only: the server counts these, a query need not say them. */
const PROFILE_ONLY = {
  /** Searches of this user running at once; more fail with code 202 (the API answers 429). */
  max_concurrent_queries_for_user: 8,
};

/** The quota's intervals: what the search user may use per minute and per hour (0: no limit). */
export const SEARCH_QUOTA = [
  { duration: 60, queries: 6_000, errors: 0, result_rows: 0, read_rows: 0, execution_time: 600 },
  { duration: 3_600, queries: 0, errors: 0, result_rows: 0, read_rows: 100_000_000_000, execution_time: 7_200 },
] as const;

/**
 * The users.d file: the user (loopback only; no password, like the local stack's default, unless its
 * SHA-256 is given, as `weir stack up` does with `security` on; it reads any
 * database, so that tests' databases of their own are searched as weir's is), its profile and quota.
 */
export function searchUserXml(passwordSha256Hex?: string): string {
  const settings = Object.entries({ ...SEARCH_QUERY_SETTINGS, ...PROFILE_ONLY })
    .map(([k, v]) => `      <${k}>${v}</${k}>`)
    .join("\n");
  const intervals = SEARCH_QUOTA.map(
    (q) =>
      `      <interval>\n${Object.entries(q)
        .map(([k, v]) => `        <${k}>${v}</${k}>`)
        .join("\n")}\n      </interval>`,
  ).join("\n");
  return `<?xml version="1.0"?>
<!-- the logs search's read-only user (pipelines/logs/search/clickhouse-search-user.ts); weir stack up installs it in users.d -->
<yandex>
  <profiles>
    <${SEARCH_USER}>
${settings}
    </${SEARCH_USER}>
  </profiles>
  <users>
    <${SEARCH_USER}>
      ${passwordSha256Hex === undefined ? "<password></password>" : `<password_sha256_hex>${passwordSha256Hex}</password_sha256_hex>`}
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>${SEARCH_USER}</profile>
      <quota>${SEARCH_USER}</quota>
    </${SEARCH_USER}>
  </users>
  <quotas>
    <${SEARCH_USER}>
${intervals}
    </${SEARCH_USER}>
  </quotas>
</yandex>
`;
}
