// The logs API's OpenAPI 3.1 description: the one source of truth. The server serves it at
// /openapi.json; docs/logs-api.openapi.json is this object written out (`weir logs openapi >
// docs/logs-api.openapi.json`, then `npx biome format --write` on it), and a test fails when the two
// differ or when a route the server answers is missing here.

import { DEFAULT_QUERY_LIMITS } from "../query/limits.ts";
import {
  DEFAULT_CONTEXT_LINES,
  DEFAULT_SEARCH_LIMIT,
  MAX_CONTEXT_LINES,
  MAX_SEARCH_LIMIT,
  MAX_TRACE_LIMIT,
} from "../search/search.ts";
import { DEFAULT_TAIL_BACKLOG, MAX_TAIL_BACKLOG } from "../search/tail.ts";

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const param = (name: string) => ({ $ref: `#/components/parameters/${name}` });
const json = (schema: object) => ({ "application/json": { schema } });
const errorResponse = (description: string) => ({ description, content: json(ref("Error")) });

const ERRORS = {
  "400": errorResponse(
    "A bad request: the query's mistake with its column and a caret under it (code bad_query); a query or request over one of the limits " +
      "(code limit_exceeded, with `limit`, `value` and `max`: docs/logs-search.md, Limits); or a bad period, time, limit or interval (code bad_request)",
  ),
  "401": {
    description: "No token, or one the server does not know",
    headers: { "WWW-Authenticate": { schema: { type: "string" }, description: 'Bearer realm="weir-logs"' } },
    content: json(ref("Error")),
  },
  "403": errorResponse("The token may not read a service the request names (as `service` or as `service:x` in `q`)"),
  "429": {
    description:
      "The token is over its rate (`limit: rate`), its requests in flight (`concurrency`) or its open tails (`tails`), or the ClickHouse search user over its quota (code overloaded)",
    headers: { "Retry-After": { schema: { type: "integer" }, description: "Seconds to wait before asking again" } },
    content: json(ref("Error")),
  },
  "503": errorResponse("Elasticsearch did not answer or failed the search"),
  "504": errorResponse(
    "The store stopped the search at its time limit (Elasticsearch's timeout, ClickHouse's max_execution_time)",
  ),
};

