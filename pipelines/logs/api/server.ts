// The logs API over node:http: GET routes for search, trace, context and histogram (JSON), a live tail
// as Server-Sent Events, the OpenAPI document, /health and /metrics. Every /v1 route needs a bearer
// token (tokens.ts); its service scope goes into the search itself (search/scope.ts).
//
// Every token is held to its limits (token-limiter.ts): requests per second, requests in flight and
// tails open, refused with 429 and Retry-After. Every request is logged as one audit line (audit.ts):
// route, status, time, the token's name and scope, the store, the results and the query with its PII
// masked. Never the token.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import pino, { type Logger } from "pino";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { PiiMasker } from "../pii/masker.ts";
import { QueryError, QueryLimitError } from "../query/query.ts";
import { type ClickHouseLogHistogram, chooseHistogramStore } from "../search/clickhouse-histogram.ts";
import { SearchError, type SearchErrorKind, STATUS_OF } from "../search/errors.ts";
import type { LogHit } from "../search/hit.ts";
import { parseInterval } from "../search/interval.ts";
import { type ApiLimits, ApiLimitsSchema, SearchLimitError } from "../search/limits.ts";
import type { LineFilter, LogSearch } from "../search/search.ts";
import { LogTail, TAIL_POLL_MS } from "../search/tail.ts";
import { resolveWindow } from "../search/time.ts";
import { type AuditRecord, maskQuery } from "./audit.ts";
import { OPENAPI } from "./openapi.ts";
import { TokenLimiter } from "./token-limiter.ts";
import type { ApiToken, TokenStore } from "./tokens.ts";

const MINUTE = 60_000;
const DEFAULT_SINCE_MS = { search: 15 * MINUTE, trace: 24 * 60 * MINUTE, histogram: 60 * MINUTE };
/** Read from the URL at most; the query's own limit (search.limits.maxChars) refuses by name below it. */
const MAX_PARAMETER_CHARS = 65_536;
/** The request line and headers a request may send (Node's maxHeaderSize). */
export const MAX_URL_BYTES = 65_536;
const HEARTBEAT_MS = 15_000;

/** The routes the server answers, as the OpenAPI document names them. */
export const ROUTES = [
  { name: "search", path: "/v1/logs/search", pattern: /^\/v1\/logs\/search$/ },
  { name: "trace", path: "/v1/logs/trace/{traceId}", pattern: /^\/v1\/logs\/trace\/([^/]+)$/ },
  { name: "context", path: "/v1/logs/context/{hitId}", pattern: /^\/v1\/logs\/context\/([^/]+)$/ },
  { name: "histogram", path: "/v1/logs/histogram", pattern: /^\/v1\/logs\/histogram$/ },
  { name: "tail", path: "/v1/logs/tail", pattern: /^\/v1\/logs\/tail$/ },
  { name: "openapi", path: "/openapi.json", pattern: /^\/openapi\.json$/ },
  { name: "health", path: "/health", pattern: /^\/health$/ },
  { name: "metrics", path: "/metrics", pattern: /^\/metrics$/ },
] as const;

type RouteName = (typeof ROUTES)[number]["name"];

export interface LogsApiOptions {
  search: LogSearch;
  /** Histograms of windows Elasticsearch no longer holds; without it every histogram is Elasticsearch's. */
  clickhouse?: ClickHouseLogHistogram;
  /** How long Elasticsearch keeps a day (the logs config's elasticsearch.retention); default 7 days. */
  elasticsearchRetentionMs?: number;
  tokens: TokenStore;
  /** 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1: the API is for a reverse proxy or an on-call laptop, not the open network. */
  host?: string;
  logger?: Logger;
  /** Tail poll interval, ms. */
  pollMs?: number;
  /** Open tails at most; each polls Elasticsearch twice a second. */
  maxTails?: number;
  /** What one token may ask (the logs config's search.api); default ApiLimitsSchema's defaults. */
  apiLimits?: ApiLimits;
  /** The pipeline's masker: the audit line's query is masked as the pipeline masks lines. */
  masker?: PiiMasker;
  /**
   * The per-token limits' state; default one of its own. A server answering more routes than these
   * (`weir console`) passes the one all its routes share, so a token has one budget.
   */
  limiter?: TokenLimiter;
}

/** The logs API's routes as a request handler, for a server that answers other routes too. */
export interface LogsApiHandler {
  /** Answers a request whose path is one of ROUTES' (`owns`). */
  handle(req: IncomingMessage, res: ServerResponse): void;
  owns(pathname: string): boolean;
  registry: Registry;
  /** Ends open tails. */
  close(): void;
}

