// `weir console`: one HTTP server for the console's page and every API behind it. It serves the
// static bundle (built by esbuild at start, web/server/bundle.ts), the logs API's routes as they are
// (pipelines/logs/api/server.ts, mounted with the same limiter), and the console's own routes: the
// health tree, series and daily report, and the alert board with its live stream, acknowledge,
// resolve, note, timeline and report.
//
// Every /v1 route takes the logs API's bearer tokens, and a token limited to services sees only their
// logs, health and alerts: the scope goes into the ClickHouse queries (health) or the board's filter
// (alerts), and naming another service is 403. Every token is held to the logs API's limits (one
// budget across all routes: rate, concurrency; an alert stream counts as one of its tails), bad input
// is a 400 naming what is wrong or the limit, and each request leaves one audit line.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import pino, { type Logger } from "pino";
import { Counter, type Registry } from "prom-client";
import { type AlertBoard, type BoardAlert, MAX_NOTE_CHARS } from "../../pipelines/alerts/board.ts";
import { alertReport } from "../../pipelines/alerts/report.ts";
import { HealthQueryError } from "../../pipelines/health/health-reader.ts";
import { show } from "../../pipelines/health/queries.ts";
import { buildDailyReport, type DailyReport } from "../../pipelines/health/report.ts";
import type { SloConfig } from "../../pipelines/health/slo.ts";
import { healthTree } from "../../pipelines/health/tree.ts";
import type { AuditRecord } from "../../pipelines/logs/api/audit.ts";
import {
  createLogsApiHandler,
  errorBody,
  HttpError,
  type LogsApiOptions,
  MAX_URL_BYTES,
} from "../../pipelines/logs/api/server.ts";
import { TokenLimiter } from "../../pipelines/logs/api/token-limiter.ts";
import type { ApiToken } from "../../pipelines/logs/api/tokens.ts";
import { ApiLimitsSchema } from "../../pipelines/logs/search/limits.ts";
import type { ServiceScope } from "../../pipelines/logs/search/scope.ts";
import { resolveWindow } from "../../pipelines/logs/search/time.ts";
import type { ClickHouseAuth } from "../../sinks/credentials.ts";
import type { ConsoleBundle } from "./bundle.ts";

const MINUTE = 60_000;
const DAY = 86_400_000;
/** The console's own limits (the logs routes keep the logs config's). */
export const CONSOLE_LIMITS = {
  /** Window of the health tree and series. */
  maxHealthWindowMs: 31 * DAY,
  /** Window of the alert report: the board's horizon bounds it anyway. */
  maxReportWindowMs: 31 * DAY,
  /** Bytes of a POST body. */
  maxBodyBytes: 4096,
  /** Characters of a note. */
  maxNoteChars: MAX_NOTE_CHARS,
  /** Alert streams open in all (each token's count as its tails). */
  maxStreams: 64,
  /** Points of a series. */
  maxPoints: 600,
};
const HEARTBEAT_MS = 15_000;
/** An alert's id: its rule, level, node name (which may hold spaces) and start; no control characters. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const ALERT_ID = /^[^\u0000-\u001f\u007f]{1,512}$/;

export interface ConsoleServerOptions {
  /** The logs API's options: its search, tokens, limits and masker (its port and host are ignored). */
  logs: LogsApiOptions;
  clickhouseUrl: string;
  /** The health tables' reader (sinks/credentials.ts); ClickHouse's default user when absent. */
  clickhouseAuth?: ClickHouseAuth | undefined;
  /** Database of the health tables (default weir). */
  healthDatabase?: string;
  slo: SloConfig;
  board: AlertBoard;
  bundle: ConsoleBundle;
  port?: number;
  host?: string;
  logger?: Logger;
  /** Extra routes (the Risk and Hot keys pages' APIs) answered with the same tokens and limits. */
  extraRoutes?: ConsoleRoute[];
  /** The document served at /openapi.json instead of the logs API's (web/server/openapi.ts). */
  openapi?: object;
}

export interface ConsoleServer {
  server: Server;
  url: string;
  port: number;
  registry: Registry;
  close(): Promise<void>;
}

/** What a console route handler is given. */
export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: string[];
  token: ApiToken;
  /** May this token read this service? */
  visible: (service: string) => boolean;
  /** Services to filter on: undefined for every service. */
  services: readonly string[] | undefined;
  audit: Audit;
  json: (status: number, body: unknown) => void;
}