export const OPENAPI = {
  openapi: "3.1.0",
  info: {
    title: "weir logs API",
    version: "1.0.0",
    summary: "Search the platform's PII-masked service logs: search, trace, context, histogram and a live tail.",
    description:
      "The on-call search over the logs weir's logs pipeline stores in Elasticsearch (docs/logs-search.md). " +
      "Every /v1 request needs a bearer token; a token may be limited to some services, and then only their lines " +
      "are searched (the limit is part of the query Elasticsearch runs). The query language is the one of " +
      "docs/logs-query.md; a phone number, ID, email or card typed in it is searched by its PII token.",
    license: { name: "Apache-2.0", identifier: "Apache-2.0" },
  },
  security: [{ bearer: [] }],
  paths: {
    "/v1/logs/search": {
      get: {
        operationId: "searchLogs",
        summary: "Lines matching a query in a time window, newest first",
        parameters: [
          param("q"),
          param("since"),
          param("from"),
          param("to"),
          param("service"),
          param("level"),
          {
            name: "limit",
            in: "query",
            description: "Lines per page",
            schema: { type: "integer", minimum: 1, maximum: MAX_SEARCH_LIMIT, default: DEFAULT_SEARCH_LIMIT },
          },
          {
            name: "cursor",
            in: "query",
            description: "The `next` of the previous page: the next, older lines",
            schema: { type: "string" },
          },
        ],
        responses: { "200": { description: "The page of lines", content: json(ref("SearchResult")) }, ...ERRORS },
      },
    },
    "/v1/logs/trace/{traceId}": {
      get: {
        operationId: "traceLogs",
        summary: "Every line of one trace, across services and daily indices, oldest first",
        parameters: [
          { name: "traceId", in: "path", required: true, schema: { type: "string", minLength: 1, maxLength: 256 } },
          { ...param("since"), description: "How far back to look (default 24h)" },
          param("from"),
          param("to"),
          {
            name: "limit",
            in: "query",
            description: "At most this many lines (then `truncated` is true)",
            schema: { type: "integer", minimum: 1, maximum: MAX_TRACE_LIMIT, default: 10_000 },
          },
        ],
        responses: { "200": { description: "The trace's lines", content: json(ref("TraceResult")) }, ...ERRORS },
      },
    },
    "/v1/logs/context/{hitId}": {
      get: {
        operationId: "logContext",
        summary: "The lines before and after one line in the same file, in file order (seq)",
        parameters: [
          {
            name: "hitId",
            in: "path",
            required: true,
            description: "A hit's `id` (percent-encoded: it holds a colon)",
            schema: { type: "string", minLength: 1, maxLength: 512 },
          },
          {
            name: "n",
            in: "query",
            description: "Lines before and lines after",
            schema: { type: "integer", minimum: 0, maximum: MAX_CONTEXT_LINES, default: DEFAULT_CONTEXT_LINES },
          },
          {
            name: "before",
            in: "query",
            description: "Lines before (overrides n)",
            schema: { type: "integer", minimum: 0, maximum: MAX_CONTEXT_LINES },
          },
          {
            name: "after",
            in: "query",
            description: "Lines after (overrides n)",
            schema: { type: "integer", minimum: 0, maximum: MAX_CONTEXT_LINES },
          },
        ],
        responses: {
          "200": { description: "The lines around the hit, the hit among them", content: json(ref("ContextResult")) },
          ...ERRORS,
          "404": errorResponse("No line with this id among the token's services"),
          "422": errorResponse("The line was not read from a file, so it has no lines around it"),
        },
      },
    },
    "/v1/logs/histogram": {
      get: {
        operationId: "logHistogram",
        summary: "Counts of matching lines per interval",
        parameters: [
          param("q"),
          { ...param("since"), description: "How far back (default 1h)" },
          param("from"),
          param("to"),
          param("service"),
          param("level"),
          {
            name: "interval",
            in: "query",
            description: "Bucket width, e.g. 1m; default a round interval giving about `bars` buckets",
            schema: { type: "string", pattern: "^\\d+(\\.\\d+)?(ms|s|m|h|d|w)$" },
          },
          {
            name: "store",
            in: "query",
            description:
              "Where to count: auto is Elasticsearch (the store search reads), or ClickHouse when the window starts before Elasticsearch's retention",
            schema: { type: "string", enum: ["auto", "elasticsearch", "clickhouse"], default: "auto" },
          },
          {
            name: "bars",
            in: "query",
            description: "Buckets to aim for without `interval`",
            schema: { type: "integer", minimum: 1, maximum: 1000, default: 60 },
          },
        ],
        responses: { "200": { description: "The buckets", content: json(ref("HistogramResult")) }, ...ERRORS },
      },
    },
    "/v1/logs/tail": {
      get: {
        operationId: "tailLogs",
        summary: "New lines as they become searchable (Server-Sent Events)",
        description:
          "The newest `backlog` lines, then every line indexed after the request began, as `line` events whose data is " +
          "a LogHit (JSON). A comment is sent every 15 s to keep proxies from closing the stream. An `error` event " +
          "(data: Error) ends the stream when Elasticsearch fails.",
        parameters: [
          param("q"),
          param("service"),
          param("level"),
          {
            name: "backlog",
            in: "query",
            description: "Lines already there to send first",
            schema: { type: "integer", minimum: 0, maximum: MAX_TAIL_BACKLOG, default: DEFAULT_TAIL_BACKLOG },
          },
        ],
        responses: {
          "200": {
            description: "An event stream",
            content: {
              "text/event-stream": {
                schema: { type: "string" },
                example: 'event: line\ndata: {"id":"9f1c…-4096:81920","ts":1763641801250,"service":"gift-svc",…}\n\n',
              },
            },
          },
          ...ERRORS,
        },
      },
    },
    "/openapi.json": {
      get: {
        operationId: "openapi",
        summary: "This document",
        security: [],
        responses: { "200": { description: "OpenAPI 3.1", content: json({ type: "object" }) } },
      },
    },
    "/health": {
      get: {
        operationId: "health",
        summary: "Whether the server can reach Elasticsearch",
        security: [],
        responses: {
          "200": { description: "Up", content: json(ref("Health")) },
          "503": { description: "Elasticsearch does not answer", content: json(ref("Health")) },
        },
      },
    },
    "/metrics": {
      get: {
        operationId: "metrics",
        summary: "Prometheus metrics: requests by route and status, their latency, open tails",
        security: [],
        responses: {
          "200": { description: "Prometheus text format", content: { "text/plain": { schema: { type: "string" } } } },
        },
      },
    },
  },
  components: {
    securitySchemes: {
      bearer: {
        type: "http",
        scheme: "bearer",
        description:
          "A token whose SHA-256 is in the server's tokens file (WEIR_LOGS_TOKENS_FILE); `weir logs token` makes one",
      },
    },
    parameters: {
      q: {
        name: "q",
        in: "query",
        description:
          'The query (docs/logs-query.md), e.g. `level:error "upstream did not answer"`; empty: every line. Within the query limits ' +
          `(defaults: ${DEFAULT_QUERY_LIMITS.maxChars} characters, ${DEFAULT_QUERY_LIMITS.maxDepth} levels of nesting, ${DEFAULT_QUERY_LIMITS.maxTerms} terms, ` +
          `${DEFAULT_QUERY_LIMITS.maxWildcards} wildcard values of at most ${DEFAULT_QUERY_LIMITS.maxWildcardStars} * each, none leading), else 400 limit_exceeded`,
        schema: { type: "string", maxLength: DEFAULT_QUERY_LIMITS.maxChars },
      },
      since: {
        name: "since",
        in: "query",
        description: "The last period up to `to`, e.g. 15m, 2h, 7d (default 15m for search)",
        schema: { type: "string", pattern: "^\\d+(\\.\\d+)?(ms|s|m|h|d|w)$" },
      },
      from: {
        name: "from",
        in: "query",
        description: "Start of the window (not with since): ISO time, epoch ms, now-1h, or a period ago",
        schema: { type: "string" },
      },
      to: { name: "to", in: "query", description: "End of the window (default now)", schema: { type: "string" } },
      service: {
        name: "service",
        in: "query",
        description: "Only these services (repeat, or comma-separated); each must be in the token's scope",
        style: "form",
        explode: true,
        schema: { type: "array", items: { type: "string" } },
      },
      level: {
        name: "level",
        in: "query",
        description: "Levels: error, warn,error, or warn+ for WARN and above",
        style: "form",
        explode: true,
        schema: { type: "array", items: { type: "string" } },
      },
    },
    schemas: {
      LogHit: {
        type: "object",
        description: "One log line; fields a line lacks are absent",
        required: ["id", "index", "ts", "time", "service", "host", "level", "dataset", "message"],
        properties: {
          id: { type: "string", description: "The line's id, for /v1/logs/context" },
          index: { type: "string" },
          ts: { type: "integer", description: "Event time, ms since the epoch" },
          time: { type: "string", format: "date-time" },
          service: { type: "string" },
          host: { type: "string" },
          level: { type: "string", enum: ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"] },
          dataset: { type: "string", enum: ["app", "access"] },
          message: { type: "string", description: "PII masked: 138****8000[pii:ph_…]" },
          logger: { type: "string" },
          traceId: { type: "string" },
          spanId: { type: "string" },
          method: { type: "string" },
          endpoint: { type: "string", description: "The route template" },
          urlQuery: { type: "string", description: "The request URL's query string, without '?'; PII masked" },
          status: { type: "integer" },
          latencyMs: { type: "number" },
          requestId: { type: "string" },
          bytesIn: { type: "integer" },
          bytesOut: { type: "integer" },
          referrer: { type: "string", description: "The Referer header; PII masked" },
          userAgent: { type: "string" },
          app: { type: "string" },
          system: { type: "string" },
          caller: { type: "string" },
          uid: { type: "string" },
          deviceId: { type: "string" },
          roomId: { type: "integer" },
          clientIp: { type: "string" },
          error: {
            type: "object",
            properties: {
              type: { type: "string" },
              code: { type: "string" },
              message: { type: "string" },
              stack: { type: "string" },
            },
          },
          attributes: { type: "object", additionalProperties: { type: "string" } },
          source: {
            type: "object",
            required: ["fileId", "seq"],
            properties: {
              fileId: { type: "string" },
              seq: { type: "integer", description: "The line's number in its file" },
              path: { type: "string" },
              offset: { type: "integer" },
            },
          },
        },
      },
      SearchResult: {
        type: "object",
        required: ["from", "to", "hits", "total"],
        properties: {
          from: { type: "integer" },
          to: { type: "integer" },
          hits: { type: "array", items: ref("LogHit") },
          total: {
            type: "object",
            required: ["value", "relation"],
            properties: { value: { type: "integer" }, relation: { type: "string", enum: ["eq", "gte"] } },
          },
          next: { type: "string", description: "Cursor of the next page; absent on the last" },
        },
      },
      TraceResult: {
        type: "object",
        required: ["traceId", "from", "to", "lines", "services", "truncated"],
        properties: {
          traceId: { type: "string" },
          from: { type: "integer" },
          to: { type: "integer" },
          lines: { type: "array", items: ref("LogHit") },
          services: { type: "array", items: { type: "string" }, description: "In the order the trace reached them" },
          truncated: { type: "boolean" },
        },
      },
      ContextResult: {
        type: "object",
        required: ["hit", "lines"],
        properties: { hit: ref("LogHit"), lines: { type: "array", items: ref("LogHit") } },
      },
      HistogramResult: {
        type: "object",
        required: ["store", "from", "to", "intervalMs", "total", "buckets"],
        properties: {
          store: { type: "string", enum: ["elasticsearch", "clickhouse"], description: "Where the counts come from" },
          from: { type: "integer" },
          to: { type: "integer" },
          intervalMs: { type: "integer" },
          total: { type: "integer", description: "The sum of the buckets' counts" },
          buckets: {
            type: "array",
            items: {
              type: "object",
              required: ["start", "count"],
              properties: { start: { type: "integer" }, count: { type: "integer" } },
            },
          },
        },
      },
      Error: {
        type: "object",
        required: ["error"],
        properties: {
          error: {
            type: "object",
            required: ["status", "code", "message"],
            properties: {
              status: { type: "integer" },
              code: {
                type: "string",
                enum: [
                  "bad_query",
                  "limit_exceeded",
                  "bad_request",
                  "unauthorized",
                  "forbidden",
                  "not_found",
                  "unprocessable",
                  "too_many_requests",
                  "overloaded",
                  "unavailable",
                  "timeout",
                  "method_not_allowed",
                ],
              },
              message: {
                type: "string",
                description:
                  "For bad_query and a query's limit_exceeded: the problem, the query and a caret under the place",
              },
              hint: { type: "string" },
              column: { type: "integer", description: "bad_query, limit_exceeded: 1-based column in the query" },
              limit: {
                type: "string",
                description:
                  "limit_exceeded, too_many_requests: the limit's name, as the logs config's search.limits and search.api call it (maxDepth, maxTerms, maxWindow, rate, ...) or the store's setting (indices.query.bool.max_clause_count, max_query_size)",
              },
              value: { type: "number", description: "limit_exceeded: the request's value (ms for maxWindow)" },
              max: { type: "number", description: "limit_exceeded: the most the limit allows" },
              retryAfter: { type: "integer", description: "429: seconds to wait, as the Retry-After header says" },
            },
          },
        },
      },
      Health: {
        type: "object",
        required: ["status"],
        properties: { status: { type: "string", enum: ["ok", "unavailable"] }, elasticsearch: { type: "string" } },
      },
    },
  },
} as const;