export interface LogsApi {
  server: Server;
  port: number;
  url: string;
  registry: Registry;
  /** Ends open tails and stops the server. */
  close(): Promise<void>;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
    readonly column?: number,
    /** limit, value, max of a refusal by a limit. */
    readonly limit?: { limit: string; value?: number; max?: number },
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

const CODE_OF: Record<SearchErrorKind, string> = {
  "bad-request": "bad_request",
  forbidden: "forbidden",
  "not-found": "not_found",
  unprocessable: "unprocessable",
  unavailable: "unavailable",
  timeout: "timeout",
  overloaded: "overloaded",
};

/** An error as the API's Error body. */
export function errorBody(e: unknown): {
  status: number;
  body: { error: Record<string, unknown> };
  headers: Record<string, string>;
} {
  const err = toHttpError(e);
  const body: Record<string, unknown> = { status: err.status, code: err.code, message: err.message };
  if (err.hint !== undefined) body.hint = err.hint;
  if (err.column !== undefined) body.column = err.column;
  if (err.limit !== undefined) Object.assign(body, err.limit);
  const headers: Record<string, string> = {};
  if (err.retryAfterSeconds !== undefined) {
    body.retryAfter = err.retryAfterSeconds;
    headers["retry-after"] = String(err.retryAfterSeconds);
  }
  if (err.status === 401) headers["www-authenticate"] = 'Bearer realm="weir-logs"';
  if (err.status === 405) headers.allow = "GET";
  return { status: err.status, body: { error: body }, headers };
}

function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof QueryLimitError) {
    const limit = { limit: e.limit, value: e.value, max: e.max };
    return new HttpError(400, "limit_exceeded", e.message, e.hint, e.column, limit);
  }
  if (e instanceof QueryError) return new HttpError(400, "bad_query", e.message, e.hint, e.column);
  if (e instanceof SearchLimitError) {
    const limit = { limit: e.limit, value: e.value, max: e.max };
    return new HttpError(400, "limit_exceeded", e.message, e.hint, undefined, limit);
  }
  if (e instanceof SearchError) {
    return new HttpError(
      STATUS_OF[e.kind],
      CODE_OF[e.kind],
      e.message,
      e.hint,
      undefined,
      undefined,
      e.retryAfterSeconds ?? (e.kind === "overloaded" ? 5 : undefined),
    );
  }
  return new HttpError(500, "internal", "the server failed this request; its log says why");
}

/** What a request's audit line is built from while it is answered. */
type Audit = Omit<AuditRecord, "route" | "status" | "ms">;