export interface ConsoleRoute {
  name: string;
  method: "GET" | "POST";
  pattern: RegExp;
  /** An event stream: admitted as one of the token's tails, not one of its requests in flight. */
  stream?: boolean;
  handle: (ctx: RouteContext) => Promise<void>;
}

type Audit = Omit<AuditRecord, "route" | "status" | "ms"> & { alert?: string };

const PAGES = /^\/(logs|health|alerts|risk|hotkeys)?\/?$/;

export async function serveConsole(options: ConsoleServerOptions): Promise<ConsoleServer> {
  const log = options.logger ?? pino({ name: "weir-console" });
  const limits = options.logs.apiLimits ?? ApiLimitsSchema.parse({});
  const limiter = new TokenLimiter(limits);
  const logs = createLogsApiHandler({ ...options.logs, limiter, logger: log });
  const registry = logs.registry;
  const requests = new Counter({
    name: "weir_console_requests_total",
    help: "Console requests answered (the logs routes count in weir_logs_api_requests_total), by route and status.",
    labelNames: ["route", "status"],
    registers: [registry],
  });
  const database = options.healthDatabase ?? "weir";
  const streams = new Set<ServerResponse>();
  const routes: ConsoleRoute[] = [...consoleRoutes(options, database, streams), ...(options.extraRoutes ?? [])];

  const sendJson = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(text),
      "cache-control": "no-store",
      ...headers,
    });
    res.end(text);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    // /health is both the Health page and the server's health check: a browser asking for a page
    // (Accept: text/html) gets the page, a probe gets the check's JSON.
    const page =
      req.method === "GET" &&
      PAGES.test(url.pathname) &&
      ((url.pathname !== "/health/" && url.pathname !== "/health") ||
        /\btext\/html\b/.test(String(req.headers.accept ?? "")));
    if (page || (req.method === "GET" && url.pathname.startsWith("/assets/"))) {
      return serveStatic(options.bundle, url.pathname, req, res);
    }
    if (options.openapi && url.pathname === "/openapi.json" && req.method === "GET") {
      requests.inc({ route: "openapi", status: "200" });
      return sendJson(res, 200, options.openapi);
    }
    if (logs.owns(url.pathname)) return logs.handle(req, res);
    const started = process.hrtime.bigint();
    let route: ConsoleRoute | undefined;
    let params: string[] = [];
    let methodMismatch = false;
    for (const r of routes) {
      const m = r.pattern.exec(url.pathname);
      if (!m) continue;
      if (r.method !== req.method) {
        methodMismatch = true;
        continue;
      }
      route = r;
      params = m.slice(1);
      break;
    }
    const who: Audit = { token: null, scope: null, store: null, results: null, query: null };
    const name = route?.name ?? "unknown";
    res.on("finish", () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      requests.inc({ route: name, status: String(res.statusCode) });
      log.info({ route: name, status: res.statusCode, ms: Math.round(ms * 10) / 10, ...who }, "request");
    });
    const respond = async () => {
      if (!route) {
        if (methodMismatch)
          throw new HttpError(405, "method_not_allowed", `${req.method} is not allowed on ${url.pathname}`);
        throw new HttpError(404, "not_found", `no route ${url.pathname}`, "see docs/console.md");
      }
      const auth = options.logs.tokens.authenticate(req.headers.authorization);
      if (!auth.ok) {
        throw new HttpError(
          401,
          "unauthorized",
          auth.reason === "missing" ? "this API needs a bearer token" : "the bearer token is not one this server knows",
          "send `Authorization: Bearer <token>`; `weir logs token` makes one",
        );
      }
      const token = auth.token;
      who.token = token.name;
      who.scope = token.scope;
      let decoded: string[];
      try {
        decoded = params.map((p) => decodeURIComponent(p));
      } catch {
        throw new HttpError(400, "bad_request", "the path is not valid percent-encoding");
      }
      const admission = limiter.admit(token.name);
      if (!admission.ok) {
        who.limit = admission.limit;
        throw tooMany(admission.message, admission.limit, admission.retryAfterSeconds);
      }
      let release = admission.release;
      try {
        if (route.stream) {
          if (streams.size >= CONSOLE_LIMITS.maxStreams) {
            throw new HttpError(503, "unavailable", `${CONSOLE_LIMITS.maxStreams} alert streams are open already`);
          }
          const open = limiter.openTail(token.name);
          if (!open.ok) {
            who.limit = open.limit;
            throw tooMany(open.message, open.limit, open.retryAfterSeconds);
          }
          // The stream holds one of the token's tails until it closes, no longer a request in flight.
          admission.release();
          release = open.release;
          res.on("close", open.release);
        }
        await route.handle({
          req,
          res,
          url,
          params: decoded,
          token,
          visible: visibleTo(token.scope),
          services: token.scope === "all" ? undefined : token.scope,
          audit: who,
          json: (status, body) => sendJson(res, status, body),
        });
      } finally {
        if (!route.stream) release();
      }
    };
    respond().catch((e: unknown) => {
      const { status, body, headers } = errorBody(toHttp(e));
      if (status === 500) log.error({ err: e, route: name }, "request failed");
      if (res.headersSent) {
        res.end();
        return;
      }
      sendJson(res, status, body, headers);
    });
  };

  const server = createServer({ maxHeaderSize: MAX_URL_BYTES }, handle);
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
    registry,
    close: async () => {
      logs.close();
      for (const s of streams) s.end();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
    },
  };
}