export function createLogsApiHandler(options: LogsApiOptions): LogsApiHandler {
  const log = options.logger ?? pino({ name: "weir-logs-api" });
  const search = options.search;
  const pollMs = options.pollMs ?? TAIL_POLL_MS;
  const maxTails = options.maxTails ?? 32;
  const retentionMs = options.elasticsearchRetentionMs ?? 7 * 86_400_000;
  const registry = new Registry();
  const requests = new Counter({
    name: "weir_logs_api_requests_total",
    help: "Requests answered, by route and status.",
    labelNames: ["route", "status"],
    registers: [registry],
  });
  const seconds = new Histogram({
    name: "weir_logs_api_request_seconds",
    help: "Time to answer, by route (a tail: until its headers and backlog are sent).",
    labelNames: ["route"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const tailsOpen = new Gauge({
    name: "weir_logs_api_tails_open",
    help: "Tails streaming now.",
    registers: [registry],
  });
  const limited = new Counter({
    name: "weir_logs_api_limited_total",
    help: "Requests refused by a limit, by the limit's name (maxDepth, maxTerms, rate, tails, ...).",
    labelNames: ["limit"],
    registers: [registry],
  });
  const tails = new Set<AbortController>();
  const limiter = options.limiter ?? new TokenLimiter(options.apiLimits ?? ApiLimitsSchema.parse({}));
  const maxBuckets = search.limits.maxBuckets;

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  };

  const authenticate = (req: IncomingMessage): ApiToken => {
    const auth = options.tokens.authenticate(req.headers.authorization);
    if (auth.ok) return auth.token;
    throw new HttpError(
      401,
      "unauthorized",
      auth.reason === "missing" ? "this API needs a bearer token" : "the bearer token is not one this server knows",
      "send `Authorization: Bearer <token>`; `weir logs token` makes one, and its hash goes in the tokens file",
    );
  };

  const handle = async (
    req: IncomingMessage,
    res: ServerResponse,
    route: RouteName,
    param: string | undefined,
    url: URL,
    who: Audit,
  ) => {
    const q = url.searchParams;
    if (route === "openapi") return json(res, 200, OPENAPI);
    if (route === "metrics") {
      const text = await registry.metrics();
      res.writeHead(200, { "content-type": registry.contentType });
      res.end(text);
      return;
    }
    if (route === "health") {
      try {
        const h = await search.client.cluster.health({ timeout: "2s" }, { requestTimeout: 3000 });
        return json(res, 200, { status: "ok", elasticsearch: h.status });
      } catch (e) {
        return json(res, 503, { status: "unavailable", elasticsearch: (e as Error).message });
      }
    }
    const token = authenticate(req);
    who.token = token.name;
    who.scope = token.scope;
    const asked = q.get("q");
    if (asked !== null && asked !== "") who.query = maskQuery(asked, options.masker);
    const admission = limiter.admit(token.name);
    if (!admission.ok) {
      who.limit = admission.limit;
      throw new HttpError(
        429,
        "too_many_requests",
        admission.message,
        `wait ${admission.retryAfterSeconds} s (Retry-After)`,
        undefined,
        { limit: admission.limit },
        admission.retryAfterSeconds,
      );
    }
    try {
      await answer(res, route, param, q, who, token, admission.release);
    } finally {
      admission.release();
    }
  };

  const answer = async (
    res: ServerResponse,
    route: Exclude<RouteName, "openapi" | "metrics" | "health">,
    param: string | undefined,
    q: URLSearchParams,
    who: Audit,
    token: ApiToken,
    release: () => void,
  ) => {
    const scope = token.scope;
    const now = Date.now();
    const filter = (): LineFilter => ({
      query: text(q, "q", MAX_PARAMETER_CHARS),
      services: list(q, "service"),
      levels: list(q, "level"),
      scope,
    });
    const window = (defaultSince: number) =>
      resolveWindow({ since: text(q, "since"), from: text(q, "from"), to: text(q, "to") }, defaultSince, now);
    switch (route) {
      case "search": {
        const result = await search.search({
          ...filter(),
          ...window(DEFAULT_SINCE_MS.search),
          limit: integer(q, "limit"),
          cursor: text(q, "cursor"),
        });
        who.store = "elasticsearch";
        who.results = result.hits.length;
        return json(res, 200, result);
      }
      case "trace": {
        const result = await search.trace({
          traceId: param ?? "",
          ...window(DEFAULT_SINCE_MS.trace),
          limit: integer(q, "limit"),
          scope,
        });
        who.store = "elasticsearch";
        who.results = result.lines.length;
        return json(res, 200, result);
      }
      case "context": {
        const n = integer(q, "n");
        const result = await search.context({
          hitId: param ?? "",
          before: integer(q, "before") ?? n,
          after: integer(q, "after") ?? n,
          scope,
        });
        who.store = "elasticsearch";
        who.results = result.lines.length;
        return json(res, 200, result);
      }
      case "histogram": {
        const w = window(DEFAULT_SINCE_MS.histogram);
        const interval = text(q, "interval");
        const request = {
          ...filter(),
          ...w,
          intervalMs: interval !== undefined ? parseInterval(interval, w.from, w.to, maxBuckets) : undefined,
          bars: integer(q, "bars"),
        };
        const asked = text(q, "store") ?? "auto";
        if (asked !== "auto" && asked !== "elasticsearch" && asked !== "clickhouse") {
          throw new HttpError(400, "bad_request", `store=${asked} is not auto, elasticsearch or clickhouse`);
        }
        if (asked === "clickhouse" && !options.clickhouse) {
          throw new HttpError(
            400,
            "bad_request",
            "this server has no ClickHouse to count in",
            "ask with store=elasticsearch",
          );
        }
        const store = chooseHistogramStore(asked, w.from, now, retentionMs, options.clickhouse !== undefined);
        who.store = store;
        const result =
          store === "clickhouse" && options.clickhouse
            ? await options.clickhouse.histogram(request)
            : await search.histogram(request);
        who.results = result.total;
        return json(res, 200, result);
      }
      case "tail":
        who.store = "elasticsearch";
        return tail(res, { ...filter(), backlog: integer(q, "backlog") }, who, token, release);
    }
  };

  const tail = async (
    res: ServerResponse,
    request: LineFilter & { backlog?: number },
    who: Audit,
    token: ApiToken,
    release: () => void,
  ) => {
    if (tails.size >= maxTails) {
      throw new HttpError(
        503,
        "unavailable",
        `${maxTails} tails are open already`,
        "close one, or narrow a search instead",
      );
    }
    const follower = new LogTail(search, request);
    const open = limiter.openTail(token.name);
    if (!open.ok) {
      who.limit = open.limit;
      throw new HttpError(
        429,
        "too_many_requests",
        open.message,
        "close one of this token's tails first",
        undefined,
        { limit: open.limit },
        open.retryAfterSeconds,
      );
    }
    let backlog: LogHit[];
    try {
      // Errors before the stream starts (a bad query, a service out of scope, Elasticsearch down) are
      // answered like any other request's.
      backlog = await follower.start();
    } catch (e) {
      open.release();
      throw e;
    }
    who.results = backlog.length;
    // The tail holds one of the token's tails from here on, no longer one of its requests in flight.
    release();
    const ac = new AbortController();
    tails.add(ac);
    tailsOpen.inc();
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    const send = async (lines: readonly LogHit[]) => {
      let ok = true;
      for (const l of lines) ok = res.write(`event: line\ndata: ${JSON.stringify(l)}\n\n`);
      if (!ok && !ac.signal.aborted)
        await new Promise<void>((resolve) => {
          const done = () => {
            res.off("drain", done);
            ac.signal.removeEventListener("abort", done);
            resolve();
          };
          res.on("drain", done);
          ac.signal.addEventListener("abort", done, { once: true });
        });
    };
    res.write(": tail started\n\n");
    await send(backlog);
    // The response's close, not the request's: a GET's request is over (and closed) once it is read.
    res.on("close", () => ac.abort());
    const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), HEARTBEAT_MS);
    try {
      await follower.follow(send, ac.signal, pollMs);
    } catch (e) {
      const { body } = errorBody(e);
      if (!(e instanceof SearchError)) log.error({ err: e }, "tail failed");
      if (!res.destroyed) res.write(`event: error\ndata: ${JSON.stringify(body)}\n\n`);
    } finally {
      clearInterval(heartbeat);
      tails.delete(ac);
      tailsOpen.dec();
      open.release();
      res.end();
    }
  };

  const handleRequest = (req: IncomingMessage, res: ServerResponse) => {
    const started = process.hrtime.bigint();
    const url = new URL(req.url ?? "/", "http://localhost");
    let route: RouteName | "unknown" = "unknown";
    let param: string | undefined;
    for (const r of ROUTES) {
      const m = r.pattern.exec(url.pathname);
      if (m) {
        route = r.name;
        if (m[1] !== undefined) param = m[1];
        break;
      }
    }
    const who: Audit = { token: null, scope: null, store: null, results: null, query: null };
    const finish = () => {
      const status = res.statusCode;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      requests.inc({ route, status: String(status) });
      if (route !== "tail") seconds.observe({ route }, ms / 1000);
      if (route !== "metrics" && route !== "health") {
        const audit: AuditRecord = { route, status, ms: Math.round(ms * 10) / 10, ...who };
        if (who.limit !== undefined) limited.inc({ limit: who.limit });
        log.info(audit, "request");
      }
    };
    res.on("finish", finish);
    const respond = async () => {
      if (route === "unknown") throw new HttpError(404, "not_found", `no route ${url.pathname}`, "see /openapi.json");
      if (req.method !== "GET") {
        throw new HttpError(405, "method_not_allowed", `${req.method} is not allowed here`, "every route is GET");
      }
      let decoded: string | undefined;
      try {
        decoded = param !== undefined ? decodeURIComponent(param) : undefined;
      } catch {
        throw new HttpError(400, "bad_request", "the path is not valid percent-encoding");
      }
      await handle(req, res, route, decoded, url, who);
    };
    respond().catch((e: unknown) => {
      const { status, body, headers } = errorBody(e);
      if (status === 500) log.error({ err: e, route }, "request failed");
      // A store's own words, which the user is not shown: for whoever runs the server.
      if (e instanceof SearchError && e.storeReason !== undefined)
        log.warn({ route, token: who.token, reason: e.storeReason }, "store refused a search");
      if (e instanceof QueryLimitError || e instanceof SearchLimitError) who.limit = e.limit;
      if (res.headersSent) {
        res.end();
        return;
      }
      json(res, status, body, headers);
    });
  };
  return {
    handle: handleRequest,
    owns: (pathname) => ROUTES.some((r) => r.pattern.test(pathname)),
    registry,
    close: () => {
      for (const t of tails) t.abort();
    },
  };
}

export async function serveLogsApi(options: LogsApiOptions): Promise<LogsApi> {
  const handler = createLogsApiHandler(options);
  // Node's default of 16 KiB would answer 431 (with no body saying why) to a query under the query's own
  // length limit once percent-encoded (up to 12 bytes a character); past 64 KiB it still does.
  const server = createServer({ maxHeaderSize: MAX_URL_BYTES }, handler.handle);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    server,
    port: address.port,
    url: `http://${host}:${address.port}`,
    registry: handler.registry,
    close: async () => {
      handler.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
    },
  };
}

function text(q: URLSearchParams, name: string, max = 512): string | undefined {
  const v = q.get(name);
  if (v === null || v === "") return undefined;
  if (v.length > max) throw new HttpError(400, "bad_request", `${name} is longer than ${max} characters`);
  return v;
}

function list(q: URLSearchParams, name: string): string[] | undefined {
  const values = q
    .getAll(name)
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter((v) => v !== "");
  return values.length > 0 ? values : undefined;
}

function integer(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === "") return undefined;
  if (!/^\d{1,9}$/.test(v)) throw new HttpError(400, "bad_request", `${name}=${v} is not a whole number`);
  return Number(v);
}