function tooMany(message: string, limit: string, retryAfterSeconds: number): HttpError {
  return new HttpError(
    429,
    "too_many_requests",
    message,
    `wait ${retryAfterSeconds} s (Retry-After)`,
    undefined,
    { limit },
    retryAfterSeconds,
  );
}

export function visibleTo(scope: ServiceScope): (service: string) => boolean {
  if (scope === "all") return () => true;
  const set = new Set(scope);
  return (service) => set.has(service);
}

/** Errors of the health queries and the board as the API's errors; the rest as errorBody makes them. */
function toHttp(e: unknown): unknown {
  if (e instanceof HealthQueryError) {
    switch (e.kind) {
      case "bad-argument":
        return new HttpError(400, "bad_request", e.message, e.hint);
      case "unknown-service":
      case "no-data":
        return new HttpError(404, "not_found", e.message, e.hint);
      default:
        return new HttpError(503, "unavailable", e.message, e.hint);
    }
  }
  const code = (e as { code?: unknown })?.code;
  if (code === "ECONNREFUSED" || code === "ECONNRESET") {
    return new HttpError(503, "unavailable", "ClickHouse did not answer", "is the stack up? `weir stack up`");
  }
  return e;
}

// --- the console's routes ------------------------------------------------------------------------------

/** The console's own routes (the health and alert pages' and /v1/me). */
export function consoleRoutes(
  options: ConsoleServerOptions,
  database: string,
  streams: Set<ServerResponse>,
): ConsoleRoute[] {
  const board = options.board;
  const base = {
    clickhouseUrl: options.clickhouseUrl,
    ...(options.clickhouseAuth ? { clickhouseAuth: options.clickhouseAuth } : {}),
    database,
    slo: options.slo,
  };
  const window = (url: URL, defaultSince: number, max: number) => {
    const q = url.searchParams;
    const w = resolveWindow(
      { since: param(q, "since"), from: param(q, "from"), to: param(q, "to") },
      defaultSince,
      Date.now(),
    );
    if (w.to - w.from > max) {
      throw new HttpError(
        400,
        "limit_exceeded",
        `the window is longer than ${max / DAY} days`,
        "narrow it with since, or from and to",
        undefined,
        { limit: "maxWindow", value: Math.round((w.to - w.from) / 1000), max: max / 1000 },
      );
    }
    return w;
  };
  const alertOf = (ctx: RouteContext): BoardAlert => {
    const id = ctx.params[0] ?? "";
    if (!ALERT_ID.test(id)) throw new HttpError(400, "bad_request", "not an alert id");
    ctx.audit.alert = id;
    const a = board.get(id);
    // An alert of another service is not told apart from none.
    if (!a || !ctx.visible(a.service)) throw new HttpError(404, "not_found", `no alert ${id} on the board`);
    return a;
  };
  const act =
    (action: "ACK" | "RESOLVE" | "NOTE"): ConsoleRoute["handle"] =>
    async (ctx) => {
      const a = alertOf(ctx);
      const body = await readJsonBody(ctx.req);
      const note = body.note ?? "";
      if (typeof note !== "string") throw new HttpError(400, "bad_request", "note is not a string");
      if (note.length > CONSOLE_LIMITS.maxNoteChars) {
        throw new HttpError(
          400,
          "limit_exceeded",
          `the note is longer than ${CONSOLE_LIMITS.maxNoteChars} characters`,
          undefined,
          undefined,
          {
            limit: "maxNoteChars",
            value: note.length,
            max: CONSOLE_LIMITS.maxNoteChars,
          },
        );
      }
      for (const k of Object.keys(body))
        if (k !== "note") throw new HttpError(400, "bad_request", `unknown field ${k}`, 'the body is {"note": "..."}');
      if (action === "NOTE" && note === "") throw new HttpError(400, "bad_request", "a note needs text");
      ctx.audit.store = "clickhouse";
      const after = await board.act(a.id, action, ctx.token.name, note);
      ctx.json(200, after);
    };
  return [
    {
      name: "me",
      method: "GET",
      pattern: /^\/v1\/me$/,
      handle: async (ctx) => ctx.json(200, { token: ctx.token.name, scope: ctx.token.scope }),
    },
    {
      name: "health-tree",
      method: "GET",
      pattern: /^\/v1\/health\/tree$/,
      handle: async (ctx) => {
        const w = window(ctx.url, 15 * MINUTE, CONSOLE_LIMITS.maxHealthWindowMs);
        ctx.audit.store = "clickhouse";
        const tree = await healthTree({ ...base, since: w.to - w.from, now: w.to, services: ctx.services });
        ctx.audit.results = tree.roots.length;
        ctx.json(200, tree);
      },
    },
    {
      name: "health-series",
      method: "GET",
      pattern: /^\/v1\/health\/series$/,
      handle: async (ctx) => {
        const q = ctx.url.searchParams;
        const service = param(q, "service");
        if (service === undefined) throw new HttpError(400, "bad_request", "service is missing", "?service=gift-svc");
        if (!ctx.visible(service)) throw new HttpError(403, "forbidden", `this token may not read service ${service}`);
        const w = window(ctx.url, 15 * MINUTE, CONSOLE_LIMITS.maxHealthWindowMs);
        const points = integer(q, "points") ?? 240;
        if (points < 10 || points > CONSOLE_LIMITS.maxPoints) {
          throw new HttpError(
            400,
            "limit_exceeded",
            `points must be 10 to ${CONSOLE_LIMITS.maxPoints}`,
            undefined,
            undefined,
            {
              limit: "maxPoints",
              value: points,
              max: CONSOLE_LIMITS.maxPoints,
            },
          );
        }
        ctx.audit.store = "clickhouse";
        const endpoint = param(q, "endpoint");
        const result = await show({
          ...base,
          service,
          ...(endpoint !== undefined ? { endpoint } : {}),
          since: w.to - w.from,
          now: w.to,
          maxPoints: points,
        });
        ctx.audit.results = result.series.length;
        ctx.json(200, result);
      },
    },
    {
      name: "health-report",
      method: "GET",
      pattern: /^\/v1\/health\/report$/,
      handle: async (ctx) => {
        const day = param(ctx.url.searchParams, "day") ?? new Date(Date.now()).toISOString().slice(0, 10);
        ctx.audit.store = "clickhouse";
        const report = await buildDailyReport({ ...base, day });
        ctx.json(200, scopeReport(report, ctx.visible, ctx.services !== undefined));
      },
    },
    {
      name: "alerts",
      method: "GET",
      pattern: /^\/v1\/alerts$/,
      handle: async (ctx) => {
        const alerts = board.list(ctx.visible);
        ctx.audit.results = alerts.length;
        const scenes = board.scenes
          .all()
          .filter(
            (s) => ctx.services === undefined || s.services.some(ctx.visible) || alerts.some((a) => a.scene === s.id),
          );
        ctx.json(200, { scenes, alerts });
      },
    },
    {
      name: "alerts-report",
      method: "GET",
      pattern: /^\/v1\/alerts\/report$/,
      handle: async (ctx) => {
        const w = window(ctx.url, DAY, CONSOLE_LIMITS.maxReportWindowMs);
        const report = alertReport(board.list(ctx.visible), w.from, w.to);
        ctx.audit.results = report.alerts.length;
        ctx.json(200, report);
      },
    },
    {
      name: "alerts-stream",
      method: "GET",
      pattern: /^\/v1\/alerts\/stream$/,
      stream: true,
      handle: async (ctx) => {
        const res = ctx.res;
        res.writeHead(200, {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-cache",
          connection: "keep-alive",
          "x-accel-buffering": "no",
        });
        streams.add(res);
        res.write(": alerts\n\n");
        const unsubscribe = board.subscribe((a) => {
          if (ctx.visible(a.service) && !res.destroyed) res.write(`event: alert\ndata: ${JSON.stringify(a)}\n\n`);
        });
        const heartbeat = setInterval(() => res.write(": keep-alive\n\n"), HEARTBEAT_MS);
        await new Promise<void>((resolve) => res.on("close", resolve));
        clearInterval(heartbeat);
        unsubscribe();
        streams.delete(res);
      },
    },
    {
      name: "alert",
      method: "GET",
      pattern: /^\/v1\/alerts\/([^/]+)$/,
      handle: async (ctx) => ctx.json(200, alertOf(ctx)),
    },
    { name: "alert-ack", method: "POST", pattern: /^\/v1\/alerts\/([^/]+)\/ack$/, handle: act("ACK") },
    { name: "alert-resolve", method: "POST", pattern: /^\/v1\/alerts\/([^/]+)\/resolve$/, handle: act("RESOLVE") },
    { name: "alert-note", method: "POST", pattern: /^\/v1\/alerts\/([^/]+)\/note$/, handle: act("NOTE") },
  ];
}

/** A daily report with only the services a token may read (and no app or system figures for a scoped one). */
export function scopeReport(r: DailyReport, visible: (s: string) => boolean, scoped: boolean): DailyReport {
  if (!scoped) return r;
  const list = r.alerts.list.filter((a) => visible(a.service));
  const byRule = new Map<string, { rule: string; severity: (typeof list)[number]["severity"]; count: number }>();
  for (const a of list) {
    const k = `${a.rule}\u0001${a.severity}`;
    const e = byRule.get(k) ?? { rule: a.rule, severity: a.severity, count: 0 };
    e.count++;
    byRule.set(k, e);
  }
  return {
    ...r,
    app: [],
    systems: [],
    services: r.services.filter((n) => visible(n.service)),
    endpoints: r.endpoints.filter((n) => visible(n.service)),
    worstEndpoints: r.worstEndpoints.filter((n) => visible(n.service)),
    alerts: { episodes: list.length, byRule: [...byRule.values()], list },
  };
}

function param(q: URLSearchParams, name: string, max = 512): string | undefined {
  const v = q.get(name);
  if (v === null || v === "") return undefined;
  if (v.length > max) throw new HttpError(400, "bad_request", `${name} is longer than ${max} characters`);
  return v;
}

function integer(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null || v === "") return undefined;
  if (!/^\d{1,9}$/.test(v)) throw new HttpError(400, "bad_request", `${name}=${v.slice(0, 32)} is not a whole number`);
  return Number(v);
}

/** A small JSON object body: at most maxBodyBytes, an object of strings. */
export async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = req.headers["content-type"] ?? "";
  const declared = Number(req.headers["content-length"] ?? 0);
  const tooLarge = (value: number) =>
    new HttpError(
      400,
      "limit_exceeded",
      `the body is larger than ${CONSOLE_LIMITS.maxBodyBytes} bytes`,
      undefined,
      undefined,
      {
        limit: "maxBodyBytes",
        value,
        max: CONSOLE_LIMITS.maxBodyBytes,
      },
    );
  if (declared > CONSOLE_LIMITS.maxBodyBytes) {
    req.resume();
    throw tooLarge(declared);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > CONSOLE_LIMITS.maxBodyBytes) {
      req.resume();
      throw tooLarge(size);
    }
    chunks.push(chunk);
  }
  if (size === 0) return {};
  if (!/^application\/json\b/i.test(String(type))) {
    throw new HttpError(400, "bad_request", "the body must be JSON", "send content-type: application/json");
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new HttpError(400, "bad_request", "the body is not valid JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new HttpError(400, "bad_request", "the body must be a JSON object");
  }
  return value as Record<string, unknown>;
}

function serveStatic(bundle: ConsoleBundle, pathname: string, req: IncomingMessage, res: ServerResponse): void {
  const file = pathname.startsWith("/assets/") ? bundle.files.get(pathname.slice("/assets/".length)) : bundle.index;
  if (!file) {
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" });
    res.end("not found");
    return;
  }
  const gzip = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
  const body = gzip ? file.gzip : file.body;
  res.writeHead(200, {
    "content-type": file.type,
    "content-length": body.length,
    // Assets carry their hash in their name; the page itself is asked for each time.
    "cache-control": file === bundle.index ? "no-cache" : "public, max-age=31536000, immutable",
    ...(gzip ? { "content-encoding": "gzip" } : {}),
    vary: "accept-encoding",
    "content-security-policy":
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  });
  res.end(body);
}
